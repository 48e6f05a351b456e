"""Streamed batches read by grain (`data.loader="grain"`), the same as the thread loader's.

`pipeline.StreamingSplit.plan` fixes an epoch's batches: which examples (a
function of seed and epoch) and each example's augmentation seed (its place
in the epoch). This module hands that plan to grain: a `MapDataset` over the
batches whose map reads and decodes one batch (`StreamingSplit._load`, the
thread loader's function), run by `workers` worker processes
(`mp_prefetch`; decoding and the random-resized crop then bypass the GIL), or
by grain's thread pool in this process when `workers` is 0. grain keeps the
order, so the batches equal the thread loader's, element for element, and a
run resumed at an epoch boundary reads exactly what it would have read.

grain is optional (`pip install jaxprune[grain]`); without it this loader
stops with the command that installs it.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def _grain():
  try:
    import grain
  except ImportError:
    raise ImportError(
      "data.loader='grain' needs the grain package: pip install 'jaxprune[grain]' "
      "(or pip install grain), or use data.loader='thread'"
    ) from None
  from absl import flags

  if not flags.FLAGS.is_parsed():
    # grain reads its absl flags in worker processes; a library caller (a test,
    # a notebook) has not parsed any: take the defaults.
    flags.FLAGS.mark_as_parsed()
  return grain


class _LoadBatch:
  """The map of one planned batch to its padded arrays (picklable for workers)."""

  def __init__(self, split, train: bool, size: int):
    self.split, self.train, self.size = split, train, size

  def __call__(self, item: tuple[np.ndarray, list[list[int]]]):
    from jaxprune.data import pipeline

    idx, seeds = item
    return pipeline.pad_batch(*self.split._load(idx, self.train, seeds), self.size)


def batches(
  split, plan: list, train: bool, size: int, workers: int, prefetch: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
  """(images, labels, weights) of each planned batch, in the plan's order."""
  grain = _grain()
  dataset = grain.MapDataset.source(plan).map(_LoadBatch(split, train, size))
  if workers:
    iterator = dataset.to_iter_dataset().mp_prefetch(
      grain.MultiprocessingOptions(num_workers=workers, per_worker_buffer_size=prefetch)
    )
  else:
    options = grain.ReadOptions(num_threads=2, prefetch_buffer_size=prefetch)
    iterator = dataset.to_iter_dataset(options)
  yield from iterator
