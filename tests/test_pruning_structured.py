"""Structured pruning: surgery equivalence, selection rules, and the papers' numbers.

Counting conventions (``jaxprune.pruning.counting``), stated per test:
  * "conv+fc params": ``Counts.params`` (conv/dense kernels + biases, no BN);
  * "all params": ``Counts.total_params`` (also BN scale/bias; PyTorch's
    ``model.parameters()``);
  * FLOPs: conv + fc MACs (``Counts.macs``), ratios are the same for 2*MACs.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxprune import models, pruning
from jaxprune.models import densenet
from jaxprune.pruning import counting, presets, structured, surgery
from jaxprune.pruning import masks as masks_lib

pytestmark = pytest.mark.usefixtures("fast_compiles")

# DenseNet-40's structure (3 blocks of 12 concatenating layers, transitions)
# at widths of a few channels: the surgery equivalence does not depend on the
# widths, and the full-width net's compiles took two minutes of the suite.
NARROW_DENSENET40 = densenet.DenseNetWidths(5, ((2, 3) * 6,) * 3, (9, 10))

# (model, overrides, input shape for the forward pass, group set).
FAMILIES = [
  ("mlp7_relu", {}, (32, 32, 1), "all"),
  ("lenet5_relu", {}, (32, 32, 1), "all"),
  ("resnet20", {"shortcut": "A_stride_pad"}, (8, 8, 3), "all"),
  ("resnet20", {"shortcut": "A_avgpool_append"}, (8, 8, 3), "all"),
  ("resnet20", {"shortcut": "B_conv"}, (8, 8, 3), "all"),
  ("vgg11", {}, (32, 32, 3), "all"),
  ("preresnet56", {}, (8, 8, 3), "all"),
  ("resnet18", {}, (32, 32, 3), "all"),
  ("resnet18_cifar", {}, (8, 8, 3), "all"),
  ("wrn40_2", {}, (8, 8, 3), "all"),
  ("densenet40", {"widths": NARROW_DENSENET40}, (8, 8, 3), "all"),
]


def _perturbed(name, overrides, shape):
  model = models.create(name, **overrides)
  v = jax.jit(model.init, static_argnames="train")(
    jax.random.key(0), jnp.zeros((1, *shape)), train=False
  )
  # Random BN statistics and affine params so pruned channels' BN would
  # otherwise output a non-zero beta. NumPy noise: an eager jax.random call
  # per leaf compiles one program per leaf shape (most of DenseNet-40's case).
  rng = np.random.default_rng(1)
  v = jax.tree_util.tree_map(
    lambda x: jnp.asarray(x + 0.2 * rng.uniform(size=x.shape).astype(x.dtype)),
    jax.device_get(v),
  )
  return model, v["params"], v.get("batch_stats", {})


@pytest.mark.parametrize(("name", "overrides", "shape", "which"), FAMILIES)
def test_small_dense_equals_masked_large_for_every_criterion(
  name, overrides, shape, which
):
  model, params, stats = _perturbed(name, overrides, shape)
  groups = models.channel_groups(name, **overrides)
  x = jax.random.normal(jax.random.key(2), (2, *shape))
  grads = jax.tree_util.tree_map(
    lambda p: jnp.asarray(np.cos(np.asarray(p) * 7)), params
  )
  big = jax.jit(lambda v: model.apply(v, x, train=False))
  small_fn = {}
  has_bn = any(g.norms for g in groups if g.prunable)
  ratios = presets.ratios(groups, which=which, ratio=0.4)
  assert ratios, "no prunable groups"
  if name == "resnet20" and overrides["shortcut"] != "B_conv":
    # Option-A residual streams cannot be pruned.
    assert not any(g.endswith("residual") for g in ratios)
  # All criteria on two families; one (rotating) plus l1 on the others, to
  # keep the suite fast: the slicing code is criterion-independent.
  if (name, overrides.get("shortcut")) == ("resnet20", "B_conv"):
    criteria = (
      structured.WEIGHT_CRITERIA
    )  # The data criteria: test_pruning_data_scores.
  elif name == "preresnet56":  # Largest compile: one criterion.
    criteria = ("bn_scale",)
  else:
    idx = [f[0] for f in FAMILIES].index(name) + len(overrides.get("shortcut", ""))
    criteria = ("l1", structured.CRITERIA.names()[1 + idx % 4])
  for criterion in criteria:
    if criterion == "bn_scale" and not has_bn:
      with pytest.raises(ValueError, match="bn_scale"):
        structured.group_scores(groups, params, criterion)
      continue
    sc = structured.group_scores(
      groups, params, criterion, rng=jax.random.key(3), grads=grads
    )
    scored = {k: v for k, v in ratios.items() if k in sc}
    keep = structured.select_per_group(sc, scored, "keep_floor")
    mk = structured.channel_masks(groups, keep, params)
    want = big({"params": masks_lib.apply(params, mk), "batch_stats": stats})
    sd = surgery.shrink(name, params, stats, keep, **overrides)
    small = models.create(name, **{**overrides, "widths": sd.widths})
    fn = small_fn.setdefault(
      "f", jax.jit(lambda v, small=small: small.apply(v, x, train=False))
    )
    got = fn({"params": sd.params, "batch_stats": sd.batch_stats})
    scale = float(jnp.abs(want).max()) + 1e-6
    np.testing.assert_allclose(got / scale, want / scale, atol=1e-5)
    # Pruned channels really changed the output (not a vacuous comparison).
    assert keep and all(
      len(k) < by.size
      for k, by in zip(keep.values(), [{g.name: g for g in groups}[n] for n in keep])
    )


def test_l1_keeps_largest_filters_and_rounding_modes():
  params = {
    "fc0": {
      "kernel": jnp.asarray(np.diag([3.0, 1.0, 2.0, 0.5, 4.0]))[:, :5],
      "bias": jnp.zeros(5),
    },
  }
  g = [models.ChannelGroup("fc0", 5, (0,), (("fc0",),), (), (), True)]
  sc = structured.group_scores(g, params, "l1")
  np.testing.assert_allclose(sc["fc0"], [3, 1, 2, 0.5, 4])
  keep = structured.select_per_group(sc, {"fc0": 0.5}, "keep_floor")
  assert keep["fc0"].tolist() == [0, 4]  # int(5 * 0.5) = 2 kept.
  keep = structured.select_per_group(sc, {"fc0": 0.5}, "prune_ceil")
  assert keep["fc0"].tolist() == [0, 4]  # ceil(2.5) = 3 pruned.
  assert structured.keep_count(16, 0.3, "keep_floor") == 11  # int(11.2)
  assert structured.keep_count(16, 0.3, "prune_ceil") == 11  # 16 - ceil(4.8)
  assert structured.keep_count(10, 0.25, "keep_floor") == 7  # int(7.5)
  assert structured.keep_count(10, 0.25, "prune_ceil") == 7  # 10 - ceil(2.5)
  assert structured.keep_count(10, 0.35, "keep_floor") == 6  # int(6.5)
  assert structured.keep_count(10, 0.35, "prune_ceil") == 6  # 10 - ceil(3.5)
  assert structured.keep_count(4, 0.99, "keep_floor") == 1  # never empty


def test_random_filters_use_same_counts_as_l1():
  name = "resnet56"
  v = models.create(name).init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)), train=False)
  cfg = pruning.default_config()
  cfg.name, cfg.preset = "structured", "resnet56_b"
  l1 = pruning.prune(cfg, v["params"], v["batch_stats"], model_name=name)
  cfg.criterion = "random"
  rnd = pruning.prune(
    cfg, v["params"], v["batch_stats"], model_name=name, rng=jax.random.key(7)
  )
  assert rnd.widths == l1.widths
  assert any(
    not np.array_equal(a, rnd.keep[k]) for k, a in l1.keep.items() if k in rnd.keep
  )


def test_global_bn_threshold_is_slimming():
  name = "vgg11"
  _, params, _ = _perturbed(name, {}, (32, 32, 3))
  groups = models.channel_groups(name)
  sc = structured.group_scores(groups, params, "bn_scale")
  conv = [g.name for g in groups if g.prunable and g.norms]
  keep = structured.select_global(sc, conv, 0.4)
  allv = np.concatenate([sc[n] for n in conv])
  thr = np.sort(allv)[int(allv.size * 0.4)]
  for n in conv:  # Kept iff |gamma| >= the global threshold value.
    kept = np.zeros(sc[n].size, bool)
    kept[keep[n]] = True
    assert np.all(sc[n][kept] >= thr) and np.all(sc[n][~kept] < thr)
  assert sum(len(k) for k in keep.values()) == allv.size - int(allv.size * 0.4)


def _reductions(name, num_classes, sizes_or_ratios, rounding="keep_floor"):
  groups = models.channel_groups(name, num_classes)
  by = {g.name: g for g in groups}
  sizes = {
    g: (v if isinstance(v, int) else structured.keep_count(by[g].size, v, rounding))
    for g, v in sizes_or_ratios.items()
  }
  w = models.with_widths(name, models.default_widths(name), sizes)
  shape = models.input_shape(name)
  dense = counting.count(models.create(name, num_classes), shape)
  small = counting.count(models.create(name, num_classes, widths=w), shape)
  return dense, small


@pytest.mark.parametrize(
  ("preset", "params_red", "flops_red"),
  # Li et al. (PFEC) Table 1 / Rethinking Table 1 configurations.
  [("resnet56_b", 13.7, 27.6), ("resnet110_a", 2.3, 15.9), ("resnet110_b", 32.4, 38.6)],
)
def test_li_et_al_resnet_presets(preset, params_red, flops_red):
  # Convention: conv+fc params, conv+fc MACs; keep_floor rounding.
  name = preset.split("_")[0]
  ratios, _ = presets.preset(preset, models.channel_groups(name))
  d, s = _reductions(name, 10, ratios)
  assert 100 * (1 - s.params / d.params) == pytest.approx(params_red, abs=0.1)
  assert 100 * (1 - s.macs / d.macs) == pytest.approx(flops_red, abs=0.1)


def test_li_et_al_vgg16_a():
  # Convention: conv+fc params (64.0% fewer), conv+fc MACs (34.2% fewer).
  _, sizes = presets.preset("vgg16_a", models.channel_groups("vgg16"))
  d, s = _reductions("vgg16", 10, sizes)
  assert 100 * (1 - s.params / d.params) == pytest.approx(64.0, abs=0.1)
  assert 100 * (1 - s.macs / d.macs) == pytest.approx(34.2, abs=0.1)


def test_why_so_confusing_table6_resnet56():
  # Wang et al. 2023 Tab. 6: prune_ceil, first conv of every block; sparsity
  # over ALL params (conv + BN + fc = 853,018), speedup over conv+fc MACs.
  for pr, sparsity, speedup in (
    (0.3, 31.14, 1.45),
    (0.5, 49.82, 1.99),
    (0.7, 70.57, 3.59),
  ):
    ratios = presets.ratios(models.channel_groups("resnet56"), which="inner", ratio=pr)
    d, s = _reductions("resnet56", 10, ratios, "prune_ceil")
    assert d.total_params == 853_018
    assert 100 * (1 - s.total_params / d.total_params) == pytest.approx(
      sparsity, abs=0.011
    )
    assert d.macs / s.macs == pytest.approx(speedup, abs=0.005)


DI_TABLE5 = {  # Dynamical Isometry Tab. 5: PR -> (params red. %, FLOPs red. %).
  "resnet18": {
    0.1: (9.56, 9.58),
    0.3: (28.32, 28.18),
    0.5: (47.03, 46.20),
    0.7: (65.99, 64.93),
    0.9: (84.75, 83.52),
    0.95: (89.51, 88.03),
  },
  "resnet34": {
    0.1: (9.84, 9.92),
    0.3: (29.15, 29.26),
    0.5: (48.41, 48.12),
    0.7: (67.95, 67.63),
    0.9: (87.26, 86.97),
    0.95: (92.16, 91.69),
  },
}


@pytest.mark.parametrize("name", sorted(DI_TABLE5))
def test_dynamical_isometry_table5(name):
  # Convention: conv+fc params (no BN), conv+fc MACs, 1000 classes, 224x224.
  groups = models.channel_groups(name, 1000)
  for pr, (p_red, f_red) in DI_TABLE5[name].items():
    d, s = _reductions(name, 1000, presets.ratios(groups, which="inner", ratio=pr))
    assert 100 * (1 - s.params / d.params) == pytest.approx(p_red, abs=0.006)
    assert 100 * (1 - s.macs / d.macs) == pytest.approx(f_red, abs=0.006)


def test_why_so_confusing_table4_resnet34_imagenet100():
  # Wang et al. 2023 Tab. 4 (ImageNet100, 100 classes): "FLOPs" here are MACs
  # (dense 3.66G), conv+fc; speedup = dense / pruned MACs.
  table = {
    0.1: (3.30, 1.11),
    0.3: (2.59, 1.41),
    0.5: (1.90, 1.93),
    0.7: (1.19, 3.09),
    0.9: (0.48, 7.68),
    0.95: (0.30, 12.06),
  }
  groups = models.channel_groups("resnet34", 100)
  for pr, (gflops, speedup) in table.items():
    d, s = _reductions("resnet34", 100, presets.ratios(groups, which="inner", ratio=pr))
    assert round(d.macs / 1e9, 2) == 3.66
    assert round(s.macs / 1e9, 2) == gflops
    assert round(d.macs / s.macs, 2) == speedup


@pytest.mark.parametrize(
  ("name", "preset", "speedup"),
  # Li et al.: ResNet-56-B 27.6 % and VGG-16-A 34.2 % fewer FLOPs.
  [("resnet56", "resnet56_b", 1.38), ("vgg16", "vgg16_a", 1.52)],
)
def test_masked_structured_pruning_counts_like_surgery(name, preset, speedup):
  # surgery=False must count the next layer's rows for removed channels as
  # zero: the masked model's nonzero counts equal the small-dense model's.
  shape = models.input_shape(name)
  net = models.create(name)
  v = net.init(jax.random.key(0), jnp.zeros((1, *shape)), train=False)
  cfg = pruning.default_config()
  cfg.name, cfg.preset = "structured", preset
  small = pruning.prune(cfg, v["params"], v.get("batch_stats"), model_name=name)
  cfg.surgery = False
  masked = pruning.prune(cfg, v["params"], v.get("batch_stats"), model_name=name)
  dense = counting.count(net, shape)
  compact = counting.count(models.create(name, widths=small.widths), shape)
  counted = counting.count(net, shape, v, masked.masks)
  assert dense.macs / compact.macs == pytest.approx(speedup, abs=0.005)
  assert counted.theoretical_speedup == pytest.approx(dense.macs / compact.macs)
  assert counted.total_nonzero_params == compact.total_params


def test_keep_floor_warns_when_it_prunes_more_than_asked():
  # issue 23.9: int(100 * (1 - 0.8)) is 19 in floating point, not 20.
  scores = {"g": np.arange(100.0)}
  with pytest.warns(UserWarning, match="19 of 100 kept at ratio 0.8.*prune_ceil"):
    keep = structured.select_per_group(scores, {"g": 0.8}, "keep_floor")
  assert len(keep["g"]) == 19
  with warnings.catch_warnings():
    warnings.simplefilter("error")
    assert len(structured.select_per_group(scores, {"g": 0.8}, "prune_ceil")["g"]) == 20
    assert len(structured.select_per_group(scores, {"g": 0.5}, "keep_floor")["g"]) == 50
    # 64 * 0.9 = 57.6 floors to 57 by design: no warning.
    assert (
      len(
        structured.select_per_group({"g": np.arange(64.0)}, {"g": 0.1}, "keep_floor")[
          "g"
        ]
      )
      == 57
    )
