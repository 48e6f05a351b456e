"""Shared fixtures: a tiny, learnable Fashion-MNIST look-alike in IDX format.

Tests never touch the network or the real dataset: `tiny_fmnist` writes four
IDX .gz files whose classes are separable (a bright 7x7 patch at a
class-dependent position plus noise) and prepares `fashion_mnist_local` from
them into a temporary TFDS data dir. `process_env` is the environment of the
suite's `python` subprocesses. Tests listed in `slow_tests.txt` get the
`slow` marker (`tiers.py`: `make test` leaves them out, `make test-slow` runs
them).
"""

from __future__ import annotations

import gzip
import os
import struct

import numpy as np
import pytest

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# No persistent compilation cache from jaxprune's launchers unless a test opts
# in (`process_env` does for subprocesses): in-process compile counts and
# subprocesses that must compile stay honest (jaxprune/compile_cache.py).
os.environ.setdefault("JAXPRUNE_COMPILE_CACHE", "off")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Variables that give a subprocess the session's persistent compilation cache.
COMPILE_CACHE_VARS = (
  "JAX_COMPILATION_CACHE_DIR",
  "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
  "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES",
)


def make_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
  n = len(labels)
  images = rng.integers(0, 60, size=(n, 28, 28), dtype=np.uint8)
  for i, label in enumerate(labels):
    row, col = divmod(int(label), 5)
    images[i, 3 + 12 * row : 10 + 12 * row, 1 + 5 * col : 8 + 5 * col] = 230
  return images


def write_idx(
  directory: str, split_prefix: str, images: np.ndarray, labels: np.ndarray
):
  os.makedirs(directory, exist_ok=True)
  with gzip.open(
    os.path.join(directory, f"{split_prefix}-images-idx3-ubyte.gz"), "wb"
  ) as f:
    f.write(struct.pack(">IIII", 2051, len(images), 28, 28) + images.tobytes())
  with gzip.open(
    os.path.join(directory, f"{split_prefix}-labels-idx1-ubyte.gz"), "wb"
  ) as f:
    f.write(struct.pack(">II", 2049, len(labels)) + labels.astype(np.uint8).tobytes())


def write_tiny_fmnist(
  manual_dir: str, num_train: int = 512, num_test: int = 128, seed: int = 0
):
  rng = np.random.default_rng(seed)
  arrays = {}
  for prefix, n in (("train", num_train), ("t10k", num_test)):
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    images = make_images(labels, rng)
    write_idx(manual_dir, prefix, images, labels)
    arrays[prefix] = (images, labels)
  return arrays


@pytest.fixture(scope="session")
def tiny_fmnist(tmp_path_factory):
  """(data_dir, manual_dir, arrays) with fashion_mnist_local prepared."""
  from jaxprune.data import datasets, fashion_mnist_local

  root = tmp_path_factory.mktemp("tiny_fmnist")
  manual_dir, data_dir = str(root / "idx"), str(root / "tfds")
  arrays = write_tiny_fmnist(manual_dir)
  fashion_mnist_local.FashionMnistLocal.strict_counts = False
  datasets.prepare("fashion_mnist_local", data_dir, manual_dir)
  return data_dir, manual_dir, arrays


@pytest.fixture
def tiny_config(tiny_fmnist):
  """The default experiment shrunk to the tiny dataset (MLP-7-ReLU)."""
  from jaxprune import config_utils

  data_dir, manual_dir, _ = tiny_fmnist
  config = config_utils.base_config()
  config.data.data_dir = data_dir
  config.data.manual_dir = manual_dir
  config.data.image_size = (32, 32)
  config.num_epochs = 3
  config.batch_size = 64
  config.eval_batch_size = 64
  config.progress = False
  config.optimizer.momentum = 0.9
  config.model.init = "orthogonal"  # Learns the toy task in a few steps.
  config.schedule.name = "piecewise"
  config.schedule.spec = "0:0.05,2:0.005"
  config.lock()
  return config


@pytest.fixture(scope="session")
def process_env(tmp_path_factory) -> dict[str, str]:
  """Environment for the suite's `python` subprocesses: CPU JAX, this checkout
  importable, and one persistent XLA compilation cache per session, so that a
  program one subprocess compiled is loaded (about half of a tiny run's CPU
  time) by the next. Tests that need a real compile drop COMPILE_CACHE_VARS and
  set JAXPRUNE_COMPILE_CACHE=off.
  In-process tests get no cache: test_recompile counts backend compiles."""
  cache = str(tmp_path_factory.mktemp("jax_compile_cache"))
  values = (cache, "0", "0")  # Cache every program, however small.
  return {
    **os.environ,
    "JAX_PLATFORMS": "cpu",
    "PYTHONPATH": ROOT,
    **dict(zip(COMPILE_CACHE_VARS, values)),
    "JAXPRUNE_COMPILE_CACHE": cache,  # The launchers' setting (compile_cache).
  }


@pytest.fixture(scope="module")
def fast_compiles():
  """Turns off most XLA optimisations for one test module (faster compiles).

  Use with `pytestmark = pytest.mark.usefixtures("fast_compiles")` in modules
  whose runs are short enough that compile time dominates. The flag is restored
  afterwards, so other modules run the optimised programs users get.
  """
  import jax

  old = jax.config.read("jax_disable_most_optimizations")
  jax.config.update("jax_disable_most_optimizations", True)
  yield
  jax.config.update("jax_disable_most_optimizations", old)


@pytest.fixture
def prune_config(tiny_fmnist):
  """Prune -> retrain: one-shot 80% magnitude pruning of MLP-7 (width 32) after
  1 dense epoch, 1 epoch of FT retraining (256 examples)."""
  import ml_collections

  from jaxprune import config_utils

  data_dir, manual_dir, _ = tiny_fmnist
  c = config_utils.base_config()
  c.data.data_dir, c.data.manual_dir = data_dir, manual_dir
  c.data.image_size, c.data.train_limit = (32, 32), 256
  c.num_epochs, c.batch_size, c.eval_batch_size = 1, 64, 128
  c.progress = False
  c.model.init, c.model.widths = "orthogonal", (32,) * 6
  c.schedule = ml_collections.ConfigDict(
    dict(name="linear", lr=0.05, epochs=c.get_ref("num_epochs"))
  )
  c.protocol = "prune_retrain"
  c.pruning.name, c.pruning.sparsity, c.pruning.schedule = (
    "unstructured",
    0.8,
    "one_shot",
  )
  c.retrain.num_epochs, c.retrain.schedule = 1, "ft"
  c.lock()
  return c


def pytest_collection_modifyitems(config, items):
  """Marks the tests `tiers.py` lists as slow (`make test` leaves them out)."""
  import tiers

  slow = tiers.slow_node_ids()
  for item in items:
    if item.nodeid in slow:
      item.add_marker(pytest.mark.slow)
