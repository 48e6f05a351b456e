"""Pruning as architecture search (Rethinking Sec. 5): patterns, guided and
transferred widths against hand computations, and `configs/liu2019/
arch_search.py`'s smoke point end to end on mock data."""

from __future__ import annotations

import fractions
import itertools
import os

import jax
import numpy as np
import pytest
from step_helpers import tiny_protocol_config
from test_config_smoke_runs import _separable_split

from jaxprune import config_args, io_utils, models, protocols
from jaxprune.analysis import architecture, plots, weights
from jaxprune.data import datasets
from jaxprune.protocols import scratch
from jaxprune.results import sweeps
from jaxprune.train import checkpointing

pytestmark = pytest.mark.usefixtures("fast_compiles")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SLIM = {"classifier": "slimming"}  # Network slimming's VGGs (one Linear head).
# Rethinking Table 7: VGG-16 after slimming 60 % of the channels (run means, rounded).
TABLE7 = (39, 64, 128, 128, 255, 250, 226, 217, 120, 63, 48, 62, 89)


def test_kept_channel_and_stage_ratios_of_table7():
  ratios = architecture.kept_channel_ratios("vgg16", TABLE7, **SLIM)
  assert ratios["conv0"] == 39 / 64 and ratios["conv1"] == 1.0
  assert ratios["conv7"] == 217 / 512 and ratios["conv12"] == 89 / 512
  stages = architecture.stage_channel_ratios("vgg16", TABLE7, **SLIM)
  # Stages are the convs between poolings: 2, 2, 3, 3, 3 of VGG-16.
  assert stages == pytest.approx(
    {
      "Stage 1": (39 + 64) / 128,
      "Stage 2": 1.0,
      "Stage 3": (255 + 250 + 226) / 768,
      "Stage 4": (217 + 120 + 63) / 1536,
      "Stage 5": (48 + 62 + 89) / 1536,
    }
  )


def test_guided_widths_are_rounded_stage_means():
  got = architecture.guided_widths("vgg16", TABLE7, **SLIM)
  # Stage means by hand: 103/2 = 51.5 -> 52 (tie to even), 731/3 = 243.7,
  # 400/3 = 133.3, 199/3 = 66.3.
  assert got == (52, 52, 128, 128, 244, 244, 244, 133, 133, 133, 66, 66, 66)
  # A tie that rounds down (12.5 -> 12), and the MLP's one stage.
  assert architecture.guided_widths("mlp7_relu", (12, 13) * 3) == (12,) * 6
  # ResNets: blocks averaged per stage, the residual widths kept.
  w = models.ResNetWidths((16, 32, 48), ((10, 12, 14), (20, 21, 22), (40, 50, 60)))
  got = architecture.guided_widths("resnet20", w, shortcut="B_conv")
  assert got == models.ResNetWidths((16, 32, 48), ((12,) * 3, (21,) * 3, (50,) * 3))
  # Against an explicit unpruned base (a run's `model.widths`), at least 1.
  assert (
    architecture.guided_widths("mlp7_relu", (1, 2) * 3, widths=(64,) * 6) == (2,) * 6
  )
  assert (
    architecture.guided_widths("mlp7_relu", (1,) * 6, widths=(1000,) * 6) == (1,) * 6
  )


