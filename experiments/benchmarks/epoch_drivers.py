r"""Epoch drivers: per-step time of a scanned and a driven epoch vs single steps.

  JAX_PLATFORMS=cpu .venv/bin/python experiments/benchmarks/epoch_drivers.py \
      [--models=mlp7_relu,lenet5_relu,resnet20] [--batch=32] [--steps=3]

For each model, on the same kind of state and random uint8 data (CIFAR models:
32x32x3 with CIFAR augmentation; MLP-7/LeNet-5: 32x32x1), per train step:
  * single: `Steps.train_batch` called once per batch (each a jitted program
    whose convolutions sit in the entry computation);
  * driven: `Steps.train_epoch`, the epoch driver chosen automatically
    (`Steps.driver_for`: a loop of jitted steps for conv nets on CPU, else scan);
  * scanned: `Steps.scan_epoch`, the whole epoch as one `lax.scan`.
Each is compiled by a first call, then timed over `--repeats` epochs of
`--steps` steps (median). XLA:CPU runs the gradient convolutions of a scan body
on its slow generic path, so `scanned / single` is large for conv nets; the
driven epoch should cost what single steps cost.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import jax
import numpy as np
import train_step

from jaxprune import models

# One model per registered family (ImageNet ResNets are left out: 224x224).
FAMILIES = {
  "mlp7_relu": "MLP",
  "lenet5_relu": "LeNet-5",
  "resnet20": "CIFAR ResNet",
  "vgg11": "VGG",
  "preresnet56": "PreResNet",
  "wrn40_2": "Wide ResNet",
  "densenet40": "DenseNet",
}


def measure(
  name: str, batch: int, steps_per_epoch: int, repeats: int, scan_repeats: int = 1
) -> dict:
  """Seconds per step of single steps, the driven epoch and the scanned epoch.

  The scanned epoch of a conv net is so slow on CPU that it is timed
  `scan_repeats` times only.
  """
  shape = models.input_shape(name)
  augment = "cifar" if shape[-1] == 3 else "none"
  steps, state, hyper = train_step._jax_steps(name, shape, augment, batch)
  rng = np.random.default_rng(0)
  n = batch * steps_per_epoch
  images = jax.numpy.asarray(rng.integers(0, 256, (n, *shape), dtype=np.uint8))
  labels = jax.numpy.asarray(rng.integers(0, 10, n), jax.numpy.int32)
  data_rng = jax.random.PRNGKey(1)
  holder = {"state": state, "epoch": 0}
  driver = steps.driver_for(state)

  def single():
    for i in range(steps_per_epoch):
      part = slice(i * batch, (i + 1) * batch)
      holder["state"], m = steps.train_batch(
        holder["state"], hyper, images[part], labels[part]
      )
    jax.block_until_ready(m)

  def epoch_with(fn):
    def run():
      holder["epoch"] += 1
      holder["state"], m = fn(
        holder["state"], hyper, images, labels, data_rng, holder["epoch"]
      )
      jax.block_until_ready(m)

    return run

  out = {"driver": driver, "batch": batch, "steps_per_epoch": steps_per_epoch}
  runs = {
    "single": single,
    "driven": epoch_with(steps.train_epoch),
    "scanned": epoch_with(steps.scan_epoch),
  }
  for key, fn in runs.items():
    t0 = time.perf_counter()
    fn()  # Compiles.
    out[f"{key}_first_s"] = time.perf_counter() - t0
    times = []
    for _ in range(scan_repeats if key == "scanned" else repeats):
      t0 = time.perf_counter()
      fn()
      times.append(time.perf_counter() - t0)
    out[f"{key}_step_s"] = statistics.median(times) / steps_per_epoch
  return out


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser()
  parser.add_argument("--models", default=",".join(FAMILIES))
  parser.add_argument("--batch", type=int, default=32)
  parser.add_argument("--steps", type=int, default=3, help="steps per epoch")
  parser.add_argument("--repeats", type=int, default=3)
  parser.add_argument("--scan_repeats", type=int, default=1)
  args = parser.parse_args(argv)
  print("| model | driver | single ms/step | driven ms/step | scanned ms/step |")
  print("|---|---|---:|---:|---:|", flush=True)
  for name in args.models.split(","):
    r = measure(name, args.batch, args.steps, args.repeats, args.scan_repeats)
    print(
      f"| {name} | {r['driver']} | {1e3 * r['single_step_s']:.1f} "
      f"| {1e3 * r['driven_step_s']:.1f} | {1e3 * r['scanned_step_s']:.1f} |",
      flush=True,
    )
  return 0


if __name__ == "__main__":
  sys.exit(main())
