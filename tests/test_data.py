"""Data: the offline TFDS builder, failure messages, splits, augmentation."""

from __future__ import annotations

import gzip
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tensorflow_datasets as tfds
from conftest import write_tiny_fmnist

from jaxprune.data import datasets, fashion_mnist_local, pipeline


def test_builder_round_trips_idx_files(tiny_fmnist):
  data_dir, _, arrays = tiny_fmnist
  spec = datasets.get_spec("fashion_mnist_local")
  for split, prefix in (("train", "train"), ("test", "t10k")):
    source = tfds.data_source("fashion_mnist_local", split=split, data_dir=data_dir)
    images, labels = datasets.read_all(source, spec)
    want_images, want_labels = arrays[prefix]
    # TFDS shuffles record order on write: compare after sorting by pixels.
    assert images.shape == (len(want_labels), 28, 28, 1) and images.dtype == np.uint8
    order = np.lexsort(images.reshape(len(labels), -1).T)
    want_order = np.lexsort(want_images.reshape(len(want_labels), -1).T)
    np.testing.assert_array_equal(images[order, ..., 0], want_images[want_order])
    np.testing.assert_array_equal(labels[order], want_labels[want_order])


def test_missing_file_names_the_file_and_how_to_get_it(tmp_path):
  with pytest.raises(fashion_mnist_local.DatasetFileError) as e:
    fashion_mnist_local.read_split(str(tmp_path), "train")
  assert "train-images-idx3-ubyte.gz" in str(e.value)
  assert "apt-get install dataset-fashion-mnist" in str(e.value)


def test_truncated_and_corrupt_files_are_rejected(tmp_path):
  write_tiny_fmnist(str(tmp_path), num_train=20, num_test=10)
  path = os.path.join(tmp_path, "train-images-idx3-ubyte.gz")
  with gzip.open(path) as f:
    raw = f.read()
  with gzip.open(path, "wb") as f:  # Valid gzip, but the payload is cut short.
    f.write(raw[:-100])
  with pytest.raises(fashion_mnist_local.DatasetFileError, match="bytes, expected"):
    fashion_mnist_local.read_idx_images(path)
  with open(path, "wb") as f:  # Not gzip at all.
    f.write(b"garbage" * 10)
  with pytest.raises(
    fashion_mnist_local.DatasetFileError, match="truncated or corrupt"
  ):
    fashion_mnist_local.read_idx_images(path)


def test_real_dataset_size_is_enforced(tmp_path):
  write_tiny_fmnist(str(tmp_path), num_train=20, num_test=10)
  with pytest.raises(fashion_mnist_local.DatasetFileError, match="has 20 images"):
    fashion_mnist_local.read_split(str(tmp_path), "train", strict_counts=True)


def test_train_val_split_is_deterministic_and_disjoint():
  train, val = datasets.train_val_split(1000, 0.1, seed=42)
  train2, val2 = datasets.train_val_split(1000, 0.1, seed=42)
  np.testing.assert_array_equal(train, train2)
  np.testing.assert_array_equal(val, val2)
  assert len(val) == 100 and len(train) == 900
  assert not set(train) & set(val)
  assert sorted(set(train) | set(val)) == list(range(1000))
  with pytest.raises(ValueError, match="validation_fraction"):
    datasets.train_val_split(10, 1.0, seed=0)


def test_pad_crop_is_a_window_of_the_zero_padded_image():
  x = jnp.arange(2 * 6 * 6 * 1, dtype=jnp.float32).reshape(2, 6, 6, 1) + 1
  rng = jax.random.PRNGKey(3)
  out = np.asarray(pipeline.random_pad_crop(x, rng, pad=2))
  offsets = np.asarray(jax.random.randint(rng, (2, 2), 0, 5))
  padded = np.pad(np.asarray(x), ((0, 0), (2, 2), (2, 2), (0, 0)))
  for i, (r, c) in enumerate(offsets):
    np.testing.assert_array_equal(out[i], padded[i, r : r + 6, c : c + 6])


def test_flip_mirrors_width_axis():
  x = jnp.arange(4 * 3 * 5 * 1, dtype=jnp.float32).reshape(4, 3, 5, 1)
  rng = jax.random.PRNGKey(0)
  out = np.asarray(pipeline.random_flip(x, rng))
  flips = np.asarray(jax.random.bernoulli(rng, 0.5, (4, 1, 1, 1))).reshape(-1)
  for i in range(4):
    want = np.asarray(x)[i, :, ::-1] if flips[i] else np.asarray(x)[i]
    np.testing.assert_array_equal(out[i], want)


def test_preprocess_normalises_per_channel():
  pre = pipeline.Preprocess(mean=(0.5, 0.25), std=(0.5, 0.25))
  images = jnp.full((1, 2, 2, 2), 255, jnp.uint8)
  out = np.asarray(pre(images, jax.random.PRNGKey(0), train=False))
  np.testing.assert_allclose(out[..., 0], 1.0)
  np.testing.assert_allclose(out[..., 1], 3.0)


def test_epoch_permutation_covers_each_example_once():
  order = np.asarray(pipeline.epoch_permutation(jax.random.PRNGKey(1), 103, 10))
  assert order.shape == (10, 10)
  assert len(set(order.reshape(-1))) == 100


def test_resize_matches_shape_and_range():
  images = np.random.default_rng(0).integers(0, 256, (3, 28, 28, 1), dtype=np.uint8)
  out = datasets.resize_images(images, (32, 32))
  assert out.shape == (3, 32, 32, 1) and out.dtype == np.uint8
  # Bilinear upsampling keeps the mean brightness to within rounding.
  assert abs(out.mean() - images.mean()) < 2.0