def test_transferred_widths_by_hand():
  # VGG-16 (2, 2, 3, 3, 3 convs) -> VGG-19 (2, 2, 4, 4, 4): stage ratios x widths.
  got = architecture.transferred_widths("vgg16", TABLE7, "vgg19", source_overrides=SLIM)
  assert got == (52, 52, 128, 128, *[244] * 4, *[133] * 4, *[66] * 4)
  # ResNet-20 -> ResNet-32: inner ratios 36/48, 63/96, 150/192 of 16, 32, 64.
  w = models.ResNetWidths((16, 32, 64), ((10, 12, 14), (20, 21, 22), (40, 50, 60)))
  got = architecture.transferred_widths("resnet20", w, "resnet32")
  assert got.blocks == ((12,) * 5, (21,) * 5, (50,) * 5)
  assert architecture.widths_from_stage_ratios(
    "vgg11", {f"Stage {s}": 0.5 for s in range(1, 6)}
  ) == (32, 64, 128, 128, 256, 256, 256, 256)
  with pytest.raises(ValueError, match="different families"):
    architecture.transferred_widths("vgg16", TABLE7, "resnet20", source_overrides=SLIM)
  with pytest.raises(ValueError, match=r"no entry for stage\(s\) \['Stage 5'\]"):
    architecture.widths_from_stage_ratios("vgg11", {f"Stage {s}": 0.5 for s in "1234"})
  with pytest.raises(ValueError, match="knows the stages of"):
    architecture.guided_widths("densenet40", None)


def test_kept_weight_ratios_of_a_hand_built_mask():
  def kernel(shape, zeros):
    m = np.ones(shape, np.float32)
    m.reshape(-1)[:zeros] = 0
    return {"kernel": m}

  masks = {
    "stem_conv": kernel((3, 3, 3, 4), 0),  # 108 kept of 108
    "stage0_block0": {"conv1": kernel((3, 3, 4, 4), 36)},  # 108 / 144
    "stage1_block0": {"conv1": kernel((3, 3, 4, 8), 216)},  # 72 / 288
    "stage1_block1": {"conv1": kernel((3, 3, 8, 8), 0)},  # 576 / 576
    "head": kernel((8, 10), 40),  # 40 / 80
  }
  ratios = architecture.kept_weight_ratios(masks)
  assert ratios == {
    "stem_conv": 1.0,
    "stage0_block0/conv1": 0.75,
    "stage1_block0/conv1": 0.25,
    "stage1_block1/conv1": 1.0,
    "head": 0.5,
  }
  assert architecture.stage_weight_ratios(masks, model_name="resnet20") == {
    "stem_conv": 1.0,
    "Stage 1": 0.75,
    "Stage 2": (72 + 576) / (288 + 576),
  }
  # VGG-11's convs by pooling stage (1, 1, 2, 2, 2 convs): conv2 and conv3 share one.
  vgg = {f"conv{i}": kernel((3, 3, 2, 2), 9 * i) for i in range(4)}
  assert architecture.stage_weight_ratios(vgg, model_name="vgg11") == {
    "Stage 1": 1.0,
    "Stage 2": 27 / 36,
    "Stage 3": (18 + 9) / 72,
  }
  position = weights.kernel_position_keep(
    vgg, stage_of=architecture.param_stage("vgg11")
  )
  assert sorted(position) == ["Stage 1", "Stage 2", "Stage 3"]


def _vgg_slimming_params(widths, classes=10) -> int:
  """Bias-free 3x3 convs + BN (scale, bias) per layer, then the Linear head."""
  sizes = [3, *widths]
  convs = sum(9 * a * b + 2 * b for a, b in itertools.pairwise(sizes))
  return convs + widths[-1] * classes + classes


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
  """`arch_search.py:smoke` (guided VGG-16 at 1/8 width) on dark-vs-bright images."""
  root = tmp_path_factory.mktemp("arch")
  module = config_args.load_module(
    os.path.join(ROOT, "configs", "liu2019", "arch_search.py"), ("get_config",)
  )
  base, sweep = module.get_config("smoke"), module.get_sweep("smoke")
  with base.unlocked():
    base.data.data_dir, base.cache_dir = str(root / "tfds"), str(root / "cache")
    # CPU time: 16x16 inputs (VGG pools to 1x1) and 4 steps per epoch.
    base.data.image_size, base.data.train_limit = (16, 16), 128
  ((_, config, _),) = sweeps.expand(base, sweep)
  mp = pytest.MonkeyPatch()
  mp.setattr(datasets, "open_split", _separable_split)
  mp.setattr(datasets, "prepare", lambda *args, **kwargs: None)
  workdir = str(root / "run")
  try:
    summary = protocols.run(config, workdir)
    found, _ = scratch.architecture_of(config, workdir)  # The cached slimming.
  finally:
    mp.undo()
  return config, workdir, summary, found


