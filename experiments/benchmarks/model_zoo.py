r"""Compile time and step time of jaxprune's jitted train step per CIFAR model.

  JAX_PLATFORMS=cpu python experiments/benchmarks/model_zoo.py \
      [--models=resnet56,vgg16] [--batch_size=128] [--steps=5] [--skip=wrn28_10]

For each model: build the real ``Steps.train_batch`` (SGD momentum 0.9, wd
5e-4, CIFAR augmentation) on uint8 32x32x3 batches, time the first call
(trace + compile + one step), the median of ``--steps`` later calls ("step")
and their difference ("compile"); print a markdown table with params and MACs
per example. On a 2-core CPU WRN-28-10 (6 GMACs per example) takes minutes
per step: skip it there.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import jax
import ml_collections
import numpy as np

from jaxprune import models
from jaxprune.data import pipeline
from jaxprune.pruning import counting
from jaxprune.train import hyper as hyper_lib
from jaxprune.train import optim, sharding
from jaxprune.train.state import create_train_state
from jaxprune.train.steps import Steps

CIFAR_MODELS = (
  "resnet20",
  "resnet56",
  "resnet110",
  "resnet18_cifar",
  "vgg11",
  "vgg16",
  "vgg19",
  "preresnet56",
  "preresnet110",
  "preresnet164",
  "wrn40_2",
  "wrn28_10",
  "densenet40",
  "densenet_bc100",
)


def benchmark(name: str, batch_size: int, steps: int) -> dict[str, float]:
  """Compile seconds, median step seconds, params and MACs of model ``name``."""
  model = models.create(name, num_classes=10)
  shape = (32, 32, 3)
  tx = optim.create(
    ml_collections.ConfigDict({"name": "sgd", "momentum": 0.9, "weight_decay": 5e-4}),
    0.1,
  )
  mesh = sharding.make_mesh()
  # Replicated like the step's output, so the second call does not retrace.
  state = jax.jit(
    lambda k: create_train_state(model, tx, shape, k),
    out_shardings=sharding.replicated(mesh),
  )(jax.random.key(0))
  pre = pipeline.Preprocess(
    mean=(0.49, 0.48, 0.45), std=(0.25, 0.24, 0.26), augment="cifar"
  )
  make_tx, hyper = hyper_lib.fixed(tx, lambda s: 0.1)
  step_fns = Steps(model, make_tx, pre, mesh, batch_size, 256)
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (batch_size, *shape), dtype=np.uint8)
  labels = rng.integers(0, 10, batch_size).astype(np.int32)
  start = time.perf_counter()
  state, metrics = step_fns.train_batch(state, hyper, images, labels)
  jax.block_until_ready(metrics)
  first_s = time.perf_counter() - start
  times = []
  for _ in range(steps):
    start = time.perf_counter()
    state, metrics = step_fns.train_batch(state, hyper, images, labels)
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - start)
  counts = counting.count(model, shape)
  step_s = statistics.median(times)
  return {
    # The first call traces, compiles and runs one step.
    "first_s": first_s,
    "compile_s": max(first_s - step_s, 0.0),
    "step_s": step_s,
    "params": counts.total_params,
    "macs": counts.macs,
  }


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser()
  parser.add_argument("--models", default=",".join(CIFAR_MODELS))
  parser.add_argument("--skip", default="")
  parser.add_argument("--batch_size", type=int, default=128)
  parser.add_argument("--steps", type=int, default=5)
  args = parser.parse_args(argv)
  skip = set(filter(None, args.skip.split(",")))
  print(f"devices: {jax.devices()}; batch {args.batch_size}, 32x32x3", flush=True)
  print(
    "| model | params | MACs/example | first call (s) | compile ≈ first - step (s) "
    "| step (s) | examples/s |"
  )
  print("|---|---:|---:|---:|---:|---:|---:|", flush=True)
  for name in args.models.split(","):
    if name in skip:
      print(f"| {name} | | | skipped | | | |", flush=True)
      continue
    r = benchmark(name, args.batch_size, args.steps)
    print(
      f"| {name} | {r['params']:,} | {r['macs'] / 1e6:.1f}M | {r['first_s']:.1f} "
      f"| {r['compile_s']:.1f} "
      f"| {r['step_s']:.3f} | {args.batch_size / r['step_s']:.0f} |",
      flush=True,
    )
  return 0


if __name__ == "__main__":
  sys.exit(main())
