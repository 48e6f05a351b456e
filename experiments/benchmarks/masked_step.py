"""Masked vs dense train step for ResNet-56 at batch 128 on CIFAR shapes (CPU).

  JAX_PLATFORMS=cpu python experiments/benchmarks/masked_step.py [--steps 5]
      [--repeats 5] [--batch 128] [--no_torch] [--json]

Times ``jaxprune.train.steps.train_step`` (SGD, momentum 0.9, weight decay
5e-4) with all-ones masks (dense) and with 90% global-magnitude masks, each
compiled once and run ``repeats`` times ``steps`` steps; reports the median
time per step, images/s and the masked/dense ratio (goal <= 1.05). With PyTorch
installed it also times the seeds' way of doing the same masked step (a plain
PyTorch ResNet-56, option-A shortcuts, masks re-applied to the weights after
every optimizer step) on the same number of threads, and prints the
jaxprune/PyTorch ratio.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxprune import models, pruning
from jaxprune.train import hyper as hyper_lib
from jaxprune.train import steps as steps_lib
from jaxprune.train.state import state_from_params


def _time(fn, repeats: int) -> float:
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return statistics.median(times)


def plain_step(model, make_tx):
  """`steps.train_step` of `model` on inputs as given (no augmentation), unjitted."""
  return functools.partial(
    steps_lib.train_step,
    model=model,
    make_tx=make_tx,
    preprocess=lambda x, rng, train: x,
  )


def jax_runners(
  batch: int, steps: int, name: str = "resnet56"
) -> dict[str, tuple[Callable[[], None], Callable[[], float]]]:
  """{"dense" | "masked": (run `steps` compiled steps, sparsity of the pruned
  weights now)}; both compiled and warmed up, ready to time."""
  model = models.create(name)
  variables = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)), train=False)
  params, stats = variables["params"], variables["batch_stats"]
  cfg = pruning.default_config()
  cfg.name, cfg.sparsity = "unstructured", 0.9
  res = pruning.prune(cfg, params, stats, model_name=name)
  masked, prunable = jax.device_get(res.masks), res.prunable
  tx = optax.chain(optax.add_decayed_weights(5e-4), optax.sgd(0.1, momentum=0.9))
  make_tx, hyper = hyper_lib.fixed(tx, lambda s: 0.1)
  step = jax.jit(plain_step(model, make_tx), donate_argnums=0)
  rng = np.random.default_rng(0)
  images = jnp.asarray(rng.normal(size=(batch, 32, 32, 3)), jnp.float32)
  labels = jnp.asarray(rng.integers(0, 10, batch), jnp.int32)
  out = {}
  for kind, masks in (("dense", None), ("masked", masked)):
    # Fresh buffers per run: the step donates its state argument.
    fresh = jax.tree_util.tree_map(
      lambda x: jnp.array(x, copy=True), (params, stats, masks)
    )
    state = state_from_params(*fresh[:2], tx, jax.random.key(1), fresh[2])
    state, _ = step(state, hyper, images, labels)  # Compile + warm up.
    box = [jax.block_until_ready(state)]

    def run(box=box):
      s = box[0]
      for _ in range(steps):
        s, _ = step(s, hyper, images, labels)
      box[0] = jax.block_until_ready(s)

    def sparsity(box=box):
      return float(pruning.masks.sparsity(box[0].params, prunable).sparsity)

    out[kind] = (run, sparsity)
  return out


def bench_jax(
  batch: int, steps: int, repeats: int, name: str = "resnet56"
) -> dict[str, float]:
  out = {}
  for kind, (run, sparsity) in jax_runners(batch, steps, name).items():
    out[kind] = _time(run, repeats) / steps
    out[f"{kind}_sparsity_after"] = sparsity()
  return out


def torch_runner(
  batch: int, steps: int, threads: int, name: str = "resnet56", masked: bool = True
) -> Callable[[], None]:
  """Run `steps` PyTorch train steps (warmed up, ready to time)."""
  import torch
  import torch.nn.functional as F
  import torch_reference

  torch.set_num_threads(threads)

  net = torch_reference.create(name)
  # 90% global magnitude masks, re-applied after every step (seeds' practice);
  # none at all for the dense step.
  weights = [p for n, p in net.named_parameters() if p.dim() > 1 and masked]
  masks = torch_reference.global_magnitude_masks(weights, 0.9) if masked else []
  opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
  x = torch.randn(batch, 3, 32, 32)
  y = torch.randint(0, 10, (batch,))

  def one():
    opt.zero_grad()
    F.cross_entropy(net(x), y).backward()
    for w, m in zip(weights, masks):
      w.grad.mul_(m)
    opt.step()
    with torch.no_grad():
      for w, m in zip(weights, masks):
        w.mul_(m)

  one()

  def run():
    for _ in range(steps):
      one()

  return run


def bench_torch(
  batch: int,
  steps: int,
  repeats: int,
  threads: int,
  name: str = "resnet56",
  masked: bool = True,
) -> float:
  return _time(torch_runner(batch, steps, threads, name, masked), repeats) / steps


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--steps", type=int, default=5)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--no_torch", action="store_true")
  parser.add_argument("--json", action="store_true")
  args = parser.parse_args()
  res = bench_jax(args.batch, args.steps, args.repeats)
  res["ratio_masked_dense"] = res["masked"] / res["dense"]
  print(f"device: {jax.devices()[0].device_kind}, batch {args.batch}")
  for name in ("dense", "masked"):
    print(
      f"jaxprune {name:6s}: {1e3 * res[name]:8.1f} ms/step  "
      f"{args.batch / res[name]:8.1f} images/s  "
      f"(pruned-weight sparsity after steps: {res[f'{name}_sparsity_after']:.4f})"
    )
  print(f"masked / dense: {res['ratio_masked_dense']:.3f} (goal <= 1.05)")
  if not args.no_torch:
    try:
      threads = len(os.sched_getaffinity(0))
      res["torch_masked"] = bench_torch(args.batch, args.steps, args.repeats, threads)
      res["ratio_jax_torch"] = res["masked"] / res["torch_masked"]
      print(
        f"pytorch masked : {1e3 * res['torch_masked']:8.1f} ms/step  "
        f"{args.batch / res['torch_masked']:8.1f} images/s ({threads} threads)"
      )
      print(f"jaxprune / pytorch (masked step time): {res['ratio_jax_torch']:.3f}")
    except ImportError:
      print("pytorch not installed: reference skipped")
  if args.json:
    print(json.dumps(res))


if __name__ == "__main__":
  main()
