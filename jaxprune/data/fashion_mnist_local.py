"""TFDS builder `fashion_mnist_local`: Fashion-MNIST prepared offline from IDX files.

The stock TFDS `fashion_mnist` builder downloads the four IDX .gz files and checks
their checksums. Debian's `dataset-fashion-mnist` package ships the same images
recompressed, so the checksums differ and the stock builder rejects them. This
builder reads the four files from a manual directory instead (default: the Debian
package's `/usr/share/datasets/fashion-mnist`), validates them (magic numbers,
sizes, label range), and stores them as array_record with plain uint8 tensors, so
`tfds.data_source("fashion_mnist_local")` reads them without TensorFlow.

Synopsis:
  builder = FashionMnistLocal(data_dir=data_dir, file_format="array_record")
  builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
"""

from __future__ import annotations

import gzip
import os
import zlib

import numpy as np
import tensorflow_datasets as tfds

DEFAULT_MANUAL_DIR = "/usr/share/datasets/fashion-mnist"

# File names of the original release (and of the Debian package).
SPLIT_FILES = {
  "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
  "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
EXPECTED_COUNTS = {"train": 60000, "test": 10000}
HOW_TO_GET = (
  "Install the Debian package with `apt-get install dataset-fashion-mnist` (as root), "
  "or put the four original IDX .gz files in a directory and pass it as "
  "--config.data.manual_dir=DIR."
)

_IMAGES_MAGIC = 2051
_LABELS_MAGIC = 2049


class DatasetFileError(RuntimeError):
  """A dataset file is missing, truncated or corrupt."""


def missing_files(manual_dir: str) -> list[str]:
  """The IDX files of the original release that `manual_dir` lacks."""
  paths = [os.path.join(manual_dir, n) for pair in SPLIT_FILES.values() for n in pair]
  return [p for p in paths if not os.path.exists(p)]


def _read_gz(path: str) -> bytes:
  if not os.path.exists(path):
    raise DatasetFileError(f"Dataset file not found: {path}. {HOW_TO_GET}")
  try:
    with gzip.open(path, "rb") as f:
      return f.read()
  except (OSError, EOFError, zlib.error) as e:
    raise DatasetFileError(
      f"Dataset file {path} is truncated or corrupt ({e}). {HOW_TO_GET}"
    ) from e


def read_idx_images(path: str) -> np.ndarray:
  """Reads an IDX3 image file into a uint8 array of shape [N, rows, cols]."""
  raw = _read_gz(path)
  if len(raw) < 16:
    raise DatasetFileError(f"Dataset file {path} is truncated (header). {HOW_TO_GET}")
  magic, n, rows, cols = np.frombuffer(raw[:16], dtype=">u4")
  if magic != _IMAGES_MAGIC:
    raise DatasetFileError(
      f"Dataset file {path} is not an IDX image file (magic {magic}, expected "
      f"{_IMAGES_MAGIC}). {HOW_TO_GET}"
    )
  expected = 16 + int(n) * int(rows) * int(cols)
  if len(raw) != expected:
    raise DatasetFileError(
      f"Dataset file {path} has {len(raw)} bytes, expected {expected} for {n} images "
      f"of {rows}x{cols}. {HOW_TO_GET}"
    )
  return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(int(n), rows, cols)


def read_idx_labels(path: str, num_classes: int = 10) -> np.ndarray:
  """Reads an IDX1 label file into a uint8 array of shape [N]."""
  raw = _read_gz(path)
  if len(raw) < 8:
    raise DatasetFileError(f"Dataset file {path} is truncated (header). {HOW_TO_GET}")
  magic, n = np.frombuffer(raw[:8], dtype=">u4")
  if magic != _LABELS_MAGIC:
    raise DatasetFileError(
      f"Dataset file {path} is not an IDX label file (magic {magic}, expected "
      f"{_LABELS_MAGIC}). {HOW_TO_GET}"
    )
  if len(raw) != 8 + int(n):
    raise DatasetFileError(
      f"Dataset file {path} has {len(raw)} bytes, expected {8 + int(n)}. {HOW_TO_GET}"
    )
  labels = np.frombuffer(raw, dtype=np.uint8, offset=8)
  if labels.size and labels.max() >= num_classes:
    raise DatasetFileError(
      f"Dataset file {path} has label {labels.max()} outside [0, {num_classes}). "
      f"{HOW_TO_GET}"
    )
  return labels


def read_split(manual_dir: str, split: str, strict_counts: bool = True):
  """Returns (images [N,28,28,1] uint8, labels [N] uint8) of one split."""
  image_file, label_file = SPLIT_FILES[split]
  images = read_idx_images(os.path.join(manual_dir, image_file))
  labels = read_idx_labels(os.path.join(manual_dir, label_file))
  if len(images) != len(labels):
    raise DatasetFileError(
      f"{os.path.join(manual_dir, image_file)} has {len(images)} images but "
      f"{label_file} has {len(labels)} labels. {HOW_TO_GET}"
    )
  if strict_counts and len(images) != EXPECTED_COUNTS[split]:
    raise DatasetFileError(
      f"{os.path.join(manual_dir, image_file)} has {len(images)} images, Fashion-MNIST "
      f"{split} has {EXPECTED_COUNTS[split]}. {HOW_TO_GET}"
    )
  return images[..., None], labels


class FashionMnistLocal(tfds.core.GeneratorBasedBuilder):
  """Fashion-MNIST from local IDX .gz files (see module docstring)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Fashion-MNIST from local IDX files, uint8 tensors."}  # noqa: RUF012 (TFDS API)
  MANUAL_DOWNLOAD_INSTRUCTIONS = HOW_TO_GET
  # Tests prepare tiny generated IDX files; the real dataset is checked strictly.
  strict_counts = True

  def _info(self) -> tfds.core.DatasetInfo:
    # Built directly (not from a metadata folder): the builder lives in a package
    # module, and plain Tensor features keep reading free of image decoding.
    return tfds.core.DatasetInfo(
      builder=self,
      description="Fashion-MNIST (Xiao et al. 2017) read from local IDX files.",
      features=tfds.features.FeaturesDict(
        {
          "image": tfds.features.Tensor(shape=(28, 28, 1), dtype=np.uint8),
          "label": tfds.features.Tensor(shape=(), dtype=np.uint8),
        }
      ),
      supervised_keys=("image", "label"),
      homepage="https://github.com/zalandoresearch/fashion-mnist",
    )

  def _split_generators(self, dl_manager):
    manual_dir = os.fspath(dl_manager.manual_dir)
    # Read everything up front so a bad file fails before anything is written.
    splits = {s: read_split(manual_dir, s, self.strict_counts) for s in SPLIT_FILES}
    return {name: self._generate_examples(arrays) for name, arrays in splits.items()}

  def _generate_examples(self, arrays):
    images, labels = arrays
    for i in range(len(labels)):
      yield i, {"image": images[i], "label": labels[i]}
