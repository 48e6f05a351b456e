"""Input pipeline: resident (on-device, scanned) and streaming splits.

Small datasets (MNIST, Fashion-MNIST, CIFAR) are held on device as uint8 arrays
and a whole epoch runs as one jitted `lax.scan`: the batch indices come from a
seeded permutation inside the compiled program, so there is no Python per step.
Larger datasets (ImageNet) stream: a background thread pool (or grain's
workers, `data.loader="grain"`) reads and decodes batches from the TFDS data
source while the device trains.

Both paths hand uint8 NHWC batches to `preprocess`, which runs on device inside
the train step: scale to [0, 1], augment (CIFAR: 4-pixel zero pad, random crop,
horizontal flip), normalise with per-channel mean/std.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
from collections.abc import Iterator, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxprune import checks
from jaxprune.data import datasets

AUGMENTATIONS = ("none", "cifar", "flip")
# Streamed splits: a background thread pool, or grain (`_grain_batches`).
LOADERS = ("thread", "grain")


@dataclasses.dataclass(frozen=True)
class Preprocess:
  """On-device preprocessing; hashable so it can be a static jit argument."""

  mean: tuple[float, ...]
  std: tuple[float, ...]
  augment: str = "none"
  pad: int = 4

  def __call__(self, images: jax.Array, rng: jax.Array, train: bool) -> jax.Array:
    # The scope names these ops in profiles (experiments/benchmarks/profile_step.py).
    with jax.named_scope("preprocess"):
      x = images.astype(jnp.float32) / 255.0
      if train and self.augment == "cifar":
        x = random_pad_crop(x, rng, self.pad)
      if train and self.augment in ("cifar", "flip"):
        x = random_flip(x, jax.random.fold_in(rng, 1))
      mean = jnp.asarray(self.mean, jnp.float32)
      std = jnp.asarray(self.std, jnp.float32)
      return (x - mean) / std


def random_pad_crop(x: jax.Array, rng: jax.Array, pad: int) -> jax.Array:
  """Zero-pads by `pad` pixels and takes a random crop of the original size."""
  b, h, w, c = x.shape
  padded = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
  offsets = jax.random.randint(rng, (b, 2), 0, 2 * pad + 1)

  def crop(image, offset):
    return jax.lax.dynamic_slice(image, (offset[0], offset[1], 0), (h, w, c))

  return jax.vmap(crop)(padded, offsets)


def random_flip(x: jax.Array, rng: jax.Array) -> jax.Array:
  flip = jax.random.bernoulli(rng, 0.5, (x.shape[0], 1, 1, 1))
  return jnp.where(flip, x[:, :, ::-1, :], x)


def epoch_permutation(rng: jax.Array, num_examples: int, batch_size: int) -> jax.Array:
  """Batch indices [steps, batch] of one shuffled epoch (remainder dropped)."""
  steps = num_examples // batch_size
  perm = jax.random.permutation(rng, num_examples)
  return perm[: steps * batch_size].reshape(steps, batch_size)


def _put(x: np.ndarray, sharding) -> jax.Array:
  if jax.process_count() == 1:
    return jax.device_put(x, sharding)
  # Multi-process: every process holds the whole split; each fills its own
  # devices' parts of the global array from it.
  return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])


@dataclasses.dataclass
class ResidentSplit:
  """A split held in memory as uint8 images and int32 labels."""

  images: np.ndarray
  labels: np.ndarray
  device_images: jax.Array | None = None  # Set by `place`.
  device_labels: jax.Array | None = None

  @property
  def num_examples(self) -> int:
    return len(self.labels)

  def place(self, sharding) -> ResidentSplit:
    """Copies the split to device once (replicated for the data-parallel mesh)."""
    self.device_images = _put(self.images, sharding)
    self.device_labels = _put(self.labels, sharding)
    return self


class StreamingSplit:
  """A split read batch by batch from a TFDS data source in a background thread."""

  def __init__(
    self,
    source,
    spec: datasets.DatasetSpec,
    image_size: Sequence[int],
    indices: np.ndarray | None = None,
    loader: str = "thread",
    workers: int = 0,
  ):
    self.source = source
    self.spec = spec
    self.image_size = tuple(image_size)
    self.indices = np.arange(len(source)) if indices is None else indices
    self.loader = checks.choice(loader, "data.loader", LOADERS)
    self.workers = workers

  @property
  def num_examples(self) -> int:
    return len(self.indices)

  def _load(self, idx: np.ndarray, train: bool, seeds: list[list[int]]):
    from jaxprune.data import imagenet_preprocess  # PIL only when streaming.

    if not len(idx):  # A process whose rows all lie past the split's end.
      shape = (0, *self.image_size, self.spec.image_shape[-1])
      return np.zeros(shape, np.uint8), np.zeros(0, np.int32)
    records = datasets.get_records(self.source, [int(i) for i in self.indices[idx]])
    # One generator per example, seeded by its place in the epoch: a process
    # that decodes only its rows of a batch augments them exactly as a single
    # process decoding the whole batch does.
    images = np.stack(
      [
        imagenet_preprocess.fixed_size(
          np.asarray(r[self.spec.image_key]),
          self.image_size,
          train,
          np.random.default_rng(seed),
        )
        for r, seed in zip(records, seeds)
      ]
    )
    labels = np.asarray([r[self.spec.label_key] for r in records], np.int32)
    return images, labels

  def batches(
    self,
    batch_size: int,
    *,
    train: bool,
    seed: int,
    epoch: int,
    prefetch: int = 4,
    rows: slice | None = None,
  ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Yields (images, labels, weights); eval batches are padded with weight 0.

    `rows` (default all) selects the rows of every global batch to read, e.g.
    this process's `sharding.host_rows`; padding rows beyond the split's end
    are included with weight 0.
    """
    rows = rows or slice(0, batch_size)
    plan = self.plan(batch_size, train=train, seed=seed, epoch=epoch, rows=rows)
    size = rows.stop - rows.start
    if self.loader == "grain":
      yield from _grain_batches(self, plan, train, size, self.workers, prefetch)
      return
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
      futures = []
      for idx, seeds in plan:
        futures.append(pool.submit(self._load, idx, train, seeds))
        if len(futures) > prefetch:
          yield pad_batch(*futures.pop(0).result(), size)
      for future in futures:
        yield pad_batch(*future.result(), size)

  def plan(
    self, batch_size: int, *, train: bool, seed: int, epoch: int, rows: slice
  ) -> list[tuple[np.ndarray, list[list[int]]]]:
    """Per batch of the epoch: (split positions of `rows`, per-example seeds).

    The order is a function of (seed, epoch) only, so a run resumed at an epoch
    boundary reads exactly the batches it would have read.
    """
    n = self.num_examples
    if train:
      order = np.random.default_rng([seed, epoch]).permutation(n)
      order = order[: (n // batch_size) * batch_size]
    else:
      order = np.arange(n)
    out = []
    for i, start in enumerate(range(0, len(order), batch_size)):
      positions = np.arange(start + rows.start, min(start + rows.stop, len(order)))
      out.append(
        (order[positions], [[seed, epoch, i, int(p - start)] for p in positions])
      )
    return out


def _grain():
  """The grain module, its absl flags usable; a one-line error without it."""
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
  """One planned batch to its padded arrays (a picklable map for grain workers)."""

  def __init__(self, split: StreamingSplit, train: bool, size: int):
    self.split, self.train, self.size = split, train, size

  def __call__(self, item: tuple[np.ndarray, list[list[int]]]):
    idx, seeds = item
    return pad_batch(*self.split._load(idx, self.train, seeds), self.size)


def _grain_batches(
  split: StreamingSplit, plan: list, train: bool, size: int, workers: int, prefetch: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
  """The planned batches read by grain (`data.loader="grain"`), in plan order.

  A `MapDataset` over the batches whose map is the thread loader's `_load`,
  run by `workers` worker processes (`mp_prefetch`: decoding and cropping
  then bypass the GIL; the processes start anew each epoch) or by grain's
  threads in this process when `workers` is 0. grain keeps the order, so the
  batches equal the thread loader's.
  """
  grain = _grain()
  dataset = grain.MapDataset.source(plan).map(_LoadBatch(split, train, size))
  if workers:
    options = grain.MultiprocessingOptions(
      num_workers=workers, per_worker_buffer_size=prefetch
    )
    yield from dataset.to_iter_dataset().mp_prefetch(options)
  else:
    options = grain.ReadOptions(num_threads=2, prefetch_buffer_size=prefetch)
    yield from dataset.to_iter_dataset(options)


def pad_batch(images, labels, batch_size):
  weights = np.ones(len(labels), np.float32)
  missing = batch_size - len(labels)
  if missing:
    images = np.concatenate([images, np.zeros((missing, *images.shape[1:]), np.uint8)])
    labels = np.concatenate([labels, np.zeros(missing, np.int32)])
    weights = np.concatenate([weights, np.zeros(missing, np.float32)])
  return images, labels, weights


@dataclasses.dataclass
class Data:
  """Everything the train loop needs from the input side."""

  spec: datasets.DatasetSpec
  preprocess: Preprocess
  train: ResidentSplit | StreamingSplit
  evals: dict[str, ResidentSplit | StreamingSplit]  # "test", optionally "val".
  input_shape: tuple[int, int, int]

  @property
  def resident(self) -> bool:
    return isinstance(self.train, ResidentSplit)


# Decoded resident splits of this process, by _split_key (see _resident_arrays).
_RESIDENT_CACHE: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
_RESIDENT_CACHE_SIZE = 4


def _resident_arrays(
  source, spec: datasets.DatasetSpec, split: str, data_config, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
  """A whole split decoded and resized, read-only, kept for the process.

  Decoding 70,000 TFDS records costs ~15 s on 2 cores, more than a short
  retraining run: a sweep (one process, hundreds of runs) decodes each split
  once. The key includes the split's length and the prepared dataset's
  modification time, so a re-prepared or mocked dataset is read afresh; the
  arrays are read-only so that no caller can change what later runs see.
  """
  limit = data_config.train_limit if split == spec.train_split else 0
  limit = data_config.test_limit if split == spec.test_split else limit
  root = os.path.join(datasets.default_data_dir(data_config.data_dir), spec.tfds_name)
  stamp = os.path.getmtime(root) if os.path.exists(root) else 0.0
  subset = data_config.get("class_list")
  key = (data_config.name, subset, split, root, stamp, len(source), limit, tuple(size))
  if key not in _RESIDENT_CACHE:
    x, y = datasets.read_all(source, spec, limit)
    x = datasets.resize_images(x, size)
    x.flags.writeable = False
    y.flags.writeable = False
    while len(_RESIDENT_CACHE) >= _RESIDENT_CACHE_SIZE:
      _RESIDENT_CACHE.pop(next(iter(_RESIDENT_CACHE)))
    _RESIDENT_CACHE[key] = (x, y)
  return _RESIDENT_CACHE[key]


# `data.split_seed` value asking for a train/val split drawn with the run's own
# seed (Le & Hua Sec. 3.4 split "randomly (and independently between each run)").
SPLIT_PER_RUN = -1


def split_seed(data_config: ml_collections.ConfigDict, seed: int | None) -> int:
  """The seed of the train/val split: `data.split_seed`, or the run's seed."""
  value = data_config.split_seed
  if value == SPLIT_PER_RUN:
    if seed is None:
      raise ValueError("data.split_seed=-1 (a split per run) needs the run's seed")
    return int(seed)
  if value < 0:
    raise ValueError(f"data.split_seed must be >= 0 or -1 (per run), got {value}")
  return int(value)


def load(data_config: ml_collections.ConfigDict, seed: int | None = None) -> Data:
  """Builds train/val/test splits from `config.data` (`seed`: the run's, for
  `data.split_seed=-1`)."""
  spec = datasets.get_spec(data_config.name)
  split = split_seed(data_config, seed)
  checks.choice(data_config.augment, "data.augment", AUGMENTATIONS)
  # Checked for every dataset, though only streamed ones use it: no typo passes.
  checks.choice(data_config.get("loader", "thread"), "data.loader", LOADERS)
  datasets.prepare(spec.tfds_name, data_config.data_dir, data_config.manual_dir)
  native = spec.image_shape
  size = tuple(data_config.image_size or native[:2])
  if len(size) != 2 or min(size) <= 0:
    raise ValueError(f"data.image_size must be (height, width), got {size}")
  mean = tuple(data_config.mean or spec.mean)
  std = tuple(data_config.std or spec.std)
  if len(mean) != native[2] or len(std) != native[2]:
    raise ValueError(
      f"data.mean and data.std need {native[2]} values for {spec.tfds_name}, got "
      f"{mean} and {std}"
    )
  preprocess = Preprocess(mean=mean, std=std, augment=data_config.augment)
  resident = spec.resident if data_config.resident is None else data_config.resident
  train_source = datasets.open_spec_split(spec, spec.train_split, data_config)
  test_source = datasets.open_spec_split(spec, spec.test_split, data_config)

  if resident:
    x, y = _resident_arrays(train_source, spec, spec.train_split, data_config, size)
    train_idx, val_idx = datasets.train_val_split(
      len(y), data_config.validation_fraction, split
    )
    train = ResidentSplit(x[train_idx], y[train_idx])
    tx, ty = _resident_arrays(test_source, spec, spec.test_split, data_config, size)
    evals = {"test": ResidentSplit(tx, ty)}
    if len(val_idx):
      evals["val"] = ResidentSplit(x[val_idx], y[val_idx])
  else:
    n = len(train_source)
    if data_config.train_limit:
      n = min(n, data_config.train_limit)
    train_idx, val_idx = datasets.train_val_split(
      n, data_config.validation_fraction, split
    )
    loader = dict(
      loader=data_config.get("loader", "thread"),
      workers=checks.nonneg_int(
        data_config.get("loader_workers", 0), "data.loader_workers"
      ),
    )
    train = StreamingSplit(train_source, spec, size, train_idx, **loader)
    n_test = len(test_source)
    if data_config.test_limit:
      n_test = min(n_test, data_config.test_limit)
    test_idx = np.arange(n_test)
    evals = {"test": StreamingSplit(test_source, spec, size, test_idx, **loader)}
    if len(val_idx):
      evals["val"] = StreamingSplit(train_source, spec, size, val_idx, **loader)
  return Data(spec, preprocess, train, evals, (*size, native[2]))
