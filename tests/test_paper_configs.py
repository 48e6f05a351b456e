"""The per-paper sweep configs in `configs/<paper>/`: they build and validate.

Every sweep file is built at full scale (get_config() + get_sweep(): non-empty
sweep, every override key exists (`sweeps.expand` raises otherwise), every
point validates with its protocol's checks, every point has a seed) and in its
smoke variant. The smoke points run end to end in test_config_smoke_runs.py.
"""

from __future__ import annotations

import functools
import glob
import json
import os

import ml_collections
import pytest

from jaxprune.protocols import common as protocol_common
from jaxprune.results import sweeps

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAPERS = ("le2021", "liu2019", "wang2021_di", "wang2023", "zimmer2023")
PATHS = sorted(
  p
  for paper in PAPERS
  for p in glob.glob(os.path.join(ROOT, "configs", paper, "*.py"))
  if not p.endswith("__init__.py")
)
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
    # One point per setting: a point's seed sets only `seed`, and building
    # every seed's config of the big grids was most of this test's time.
    settings: dict[str, dict] = {}
    for point in sweep:
      rest = {k: v for k, v in point.items() if k != "seed"}
      settings.setdefault(json.dumps(rest, sort_keys=True, default=str), point)
    for overrides, config, _ in sweeps.expand(base, list(settings.values())):
      protocol_common.validate(config)
      for key, value in overrides.items():  # Each point sets what it names.
        got = functools.reduce(getattr, key.split("."), config)
        if isinstance(got, ml_collections.ConfigDict):
          got = got.to_dict()
        assert got == (tuple(value) if isinstance(value, list) else value), key
  assert len(module.get_sweep("smoke")) == 1
  assert module.get_config("smoke").num_epochs <= 2


@pytest.mark.parametrize("path", PATHS, ids=_rel)
def test_paper_cells_name_one_published_row_each(path):
  """`report --paper_config` puts the published number beside each setting."""
  from jaxprune.results import report

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
