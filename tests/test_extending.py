"""Extension points (issue 23 item 8): criteria, schedules, models and
protocols registered from a module outside jaxprune, the one that
docs/extending.md shows (its Python blocks are run here, in order)."""

from __future__ import annotations

import glob
import importlib.util
import os
import re

import flax
import jax
import ml_collections
import numpy as np
import pytest

import jaxprune
from jaxprune import (
  config_utils,
  fingerprint,
  models,
  protocols,
  pruning,
  schedules,
)
from jaxprune.protocols import common, pruned_cache
from jaxprune.protocols import registry as protocol_registry
from jaxprune.pruning import allocation, scores, structured
from jaxprune.results import sweeps

DOC = os.path.join(os.path.dirname(__file__), os.pardir, "docs", "extending.md")


@pytest.fixture
def extensions(tmp_path):
  """The docs' extension module, written to tmp_path and imported from there;
  its registrations are undone afterwards."""
  with open(DOC) as f:
    blocks = re.findall(r"```python\n(.*?)```", f.read(), re.S)
  path = tmp_path / "my_extensions.py"
  path.write_text("\n\n".join(blocks))
  spec = importlib.util.spec_from_file_location("my_extensions", path)
  module = importlib.util.module_from_spec(spec)
  assert not str(path).startswith(os.path.dirname(jaxprune.__file__))
  try:
    spec.loader.exec_module(module)
    yield module
  finally:
    scores.CRITERIA.remove("smallest_first")
    structured.CRITERIA.remove("l_inf")
    allocation.ALLOCATIONS.remove("dense_classifier")
    schedules.TRAINING.remove("exp_decay")
    models.unregister("tiny_mlp")
    protocol_registry.unregister("train_noted")


def _kernels(tree) -> dict[str, np.ndarray]:
  flat = flax.traverse_util.flatten_dict(dict(tree), sep="/")
  return {k: np.asarray(v) for k, v in flat.items() if k.endswith("kernel")}


def _tiny_mlp_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  with config.unlocked():
    config.model = ml_collections.ConfigDict(dict(name="tiny_mlp", init="default"))
  return config


def test_registered_criterion_prunes_an_unregistered_model_in_a_sweep(
  extensions, prune_config, tmp_path
):
  """prune -> retrain sweep point with the docs' `smallest_first` criterion on
  the docs' TinyMLP: the kept weights are exactly the smallest |w| of the
  dense weights (magnitude pruning would keep the largest)."""
  config = _tiny_mlp_config(prune_config)
  workdir = str(tmp_path / "sweep")
  rows = sweeps.run_sweep(
    config, [{"pruning.criterion": "smallest_first"}], workdir, group="none"
  )
  assert [r["status"] for r in rows] == ["completed"]
  run_dir = os.path.join(workdir, "runs", rows[0]["config_hash"])
  masks = _kernels(common.Phase(os.path.join(run_dir, "cycle1"), {}).final().masks)
  (dense_dir,) = [d for d in glob.glob(f"{workdir}/cache/train/*") if os.path.isdir(d)]
  dense = _kernels(common.Phase(dense_dir, {}).final().params)
  assert set(masks) == set(dense) == {"hidden/kernel", "head/kernel"}
  w = np.concatenate([np.abs(dense[k]).ravel() for k in sorted(dense)])
  kept = np.concatenate([masks[k].ravel() for k in sorted(dense)]) > 0
  assert kept.sum() == w.size - round(0.8 * w.size)  # The global 80% target.
  assert w[kept].max() <= w[~kept].min()


def test_registered_structured_criterion_picks_its_channels(extensions):
  widths = (8,) * 6
  model = models.create("mlp7_relu", 10, widths=widths)
  params, stats = models.init_variables(model, jax.random.PRNGKey(0), (32, 32, 1))
  cfg = pruning.default_config()
  cfg.name, cfg.criterion, cfg.ratio, cfg.surgery = "structured", "l_inf", 0.5, False
  result = pruning.prune(
    cfg, params, stats, model_name="mlp7_relu", model_overrides={"widths": widths}
  )
  assert result.keep
  groups = {g.name: g for g in models.channel_groups("mlp7_relu", 10, widths=widths)}
  for name, kept in result.keep.items():
    score = sum(
      np.abs(np.asarray(params[p[0]]["kernel"])).max(0) for p in groups[name].producers
    )
    np.testing.assert_array_equal(kept, np.sort(np.argsort(-score)[:4]))


