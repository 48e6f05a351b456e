"""Weight histograms, kept-width tables, mask patterns and figures (Rethinking App. F-G)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from jaxprune import analysis, models
from jaxprune.analysis import plots, weights

# Rethinking Table 7: VGG-16 channels before / after Network Slimming (60%),
# mean and std over 5 runs; "Total 4224 -> 1689.2".
TABLE7 = {
  "1": (64, 39.0, 3.7),
  "2": (64, 64.0, 0.0),
  "3": (128, 127.8, 0.4),
  "4": (128, 128.0, 0.0),
  "5": (256, 255.0, 1.0),
  "6": (256, 250.5, 0.5),
  "7": (256, 226.0, 2.5),
  "8": (512, 217.3, 6.6),
  "9": (512, 120.0, 4.4),
  "10": (512, 63.0, 1.9),
  "11": (512, 47.8, 2.9),
  "12": (512, 62.0, 3.4),
  "13": (512, 88.8, 3.1),
}


def test_width_table_reproduces_table7_totals():
  original = {layer: w for layer, (w, _, _) in TABLE7.items()}
  # Two synthetic runs per layer with the table's mean and std (mean +- std).
  runs = [
    {layer: m - s for layer, (_, m, s) in TABLE7.items()},
    {layer: m + s for layer, (_, m, s) in TABLE7.items()},
  ]
  rows = analysis.width_table(original, runs)
  by_layer = {r["layer"]: r for r in rows}
  for layer, (width, mean, std) in TABLE7.items():
    assert by_layer[layer]["width"] == width
    assert by_layer[layer]["kept"] == pytest.approx(mean)
    assert by_layer[layer]["kept_std"] == pytest.approx(std)
  assert by_layer["Total"]["width"] == 4224
  assert by_layer["Total"]["kept"] == pytest.approx(1689.2)
  text = weights.width_table_markdown(rows)
  assert "| 8 | 512 | 217.3 ± 6.6 | 0.424 |" in text
  assert "| Total | 4224 | 1689.2" in text


def test_layer_widths_and_stage_table_for_a_pruned_resnet56():
  n = 9
  original = weights.layer_widths("resnet56", models.default_widths("resnet56"))
  assert len(original) == 3 + 27 and original["stage2_block8/conv1"] == 64
  # Li et al. ResNet-56-B style: inner widths of stage s pruned by ratio r_s.
  pruned_widths = models.ResNetWidths(
    (16, 32, 64), ((16 - 2,) * n, (32 - 8,) * n, (64 - 32,) * n)
  )
  pruned = weights.layer_widths("resnet56", pruned_widths)
  table = analysis.stage_keep_table(original, {"B": pruned})
  # Per stage: (9 inner + 1 residual width) kept / original.
  assert table["Stage 1"]["B"] == pytest.approx((9 * 14 + 16) / (10 * 16))
  assert table["Stage 2"]["B"] == pytest.approx((9 * 24 + 32) / (10 * 32))
  assert table["Stage 3"]["B"] == pytest.approx((9 * 32 + 64) / (10 * 64))
  assert "| Stage 3 | 0.550 |" in weights.stage_table_markdown(table)
  # From params too (read_widths) and for the MNIST nets.
  shapes = {"conv0": (5, 5, 1, 3), "conv1": (5, 5, 3, 8), "conv2": (5, 5, 8, 60)}
  shapes |= {"fc0": (60, 40), "head": (40, 10)}
  params = {
    k: {"kernel": np.zeros(v), "bias": np.zeros(v[-1])} for k, v in shapes.items()
  }
  assert weights.layer_widths("lenet5_relu", params) == {
    "conv0": 3,
    "conv1": 8,
    "conv2": 60,
    "fc0": 40,
  }
  assert list(weights.layer_widths("mlp7_linear", (5,) * 6)) == [
    f"fc{i}" for i in range(6)
  ]


def _masks_with_position_pattern(keep_prob, rng):
  """A 2-stage conv 'masks' tree where stage s keeps position (i, j) w.p. p[s][i, j]."""
  tree = {}
  for s, p in enumerate(keep_prob):
    for b in range(2):
      shape = (3, 3, 16, 32)
      tree[f"stage{s}_block{b}"] = {
        "conv1": {
          "kernel": (rng.random(shape) < p[:, :, None, None]).astype(np.float32)
        }
      }
  tree["head"] = {"kernel": np.ones((32, 10), np.float32)}
  return tree


def test_kernel_position_keep_recovers_the_pattern():
  """Tables 19-20 / Fig. 4: mean keep probability of each 3x3 position per stage."""
  rng = np.random.default_rng(0)
  pattern = [np.full((3, 3), 0.9), np.linspace(0.1, 0.9, 9).reshape(3, 3)]
  masks = _masks_with_position_pattern(pattern, rng)
  got = analysis.kernel_position_keep(masks)
  assert sorted(got) == ["Stage 1", "Stage 2"]
  for stage, p in zip(("Stage 1", "Stage 2"), pattern):
    assert got[stage].shape == (3, 3)
    np.testing.assert_allclose(got[stage], p, atol=0.03)  # 1024 draws/position.
  fractions = analysis.kept_fractions(masks)
  assert fractions["head"] == 1.0
  assert fractions["stage0_block0/conv1"] == pytest.approx(0.9, abs=0.01)


def test_weight_histograms_share_edges_and_drop_masked_weights():
  rng = np.random.default_rng(0)
  dense = {
    "conv": {"kernel": rng.normal(0, 1, (3, 3, 8, 8))},
    "fc": {"kernel": 5 + rng.normal(0, 1, (8, 4))},
  }
  masked = {
    "conv": {"kernel": dense["conv"]["kernel"] * (np.abs(dense["conv"]["kernel"]) > 1)}
  }
  hist = analysis.weight_histograms({"dense": dense, "fine-tuned": masked}, bins=20)
  edges = hist["edges"]
  assert len(edges) == 21 and edges[0] == -edges[-1]
  assert hist["num_weights"]["dense"] == 576  # conv kernels only: 3*3*8*8.
  kept = int(np.sum(np.abs(dense["conv"]["kernel"]) > 1))
  assert hist["num_weights"]["fine-tuned"] == kept
  assert hist["counts"]["fine-tuned"].sum() == kept
  for density in hist["density"].values():
    assert np.sum(density * np.diff(edges)) == pytest.approx(1.0)
  # Fig. 8's contrast: the pruned model has no near-zero weights left.
  assert weights.near_zero_fraction(masked, 0.5) == 0.0
  assert weights.near_zero_fraction(dense, 0.5) == pytest.approx(
    np.mean(np.abs(dense["conv"]["kernel"]) < 0.5)
  )
  assert weights.weight_values(dense, kind="dense").min() > 0  # The +5 shift.


def test_figures_are_written_atomically(tmp_path):
  rng = np.random.default_rng(0)
  tree = {"c": {"kernel": rng.normal(size=(3, 3, 4, 4))}}
  figs = {
    "hist.png": lambda p: plots.plot_weight_histograms(
      analysis.weight_histograms({"a": tree}), p
    ),
    "ratio.png": lambda p: plots.plot_jsv_vs_ratio(
      {"MLP-7": ([0, 0.5], [1.0, 0.5])}, p
    ),
    "curves.png": lambda p: plots.plot_training_curves(
      {"LR 0.01": ([0, 1, 2], [0.5, 0.8, 0.9])}, {"LR 0.01": ([1, 2], [0.8, 0.9])}, p
    ),
    "widths.png": lambda p: plots.plot_widths(
      analysis.width_table({"fc0": 10, "fc1": 10}, {"fc0": 5, "fc1": 2}), p
    ),
  }
  out = tmp_path / "figs"
  for name, draw in figs.items():
    fig = draw(str(out / name))
    assert fig.axes
    with open(out / name, "rb") as f:
      assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  assert sorted(os.listdir(out)) == sorted(figs)  # No temporary files left.
