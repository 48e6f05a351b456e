"""allocation='pattern' (Liu et al. 2019 Guided Sparsification): exact per-layer
counts, the stage-averaged guided form, and a run from a pattern file."""

from __future__ import annotations

import json
import os

import jax.numpy as jnp
import numpy as np
import pytest
from step_helpers import tiny_protocol_config

from jaxprune import protocols
from jaxprune.analysis import architecture, weights
from jaxprune.protocols import scratch
from jaxprune.pruning import allocation as alloc
from jaxprune.train import checkpointing


def _tree():
  scores = {
    "stage0": {"conv": {"kernel": jnp.arange(10.0)}},
    "stage1": {"conv": {"kernel": jnp.arange(30.0).reshape(5, 6)}},
    "head": {"kernel": jnp.arange(4.0), "bias": jnp.zeros(2)},
  }
  prunable = {
    "stage0": {"conv": {"kernel": True}},
    "stage1": {"conv": {"kernel": True}},
    "head": {"kernel": True, "bias": False},
  }
  return scores, prunable


def test_pattern_keeps_the_requested_count_per_layer():
  scores, prunable = _tree()
  pattern = {"stage0/conv": 0.25, "stage1/conv": 0.5, "head": 1.0}
  m = alloc.unstructured_masks(scores, prunable, 0.0, "pattern", pattern=pattern)
  # round(0.25 * 10) = 3 (2.5 half up), 15 of 30, all 4; the largest scores kept.
  np.testing.assert_array_equal(m["stage0"]["conv"]["kernel"], [0] * 7 + [1] * 3)
  assert int(m["stage1"]["conv"]["kernel"].sum()) == 15
  assert float(m["stage1"]["conv"]["kernel"].reshape(-1)[15:].min()) == 1.0
  assert int(m["head"]["kernel"].sum()) == 4 and int(m["head"]["bias"].sum()) == 2
  # The same pattern as inline JSON text.
  m2 = alloc.unstructured_masks(
    scores, prunable, 0.9, "pattern", pattern=json.dumps(pattern)
  )
  np.testing.assert_array_equal(
    m2["stage1"]["conv"]["kernel"], m["stage1"]["conv"]["kernel"]
  )


def test_pattern_errors_name_the_field():
  scores, prunable = _tree()
  with pytest.raises(
    ValueError, match=r"pruning.pattern names unknown layers \['nope'\]"
  ):
    alloc.unstructured_masks(
      scores,
      prunable,
      0.0,
      "pattern",
      pattern={"stage0/conv": 0.5, "stage1/conv": 0.5, "head": 0.5, "nope": 0.5},
    )
  with pytest.raises(ValueError, match=r"lacks the prunable layers \['head'\]"):
    alloc.unstructured_masks(
      scores, prunable, 0.0, "pattern", pattern={"stage0/conv": 0.5, "stage1/conv": 0.5}
    )
  for bad in (0.0, 1.5, -0.1):
    with pytest.raises(
      ValueError, match=r"pruning.pattern\['head'\] must be a keep ratio in \(0, 1\]"
    ):
      alloc.load_pattern({"head": bad})
  with pytest.raises(ValueError, match=r"pruning\.pattern must name"):
    alloc.load_pattern("")


def test_guided_pattern_is_the_stage_mean_by_hand():
  pattern = {"stage0/a": 0.5, "stage0/b": 0.2, "stage1/a": 0.3, "head": 0.9}
  sizes = {"stage0/a": 10, "stage0/b": 30, "stage1/a": 8, "head": 4}
  got = alloc.guided_pattern(pattern, sizes, lambda k: k.split("/")[0])
  # Stage 0: (0.5 * 10 + 0.2 * 30) / 40 = 11 / 40 kept weights.
  assert got == pytest.approx(
    {"stage0/a": 0.275, "stage0/b": 0.275, "stage1/a": 0.3, "head": 0.9}
  )
  dense = architecture.param_stage("densenet40")
  assert [
    dense(k) for k in ("block2_layer3_conv1", "transition0_conv", "stem_conv")
  ] == [
    "Stage 3",
    "transition0_conv",
    "stem_conv",
  ]
  # From masks through analysis.architecture (stage{s} layers grouped).
  masks = {
    "stage0": {
      "a": {"kernel": np.array([1] * 5 + [0] * 5).reshape(2, 5)},
      "b": {"kernel": np.array([1] * 6 + [0] * 24).reshape(5, 6)},
    },
    "head": {"kernel": np.ones((2, 2))},
  }
  assert architecture.sparsity_pattern(masks) == {"stage0/a": 0.5, "stage0/b": 0.2}
  assert architecture.sparsity_pattern(masks, guided=True) == pytest.approx(
    {"stage0/a": 0.275, "stage0/b": 0.275}
  )


