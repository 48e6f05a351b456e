"""Config hashes: stable for committed runs, blind to new defaulted fields (issue 23.2)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import ml_collections
import pytest

from jaxprune import config_schema, config_utils
from jaxprune.results import sweeps

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Hashes of configs/mini points as computed before issue 23 (the committed
# mini-reproduction's runs live under these names).
PINNED = [
  (
    "le2021.py",
    "retrain",
    {
      "pruning.allocation": "global",
      "pruning.criterion": "magnitude",
      "pruning.name": "unstructured",
      "pruning.sparsity": 0.9,
      "retrain.num_epochs": 2,
      "retrain.schedule": "clr",
      "seed": 0,
    },
    "542bb8fa2e28aa60",
  ),
  (
    "wang2021_di.py",
    "table3",
    {
      "pruning.ratio": 0.9,
      "retrain.orthp": True,
      "retrain.spec": "0:0.01,5:0.001,10:0.0001",
      "seed": 0,
    },
    "542770f81c7a899a",
  ),
  (
    "zimmer2023.py",
    "budgets",
    {
      "pruning.sparsity": 0.98,
      "retrain.num_epochs": 3,
      "retrain.schedule": "slr",
      "seed": 2,
    },
    "a2213db12097976e",
  ),
]


def _point(paper: str, experiment: str, overrides: dict):
  module = sweeps.load_sweep_module(os.path.join(ROOT, "configs", "mini", paper))
  for point, config, digest in sweeps.expand(
    module.get_config(experiment), module.get_sweep(experiment)
  ):
    if point == overrides:
      return config, digest
  raise AssertionError(f"{paper}:{experiment} has no point {overrides}")


@pytest.mark.parametrize("paper, experiment, overrides, digest", PINNED)
def test_committed_mini_hashes_are_unchanged(paper, experiment, overrides, digest):
  assert _point(paper, experiment, overrides)[1] == digest


@pytest.fixture
def extended_schema(monkeypatch):
  """base_config() with a new option and a new section, both at defaults."""
  original = config_utils.base_config

  def extended():
    c = original()
    c.retrain.new_option = 3
    c.new_section = ml_collections.ConfigDict({"x": 1})
    return c

  monkeypatch.setattr(config_utils, "base_config", extended)
  config_utils._defaults.cache_clear()
  yield
  config_utils._defaults.cache_clear()


def test_a_new_defaulted_field_leaves_hashes_and_resume_alone(extended_schema):
  paper, experiment, overrides, digest = PINNED[0]
  config, _ = _point(paper, experiment, overrides)
  saved = config_utils.to_json_dict(config)  # A config.json written before.
  with config.unlocked():
    config.retrain.new_option = 3
    config.new_section = ml_collections.ConfigDict({"x": 1})
  assert config_utils.config_hash(config) == digest
  assert config_utils.diff(saved, config_utils.to_json_dict(config)) == []
  config.retrain.new_option = 4  # Off its default: a different run.
  assert config_utils.config_hash(config) != digest
  assert config_utils.diff(saved, config_utils.to_json_dict(config)) == [
    "retrain.new_option"
  ]
  config.retrain.new_option, config.new_section.x = 3, 2
  assert config_utils.config_hash(config) != digest


def test_existing_fields_are_hashed_even_at_their_defaults():
  config = config_utils.base_config()
  digest = config_utils.config_hash(config)
  fields = config_utils.to_json_dict(config)
  kept = config_utils.without_new_defaults(fields, config_utils._defaults())
  for dotted in config_schema.HASHED_ALWAYS:  # At their defaults, still hashed.
    node = kept
    for part in dotted.split("."):
      assert part in node, dotted
      node = node[part]
  assert kept != fields  # Fields added since (issue 22's options) are left out.
  assert digest == config_utils.config_hash(config_utils.base_config())


def test_code_fingerprint_follows_the_code_caches_depend_on(tmp_path, monkeypatch):
  from jaxprune import fingerprint

  package = tmp_path / "jaxprune"
  shutil.copytree(fingerprint.PACKAGE, package, ignore=shutil.ignore_patterns("*.pyc"))
  monkeypatch.setattr(fingerprint, "PACKAGE", str(package))
  fingerprint.code.cache_clear()

  def codes():
    fingerprint.code.cache_clear()
    return fingerprint.code("train"), fingerprint.code("prune")

  train, prune = codes()
  with open(package / "report.py", "a") as f:
    f.write("\n# a report change\n")
  assert codes() == (train, prune)  # Reports do not invalidate caches.
  with open(package / "pruning" / "scores.py", "a") as f:
    f.write("\n# an edited criterion\n")
  new_train, new_prune = codes()
  assert new_train == train and new_prune != prune
  for rel in fingerprint.IO_ONLY:  # Storing or showing results changes no number.
    assert (package / rel).exists(), rel
    with open(package / rel, "a") as f:
      f.write("\n# an I/O change\n")
  assert codes() == (new_train, new_prune)
  with open(package / "train" / "steps.py", "a") as f:
    f.write("\n# an edited train step\n")
  assert codes()[0] != train
  fingerprint.code.cache_clear()


def test_cache_keys_carry_the_code_fingerprint(monkeypatch):
  from jaxprune import fingerprint
  from jaxprune.protocols import common, pruned_cache

  config = config_utils.base_config()
  before = (
    pruned_cache.key(config, "abc", cycle=1, cumulative=0.5),
    common.dense_cache_dir("/c", config),
  )
  assert before[1].startswith(f"/c/train/{config_utils.config_hash(config)}-")
  monkeypatch.setattr(fingerprint, "code", lambda kind: "edited" + kind)
  after = (
    pruned_cache.key(config, "abc", cycle=1, cumulative=0.5),
    common.dense_cache_dir("/c", config),
  )
  assert before[0] != after[0] and before[1] != after[1]


def test_options_added_later_are_hash_neutral_at_their_default():
  """Options added after the hashed schema was frozen (e.g. issue 22's
  retrain.min_lr) leave the hash as it was before they existed while at their
  default; any other value moves it."""
  added = {
    "retrain.min_lr": None,
    "bimp.allow_nonlinear_t0": False,
    "retrain.allr_norm_params": "all",
    "retrain.cycle_momentum": False,
  }
  config = config_utils.base_config()
  digest = config_utils.config_hash(config)
  fields = config_utils.to_json_dict(config)
  for dotted, default in added.items():
    assert dotted not in config_schema.HASHED_ALWAYS
    section, leaf = dotted.split(".")
    assert fields[section][leaf] == default, dotted
    del fields[section][leaf]
  without = config_utils.without_new_defaults(fields, config_utils.to_json_dict(config))
  for key in config_utils.RESUME_SAFE_FIELDS:
    without.pop(key, None)
  want = hashlib.sha256(json.dumps(without, sort_keys=True).encode()).hexdigest()[:16]
  assert digest == want
  config.retrain.min_lr = 1e-4
  assert config_utils.config_hash(config) != digest


def test_resume_safe_fields_and_sections_may_differ_on_resume():
  config = config_utils.base_config()
  saved = config_utils.to_json_dict(config)
  config.checkpoint_every_epochs = 10
  config.analysis.jsv_every_epochs = 5  # Inside a resume-safe section.
  assert config_utils.diff(saved, config_utils.to_json_dict(config)) == []
  config.optimizer.momentum = 0.5
  assert config_utils.diff(saved, config_utils.to_json_dict(config)) == [
    "optimizer.momentum"
  ]
