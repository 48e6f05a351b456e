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

`--full_loop` adds both end to end with their checkpoint and logging I/O:
N `train_and_evaluate` runs vs the library's `vmapped.train_and_evaluate_seeds`
(the program `jaxprune.sweeps --vmap_seeds` runs).

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
from jaxprune.models import init_variables
from jaxprune.train import Start, optim, sharding, train_and_evaluate
from jaxprune.train import vmapped as vmapped_lib
from jaxprune.train.state import state_from_params
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
  state = state_from_params(
    start.params, start.batch_stats, tx, jax.random.split(init_rng)[1], start.masks
  )
  # Placed like the step's output (as train_and_evaluate does): an unplaced
  # state makes the second epoch retrace and compile again.
  return jax.device_put(state, sharding.replicated(sharding.make_mesh()))


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


def full_loop_vmapped(configs, starts):
  """The library's vmapped group (what `jaxprune.sweeps --vmap_seeds` runs),
  with the same per-seed checkpoint and logging I/O as `full_loop`."""
  t = time.perf_counter()
  with tempfile.TemporaryDirectory() as tmp:
    dirs = [f"{tmp}/{i}" for i in range(len(configs))]
    vmapped_lib.train_and_evaluate_seeds(configs, dirs, starts=starts)
  return time.perf_counter() - t


def measure(seeds: int, epochs: int, train_limit: int = 0, data_overrides=None) -> dict:
  """Wall seconds of `seeds` sequential runs and of one vmapped run, and checks.

  `data_overrides`: optional {field: value} for `config.data` (e.g. a data_dir).
  """
  configs = [config(epochs, s) for s in range(seeds)]
  for c in configs:
    c.data.train_limit = train_limit
    c.data.update(data_overrides or {})
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
  return {
    "seeds": seeds,
    "epochs": epochs,
    "train_examples": data.train.num_examples,
    "sequential_s": t1 - t0,
    "vmapped_s": t2 - t1,
    "acc_vmapped": [float(a) for _, a in vm],
    "acc_sequential": [float(a) for _, a in seq],
    "max_param_drift": drift,
    "configs": configs,
    "starts": starts,
  }


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--seeds", type=int, default=5)
  parser.add_argument("--epochs", type=int, default=2)
  parser.add_argument("--train_limit", type=int, default=0)
  parser.add_argument("--full_loop", action="store_true")
  args = parser.parse_args()
  r = measure(args.seeds, args.epochs, args.train_limit)
  for a1, a2 in zip(r["acc_sequential"], r["acc_vmapped"]):
    assert abs(a1 - a2) < 0.02, (a1, a2)
  seq_s, vm_s = r["sequential_s"], r["vmapped_s"]
  print(
    f"{args.seeds} seeds x {args.epochs} epochs, {r['train_examples']} train "
    f"examples, {jax.devices()[0].platform}"
  )
  print(
    f"sequential: {seq_s:.1f} s   vmapped: {vm_s:.1f} s   speedup {seq_s / vm_s:.2f}x"
  )
  print("test accuracy per seed (vmapped):", [round(a, 4) for a in r["acc_vmapped"]])
  print(
    "test accuracy per seed (sequential):", [round(a, 4) for a in r["acc_sequential"]]
  )
  print(f"max |param difference| sequential vs vmapped: {r['max_param_drift']:.2e}")
  if args.full_loop:
    print(
      "sequential train_and_evaluate (with I/O): "
      f"{full_loop(r['configs'], r['starts']):.1f} s"
    )
    print(
      "vmapped train_and_evaluate_seeds (with I/O): "
      f"{full_loop_vmapped(r['configs'], r['starts']):.1f} s"
    )


if __name__ == "__main__":
  main()
