"""`data.loader="grain"` reads the same streamed batches as the thread loader.

The reference is the thread loader (`StreamingSplit` with its default
loader): for a fixed seed both must give the same batches in the same order,
image for image, on mock imagenet2012 data (ImageNet100's class filter, the
random-resized crop); a run resumed at an epoch boundary must read what it
would have read. grain is optional: its cases skip without it.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxprune import config_utils
from jaxprune.data import datasets, pipeline


def _needs_grain():
  pytest.importorskip("grain", reason="grain is not installed (pip install grain)")


def _assert_same(a, b):
  assert len(a) == len(b)
  for x, y in zip(a, b):
    for k in range(3):  # images, labels, weights
      np.testing.assert_array_equal(x[k], y[k])


def _epochs(split, epochs, **kwargs):
  return [list(split.batches(8, train=True, seed=5, epoch=e, **kwargs)) for e in epochs]


def test_grain_equals_the_thread_loader_and_resumes_at_an_epoch(tmp_path):
  _needs_grain()
  cfg = config_utils.base_config().data
  cfg.name, cfg.data_dir, cfg.image_size = "imagenet100", str(tmp_path), (24, 24)
  splits = {}
  with tfds.testing.mock_data(num_examples=400):  # ~40 kept per split.
    for loader in ("thread", "grain"):
      cfg.loader = loader
      splits[loader] = pipeline.load(cfg)
    thread, grain_data = splits["thread"], splits["grain"]
    assert grain_data.train.loader == "grain" and thread.train.loader == "thread"
    ref = _epochs(thread.train, (0, 1))
    _assert_same(ref[0], _epochs(grain_data.train, (0,))[0])
    # A run resumed at epoch 1 (a fresh iterator) reads epoch 1's batches.
    _assert_same(ref[1], _epochs(grain_data.train, (1,))[0])
    assert not np.array_equal(ref[0][0][1], ref[1][0][1])  # The order moves.
    # Eval (unshuffled, padded tail) and one host's rows of each global batch.
    test = dict(train=False, seed=0, epoch=0, rows=slice(2, 6))
    _assert_same(
      list(thread.evals["test"].batches(8, **test)),
      list(grain_data.evals["test"].batches(8, **test)),
    )


class _Source(list):
  """A picklable random-access source (grain's worker processes get a copy)."""

  def __getitems__(self, keys):
    return [self[k] for k in keys]


def test_grain_worker_processes_give_the_same_batches():
  _needs_grain()
  rng = np.random.default_rng(0)
  source = _Source(
    {"image": rng.integers(0, 255, (40, 48, 3), dtype=np.uint8), "label": i % 7}
    for i in range(21)
  )
  spec = datasets.DatasetSpec("fake", (None, None, 3), 7, (0.5,) * 3, (0.5,) * 3)
  thread = pipeline.StreamingSplit(source, spec, (24, 24))
  workers = pipeline.StreamingSplit(source, spec, (24, 24), loader="grain", workers=1)
  _assert_same(_epochs(thread, (3,))[0], _epochs(workers, (3,))[0])


def test_loader_fields_are_checked_and_leave_the_hash_alone(monkeypatch):
  config = config_utils.base_config()
  digest = config_utils.config_hash(config)
  config.data.loader, config.data.loader_workers = "grain", 4
  assert config_utils.config_hash(config) == digest  # Same batches, same run.
  spec = datasets.get_spec("imagenet2012")
  with pytest.raises(ValueError, match=r"data\.loader must be one of"):
    pipeline.StreamingSplit([], spec, (8, 8), loader="dali")
  config.data.loader = "dali"  # Refused before any data is read, any dataset.
  with pytest.raises(ValueError, match=r"data\.loader must be one of"):
    pipeline.load(config.data)
  monkeypatch.setitem(sys.modules, "grain", None)  # As if not installed.
  split = pipeline.StreamingSplit([], spec, (8, 8), loader="grain")
  with pytest.raises(ImportError, match=r"pip install 'jaxprune\[grain\]'"):
    next(split.batches(8, train=False, seed=0, epoch=0))
