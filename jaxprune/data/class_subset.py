"""Class subsets of a labelled TFDS dataset (ImageNet100 = 100 classes of ImageNet).

A subset is a text file of class names (WordNet ids for ImageNet), one per
line; `#` starts a comment. `restrict` wraps a split's data source so that it
holds only the examples of those classes, with labels renumbered 0..K-1 in
the file's order. Everything downstream (train/val split, limits, steps per
epoch, streaming, decoding) sees an ordinary data source whose length is the
computed number of kept examples.

Finding the kept examples needs every label of the split once. The labels are
read with the images left undecoded (one pass over the files, no JPEG work)
and, for a prepared dataset, the kept indices are saved next to it
(`<data_dir>/class_subsets/`) so later runs skip the pass.

The default ImageNet100 list (`imagenet100_classes.txt`) is the 100-class
list of Tian et al.'s CMC code (docs/provenance.md, "ImageNet100");
`data.class_list` points at another file.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from jaxprune import io_utils

IMAGENET100 = os.path.join(os.path.dirname(__file__), "imagenet100_classes.txt")
FIELD = "data.class_list"

# Kept indices per (split files, class list, split length): read once a process.
_INDEX_CACHE: dict[tuple, np.ndarray] = {}


def read_class_list(path: str, num_classes: int) -> list[str]:
  """The class names of the file at `path`; one-line errors naming the field."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{FIELD}: class-list file {path} does not exist")
  with open(path) as f:
    names = [line.split("#")[0].strip() for line in f]
  names = [n for n in names if n]
  if len(names) != num_classes:
    raise ValueError(
      f"{FIELD}: {path} must list {num_classes} classes (one per line), "
      f"got {len(names)}"
    )
  seen: set[str] = set()
  duplicates = [n for n in names if n in seen or seen.add(n)]
  if duplicates:
    raise ValueError(f"{FIELD}: {path} lists {duplicates[0]!r} more than once")
  return names


def label_names(source) -> list[str]:
  """The dataset's class names (TFDS `ClassLabel` names) of a data source."""
  try:
    return list(source.dataset_info.features["label"].names)
  except (AttributeError, KeyError) as e:
    raise ValueError(
      f"{FIELD}: the data source has no class names to select from ({e})"
    ) from None


def label_map(all_names: Sequence[str], classes: Sequence[str]) -> np.ndarray:
  """[len(all_names)] int32: the new label of each old one, -1 if dropped."""
  position = {name: i for i, name in enumerate(all_names)}
  unknown = [c for c in classes if c not in position]
  if unknown:
    raise ValueError(
      f"{FIELD}: class {unknown[0]!r} is not a class of the dataset "
      f"({len(unknown)} unknown)"
    )
  mapping = np.full(len(all_names), -1, np.int32)
  mapping[[position[c] for c in classes]] = np.arange(len(classes), dtype=np.int32)
  return mapping


class SubsetSource:
  """A data source holding only the examples of some classes, relabelled.

  `indices` are positions in `source`; `mapping` turns old labels into new
  ones. `total` and `dropped` count the split's examples and those left out.
  """

  def __init__(
    self,
    source,
    indices: np.ndarray,
    mapping: np.ndarray,
    key: str,
    get_records: Callable[[Any, list[int]], list[dict]],
  ):
    self.source = source
    self.get_records = get_records
    self.indices = np.asarray(indices, np.int64)
    self.mapping = mapping
    self.label_key = key
    self.total = len(source)
    self.dropped = self.total - len(self.indices)
    self.dataset_info = getattr(source, "dataset_info", None)
    self.split = getattr(source, "split", None)

  def __len__(self) -> int:
    return len(self.indices)

  def _relabel(self, record: dict) -> dict:
    return {**record, self.label_key: int(self.mapping[int(record[self.label_key])])}

  def __getitem__(self, key: int) -> dict:
    return self._relabel(self.source[int(self.indices[key])])

  def __getitems__(self, keys: Sequence[int]) -> list[dict]:
    records = self.get_records(self.source, [int(self.indices[k]) for k in keys])
    return [self._relabel(r) for r in records]


