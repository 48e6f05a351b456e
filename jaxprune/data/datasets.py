"""Dataset registry and host-side loading through TFDS data sources.

Every dataset jaxprune trains on is read with `tfds.data_source` (array_record,
random access, no TensorFlow). Small datasets are read whole into uint8 numpy
arrays that the pipeline then keeps on device; large ones (ImageNet) are only
opened, and `pipeline.StreamingSplit` reads batches from them.

Datasets on machines that have them: `mnist`, `fashion_mnist`, `cifar10`,
`cifar100` (prepared in array_record format, e.g. `tfds build --file_format=
array_record`), `imagenet2012` (manual dir) and `imagenet100`, its 100-class
subset (`class_subset`). Offline here: `fashion_mnist_local`, prepared by
`prepare()` from the Debian package's IDX files.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import shutil
from collections.abc import Sequence

import numpy as np
import tensorflow_datasets as tfds

from jaxprune import checks
from jaxprune.data import class_subset, fashion_mnist_local

# Normalisation constants, as used by the seeds (docs/provenance.md F10).
MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
CIFAR100_MEAN, CIFAR100_STD = (0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
# Fashion-MNIST training-set statistics (pixel mean/std of the 60k images / 255).
FASHION_MEAN, FASHION_STD = (0.2860,), (0.3530,)


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """Static facts about a dataset."""

  tfds_name: str
  image_shape: tuple[int, int, int]  # Native (H, W, C); None dims = variable size.
  num_classes: int
  mean: tuple[float, ...]
  std: tuple[float, ...]
  train_split: str = "train"
  test_split: str = "test"
  resident: bool = True  # Fits in memory: held on device, epochs scanned.
  image_key: str = "image"
  label_key: str = "label"
  # A class subset of `tfds_name`: the default class-list file (`class_subset`).
  class_list: str = ""


SPECS: dict[str, DatasetSpec] = {
  "fashion_mnist_local": DatasetSpec(
    "fashion_mnist_local", (28, 28, 1), 10, FASHION_MEAN, FASHION_STD
  ),
  "fashion_mnist": DatasetSpec(
    "fashion_mnist", (28, 28, 1), 10, FASHION_MEAN, FASHION_STD
  ),
  "mnist": DatasetSpec("mnist", (28, 28, 1), 10, MNIST_MEAN, MNIST_STD),
  "cifar10": DatasetSpec("cifar10", (32, 32, 3), 10, CIFAR10_MEAN, CIFAR10_STD),
  "cifar100": DatasetSpec("cifar100", (32, 32, 3), 100, CIFAR100_MEAN, CIFAR100_STD),
  "imagenet2012": DatasetSpec(
    "imagenet2012",
    (224, 224, 3),
    1000,
    IMAGENET_MEAN,
    IMAGENET_STD,
    test_split="validation",
    resident=False,
  ),
  # 100 classes of imagenet2012 (Wang et al. 2023's ImageNet100): the filtered
  # train split for training, the filtered validation split for testing.
  "imagenet100": DatasetSpec(
    "imagenet2012",
    (224, 224, 3),
    100,
    IMAGENET_MEAN,
    IMAGENET_STD,
    test_split="validation",
    resident=False,
    class_list=class_subset.IMAGENET100,
  ),
}


def get_spec(name: str) -> DatasetSpec:
  checks.choice(name, "data.name", sorted(SPECS))
  return SPECS[name]


def default_data_dir(data_dir: str | None) -> str:
  return os.path.expanduser(
    data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
  )


def prepare(
  name: str,
  data_dir: str | None = None,
  manual_dir: str | None = None,
  *,
  force: bool = False,
) -> None:
  """Prepares `name` in `data_dir` if it is not there yet (`force`: again).

  Only `fashion_mnist_local` is prepared here (offline, from IDX files); the stock
  datasets must have been prepared in array_record format beforehand. A failed
  preparation leaves no dataset directory behind (a later run would otherwise
  find an empty one).
  """
  data_dir = default_data_dir(data_dir)
  if name != "fashion_mnist_local":
    return
  root = os.path.join(data_dir, name)
  if force and os.path.exists(root):
    shutil.rmtree(root)
  builder = fashion_mnist_local.FashionMnistLocal(
    data_dir=data_dir, file_format="array_record"
  )
  if builder.is_prepared():
    return
  manual_dir = manual_dir or fashion_mnist_local.DEFAULT_MANUAL_DIR
  if missing := fashion_mnist_local.missing_files(manual_dir):
    raise fashion_mnist_local.DatasetFileError(
      f"Dataset file not found: {missing[0]}. {fashion_mnist_local.HOW_TO_GET}"
    )
  existed = os.path.exists(root)
  try:
    builder.download_and_prepare(
      download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
    )
  except BaseException:
    if not existed:
      shutil.rmtree(root, ignore_errors=True)
    raise


def _unreadable(source, error: Exception) -> fashion_mnist_local.DatasetFileError:
  """The one-line error for a prepared split whose files cannot be read."""
  info = getattr(source, "dataset_info", None)
  where, split = getattr(info, "data_dir", "?"), getattr(source, "split", "?")
  files = sorted(glob.glob(os.path.join(where, f"*-{split}.array_record-*")))
  name = files[0] if len(files) == 1 else f"the {split} files in {where}"
  reason = (str(error).strip().splitlines() or [""])[0][:120]
  dataset = getattr(info, "name", "")
  fix = (
    "prepare it again: python -m jaxprune.data prepare --force "
    f"--data_dir={os.path.dirname(os.path.dirname(where))}"
    if dataset == "fashion_mnist_local"
    else "prepare the dataset again in array_record format"
  )
  return fashion_mnist_local.DatasetFileError(
    f"prepared dataset file {name} is unreadable ({type(error).__name__}: "
    f"{reason}); {fix}"
  )


def preparation_hint(name: str, data_dir: str | None = None) -> str:
  """The exact steps that prepare dataset `name` for `data.data_dir`."""
  where = default_data_dir(data_dir)
  if name == "fashion_mnist_local":
    return (
      f"run `python -m jaxprune.data prepare --data_dir={where}` (it reads the IDX "
      "files of the Debian package dataset-fashion-mnist, `apt-get install "
      "dataset-fashion-mnist`, or of --manual_dir)"
    )
  build = f"tfds build {name} --data_dir={where} --file_format=array_record"
  if name == "imagenet2012":
    return (
      "put ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar in a directory "
      f"MANUAL, then run `{build} --manual_dir=MANUAL`"
    )
  hint = (
    f"run `{build}` on a machine with internet access (needs tensorflow) and copy "
    f"{where}/{name}/ "
    "here (or point --config.data.data_dir at a copy)"
  )
  if name == "mnist":
    hint += (
      "; offline, the MNIST paper configs run on Fashion-MNIST with the config "
      "argument `fashion_mnist` (e.g. `table3.py:fashion_mnist,smoke`)"
    )
  return hint


def open_spec_split(spec: DatasetSpec, split: str, data_config):
  """`open_split` of `spec`'s dataset, cut to its class subset if it has one
  (`data.class_list`: another class-list file for such a dataset)."""
  path = data_config.get("class_list") or spec.class_list
  if data_config.get("class_list") and not spec.class_list:
    subsets = sorted(k for k, v in SPECS.items() if v.class_list)
    raise ValueError(
      f"data.class_list applies to the class-subset datasets {subsets} only, "
      f"not {data_config.name!r}"
    )
  source = open_split(spec.tfds_name, split, data_config.data_dir)
  if not path:
    return source
  return class_subset.restrict(
    source,
    spec.tfds_name,
    split,
    path,
    spec.num_classes,
    data_dir=default_data_dir(data_config.data_dir),
    get_records=get_records,
  )


def open_split(name: str, split: str, data_dir: str | None = None):
  """Returns a random-access TFDS data source for one split.

  Never downloads: an unprepared dataset fails at once (TFDS would otherwise
  retry downloads for minutes offline) with the command that prepares it.
  """
  try:
    return tfds.data_source(
      name, split=split, data_dir=default_data_dir(data_dir), download=False
    )
  except Exception as e:  # TFDS raises several types for a missing dataset.
    reason = (str(e).strip().splitlines() or [""])[0][:120]
    raise FileNotFoundError(
      f"TFDS dataset {name!r} (split {split!r}) is not prepared in array_record "
      f"format in {default_data_dir(data_dir)} ({type(e).__name__}: {reason}): "
      f"{preparation_hint(name, data_dir)}."
    ) from e


def get_records(source, keys: list[int]) -> list[dict]:
  """Batched random access (5x faster than one by one on array_record)."""
  try:
    try:
      return source.__getitems__(keys)
    except TypeError:
      # tfds.testing.mock_data (4.9.10) installs an unbound `__getitems__`.
      return [source[k] for k in keys]
  except Exception as e:  # Riegeli / decoding errors of damaged files.
    raise _unreadable(source, e) from None


def read_all(source, spec: DatasetSpec, limit: int = 0, chunk: int = 10000):
  """Reads a whole split into (images uint8 [N,H,W,C], labels int32 [N])."""
  n = len(source) if not limit else min(limit, len(source))
  images, labels = [], []
  for start in range(0, n, chunk):
    records = get_records(source, list(range(start, min(n, start + chunk))))
    images.append(np.stack([np.asarray(r[spec.image_key]) for r in records]))
    labels.append(np.asarray([r[spec.label_key] for r in records]))
  x = np.concatenate(images).astype(np.uint8)
  if x.ndim == 3:
    x = x[..., None]
  return x, np.concatenate(labels).astype(np.int32)


def train_val_split(
  num_examples: int, validation_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
  """Deterministic split of train indices into (train, validation)."""
  if not 0.0 <= validation_fraction < 1.0:
    raise ValueError(
      f"data.validation_fraction must be in [0, 1), got {validation_fraction}"
    )
  perm = np.random.default_rng(seed).permutation(num_examples)
  num_val = round(num_examples * validation_fraction)
  return np.sort(perm[num_val:]), np.sort(perm[:num_val])


def resize_images(images: np.ndarray, size: Sequence[int]) -> np.ndarray:
  """Bilinear resize of uint8 images, rounded back to uint8 (like PIL on uint8)."""
  import jax  # Local import: host-only helper, keeps module import light.

  h, w = size
  if images.shape[1:3] == (h, w):
    return images
  out = []
  for start in range(0, len(images), 5000):
    chunk = images[start : start + 5000].astype(np.float32)
    resized = jax.image.resize(
      chunk, (len(chunk), h, w, chunk.shape[-1]), method="bilinear", antialias=True
    )
    out.append(np.clip(np.rint(np.asarray(resized)), 0, 255).astype(np.uint8))
  return np.concatenate(out)