def test_run_from_a_pattern_file(tiny_fmnist, tmp_path):
  c = tiny_protocol_config(tiny_fmnist, 24, str(tmp_path / "cache"))
  c.protocol, c.num_epochs = "prune_retrain", 1
  # MLP-7: six hidden Dense layers of 24 plus the classifier.
  names = [*(f"fc{i}" for i in range(6)), "head"]
  ratios = [0.5, 0.25, 0.25, 0.25, 0.25, 0.25, 0.75]
  path = tmp_path / "pattern.json"
  path.write_text(json.dumps(dict(zip(names, ratios))))
  c.pruning.allocation, c.pruning.pattern = "pattern", str(path)
  workdir = str(tmp_path / "run")
  summary = protocols.run(c, workdir)
  assert summary["status"] == "completed"
  phase = architecture.final_phase_dir(workdir)
  with checkpointing.Checkpointer(os.path.join(phase, "checkpoints")) as ckpt:
    state = ckpt.restore("final")[0]
  masks = architecture.read_run(workdir, state).masks
  kept = {k: int(np.count_nonzero(m)) for k, m in weights.kernels(masks).items()}
  # Input 32 * 32 * 1 = 1024: round(0.5 * 1024 * 24), round(0.25 * 576) x 5,
  # round(0.75 * 240).
  assert kept == dict(zip(names, [12288] + [144] * 5 + [180]))
  assert architecture.sparsity_pattern(masks) == dict(zip(names, ratios))


def test_scratch_guided_sparsification_keeps_the_pruned_stage_ratios(
  tiny_fmnist, tmp_path
):
  c = tiny_protocol_config(tiny_fmnist, 24, str(tmp_path / "cache"))
  c.protocol, c.num_epochs = "scratch", 1
  c.scratch.budget, c.scratch.source = "E", "guided"
  workdir = str(tmp_path / "run")
  summary = protocols.run(c, workdir)
  assert summary["setup"] == "Scratch-E guided"
  with checkpointing.Checkpointer(
    os.path.join(workdir, "scratch", "checkpoints")
  ) as ckpt:
    state = ckpt.restore("final")[0]
  kept = {
    k: int(np.count_nonzero(m))
    for k, m in weights.kernels(architecture.read_run(workdir, state).masks).items()
  }
  # The global-magnitude mask of the same (cached) pretraining; an MLP's
  # layers are each their own stage, so guided keeps each layer's count.
  c.scratch.source = "pruned"
  found, _ = scratch.architecture_of(c, workdir)
  ref = {k: int(np.count_nonzero(m)) for k, m in weights.kernels(found.masks).items()}
  assert kept == ref and len(set(ref.values())) > 1
  # But placed at random on the new initialisation, not on the pruned mask.
  pruned_fc1 = np.asarray(weights.kernels(found.masks)["fc1"])
  guided_fc1 = np.asarray(
    weights.kernels(architecture.read_run(workdir, state).masks)["fc1"]
  )
  assert not np.array_equal(pruned_fc1, guided_fc1)


def test_unreadable_pattern_files_name_the_field(tmp_path):
  with pytest.raises(
    ValueError, match=r"pruning\.pattern: cannot read .*missing\.json"
  ):
    alloc.load_pattern(str(tmp_path / "missing.json"))
  broken = tmp_path / "broken.json"
  broken.write_text('{"head": 0.5')  # Torn file.
  with pytest.raises(ValueError, match=r"pruning\.pattern: .*broken\.json is not JSON"):
    alloc.load_pattern(str(broken))


def test_sparsity_pattern_keeps_fully_kept_prunable_layers():
  # At low sparsity a global threshold can leave a prunable layer whole: the
  # pattern must still name it (ratio 1.0), or allocation 'pattern' on the
  # same predicate rejects it as missing. Only the predicate tells such a
  # layer from an unprunable one, so it comes from `prunable`.
  scores, prunable = _tree()
  masks = {
    "stage0": {"conv": {"kernel": np.ones(10)}},  # Prunable, kept whole.
    "stage1": {"conv": {"kernel": np.array([1] * 15 + [0] * 15).reshape(5, 6)}},
    "head": {"kernel": np.array([1, 1, 0, 0]).reshape(2, 2), "bias": np.ones(2)},
  }
  pattern = architecture.sparsity_pattern(masks, prunable=prunable)
  assert pattern == {"stage0/conv": 1.0, "stage1/conv": 0.5, "head": 0.5}
  m = alloc.unstructured_masks(scores, prunable, 0.0, "pattern", pattern=pattern)
  assert int(m["stage0"]["conv"]["kernel"].sum()) == 10
  # An unprunable kernel is left out even when the mask thins it.
  prunable["head"]["kernel"] = False
  assert architecture.sparsity_pattern(masks, prunable=prunable) == {
    "stage0/conv": 1.0,
    "stage1/conv": 0.5,
  }
  guided = architecture.sparsity_pattern(
    masks, prunable=prunable, guided=True, model_name=None
  )
  assert guided == {"stage0/conv": 1.0, "stage1/conv": 0.5}
