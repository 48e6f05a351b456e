"""Every config's smoke point runs end to end and learns.

One case per runnable config file (the per-paper sweeps, the protocol examples,
the default experiment, and each experiment of the mini-reproduction): its
`:smoke` variant (2 epochs of 512 examples, the net at 1/8 width, one sweep
point) runs on a two-class task that any working net learns within a few steps
(dark vs bright images, `SeparableSource`), read in place of the real dataset,
so the final test accuracy must beat chance (0.5) clearly. A run that trains
nothing, prunes the net to a constant or loses its weights between phases stays
near 0.5.

Identical smoke points of different files (same config hash) run once, and all
runs share one protocol cache, as the points of one sweep do. `DEFAULT` runs in
every suite; `JAXPRUNE_SMOKE_ALL=1` runs all of them.
"""

from __future__ import annotations

import glob
import os
import types

import numpy as np
import pytest

from jaxprune import config_args, config_utils, protocols
from jaxprune.data import class_subset, datasets
from jaxprune.results import sweeps

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAPERS = ("le2021", "liu2019", "wang2021_di", "wang2023", "zimmer2023")
# Above chance (0.5) by a margin no untrained or broken run reaches on 256
# balanced test examples.
MIN_ACCURACY = 0.8

pytestmark = pytest.mark.usefixtures("fast_compiles")


def _files(*parts: str) -> list[str]:
  paths = sorted(glob.glob(os.path.join(ROOT, "configs", *parts)))
  return [p for p in paths if os.path.basename(p) not in ("__init__.py", "base.py")]


# Run by default (about a minute on 2 quiet cores; the MLP-7 / LeNet-5 points,
# one per protocol): the CIFAR and ImageNet nets compile for tens of seconds
# to minutes each even at 1/8 width, more than the suite's budget, so they run
# with JAXPRUNE_SMOKE_ALL=1.
DEFAULT = {
  "mlp7_fashion_mnist.py",
  "protocols/during.py",
  "protocols/gmp.py",
  "protocols/lottery.py",
  "protocols/prune_epoch.py",
  "protocols/prune_retrain.py",
  "protocols/scratch.py",
  "protocols/seeds_sweep.py",
  "protocols/sfp.py",
  "wang2021_di/table3.py",
}
ALL = os.environ.get("JAXPRUNE_SMOKE_ALL") == "1"
# Smoke points whose own learning rates are too small to learn even this task
# in their 32 steps (measured: test accuracy stays at the majority class,
# 0.535): they must run to completion; not learning is an expected failure.
SMALL_LR = {
  "mlp7_fashion_mnist.py": "LR 0.01, then 0.001 from 1/3 of the epochs",
  "wang2021_di/table3.py": "DI's MNIST LR 0.01 (x0.1 at 1/3, 2/3)",
  "wang2021_di/table7.py": "DI's MNIST LR 0.01 (x0.1 at 1/3, 2/3)",
  "protocols/prune_epoch.py": "scratch schedule 0.05 / 0.005 / 0.0005, pruned after epoch 1",
  # ImageNet100 PkFn: S is 0.1 then 0.001 over the 2 smoke epochs; the one
  # fine-tuning epoch after pruning (95 % of the filters: Tables 5, 8) is at 0.001.
  "wang2023/table4.py": "pruned after epoch 1, fine-tuned 1 epoch at LR 0.001",
  "wang2023/table5.py": "95 % of the filters pruned after epoch 1, 1 epoch at 0.001",
  "wang2023/table8.py": "95 % of the filters pruned after epoch 1, 1 epoch at 0.001",
}


def _cases() -> list:
  """(config file relative to configs/, smoke argument) of every runnable config."""
  files = [f for p in PAPERS for f in _files(p, "*.py")]
  files += _files("protocols", "*.py") + _files("*.py")
  cases = [
    (os.path.relpath(f, os.path.join(ROOT, "configs")), "smoke")
    for f in files
    if not f.endswith("common.py")
  ]
  for path in _files("mini", "*.py"):
    module = config_args.load_module(path)
    rel = os.path.relpath(path, os.path.join(ROOT, "configs"))
    cases += [(rel, f"experiment={name},smoke") for name in module.EXPERIMENTS]
  slow = pytest.mark.skipif(
    not ALL, reason="smoke point outside the default set; JAXPRUNE_SMOKE_ALL=1 runs it"
  )
  return [c if c[0] in DEFAULT else pytest.param(*c, marks=slow) for c in cases]


