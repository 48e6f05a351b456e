"""Transferred Guided Sparsification (Liu et al. 2019 Fig. 6 right):
`analysis.transfer`'s stage mapping against hand computations, the `scratch`
protocol's unstructured `transferred` source end to end, and its errors."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from step_helpers import tiny_protocol_config

from jaxprune import io_utils, models, protocols, pruning
from jaxprune.analysis import architecture, transfer, weights
from jaxprune.protocols import scratch
from jaxprune.pruning import allocation as alloc
from jaxprune.pruning import masks as masks_lib
from jaxprune.results import sweeps
from jaxprune.train import checkpointing

# VGG-16 (`l1` classifier) layers: (kept, size) chosen so every stage has a
# known ratio, with unequal layer sizes where the average must weight them.
SOURCE = {
  "conv0": (3, 4),  # Stage 1: (3 + 5) / (4 + 12) = 1/2
  "conv1": (5, 12),
  "conv2": (2, 8),  # Stage 2: 2 / 16 = 1/8
  "conv3": (0, 8),
  "conv4": (10, 10),  # Stage 3: 21 / 30 = 0.7
  "conv5": (10, 10),
  "conv6": (1, 10),
  "conv7": (4, 20),  # Stage 4: 12 / 60 = 0.2
  "conv8": (4, 20),
  "conv9": (4, 20),
  "conv10": (1, 20),  # Stage 5: 4 / 60 = 1/15
  "conv11": (1, 20),
  "conv12": (2, 20),
  "fc0": (3, 4),  # Its own stage; VGG-19 (`slimming` head) has no fc0.
  "head": (4, 10),  # Its own stage: matched by name.
}
STAGE = {1: 1 / 2, 2: 1 / 8, 3: 0.7, 4: 0.2, 5: 1 / 15}
# VGG-19: stages of 2 / 2 / 4 / 4 / 4 convs.
VGG19_STAGE = [1, 1, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5]
TARGET_SIZES = {
  **{f"conv{i}": 10 for i in range(16)},
  "conv0": 9,
  "conv2": 12,
  "conv8": 7,
  "conv12": 30,
  **{f"conv{i}": 15 for i in (13, 14, 15)},
  "head": 25,
}
# round(ratio * size), half up, by hand: 4.5 -> 5, 1.5 -> 2, 1.25 -> 1,
# 0.7 * 10 = 7, 1.4 -> 1, 0.2 * 10 = 2, 30 / 15 = 2, 15 / 15 = 1, 0.4 * 25 = 10.
TARGET_KEPT = {
  "conv0": 5,
  "conv1": 5,
  "conv2": 2,
  "conv3": 1,
  **{f"conv{i}": 7 for i in range(4, 8)},
  "conv8": 1,
  **{f"conv{i}": 2 for i in range(9, 12)},
  "conv12": 2,
  **{f"conv{i}": 1 for i in range(13, 16)},
  "head": 10,
}


def _source_tree():
  masks, prunable = {}, {}
  for layer, (kept, size) in SOURCE.items():
    masks[layer] = {"kernel": np.array([1.0] * kept + [0.0] * (size - kept))}
    prunable[layer] = {"kernel": True}
  # Unprunable leaves never enter the ratios, however their masks look.
  masks["conv0"]["bias"], prunable["conv0"]["bias"] = np.zeros(4), False
  masks["bn0"], prunable["bn0"] = {"scale": np.zeros(3)}, {"scale": False}
  return masks, prunable


def test_stage_ratios_and_transferred_pattern_by_hand():
  masks, prunable = _source_tree()
  counts = architecture.kept_counts(masks, prunable)
  assert counts == SOURCE
  ratios = transfer.stage_ratios(counts, architecture.param_stage("vgg16"))
  assert ratios == pytest.approx(
    {**{f"Stage {s}": r for s, r in STAGE.items()}, "fc0": 0.75, "head": 0.4}
  )
  layers = list(TARGET_SIZES)
  pattern = transfer.transfer_pattern(masks, prunable, "vgg16", layers, "vgg19")
  expected = {f"conv{i}": STAGE[s] for i, s in enumerate(VGG19_STAGE)}
  assert pattern == pytest.approx({**expected, "head": 0.4})
  # Counts as allocation 'pattern' rounds them on the target's tensors.
  scores = {k: {"kernel": jnp.arange(float(n))} for k, n in TARGET_SIZES.items()}
  flags = {k: {"kernel": True} for k in TARGET_SIZES}
  m = alloc.unstructured_masks(scores, flags, 0.0, "pattern", pattern=pattern)
  kept = {k: int(m[k]["kernel"].sum()) for k in TARGET_SIZES}
  assert kept == TARGET_KEPT


def test_real_vgg_layers_map_stage_by_stage():
  # The registered nets' own parameter names and the run's predicate.
  def shapes(name, classes, **kw):
    model = models.create(name, classes, **kw)
    x = jnp.zeros((1, 32, 32, 3))
    init = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), x, train=False))
    return init["params"]

  cfg = pruning.default_config()
  src = shapes("vgg16", 10, classifier="l1")
  pred = pruning.predicate(cfg, "vgg16", 10, classifier="l1")
  src_prunable = masks_lib.prunable_tree(src, pred)
  stage = architecture.param_stage("vgg16")
  keep = {"Stage 1": 1.0, "Stage 2": 0.5, "Stage 3": 0.25, "Stage 4": 0.1}
  keep |= {"Stage 5": 0.05, "fc0": 0.3, "head": 0.6}

  def mask(path, leaf):
    # The first round(r * n) entries kept: each stage's ratio exactly.
    n = int(np.prod(leaf.shape))
    r = keep.get(stage(alloc.layer_name(path)), 1.0)
    flat = np.arange(n) < round(r * n)
    return flat.reshape(leaf.shape).astype(np.float32)

  src_masks = masks_lib.map_with_names(mask, src)
  tgt = shapes("vgg19", 100)
  tgt_prunable = masks_lib.prunable_tree(tgt, pruning.predicate(cfg, "vgg19", 100))
  layers = transfer.prunable_layers(tgt_prunable)
  assert layers == sorted(layers) and len(layers) == 17  # 16 convs + head.
  pattern = transfer.transfer_pattern(src_masks, src_prunable, "vgg16", layers, "vgg19")
  want = {f"conv{i}": keep[f"Stage {s}"] for i, s in enumerate(VGG19_STAGE)}
  assert pattern == pytest.approx({**want, "head": 0.6}, abs=1e-6)


def test_missing_target_stage_names_both_nets():
  with pytest.raises(
    ValueError, match=r"'vgg19' has stage\(s\) \['Stage 5'\] that 'vgg16' lacks"
  ):
    transfer.transferred_pattern(
      {f"Stage {s}": 0.5 for s in range(1, 5)},
      ["conv0", "conv15"],
      architecture.param_stage("vgg19"),
      source="'vgg16'",
      target="'vgg19'",
    )


def _kept(masks):
  return {k: int(np.count_nonzero(m)) for k, m in weights.kernels(masks).items()}


def test_transferred_scratch_run_trains_the_source_stage_ratios(tiny_fmnist, tmp_path):
  c = tiny_protocol_config(tiny_fmnist, 24, str(tmp_path / "cache"))
  c.protocol, c.num_epochs = "scratch", 1
  c.scratch.budget, c.scratch.source = "E", "transferred"
  c.scratch.transfer_model = "mlp7_linear"  # Onto this run's mlp7_relu.
  workdir = str(tmp_path / "run")
  summary = protocols.run(c, workdir)
  assert summary["status"] == "completed"
  assert summary["setup"] == "Scratch-E transferred"
  with checkpointing.Checkpointer(
    os.path.join(workdir, "scratch", "checkpoints")
  ) as ckpt:
    state = ckpt.restore("final")[0]
  run = architecture.read_run(workdir, state)
  assert run.model_name == "mlp7_relu"
  # The source's own pruning, from the (cached) pretraining of mlp7_linear.
  src = scratch.transfer_source(c)
  found, dense = scratch.architecture_of(src, workdir)
  ratios = {k: kept / n for k, (kept, n) in _counts(found).items()}
  assert len(set(ratios.values())) > 1  # A non-uniform pattern to carry over.
  sizes = {k: int(np.size(m)) for k, m in weights.kernels(run.masks).items()}
  # An MLP's layers are each their own stage: each keeps its source ratio,
  # rounded half up on this net's layer.
  want = {k: int(np.floor(ratios[k] * n + 0.5)) for k, n in sizes.items()}
  assert _kept(run.masks) == want
  # Placed at random on this net, not the source's mask copied over.
  src_fc1 = np.asarray(weights.kernels(found.masks)["fc1"])
  assert not np.array_equal(src_fc1, np.asarray(weights.kernels(run.masks)["fc1"]))
  # The accuracy beside it is the source's, under its own key.
  source_summary = io_utils.read_json(os.path.join(dense.workdir, "summary.json"))
  assert summary["source_workdir"] == dense.workdir
  assert summary["source/test/accuracy"] == source_summary["test/accuracy"]
  assert summary["dense/test/accuracy"] is None and summary["dense_workdir"] is None


def _counts(res):
  return architecture.kept_counts(res.masks, res.prunable)


def test_transferred_source_fields_are_checked(tiny_fmnist, tmp_path):
  c = tiny_protocol_config(tiny_fmnist, 24, str(tmp_path / "cache"))
  c.protocol = "scratch"
  c.scratch.source = "transferred"
  with pytest.raises(
    ValueError, match=r"needs scratch\.transfer_model.*one of .*vgg16"
  ):
    protocols.validate(c)
  c.scratch.transfer_model = "vgg17"
  with pytest.raises(ValueError, match=r"scratch\.transfer_model.*vgg16"):
    protocols.validate(c)
  # A registered net whose stages the analysis does not know.
  c.scratch.transfer_model = "lenet5_relu"
  with pytest.raises(
    ValueError,
    match=r"scratch\.transfer_model='lenet5_relu'.*knows the stages of mlp7_\*",
  ):
    protocols.validate(c)
  c.scratch.transfer_model = "mlp7_linear"
  protocols.validate(c)
  c.scratch.source = "transfered"
  with pytest.raises(ValueError, match=r"scratch\.source.*'transferred'"):
    protocols.validate(c)


def test_guided_sparsification_config_has_the_transferred_curve():
  module = sweeps.load_sweep_module("configs/liu2019/guided_sparsification.py")
  points = [p for p in module.get_sweep() if p.get("scratch.source") == "transferred"]
  # Fig. 6 right's fourth curve: every sparsity of the file, 5 seeds.
  assert sorted({(p["pruning.sparsity"], p["seed"]) for p in points}) == [
    (s, k) for s in module.SPARSITIES for k in range(5)
  ]
  for p in points:
    assert (p["model.name"], p["data.name"]) == ("vgg19", "cifar100")
    assert (p["scratch.transfer_model"], p["scratch.transfer_data"]) == (
      "vgg16",
      "cifar10",
    )
  # Its source is the very VGG-16 / CIFAR-10 config the Fig. 3 points prune.
  base = module.get_config()
  _, config, _ = sweeps.expand(base, points[:1])[0]
  protocols.validate(config)
  src = scratch.transfer_source(config)
  vgg16 = sweeps.expand(
    base, [{"pruning.sparsity": points[0]["pruning.sparsity"], "seed": 0}]
  )[0][1]
  assert src.model.to_dict() == vgg16.model.to_dict()
  assert src.data.to_dict() == vgg16.data.to_dict()
  assert src.pruning.to_dict() == vgg16.pruning.to_dict()
