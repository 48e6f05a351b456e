"""Streamed-input throughput: JPEG decode + random-resized crop to 224x224, images/s.

Compares the loaders of `jaxprune.data.pipeline.StreamingSplit`: the default
thread loader (a 2-thread pool in this process) and `data.loader="grain"` with
grain's threads (`--workers 0`) or N worker processes. The source holds
generated JPEGs of ImageNet-like sizes (smooth colour fields plus noise, about
500x375, quality 90) and decodes them on read, as a TFDS image feature does;
the work per image is then the ImageNet training path: decode, random-resized
crop, bilinear resize to 224x224 (the flip happens later on device).

Each loader reads `--epochs` training epochs of `--images` images in batches of
`--batch`; per epoch, the wait for the first batch (grain worker processes
start anew each epoch: seconds, once per epoch of a real run) is reported
apart from the rate after it (medians over the epochs). The load average is printed with the numbers: on a shared
machine compare loaders within one run, not across runs.

Run (grain installed, e.g. `pip install 'jaxprune[grain]'`):
  JAX_PLATFORMS=cpu python experiments/benchmarks/streamed_loader.py --workers 0 2
"""

from __future__ import annotations

import argparse
import io
import os
import time

import numpy as np
from PIL import Image

from jaxprune.data import datasets, pipeline


class JpegSource(list):
  """Encoded JPEGs with labels; decoded on read (picklable for grain workers)."""

  def _decode(self, record):
    image = np.asarray(Image.open(io.BytesIO(record["image"])).convert("RGB"))
    return {"image": image, "label": record["label"]}

  def __getitem__(self, key):
    return self._decode(list.__getitem__(self, key))

  def __getitems__(self, keys):
    return [self[k] for k in keys]


def make_jpegs(n: int, seed: int = 0) -> JpegSource:
  rng = np.random.default_rng(seed)
  records = []
  for i in range(n):
    h, w = int(rng.integers(330, 420)), int(rng.integers(450, 550))
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x * c + y * (3 - c)) % 256 for c in range(3)], -1)
    image = (base + rng.integers(0, 40, (h, w, 3))).clip(0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=90)
    records.append({"image": buffer.getvalue(), "label": i % 100})
  return JpegSource(records)


def measure(split, batch: int, epochs: int) -> tuple[list[float], list[float]]:
  """Per training epoch (shuffled, random-resized crops): seconds to the first
  batch (grain workers: their start-up) and images/s after it."""
  firsts, rates = [], []
  for epoch in range(epochs):
    start = time.perf_counter()
    first, count = None, 0
    for images, _, _ in split.batches(batch, train=True, seed=0, epoch=epoch):
      if first is None:
        first = time.perf_counter()
      else:
        count += len(images)
    firsts.append(first - start)
    rates.append(count / (time.perf_counter() - first))
  return firsts, rates


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--images", type=int, default=512)
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--epochs", type=int, default=3)
  parser.add_argument("--workers", type=int, nargs="*", default=[0, 2])
  args = parser.parse_args()
  source = make_jpegs(args.images)
  spec = datasets.DatasetSpec("jpegs", (None, None, 3), 100, (0.5,) * 3, (0.5,) * 3)
  loaders = [("thread", 0)] + [("grain", w) for w in args.workers]
  print(f"{os.cpu_count()} CPUs, load average before: {os.getloadavg()}")
  print("| loader | workers | first batch after (s) | images/s after it |")
  print("|---|---|---|---|")
  for loader, workers in loaders:
    split = pipeline.StreamingSplit(
      source, spec, (224, 224), loader=loader, workers=workers
    )
    firsts, rates = measure(split, args.batch, args.epochs)
    print(
      f"| {loader} | {workers} | {np.median(firsts):.1f} | {np.median(rates):.0f} |",
      flush=True,
    )
  print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
  main()
