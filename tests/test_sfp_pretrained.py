"""Protocol `sfp` with `sfp.pretrained`: soft pruning from the dense model.

MLP-7 (width 32) on the tiny Fashion-MNIST fixture, so every run takes seconds.
"""

from __future__ import annotations

import os

import jax
import ml_collections
import numpy as np
import pytest
from step_helpers import tiny_protocol_config

from jaxprune import io_utils, protocols
from jaxprune.protocols import common, sfp
from jaxprune.train import checkpointing

WIDTH = 32
RATIO = 0.5

pytestmark = pytest.mark.usefixtures("fast_compiles")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("sfp_cache"))


def _config(tiny_fmnist, cache_dir) -> ml_collections.ConfigDict:
  c = tiny_protocol_config(tiny_fmnist, WIDTH, cache_dir)
  c.protocol = "sfp"
  p = c.pruning
  p.name, p.criterion, p.groups, p.ratio = "structured", "l2", "all", RATIO
  c.retrain.num_epochs = 0
  return c


def _pretrained(c: ml_collections.ConfigDict, epochs: int = 2):
  c.sfp.pretrained = True
  c.sfp.num_epochs = epochs
  c.sfp.schedule_spec = "0:0.05,1/2:0.01"
  return c


def _final(workdir):
  with checkpointing.Checkpointer(os.path.join(workdir, "checkpoints")) as ckpt:
    return jax.device_get(ckpt.restore("final")[0])


def _hidden_kernels(params) -> list[np.ndarray]:
  """The hidden layers' kernels (the output layer is not pruned)."""
  names = sorted(params)[:-1]
  return [np.asarray(params[n]["kernel"]) for n in names]


def test_default_fields_change_nothing(tiny_fmnist, cache_dir, tmp_path):
  # Same run with the new section at its defaults and with the section absent
  # (as configs written before it): same hash, same result.
  with_fields = _config(tiny_fmnist, cache_dir)
  without = _config(tiny_fmnist, cache_dir)
  del without["sfp"]
  from jaxprune import config_utils

  assert config_utils.config_hash(with_fields) == config_utils.config_hash(without)
  a = protocols.run(with_fields, str(tmp_path / "a"))
  assert "dense/test/accuracy" not in a
  assert not os.path.exists(os.path.join(str(tmp_path / "a"), "soft"))
  b = _final(a["train_workdir"])
  # A second run from an empty cache reproduces the same soft-pruned params.
  c2 = _config(tiny_fmnist, str(tmp_path / "cache2"))
  c2.cache_dir = str(tmp_path / "cache2")
  again = protocols.run(c2, str(tmp_path / "b"))
  jax.tree_util.tree_map(
    np.testing.assert_array_equal, b["params"], _final(again["train_workdir"])["params"]
  )
  assert a["widths"] == again["widths"]


def test_pretrained_starts_from_dense_zeroes_exact_counts_and_regrows(
  tiny_fmnist, cache_dir, tmp_path, monkeypatch
):
  c = _pretrained(_config(tiny_fmnist, cache_dir), epochs=3)
  seen: list = []
  real = sfp.epoch_end_hook

  def spy(config, events):
    hook = real(config, events)

    def wrapped(epoch, state):
      out = hook(epoch, state)
      seen.append(jax.device_get(out.params))
      return out

    return wrapped

  starts: list = []
  real_run = common.run_phase

  def run_phase(config, workdir, **kw):
    if workdir.endswith("soft"):
      starts.append(jax.device_get(kw["start"].params))
    return real_run(config, workdir, **kw)

  monkeypatch.setattr(sfp, "epoch_end_hook", spy)
  monkeypatch.setattr(common, "run_phase", run_phase)
  summary = protocols.run(c, str(tmp_path / "run"))
  dense = _final(summary["dense_workdir"])
  # The soft phase starts from the dense checkpoint.
  assert len(starts) == 1
  jax.tree_util.tree_map(np.testing.assert_array_equal, starts[0], dense["params"])
  # Exactly the target number of zero units per hidden layer after every epoch.
  assert len(seen) == 3
  want = WIDTH - int(WIDTH * (1 - RATIO))
  for params in seen:
    for k in _hidden_kernels(params):
      assert int(np.sum(~np.any(k, axis=0))) == want
  # Zeroed units regrow during the next epoch (SGD keeps updating them).
  assert sum(e["regrown"] for e in summary["soft_events"][1:]) > 0
  assert summary["soft_events"][0]["regrown"] == 0
  assert [e["epoch"] for e in summary["soft_events"]] == [1, 2, 3]
  # Dense accuracy recorded; the dense run is the shared training cache.
  acc = io_utils.read_json(os.path.join(summary["dense_workdir"], "summary.json"))
  assert summary["dense/test/accuracy"] == acc["test/accuracy"]
  assert summary["total_epochs"] == c.num_epochs + 3
  assert summary["setup"].startswith("SFP pretrained")


def test_pretrained_end_to_end_with_retraining(tiny_fmnist, cache_dir, tmp_path):
  c = _pretrained(_config(tiny_fmnist, cache_dir), epochs=1)
  c.retrain.num_epochs, c.retrain.schedule = 1, "clr"
  summary = protocols.run(c, str(tmp_path / "run"))
  assert summary["status"] == "completed"
  assert 0.0 <= summary["dense/test/accuracy"] <= 1.0
  assert summary["total_epochs"] == c.num_epochs + 1 + 1
  assert os.path.exists(os.path.join(str(tmp_path / "run"), "retrain"))
  assert summary["params"] < summary["dense_params"]


@pytest.mark.parametrize(
  "field, value, match",
  [
    ("sfp.num_epochs", 0, "sfp.num_epochs must be an int > 0"),
    ("sfp.num_epochs", -3, "sfp.num_epochs must be an int > 0"),
    ("sfp.schedule_spec", "", "sfp.schedule_spec must be set"),
    ("sfp.schedule_spec", "5:0.1", "sfp.schedule_spec must be 'epoch:lr"),
    ("sfp.schedule_spec", "0:abc", "sfp.schedule_spec must be 'epoch:lr"),
    # The factory's checks: starts increase; milestones lie in the 2 epochs.
    ("sfp.schedule_spec", "0:0.1,0:0.01", "strictly increasing"),
    ("sfp.schedule_spec", "0:0.1,5:0.01", "milestone 5 is beyond"),
  ],
)
def test_bad_fields_raise_naming_the_field(tiny_fmnist, cache_dir, field, value, match):
  c = _pretrained(_config(tiny_fmnist, cache_dir))
  section, leaf = field.split(".")
  c[section][leaf] = value
  with pytest.raises((ValueError, TypeError), match=match):
    common.validate(c)


def test_pretrained_must_be_a_bool(tiny_fmnist, cache_dir):
  # The ConfigDict keeps the default's type: a string is refused on assignment.
  c = _config(tiny_fmnist, cache_dir)
  with pytest.raises(TypeError):
    c.sfp.pretrained = "yes"