def _prepared_dir(source) -> str | None:
  """The directory of a prepared TFDS split's files; None for a source with
  no files on disk (`tfds.testing.mock_data`, tests' look-alikes)."""
  where = getattr(getattr(source, "dataset_info", None), "data_dir", None)
  return str(where) if where and os.path.isdir(str(where)) else None


def _labels_source(source, name: str, split: str, data_dir: str | None):
  """The split opened with undecoded images, for a label-only pass; `source`
  itself for a source without files (mock data) or where that fails."""
  import tensorflow_datasets as tfds  # Heavy; only a prepared split needs it.

  if _prepared_dir(source) is None:
    return source
  try:
    undecoded = tfds.data_source(
      name,
      split=split,
      data_dir=data_dir,
      download=False,
      decoders={"image": tfds.decode.SkipDecoding()},
    )
    _probe = undecoded[0] if len(undecoded) else None  # Fails here if it cannot.
    return undecoded
  except Exception:  # Any failure: the decoded source is always right.
    return source


def all_labels(
  source, key: str, get_records: Callable, chunk: int = 4096
) -> np.ndarray:
  """Every label of a data source, in order, read `chunk` records at a time
  with `get_records(source, keys)` (the data layer's batched reader)."""
  out = []
  for start in range(0, len(source), chunk):
    keys = list(range(start, min(len(source), start + chunk)))
    out.append([int(r[key]) for r in get_records(source, keys)])
  return np.asarray([label for part in out for label in part], np.int64)


def _saved_index_path(source, digest: str, split: str, data_dir: str | None):
  """Where the kept indices of a prepared split are saved; None for a source
  with no files on disk (mock data, tests) or no data directory given."""
  if _prepared_dir(source) is None or not data_dir:
    return None
  root = os.path.join(data_dir, "class_subsets")
  return os.path.join(root, f"{split}-{digest}.npy")


def one_by_one(source, keys: list[int]) -> list[dict]:
  """The plainest batched reader: one record at a time."""
  return [source[k] for k in keys]


def restrict(
  source,
  name: str,
  split: str,
  path: str,
  num_classes: int,
  *,
  data_dir: str | None = None,
  get_records: Callable[[Any, list[int]], list[dict]] = one_by_one,
) -> SubsetSource:
  """`source` (split `split` of TFDS dataset `name`) cut to the classes of
  the class-list file at `path`, labels renumbered in the file's order.

  `data_dir` is the resolved TFDS data directory (kept indices are saved
  under it; None: not saved) and `get_records` the data layer's batched
  reader, both passed in so this module needs nothing from `datasets`.
  """
  classes = read_class_list(path, num_classes)
  mapping = label_map(label_names(source), classes)
  where = str(getattr(getattr(source, "dataset_info", None), "data_dir", ""))
  digest = hashlib.sha256(
    "\n".join([name, split, where, str(len(source)), *classes]).encode()
  ).hexdigest()[:16]
  saved = _saved_index_path(source, digest, split, data_dir)
  key = (digest, saved)
  if key not in _INDEX_CACHE:
    if saved and os.path.exists(saved):
      kept = np.load(saved)
    else:
      unlabelled = _labels_source(source, name, split, data_dir)
      labels = all_labels(unlabelled, "label", get_records)
      kept = np.flatnonzero(mapping[labels] >= 0)
      if saved:
        buffer = io.BytesIO()
        np.save(buffer, kept)
        io_utils.atomic_write_bytes(saved, buffer.getvalue())
    _INDEX_CACHE[key] = kept
  subset = SubsetSource(source, _INDEX_CACHE[key], mapping, "label", get_records)
  logging.getLogger(__name__).info(
    "%s %s: kept %d of %d examples (%d classes of %s), dropped %d",
    name,
    split,
    len(subset),
    subset.total,
    num_classes,
    path,
    subset.dropped,
  )
  return subset
