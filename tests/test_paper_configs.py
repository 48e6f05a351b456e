"""The per-paper sweep configs in `configs/<paper>/`: they build, validate and run.

Every sweep file is built at full scale (get_config() + get_sweep(): non-empty
sweep, every override key exists (`sweeps.expand` raises otherwise), every
point validates with its protocol's checks, every point has a seed) and in its
smoke variant. The first point of the smoke sweep then runs end to end on
`tfds.testing.mock_data`, but only for a representative subset (SMOKE_RUNS):
the MNIST nets (prune_retrain with OrthP and the structured surgery). The
CIFAR ResNet-56/110, VGG, PreResNet, DenseNet and ImageNet ResNet points take
minutes each to compile and run on a shared CPU core even in smoke mode (the
smoke variant shrinks epochs and examples, not widths: the first VGG-16 point
of le2021/table2.py did not finish in 9 minutes), so those are only built and
validated here.
"""

from __future__ import annotations

import functools
import glob
import os

import ml_collections
import pytest
import tensorflow_datasets as tfds

from jaxprune import io_utils, sweeps
from jaxprune.protocols import common as protocol_common

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAPERS = ("le2021", "liu2019", "wang2021_di", "wang2023", "zimmer2023")
PATHS = sorted(
  p
  for paper in PAPERS
  for p in glob.glob(os.path.join(ROOT, "configs", paper, "*.py"))
  if not p.endswith("__init__.py")
)
# Relative paths whose first smoke point runs end to end (small models only).
SMOKE_RUNS = ("wang2021_di/table3.py", "wang2021_di/table7.py")

pytestmark = pytest.mark.usefixtures("fast_compiles")


def _rel(path: str) -> str:
  return os.path.relpath(path, os.path.join(ROOT, "configs"))


def test_every_paper_has_configs():
  papers = {_rel(p).split(os.sep)[0] for p in PATHS}
  assert papers == set(PAPERS)


@pytest.mark.parametrize("path", PATHS, ids=_rel)
def test_sweep_builds_and_validates(path):
  module = sweeps.load_sweep_module(path)
  doc = module.__doc__ or ""
  assert "python -m jaxprune.sweeps" in doc and "python -m jaxprune.report" in doc
  assert "Expected" in doc
  for arg in (None, "smoke"):
    base, sweep = module.get_config(arg), module.get_sweep(arg)
    assert sweep, f"{path}: empty sweep ({arg=})"
    assert all("seed" in point for point in sweep)
    for overrides, config, _ in sweeps.expand(base, sweep):  # Unknown keys raise.
      protocol_common.validate(config)
      for key, value in overrides.items():  # Each point sets what it names.
        got = functools.reduce(getattr, key.split("."), config)
        if isinstance(got, ml_collections.ConfigDict):
          got = got.to_dict()
        assert got == (tuple(value) if isinstance(value, list) else value), key
  assert len(module.get_sweep("smoke")) == 1
  assert module.get_config("smoke").num_epochs <= 2


@pytest.mark.parametrize("rel", SMOKE_RUNS)
def test_first_smoke_point_runs(rel, tmp_path):
  module = sweeps.load_sweep_module(os.path.join(ROOT, "configs", rel))
  base = module.get_config("smoke")
  with base.unlocked():
    base.data.data_dir = str(tmp_path / "tfds")  # Never the user's datasets.
  sweep = module.get_sweep("smoke")
  with tfds.testing.mock_data(num_examples=128):
    rows = sweeps.run_sweep(base, sweep, str(tmp_path / "sweep"))
  assert len(rows) == 1 and rows[0]["status"] == "completed"
  # The row is the smoke point's run: its hash, its epochs, a real accuracy.
  ((_, config, digest),) = sweeps.expand(base, sweep)
  row = rows[0]
  assert row["config_hash"] == digest and row["seed"] == config.seed == 0
  assert row["epoch"] == config.retrain.num_epochs  # prune_retrain's last phase.
  assert 0.0 <= row["metrics"]["test/accuracy"] <= 1.0
  if rel == "wang2021_di/table3.py":
    # MLP-7's six hidden widths at ratio 0.8 with keep_floor: int(100 * (1 -
    # 0.8)) = int(19.999...) = 19 kept, as rethinking's float expression does.
    # By hand: 1024*19+19 + 5*(19*19+19) + 19*10+10 of the dense 154,010.
    assert row["params"] == 1024 * 19 + 19 + 5 * (19 * 19 + 19) + 200 == 21_575
    assert row["sparsity"] == pytest.approx(1 - 21_575 / 154_010)
  stored = io_utils.read_jsonl(str(tmp_path / "sweep" / sweeps.RESULTS_FILE))
  assert stored[0]["overrides"] == sweep[0]


@pytest.mark.parametrize("path", PATHS, ids=_rel)
def test_paper_cells_name_one_published_row_each(path):
  """`report --paper_config` puts the published number beside each setting."""
  from jaxprune import report

  module = sweeps.load_sweep_module(path)
  if not hasattr(module, "paper_cell"):
    pytest.skip("no paper_cell: the report shows our numbers only")
  points = sweeps.expand(module.get_config(), module.get_sweep())
  rows = [{"overrides": o, "seed": c.seed, "metrics": {}} for o, c, _ in points]
  aggregated = report.aggregate(rows)
  theirs = report.published(aggregated, module.paper_cell)  # Raises if ambiguous.
  assert any(t is not None for t in theirs)
  assert len({t["row_id"] for t in theirs if t}) == sum(t is not None for t in theirs)


def test_fashion_mnist_and_smoke_combine():
  # issue 23.3: every MNIST table can be smoke-tested on the offline data.
  for rel in ("wang2021_di/table3.py", "wang2021_di/table7.py"):
    module = sweeps.load_sweep_module(os.path.join(ROOT, "configs", rel))
    config = module.get_config("fashion_mnist,smoke")
    assert config.data.name == "fashion_mnist_local"
    assert config.num_epochs <= 2 and config.data.train_limit > 0
    assert len(module.get_sweep("fashion_mnist,smoke")) == 1
  with pytest.raises(ValueError, match=r"unknown key 'mnist'.*allowed.*smoke, data="):
    module.get_config("smoke,mnist")