def test_registered_allocation_prunes_an_unregistered_model(extensions):
  """`pruning.prune` on the docs' TinyMLP (params tree only) with the docs'
  `dense_classifier` allocation: the head stays dense, the hidden layer keeps
  exactly its largest-magnitude half."""
  model = models.create("tiny_mlp", 10)
  params, stats = models.init_variables(model, jax.random.PRNGKey(1), (32, 32, 1))
  cfg = pruning.default_config()
  cfg.name, cfg.sparsity, cfg.allocation = "unstructured", 0.5, "dense_classifier"
  masks = _kernels(pruning.prune(cfg, params, stats, model_name="tiny_mlp").masks)
  assert masks["head/kernel"].all()
  w = np.abs(np.asarray(params["hidden"]["kernel"])).ravel()
  kept = masks["hidden/kernel"].ravel() > 0
  assert kept.sum() == w.size // 2 and w[kept].min() >= w[~kept].max()


def test_registered_names_are_validated_like_built_in_ones(extensions):
  cfg = pruning.default_config()
  cfg.name, cfg.criterion = "unstructured", "smallest_first"
  pruning.validate(cfg)
  cfg.allocation = "dense_classifier"
  pruning.validate(cfg)
  cfg.criterion = "l_inf"  # A structured criterion, not an unstructured one.
  with pytest.raises(ValueError, match=r"pruning.criterion must be one of \[.*'smal"):
    pruning.validate(cfg)
  gmp = config_utils.base_config()  # GMP takes any criterion without grads.
  gmp.protocol, gmp.pruning.name, gmp.pruning.schedule = "gmp", "unstructured", "gmp"
  gmp.pruning.gmp_start, gmp.pruning.gmp_end = 1, 2
  gmp.pruning.criterion = "smallest_first"
  protocols.validate(gmp)
  gmp.pruning.criterion = "saliency"
  with pytest.raises(ValueError, match=r"pruning.criterion must be one of \[.*'smal"):
    protocols.validate(gmp)
  sched = ml_collections.ConfigDict(dict(name="exp_decay", lr=0.1, gamma=0.5))
  assert float(schedules.create(sched, 10)(20)) == pytest.approx(0.1 * 0.5**2)
  sched.gamma = 2.0
  with pytest.raises(ValueError, match=r"^schedule.gamma must be in \(0, 1\]"):
    schedules.validate(sched)
  with pytest.raises(ValueError, match=r"schedule.name must be one of .*'exp_decay'"):
    schedules.validate(ml_collections.ConfigDict(dict(name="exp_decy")))
  with pytest.raises(ValueError, match="registered already"):
    pruning.register_criterion("magnitude")(lambda params, **_: params)
  with pytest.raises(ValueError, match="has no channel groups"):
    models.channel_groups("tiny_mlp")


def test_registered_protocol_trains_the_registered_model_and_schedule(
  extensions, tiny_config, tmp_path
):
  config = _tiny_mlp_config(tiny_config)
  config.protocol, config.num_epochs = "train_noted", 1
  config.schedule = ml_collections.ConfigDict(dict(name="exp_decay", lr=0.05))
  summary = protocols.run(config, str(tmp_path / "run"))
  assert summary["status"] == "completed"
  assert summary["note"] == "trained by train_noted"
  config.pruning.name = "unstructured"  # Refused by the protocol's validator.
  with pytest.raises(ValueError, match=r"^pruning.name must be one of \['none'\]"):
    protocols.run(config, str(tmp_path / "bad"))


def test_pruned_cache_key_follows_a_registered_criterion_source(extensions):
  """Editing a user's criterion makes a new pruned-cache entry; the keys of
  built-in criteria do not depend on user code."""
  config = config_utils.base_config()
  config.pruning.name, config.pruning.criterion = "unstructured", "smallest_first"
  before = pruned_cache.key(config, "dense", cycle=0, cumulative=0.8)
  builtin = config.copy_and_resolve_references()
  builtin.pruning.criterion = "magnitude"
  builtin_key = pruned_cache.key(builtin, "dense", cycle=0, cumulative=0.8)

  def smallest_first(params, **_):  # "Edited": squares instead of |w|.
    return jax.tree_util.tree_map(lambda w: -(w**2), params)

  pruning.register_criterion("smallest_first", replace=True)(smallest_first)
  assert pruned_cache.key(config, "dense", cycle=0, cumulative=0.8) != before
  assert pruned_cache.key(builtin, "dense", cycle=0, cumulative=0.8) == builtin_key
  assert fingerprint.outside([scores.CRITERIA.get("magnitude")]) == ""
