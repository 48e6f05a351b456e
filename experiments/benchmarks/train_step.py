"""Train-step throughput: jaxprune vs a plain PyTorch CPU implementation, same run.

Figures (median of `--repeats` timed runs after warm-up/compilation):
  * ResNet-20 and ResNet-56 (CIFAR shapes 32x32x3, batch 128): images/s of one
    SGD step (momentum 0.9, weight decay 1e-4, CIFAR augmentation on device for
    jaxprune; pre-augmented tensors for PyTorch, i.e. PyTorch gets the easier job);
  * one epoch of MLP-7-ReLU on Fashion-MNIST shapes (60,000 x 32x32x1, batch 128):
    jaxprune's resident, `lax.scan`ned epoch vs PyTorch with a shuffling
    DataLoader over in-memory tensors and a per-step Python loop.
The PyTorch code (`torch_reference.py`) mirrors the seeds' training loops (plain
nn.Module, SGD, `loss.backward(); optimizer.step()` per batch).

Run:  make bench   (installs torch==2.13.0 into the venv first), or
      JAX_PLATFORMS=cpu .venv/bin/python experiments/benchmarks/train_step.py
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxprune import models
from jaxprune.data import pipeline
from jaxprune.train import hyper as hyper_lib
from jaxprune.train import optim, sharding
from jaxprune.train.state import create_train_state
from jaxprune.train.steps import Steps

BATCH = 128


def _jax_steps(
  name: str, input_shape, augment: str, batch: int = BATCH, precision: str = "float32"
):
  """(Steps, replicated TrainState, the run's hyper) of `name` with SGD at LR 0.05
  (float32 or bfloat16 compute: float16 would need `make_tx`'s loss scaling)."""
  model = models.create(name)
  tx = optim.create(
    ml_collections.ConfigDict(dict(name="sgd", momentum=0.9, weight_decay=1e-4)), 0.05
  )
  mesh = sharding.make_mesh()
  pre = pipeline.Preprocess(
    mean=(0.5,) * input_shape[-1], std=(0.25,) * input_shape[-1], augment=augment
  )
  make_tx, hyper = hyper_lib.fixed(tx, lambda s: 0.05)
  steps = Steps(model, make_tx, pre, mesh, batch, batch, precision=precision)
  # Replicated like the step's output, so the second call does not retrace.
  state = jax.jit(
    lambda r: create_train_state(model, tx, input_shape, r),
    out_shardings=sharding.replicated(mesh),
  )(jax.random.PRNGKey(0))
  return steps, state, hyper


def jax_step_throughput(name: str, steps_per_run: int, repeats: int) -> dict:
  steps, state, hyper = _jax_steps(name, (32, 32, 3), "cifar")
  rng = np.random.default_rng(0)
  images = jnp.asarray(rng.integers(0, 256, (BATCH, 32, 32, 3), dtype=np.uint8))
  labels = jnp.asarray(rng.integers(0, 10, BATCH), jnp.int32)
  t0 = time.perf_counter()
  state, m = steps.train_batch(state, hyper, images, labels)
  jax.block_until_ready(m)
  compile_s = time.perf_counter() - t0
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    for _ in range(steps_per_run):
      state, m = steps.train_batch(state, hyper, images, labels)
    jax.block_until_ready(m)
    times.append((time.perf_counter() - t0) / steps_per_run)
  return {"compile_s": compile_s, "step_s": statistics.median(times)}


def random_images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """Fashion-MNIST-shaped random data: n x 32x32x1 uint8 images, int labels."""
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 256, (n, 32, 32, 1), dtype=np.uint8)
  return images, rng.integers(0, 10, n).astype(np.int32)


def jax_epoch_runner(
  n: int = 60000, name: str = "mlp7_relu", data=None
) -> tuple[float, Callable[[], None]]:
  """(seconds of the first epoch, compile included; run one more epoch).

  `data`: optional (uint8 [n, 32, 32, 1] images, labels); random if None."""
  steps, state, hyper = _jax_steps(name, (32, 32, 1), "none")
  images, labels = data if data is not None else random_images(n)
  images, labels = jnp.asarray(images), jnp.asarray(labels, jnp.int32)
  data_rng = jax.random.PRNGKey(1)
  box = [state, 0]

  def run():
    state, m = steps.train_epoch(box[0], hyper, images, labels, data_rng, box[1])
    jax.block_until_ready(m)
    box[0], box[1] = state, box[1] + 1

  t0 = time.perf_counter()
  run()
  return time.perf_counter() - t0, run


def jax_epoch_seconds(
  repeats: int, n: int = 60000, name: str = "mlp7_relu", data=None
) -> dict:
  first, run = jax_epoch_runner(n, name, data)
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    run()
    times.append(time.perf_counter() - t0)
  return {"first_epoch_s": first, "epoch_s": statistics.median(times)}


# ------------------------------------------------------------------ PyTorch reference
def torch_step_throughput(depth: int, steps_per_run: int, repeats: int) -> dict:
  import torch
  import torch_reference

  model = torch_reference.CifarResNet(depth).train()
  opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
  x = torch.randn(BATCH, 3, 32, 32)
  y = torch.randint(0, 10, (BATCH,))

  def step():
    opt.zero_grad(set_to_none=True)
    loss = torch.nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()

  step()
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    for _ in range(steps_per_run):
      step()
    times.append((time.perf_counter() - t0) / steps_per_run)
  return {"step_s": statistics.median(times)}


def torch_epoch_runner(
  n: int = 60000, name: str = "mlp7_relu", data=None
) -> Callable[[], None]:
  """Run one PyTorch epoch (shuffling DataLoader, per-batch normalisation)."""
  import torch
  import torch_reference
  from torch.utils.data import DataLoader, TensorDataset

  model = torch_reference.create(name).train()
  opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
  images, labels = data if data is not None else random_images(n)
  images = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
  labels = torch.from_numpy(labels.astype(np.int64))
  loader = DataLoader(
    TensorDataset(images, labels), batch_size=BATCH, shuffle=True, drop_last=True
  )

  def run():
    for xb, yb in loader:
      x = (xb.float() / 255.0 - 0.5) / 0.25  # ToTensor + Normalize, per batch.
      opt.zero_grad(set_to_none=True)
      loss = torch.nn.functional.cross_entropy(model(x), yb)
      loss.backward()
      opt.step()

  return run


def torch_epoch_seconds(
  repeats: int, n: int = 60000, name: str = "mlp7_relu", data=None
) -> dict:
  run = torch_epoch_runner(n, name, data)
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    run()
    times.append(time.perf_counter() - t0)
  return {"epoch_s": statistics.median(times)}


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--steps", type=int, default=5, help="steps per timed run")
  parser.add_argument("--out", default=None, help="optional JSON output path")
  args = parser.parse_args()
  import torch

  torch.set_num_threads(os.cpu_count() or 1)
  results = {
    "platform": platform.platform(),
    "processor": platform.processor() or platform.machine(),
    "cpus": os.cpu_count(),
    "jax": jax.__version__,
    "jax_backend": jax.default_backend(),
    "torch": torch.__version__,
    "rows": [],
  }
  rows = results["rows"]
  for depth in (20, 56):
    j = jax_step_throughput(f"resnet{depth}", args.steps, args.repeats)
    t = torch_step_throughput(depth, args.steps, args.repeats)
    rows.append(
      {
        "figure": f"ResNet-{depth} train step, batch {BATCH}, 32x32x3",
        "jaxprune": f"{BATCH / j['step_s']:.0f} img/s (compile {j['compile_s']:.1f} s)",
        "pytorch": f"{BATCH / t['step_s']:.0f} img/s",
        "ratio": t["step_s"] / j["step_s"],
      }
    )
  j, t = jax_epoch_seconds(args.repeats), torch_epoch_seconds(args.repeats)
  rows.append(
    {
      "figure": "MLP-7-ReLU epoch, 60k x 32x32x1, batch 128",
      "jaxprune": f"{j['epoch_s']:.2f} s/epoch (first, incl. compile: {j['first_epoch_s']:.1f} s)",
      "pytorch": f"{t['epoch_s']:.2f} s/epoch",
      "ratio": t["epoch_s"] / j["epoch_s"],
    }
  )
  print(
    f"jax {results['jax']} ({results['jax_backend']}), torch {results['torch']}, "
    f"{results['cpus']} CPUs, {results['platform']}"
  )
  print("| figure | jaxprune | PyTorch | speed-up (PyTorch time / jaxprune time) |")
  print("|---|---|---|---|")
  for r in rows:
    print(f"| {r['figure']} | {r['jaxprune']} | {r['pytorch']} | {r['ratio']:.2f}x |")
  if args.out:
    with open(args.out, "w") as f:
      json.dump(results, f, indent=2)


if __name__ == "__main__":
  main()
