"""Grouped runs (issue 15): a group of R runs gives what R separate runs give.

* `train_runs` over R configs (seeds, LR schedules, weight decay) equals R
  separate `train_and_evaluate` calls: the same files, the same rows to float
  tolerance (vmap reorders sums), one compile for the group.
* Every protocol run as a group (`grouped.run_group`: protocol threads whose
  training phases batch) equals the same runs one by one: accuracy within 0.3
  points, identical sparsity and widths; its phases really did batch.
* Runs whose shapes differ never share a program; a killed group resumes.
"""

from __future__ import annotations

import os

import ml_collections
import pytest
from step_helpers import tiny_protocol_config
from test_recompile import count_compiles

from jaxprune import io_utils, protocols
from jaxprune.protocols import grouped
from jaxprune.train import Run, loop, train_and_evaluate, train_runs

pytestmark = pytest.mark.usefixtures("fast_compiles")


@pytest.fixture
def base(tiny_fmnist, tmp_path):
  """MLP-7 (width 16), 256 examples, batch 64, 2 epochs of linear LR 0.05."""
  return tiny_protocol_config(tiny_fmnist, 16, str(tmp_path / "cache"))


def _variant(c, **fields):
  c = ml_collections.ConfigDict(c.copy_and_resolve_references().to_dict())
  for dotted, value in fields.items():
    *parents, leaf = dotted.split(".")
    node = c
    for p in parents:
      node = node[p]
    node[leaf] = value
  return c


def _close(a: dict, b: dict, keys=("test/accuracy",), tol=0.003):
  for k in keys:
    assert abs(a[k] - b[k]) <= tol, (k, a[k], b[k])


def test_train_runs_equal_separate_runs(base, tmp_path):
  configs = [
    _variant(base, seed=0),
    _variant(base, seed=1),
    _variant(base, seed=0, **{"schedule.lr": 0.02, "optimizer.weight_decay": 1e-3}),
  ]
  alone = [
    train_and_evaluate(c, str(tmp_path / f"a{i}")) for i, c in enumerate(configs)
  ]
  loop._STEPS.clear()
  with count_compiles() as compiles:
    runs = [Run(c, str(tmp_path / f"g{i}")) for i, c in enumerate(configs)]
    together = train_runs(runs, mode="vmap")
  assert compiles["_train_epoch"] == 1, compiles  # One program for the group.
  for i, (a, g) in enumerate(zip(alone, together)):
    assert g["status"] == "completed" and g["group_size"] == 3
    assert g["config_hash"] == a["config_hash"]
    _close(a, g, ("test/accuracy", "train/accuracy"))
    assert abs(a["test/loss"] - g["test/loss"]) < 1e-3
    assert g["lr"] == pytest.approx(a["lr"], rel=1e-6)  # Each its own schedule.
    rows_a = io_utils.read_jsonl(str(tmp_path / f"a{i}" / "metrics.jsonl"))
    rows_g = io_utils.read_jsonl(str(tmp_path / f"g{i}" / "metrics.jsonl"))
    assert [r["epoch"] for r in rows_a] == [r["epoch"] for r in rows_g]
    assert set(rows_a[-1]) == set(rows_g[-1])
    for kind in ("latest", "final"):
      assert os.path.isdir(tmp_path / f"g{i}" / "checkpoints" / kind)
  # Serial mode: the same compiled functions one run after another, bit-exact.
  serial = train_runs(
    [Run(c, str(tmp_path / f"s{i}")) for i, c in enumerate(configs)], "serial"
  )
  for a, s in zip(alone, serial):
    assert s["test/accuracy"] == a["test/accuracy"] and s["test/loss"] == a["test/loss"]


def test_a_diverging_member_fails_alone(base, tmp_path):
  configs = [_variant(base, seed=0), _variant(base, seed=1, **{"schedule.lr": 1e12})]
  ok, bad = train_runs(
    [Run(c, str(tmp_path / f"r{i}")) for i, c in enumerate(configs)], "vmap"
  )
  assert ok["status"] == "completed" and ok["test/accuracy"] > 0.2
  assert isinstance(bad, loop.TrainingDivergedError)
  assert (
    io_utils.read_json(str(tmp_path / "r1" / "summary.json"))["status"] == "diverged"
  )


