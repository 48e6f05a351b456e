"""N seeds of a small retraining run: N sequential programs vs one vmapped program.

The setting: MLP-7-ReLU (width 100) on Fashion-MNIST (60,000 x 32x32x1,
resident), 80% global magnitude pruning, `--epochs` epochs of retraining with
SGD (momentum 0.9, linear LR), batch 128, evaluation on the 10,000 test images
after every epoch; seeds 0..N-1 differ in init, mask and data order.

  sequential  N separate runs, each building and compiling its own `Steps`
              (what N sweep points cost with `train_and_evaluate`, minus its
              checkpoint and logging I/O, which `--full_loop` adds back);
  vmapped     one `Steps`; `jax.vmap` over the stacked TrainStates and the
              per-seed data keys inside the scanned epoch, one compile.

Run:
  JAX_PLATFORMS=cpu .venv/bin/python experiments/benchmarks/vmap_seeds.py [--seeds 5]
Prints wall seconds of both and the speedup, and checks that every vmapped
seed's test accuracy matches its sequential run (within 2 points; the params
drift apart slightly because vmap reorders float sums).
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxprune import config_utils, models, pruning, schedules
from jaxprune.data import pipeline
from jaxprune.train import Start, optim, sharding, train_and_evaluate
from jaxprune.train.state import init_variables, state_from_params
from jaxprune.train.steps import Steps


def config(epochs: int, seed: int) -> ml_collections.ConfigDict:
  c = config_utils.base_config()
  c.seed, c.num_epochs, c.progress = seed, epochs, False
  c.data.image_size = (32, 32)
  c.model.init = "orthogonal"
  c.schedule = ml_collections.ConfigDict(dict(name="linear", lr=0.01, epochs=epochs))
  return c


def pruned_start(c, data) -> Start:
  model = models.create(c.model.name, 10, init=c.model.init)
  rng = jax.random.split(jax.random.PRNGKey(c.seed))[0]
  params, _ = init_variables(model, jax.random.split(rng)[0], data.input_shape)
  p = pruning.default_config()
  p.name, p.sparsity = "unstructured", 0.8
  res = pruning.prune(p, jax.device_get(params), {}, model_name=c.model.name)
  return Start(*jax.device_get((res.params, {}, res.masks)))


def make_steps(c, data):
  spe = data.train.num_examples // c.batch_size
  schedule = schedules.create(c.schedule, spe)
  tx = optim.create(c.optimizer, schedule)
  model = models.create(c.model.name, 10, init=c.model.init)
  mesh = sharding.make_mesh()
  return Steps(model, tx, schedule, data.preprocess, mesh, c.batch_size, 1000), tx


def state_for(c, start, tx):
  init_rng = jax.random.split(jax.random.PRNGKey(c.seed))[0]
  return state_from_params(
    start.params, start.batch_stats, tx, jax.random.split(init_rng)[1], start.masks
  )


def data_rng(c):
  return jax.random.split(jax.random.PRNGKey(c.seed))[1]


def sequential(configs, starts, data):
  out = []
  for c, start in zip(configs, starts):
    steps, tx = make_steps(c, data)  # A new run compiles its own programs.
    state = state_for(c, start, tx)
    for epoch in range(c.num_epochs):
      state, _ = steps.train_epoch(
        state, data.train.device_images, data.train.device_labels, data_rng(c), epoch
      )
      acc = steps.evaluate(state, data.evals["test"])["accuracy"]
    out.append((jax.device_get(state.params), acc))
  return out


def vmapped(configs, starts, data):
  steps, tx = make_steps(configs[0], data)
  states = [state_for(c, s, tx) for c, s in zip(configs, starts)]
  state = jax.tree_util.tree_map(lambda *x: jnp.stack(x), *states)
  keys = jnp.stack([data_rng(c) for c in configs])
  train = jax.jit(
    jax.vmap(steps._train_epoch, in_axes=(0, None, None, 0, None)),
    static_argnums=4,
  )
  split = data.evals["test"]
  evaluate = jax.jit(
    jax.vmap(
      lambda s: steps._evaluate_resident(
        {"params": s.params, "batch_stats": s.batch_stats},
        split.device_images,
        split.device_labels,
      )
    )
  )
  for epoch in range(configs[0].num_epochs):
    state, _ = train(
      state, data.train.device_images, data.train.device_labels, keys, epoch
    )
    totals = jax.device_get(evaluate(state))
  accs = totals["correct_sum"] / totals["count"]
  params = jax.device_get(state.params)
  return [
    (jax.tree_util.tree_map(functools.partial(lambda i, x: x[i], i), params), a)
    for i, a in enumerate(accs)
  ]


def full_loop(configs, starts):
  t = time.perf_counter()
  with tempfile.TemporaryDirectory() as tmp:
    for i, (c, s) in enumerate(zip(configs, starts)):
      train_and_evaluate(c, f"{tmp}/{i}", start=s)
  return time.perf_counter() - t


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--seeds", type=int, default=5)
  parser.add_argument("--epochs", type=int, default=2)
  parser.add_argument("--train_limit", type=int, default=0)
  parser.add_argument("--full_loop", action="store_true")
  args = parser.parse_args()
  configs = [config(args.epochs, s) for s in range(args.seeds)]
  for c in configs:
    c.data.train_limit = args.train_limit
  data = pipeline.load(configs[0].data)
  repl = sharding.replicated(sharding.make_mesh())
  for split in (data.train, *data.evals.values()):
    split.place(repl)
  starts = [pruned_start(c, data) for c in configs]
  t0 = time.perf_counter()
  seq = sequential(configs, starts, data)
  t1 = time.perf_counter()
  vm = vmapped(configs, starts, data)
  t2 = time.perf_counter()
  # vmap batches the matmuls, so float sums are reordered: over hundreds of
  # steps the runs drift apart slightly; the accuracies must still agree.
  drift = max(
    float(np.max(np.abs(a - b)))
    for (p1, _), (p2, _) in zip(seq, vm)
    for a, b in zip(jax.tree_util.tree_leaves(p1), jax.tree_util.tree_leaves(p2))
  )
  for (_, a1), (_, a2) in zip(seq, vm):
    assert abs(a1 - a2) < 0.02, (a1, a2)
  n = data.train.num_examples
  print(
    f"{args.seeds} seeds x {args.epochs} epochs, {n} train examples, {jax.devices()[0].platform}"
  )
  print(
    f"sequential: {t1 - t0:.1f} s   vmapped: {t2 - t1:.1f} s   speedup {(t1 - t0) / (t2 - t1):.2f}x"
  )
  print("test accuracy per seed (vmapped):", [round(float(a), 4) for _, a in vm])
  print("test accuracy per seed (sequential):", [round(float(a), 4) for _, a in seq])
  print(f"max |param difference| sequential vs vmapped: {drift:.2e}")
  if args.full_loop:
    print(
      f"sequential train_and_evaluate (with I/O): {full_loop(configs, starts):.1f} s"
    )


if __name__ == "__main__":
  main()