def test_smoke_point_trains_the_guided_architecture(smoke_run, tmp_path):
  config, workdir, summary, found = smoke_run
  assert summary["status"] == "completed"
  assert config.scratch.source == "guided"
  overrides = {"classifier": "slimming", "width_multiplier": 0.125}
  guided = architecture.guided_widths("vgg16", found.widths, **overrides)
  assert tuple(summary["widths"]) == guided
  # By hand: the mean slimmed width of each pooling stage (2, 2, 3, 3, 3 convs
  # of equal unpruned width), rounded half to even.
  bounds = ((0, 2), (2, 4), (4, 7), (7, 10), (10, 13))
  hand = [
    w
    for a, b in bounds
    for w in [round(fractions.Fraction(sum(found.widths[a:b]), b - a))] * (b - a)
  ]
  assert list(guided) == hand
  # The slimmed architecture came from sparsity training (s * sum|gamma|).
  dense = io_utils.read_json(os.path.join(summary["dense_workdir"], "config.json"))
  assert dense["pruning"]["slimming_strength"] == 1e-4
  # The from-scratch net has exactly the parameters its widths imply.
  phase = architecture.final_phase_dir(workdir)
  assert phase == os.path.join(workdir, "scratch")
  with checkpointing.Checkpointer(os.path.join(phase, "checkpoints")) as ckpt:
    state = ckpt.restore("final")[0]
  run = architecture.read_run(workdir, state)
  assert run.widths == guided
  count = sum(int(np.size(x)) for x in jax.tree_util.tree_leaves(run.params))
  assert count == _vgg_slimming_params(guided)
  ratios = architecture.stage_channel_ratios("vgg16", run.widths, **run.overrides)
  series = {"guided": architecture.kept_channel_ratios("vgg16", guided, **overrides)}
  plots.plot_kept_ratios(series, str(tmp_path / "kept.png"))
  plots.plot_kernel_patterns({"Stage 1": np.eye(3)}, str(tmp_path / "fig4.png"))
  assert set(ratios) == {f"Stage {s}" for s in range(1, 6)}
  assert os.path.getsize(tmp_path / "kept.png") > 0
  assert os.path.getsize(tmp_path / "fig4.png") > 0


def test_transferred_source_trains_the_source_pattern(tiny_fmnist, tmp_path):
  c = tiny_protocol_config(tiny_fmnist, 24, str(tmp_path / "cache"))
  c.protocol, c.num_epochs = "scratch", 1
  c.pruning.name, c.pruning.criterion = "structured", "l1"
  c.pruning.groups, c.pruning.group_allocation, c.pruning.ratio = "all", "global", 0.5
  c.scratch.budget, c.scratch.source = "E", "transferred"
  c.scratch.transfer_model = "mlp7_linear"
  summary = protocols.run(c, str(tmp_path / "run"))
  src = scratch.transfer_source(c)
  assert src.model.name == "mlp7_linear" and src.data.name == c.data.name
  found, _ = scratch.architecture_of(src, str(tmp_path / "run"))
  # One stage: every hidden layer gets round(kept / all hidden units x 24).
  width = round(sum(found.widths) / (6 * 24) * 24)
  assert tuple(summary["widths"]) == (width,) * 6
  # The dense accuracy beside it is mlp7_linear's, so it is not called dense.
  assert summary["source/test/accuracy"] is not None
  assert summary["dense/test/accuracy"] is None
  c.scratch.transfer_model = ""
  with pytest.raises(ValueError, match=r"needs scratch\.transfer_model"):
    protocols.validate(c)