class SeparableSource:
  """A `tfds.data_source` look-alike: dark (label 0) vs bright (label 1) images.

  Pixels are uniform noise in [0, 110) plus 145 for label 1, so the classes
  differ in mean brightness, which survives any pooling, width or pruning.
  """

  def __init__(self, n: int, shape: tuple[int, int, int], seed: int):
    rng = np.random.default_rng(seed)
    self.labels = rng.integers(0, 2, size=n)
    noise = rng.integers(0, 110, size=(n, *shape), dtype=np.uint8)
    self.images = noise + (145 * self.labels).astype(np.uint8)[:, None, None, None]

  def __len__(self) -> int:
    return len(self.labels)

  def __getitem__(self, key: int) -> dict:
    return {"image": self.images[key], "label": int(self.labels[key])}

  def __getitems__(self, keys):
    return [self[k] for k in keys]


def _separable_split(name: str, split: str, data_dir: str | None = None):
  channels = datasets.SPECS[name].image_shape[2]
  train = split == datasets.SPECS[name].train_split
  source = SeparableSource(512 if train else 256, (32, 32, channels), int(train))
  # Class subsets (imagenet100) select by class name: the source's classes
  # are those of the default list, so every example is kept, labels unchanged.
  names = class_subset.read_class_list(class_subset.IMAGENET100, 100)
  label = types.SimpleNamespace(names=names)
  source.dataset_info = types.SimpleNamespace(features={"label": label})
  return source


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
  """(data dir and cache dir shared by every run, {config hash: accuracy} of
  the runs done)."""
  root = tmp_path_factory.mktemp("smoke")
  return str(root / "tfds"), str(root / "cache"), {}


def _smoke_point(rel: str, arg: str):
  """(config, one-point sweep or None) of the smoke variant of `rel`."""
  path = os.path.join(ROOT, "configs", rel)
  module = config_args.load_module(path, ("get_config",))
  base = module.get_config(arg)
  sweep = module.get_sweep(arg)[:1] if hasattr(module, "get_sweep") else None
  if sweep == []:
    pytest.skip(f"{rel}:{arg} has no sweep points (an analysis study only)")
  return base, sweep


@pytest.mark.parametrize("rel, arg", _cases(), ids=lambda v: v)
def test_smoke_point_learns(rel, arg, shared, tmp_path, monkeypatch):
  data_dir, cache_dir, done = shared
  base, sweep = _smoke_point(rel, arg)
  assert base.model.width_multiplier == config_utils.SMOKE_WIDTH_MULTIPLIER
  assert base.num_epochs <= 2 and 0 < base.data.train_limit <= 512
  with base.unlocked():
    base.data.data_dir = data_dir  # Never the user's datasets.
    base.cache_dir = cache_dir
  if sweep is not None:
    ((_, config, digest),) = sweeps.expand(base, sweep)
  else:
    config, digest = base, config_utils.config_hash(base)
  if digest not in done:
    monkeypatch.setattr(datasets, "open_split", _separable_split)
    monkeypatch.setattr(datasets, "prepare", lambda *args, **kwargs: None)
    if sweep is not None:
      (row,) = sweeps.run_sweep(base, sweep, str(tmp_path / "sweep"))
      assert row["status"] == "completed" and row["config_hash"] == digest
      done[digest] = {**row, **row["metrics"]}
    else:
      done[digest] = protocols.run(config, str(tmp_path / "run"))
  result = done[digest]
  assert 0.0 <= result["test/accuracy"] <= 1.0
  if rel == "wang2021_di/table3.py":
    # MLP-7 at 1/8 width (hidden 12) with 80 % of every hidden layer's neurons
    # removed keeps int(12 * (1 - 0.8)) = int(2.400...) = 2, by hand:
    # 1024*2+2 + 5*(2*2+2) + 2*10+10 of the smoke net's 13,210.
    assert result["params"] == 1024 * 2 + 2 + 5 * (2 * 2 + 2) + 2 * 10 + 10 == 2_110
    assert result["sparsity"] == pytest.approx(1 - 2_110 / 13_210)
  # The phase that must learn: the dense training where the protocol has one
  # (a net pruned at 1/8 width and retrained for one epoch at a paper's small
  # fine-tuning LR need not recover in a smoke run), else the run itself.
  learned = result.get("dense/test/accuracy")
  learned = result["test/accuracy"] if learned is None else learned
  if learned < MIN_ACCURACY and rel in SMALL_LR:
    pytest.xfail(f"{rel}: {SMALL_LR[rel]}: 32 smoke steps learn nothing ({learned})")
  assert learned >= MIN_ACCURACY, f"{rel}:{arg} did not learn: {learned}"