def test_load_builds_val_split_and_limits(tiny_config):
  cfg = tiny_config.data
  with cfg.unlocked():
    cfg.validation_fraction = 0.25
    cfg.test_limit = 100
  data = pipeline.load(cfg)
  assert data.train.num_examples == 384 and data.evals["val"].num_examples == 128
  assert data.evals["test"].num_examples == 100
  assert data.input_shape == (32, 32, 1)


def test_split_seed_minus_one_draws_the_split_with_the_run_seed(tiny_config):
  """Le & Hua Sec. 3.4 split the training set "randomly (and independently
  between each run)": data.split_seed=-1 uses the run's seed."""
  cfg = tiny_config.data
  with cfg.unlocked():
    cfg.validation_fraction = 0.25
    cfg.split_seed = -1
  val = {s: pipeline.load(cfg, seed=s).evals["val"] for s in (3, 4)}
  with cfg.unlocked():
    cfg.split_seed = 3
  fixed = pipeline.load(cfg).evals["val"]
  np.testing.assert_array_equal(np.asarray(val[3].images), np.asarray(fixed.images))
  assert not np.array_equal(np.asarray(val[3].images), np.asarray(val[4].images))
  with cfg.unlocked():
    cfg.split_seed = -1
  with pytest.raises(ValueError, match="needs the run's seed"):
    pipeline.load(cfg)


def test_unknown_dataset_and_augment_are_rejected(tiny_config):
  cfg = tiny_config.data
  with cfg.unlocked():
    cfg.augment = "mixup"
  with pytest.raises(ValueError, match=r"data.augment must be one of \['none'"):
    pipeline.load(cfg)
  with pytest.raises(ValueError, match=r"data\.name must be one of"):
    datasets.get_spec("svhn")


def test_stock_tfds_dataset_through_mock_data():
  """Stock datasets (here mnist) go through the same loader (mocked, offline)."""
  from jaxprune import config_utils

  cfg = config_utils.base_config().data
  cfg.name = "mnist"
  with tfds.testing.mock_data(num_examples=64):
    data = pipeline.load(cfg)
  assert data.train.images.shape == (64, 28, 28, 1)
  assert data.train.labels.min() >= 0 and data.train.labels.max() < 10


def test_resident_splits_are_decoded_once_per_process(tiny_config, monkeypatch):
  calls = []
  real = datasets.read_all
  monkeypatch.setattr(
    datasets, "read_all", lambda *a, **k: calls.append(1) or real(*a, **k)
  )
  monkeypatch.setattr(pipeline, "_RESIDENT_CACHE", {})
  first = pipeline.load(tiny_config.data)
  assert len(calls) == 2  # train and test
  second = pipeline.load(tiny_config.data)
  assert len(calls) == 2  # Both splits came from the cache.
  np.testing.assert_array_equal(first.train.images, second.train.images)
  np.testing.assert_array_equal(first.evals["test"].labels, second.evals["test"].labels)
  cached = next(iter(pipeline._RESIDENT_CACHE.values()))[0]
  with pytest.raises(ValueError, match="read-only"):
    cached[0, 0, 0, 0] = 1
  # A different limit is a different array, read afresh.
  tiny_config.data.train_limit = 100
  assert pipeline.load(tiny_config.data).train.num_examples == 100
  assert len(calls) == 3


def test_streamed_batches_split_by_rows_equal_the_whole_batch():
  """A process that reads only its rows of each global batch (multi-host) gets
  exactly those rows of the single-process batch: same examples, same random
  crops (one generator per example, seeded by its place in the epoch)."""
  rng = np.random.default_rng(0)

  class Source(list):  # The random-access interface of a TFDS data source.
    def __getitems__(self, keys):
      return [self[k] for k in keys]

  source = Source(
    {"image": rng.integers(0, 255, (40, 48, 3), dtype=np.uint8), "label": i % 7}
    for i in range(21)
  )
  spec = datasets.DatasetSpec("fake", (None, None, 3), 7, (0.5,) * 3, (0.5,) * 3)
  split = pipeline.StreamingSplit(source, spec, (24, 24))
  for train in (True, False):
    kwargs = dict(train=train, seed=3, epoch=1)
    whole = list(split.batches(8, **kwargs))
    parts = [list(split.batches(8, rows=slice(a, a + 4), **kwargs)) for a in (0, 4)]
    assert len(whole) == (2 if train else 3)  # Eval keeps (and pads) the tail.
    for i, batch in enumerate(whole):
      for k in range(3):  # images, labels, weights
        joined = np.concatenate([parts[0][i][k], parts[1][i][k]])
        np.testing.assert_array_equal(joined, batch[k])
  last = whole[-1]
  assert last[2].tolist() == [1, 1, 1, 1, 1, 0, 0, 0]  # 21 = 2 * 8 + 5.


@pytest.mark.parametrize(
  "name, expected",
  [
    ("mnist", "tfds build mnist --data_dir={d} --file_format=array_record"),
    ("cifar10", "tfds build cifar10 --data_dir={d} --file_format=array_record"),
    ("imagenet2012", "--manual_dir=MANUAL"),
    ("fashion_mnist_local", "python -m jaxprune.data prepare --data_dir={d}"),
  ],
)
def test_unprepared_dataset_fails_at_once_with_its_command(
  name, expected, tmp_path, monkeypatch
):
  # issue 23.3: TFDS retried downloads for minutes offline; never download.
  def no_download(*args, **kwargs):
    raise AssertionError("open_split must not download or prepare")

  monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", no_download)
  with pytest.raises(FileNotFoundError) as e:
    datasets.open_split(name, "train", str(tmp_path))
  assert expected.format(d=tmp_path) in str(e.value)
  assert "\n" not in str(e.value)
  if name == "mnist":
    assert "fashion_mnist,smoke" in str(e.value)