def test_killed_group_resumes_and_matches(base, tmp_path, monkeypatch):
  configs = [
    _variant(base, seed=s, num_epochs=3, **{"schedule.epochs": 3}) for s in (0, 1)
  ]
  whole = train_runs(
    [Run(c, str(tmp_path / f"w{i}")) for i, c in enumerate(configs)], "vmap"
  )
  real_end = loop.Member.end_epoch

  def killing_end(self, done, row):
    real_end(self, done, row)
    if done == 2 and self.workdir.endswith("k1"):
      raise KeyboardInterrupt("killed")

  monkeypatch.setattr(loop.Member, "end_epoch", killing_end)
  dirs = [str(tmp_path / f"k{i}") for i in range(2)]
  with pytest.raises(KeyboardInterrupt):
    train_runs([Run(c, d) for c, d in zip(configs, dirs)], "vmap")
  monkeypatch.setattr(loop.Member, "end_epoch", real_end)
  resumed = train_runs([Run(c, d) for c, d in zip(configs, dirs)], "vmap")
  for w, r in zip(whole, resumed):
    _close(w, r, ("test/accuracy",), tol=1e-6)
    assert r["test/loss"] == pytest.approx(w["test/loss"], rel=1e-5)
  epochs = [
    r["epoch"] for r in io_utils.read_jsonl(os.path.join(dirs[0], "metrics.jsonl"))
  ]
  assert epochs == [1, 2, 3]  # No duplicated rows after the resume.


def test_runs_with_other_shapes_are_refused_together(base, tmp_path):
  wide = _variant(base, **{"model.widths": (24,) * 6})
  with pytest.raises(ValueError, match="share data, batch sizes, model shapes"):
    train_runs([Run(base, str(tmp_path / "a")), Run(wide, str(tmp_path / "b"))])


PROTOCOLS = {
  "one_shot": {"protocol": "prune_retrain"},
  "imp": {
    "protocol": "prune_retrain",
    "pruning.schedule": "imp",
    "pruning.imp_cycles": 2,
  },
  "structured": {
    "protocol": "prune_retrain",
    "pruning.name": "structured",
    "pruning.criterion": "l1",
    "pruning.groups": "all",
    "pruning.ratio": 0.5,
  },
  "bimp": {
    "protocol": "bimp",
    "bimp.budget_epochs": 4,
    "pruning.schedule": "imp",
    "pruning.imp_cycles": 2,
  },
  "gmp": {
    "protocol": "gmp",
    "pruning.schedule": "gmp",
    "pruning.gmp_start": 1,
    "pruning.gmp_end": 2,
  },
  "lottery": {"protocol": "lottery", "pruning.rewind": "init"},
  "scratch": {"protocol": "scratch", "scratch.budget": "E"},
  "prune_epoch": {
    "protocol": "prune_epoch",
    "prune_epoch.setup": "pkfn",
    "prune_epoch.epoch": 1,
    "schedule": ml_collections.ConfigDict(
      dict(name="piecewise", spec="0:0.05,1:0.005", epochs=2)
    ),
  },
}


@pytest.mark.parametrize("name", sorted(PROTOCOLS))
def test_every_protocol_groups_like_separate_runs(name, base, tmp_path, monkeypatch):
  settings = [{"seed": 0}, {"seed": 1}, {"seed": 0, "retrain.schedule": "clr"}]
  if name == "one_shot":
    settings.append({"seed": 1, "pruning.sparsity": 0.5, "retrain.schedule": "lrw"})
  configs = [_variant(base, **PROTOCOLS[name], **s) for s in settings]
  alone = [protocols.run(c, str(tmp_path / f"a{i}")) for i, c in enumerate(configs)]
  sizes = []
  real = loop.train_runs
  monkeypatch.setattr(
    loop, "train_runs", lambda runs, mode: sizes.append(len(runs)) or real(runs, mode)
  )
  for c in configs:
    c.cache_dir = str(tmp_path / "group_cache")
  dirs = [str(tmp_path / f"g{i}") for i in range(len(configs))]
  together = grouped.run_group(configs, dirs)
  for a, g in zip(alone, together):
    assert not isinstance(g, BaseException), g
    assert g["config_hash"] == a["config_hash"]
    _close(a, g)
    for key in ("sparsity", "params", "nonzero_params", "widths"):
      assert g.get(key) == a.get(key), key
  assert max(sizes) > 1, sizes  # Phases of several runs trained together.
