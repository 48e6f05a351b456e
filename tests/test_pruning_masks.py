"""Unstructured pruning: masks, predicate, allocations, schedules, rewinding.

Every expected value is a hand computation on tiny trees or an independent
numpy computation.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxprune import models, pruning
from jaxprune.pruning import allocation, masks, rewind, schedules, scores

pytestmark = pytest.mark.usefixtures("fast_compiles")


def _tree():
  rng = np.random.default_rng(0)
  return {
    "conv0": {"kernel": jnp.asarray(rng.normal(size=(3, 3, 2, 4)), jnp.float32)},
    "fc0": {
      "kernel": jnp.asarray(rng.normal(size=(40, 30)), jnp.float32),
      "bias": jnp.ones(30),
    },
    "bn": {"scale": jnp.ones(4), "bias": jnp.zeros(4)},
    "head": {"kernel": jnp.asarray(rng.normal(size=(30, 10)), jnp.float32)},
  }


def test_predicate_options():
  t = _tree()
  names = lambda pred: sorted(  # noqa: E731
    masks.path_str(n)
    for n, p in masks.leaves_with_names(masks.prunable_tree(t, pred))
    if p
  )
  assert names(masks.Prunable()) == ["conv0/kernel", "fc0/kernel", "head/kernel"]
  # Rethinking's weight-level experiments: conv kernels only.
  assert names(masks.Prunable(dense=False)) == ["conv0/kernel"]
  pred = masks.Prunable(first_layer=False, classifier=False, first_layers=(("conv0",),))
  assert names(pred) == ["fc0/kernel"]
  assert names(masks.Prunable(exclude=("^fc",))) == ["conv0/kernel", "head/kernel"]
  # Roles come from the model graph: ResNet's stem and head.
  first, cls = masks.roles_from_groups(models.channel_groups("resnet20"))
  assert first == (("stem_conv",),) and cls == (("head",),)


def test_mask_algebra_and_sparsity_report():
  t = _tree()
  a = jax.tree_util.tree_map(lambda x: (x > 0).astype(x.dtype), t)
  b = masks.invert(a)
  assert masks.sparsity(masks.combine(a, b)).sparsity == 1.0
  assert masks.sparsity(masks.union(a, b)).sparsity == 0.0
  applied = masks.apply(t, a)
  assert all(
    np.all(np.asarray(x)[np.asarray(m) == 0] == 0)
    for x, m in zip(jax.tree_util.tree_leaves(applied), jax.tree_util.tree_leaves(a))
  )
  rep = masks.sparsity({"k": jnp.array([0.0, 1.0, 0.0, 2.0])})
  assert (rep.zeros, rep.total, rep.sparsity) == (2, 4, 0.5)


def test_topk_ties_broken_by_index_and_exact():
  s = jnp.array([1.0, 2.0, 2.0, 2.0, 0.5])
  assert np.asarray(allocation.topk_mask(s, 2)).tolist() == [
    False,
    True,
    True,
    False,
    False,
  ]
  assert int(allocation.topk_mask(jnp.zeros(100), 37).sum()) == 37


def test_topk_equals_a_stable_numpy_ranking_for_static_and_traced_k():
  # Heavy ties, signed values, +-inf and NaN (ranked as -inf): the bitwise
  # k-th-value search must keep exactly the entries a stable sort ranks first.
  rng = np.random.default_rng(3)
  values = np.array([-np.inf, -2.0, -1e-30, -0.0, 0.0, 1e-30, 0.5, 3.0, np.inf])
  scores = rng.choice(np.append(values, np.nan), 257).astype(np.float32)
  scores[:64] = rng.normal(size=64)
  ranked = np.where(np.isnan(scores), -np.inf, scores)
  ranks = np.empty(scores.size, int)
  ranks[np.argsort(-ranked, kind="stable")] = np.arange(scores.size)
  traced = jax.jit(allocation.topk_mask)
  for k in (0, 1, 9, 64, 128, 200, 256, 257, 300):
    want = ranks < k
    np.testing.assert_array_equal(traced(jnp.asarray(scores), jnp.int32(k)), want)
    if k in (0, 200, 300):  # A static k compiles its own search loop.
      static = allocation.topk_mask(jnp.asarray(scores), k)
      np.testing.assert_array_equal(static, want)


def test_eager_topk_compiles_once_per_shape():
  # Called outside jit (GMP, DPF and DNW mask updates), a search loop built
  # around a fresh closure compiled anew on every call, and every compiled
  # program stayed mapped: a long sweep died of "LLVM ERROR: Unable to
  # allocate section memory" after ~11k of them.
  compiles = []

  def listener(event, duration, **kwargs):
    if event == "/jax/core/compile/backend_compile_duration":
      compiles.append(kwargs.get("fun_name"))

  scores_ = jnp.asarray(np.random.default_rng(0).normal(size=(7, 11)), jnp.float32)
  allocation.topk_mask(scores_, 5)  # Warm: compiles what a call needs.
  jax.monitoring.register_event_duration_secs_listener(listener)
  try:
    for k in (5, 6, 30):
      allocation.topk_mask(scores_, k)
  finally:
    jax.monitoring.unregister_event_duration_listener(listener)
  assert compiles == []


@pytest.mark.parametrize("alloc", allocation.ALLOCATIONS)
def test_every_allocation_hits_the_target_within_one_per_tensor(alloc):
  t = _tree()
  pred = masks.Prunable(first_layers=(("conv0",),))
  prun = masks.prunable_tree(t, pred)
  # 'pattern' takes its per-layer keep ratios from pruning.pattern: 0.3 each.
  pattern = {
    allocation.layer_name(n): 0.3 for n, p in masks.leaves_with_names(prun) if p
  }
  m = allocation.unstructured_masks(
    scores.magnitude(t),
    prun,
    0.7,
    alloc,
    roles=allocation.roles_tree(t, pred),
    pattern=pattern,
  )
  rep = masks.sparsity(m, prun)
  n_tensors = len(rep.per_layer)
  assert abs(rep.zeros - 0.7 * rep.total) <= n_tensors
  # Non-prunable leaves untouched.
  assert float(m["fc0"]["bias"].min()) == 1.0 and float(m["bn"]["scale"].min()) == 1.0


def test_global_is_one_threshold_and_uniform_is_per_layer():
  t = _tree()
  prun = masks.prunable_tree(t, masks.Prunable())
  m = allocation.unstructured_masks(scores.magnitude(t), prun, 0.5, "global")
  flat = np.concatenate(
    [np.abs(np.asarray(t[k]["kernel"])).ravel() for k in ("conv0", "fc0", "head")]
  )
  thr = np.sort(flat)[flat.size - (flat.size - round(0.5 * flat.size))]
  for k in ("conv0", "fc0", "head"):
    w, mk = np.abs(np.asarray(t[k]["kernel"])), np.asarray(m[k]["kernel"])
    assert np.all(w[mk == 1] >= thr) and np.all(w[mk == 0] < thr)
  u = allocation.unstructured_masks(scores.magnitude(t), prun, 0.5, "uniform")
  for k, n in (("conv0", 72), ("fc0", 1200), ("head", 300)):
    assert int(np.asarray(u[k]["kernel"]).sum()) == n - round(0.5 * n)


def test_uniform_plus_first_dense_classifier_capped():
  t = _tree()
  pred = masks.Prunable(first_layers=(("conv0",),))
  prun = masks.prunable_tree(t, pred)
  m = allocation.unstructured_masks(
    scores.magnitude(t), prun, 0.9, "uniform_plus", roles=allocation.roles_tree(t, pred)
  )
  assert float(np.asarray(m["conv0"]["kernel"]).mean()) == 1.0
  assert int(np.asarray(m["head"]["kernel"]).sum()) == 60  # 20% of 300 kept.
  # The rest takes the remainder: round(0.9 * 1572) - 240 pruned of fc0's 1200.
  assert int(1200 - np.asarray(m["fc0"]["kernel"]).sum()) == round(0.9 * 1572) - 240


def test_erk_matches_hand_solution():
  # Two dense layers (10x10 and 100x100): densities eps*20/100 and eps*200/1e4.
  shapes = [(10, 10), (100, 100)]
  keep = allocation.erk_keep_counts(shapes, 0.9)
  total_keep = 10100 - round(0.9 * 10100)
  eps = total_keep / (20 + 200)
  assert keep == [round(eps * 20), total_keep - round(eps * 20)]
  # Power 0 = the same density everywhere (uniform).
  k0 = allocation.erk_keep_counts(shapes, 0.5, power=0.0)
  assert abs(k0[0] - 50) <= 1 and abs(k0[1] - 5000) <= 1
  # A tiny layer whose ERK density would exceed 1 is made dense.
  assert allocation.erk_keep_counts([(2, 2), (1000, 1000)], 0.5)[0] == 4


def test_lamp_scores_hand_example():
  w = jnp.array([3.0, 1.0, 2.0])
  # sorted ascending 1,2,3: 1/(1+4+9), 4/(4+9), 9/9.
  np.testing.assert_allclose(scores.lamp_leaf(w), [1.0, 1 / 14, 4 / 13], rtol=1e-6)


def test_hard_pruning_keeps_pruned_and_soft_may_regrow():
  t = _tree()
  prun = masks.prunable_tree(t, masks.Prunable())
  m1 = allocation.unstructured_masks(scores.magnitude(t), prun, 0.5, "global")
  # New weights: previously pruned weights now large.
  t2 = jax.tree_util.tree_map(lambda x, m: jnp.where(m > 0, x * 0.01, 10.0), t, m1)
  hard = allocation.unstructured_masks(
    scores.magnitude(t2), prun, 0.6, "global", current=m1
  )
  soft = allocation.unstructured_masks(scores.magnitude(t2), prun, 0.6, "global")
  assert np.all(np.asarray(hard["fc0"]["kernel"]) <= np.asarray(m1["fc0"]["kernel"]))
  assert np.any(np.asarray(soft["fc0"]["kernel"]) > np.asarray(m1["fc0"]["kernel"]))
  assert abs(masks.sparsity(hard, prun).sparsity - 0.6) < 1e-3


@pytest.mark.parametrize("alloc", ["global", "uniform", "lamp", "uniform_plus"])
def test_jit_safe_allocation_matches_host(alloc):
  t = _tree()
  pred = masks.Prunable(first_layers=(("conv0",),))
  prun, roles = masks.prunable_tree(t, pred), allocation.roles_tree(t, pred)
  host = allocation.unstructured_masks(
    scores.magnitude(t), prun, 0.55, alloc, roles=roles
  )
  fn = jax.jit(
    lambda tr, s: allocation.unstructured_masks(
      scores.magnitude(tr), prun, s, alloc, roles=roles
    )
  )
  jitted = fn(t, jnp.float32(0.55))
  jax.tree_util.tree_map(np.testing.assert_array_equal, host, jitted)


def test_imp_and_gmp_schedules():
  # 20% of the remaining per cycle to 90%: 1 - 0.8^k, 11 cycles (0.8^10 = 0.107).
  s = schedules.imp_sparsities(0.9, rate=0.2)
  assert len(s) == 11 and s[0] == pytest.approx(0.2) and s[-1] == 0.9
  assert s[9] == pytest.approx(1 - 0.8**10)
  # BIMP: n equal cycles.
  b = schedules.imp_sparsities(0.9, cycles=3)
  assert b[0] == pytest.approx(1 - 0.1 ** (1 / 3)) and b[-1] == 0.9
  assert schedules.per_cycle_fraction(b[0], b[1]) == pytest.approx(b[0])
  # Cubic GMP: s_f (1 - (1 - t/T)^3).
  assert float(schedules.gmp_sparsity(50, 0.8, 0, 100)) == pytest.approx(
    0.8 * (1 - 0.5**3)
  )
  assert float(schedules.gmp_sparsity(150, 0.8, 0, 100)) == pytest.approx(0.8)
  assert bool(schedules.gmp_is_pruning_step(20, 0, 100, 10))
  assert not bool(schedules.gmp_is_pruning_step(25, 0, 100, 10))
  ev = schedules.bimp_gmp_epochs(100, 10, 0.9)
  assert len(ev) == 9 and ev[-1] == (90, pytest.approx(0.9))
  cfg = pruning.default_config()
  cfg.name, cfg.sparsity, cfg.schedule = "unstructured", 0.8, "gmp"
  cfg.gmp_start, cfg.gmp_end, cfg.gmp_frequency = 2, 9, 3
  assert [e for e, _ in schedules.events(cfg, 10)] == [2, 5, 8, 9]
  cfg.schedule, cfg.prune_epoch = "one_shot", 30
  assert schedules.events(cfg, 120) == [(30, 0.8)]


def test_rewind_and_reinit():
  model = models.create("resnet20")
  v = jax.jit(model.init, static_argnames="train")(
    jax.random.key(0), jnp.zeros((1, 8, 8, 3)), train=False
  )
  params, stats = v["params"], v["batch_stats"]
  cfg = pruning.default_config()
  cfg.name, cfg.sparsity = "unstructured", 0.8
  res = pruning.prune(cfg, params, stats, model_name="resnet20")
  point = rewind.snapshot(params, stats)
  trained = jax.tree_util.tree_map(lambda x: x + 1.0, params)
  del trained
  p, _ = rewind.rewind(res.masks, point)
  k = np.asarray(params["stage1_block0"]["conv1"]["kernel"])
  m = np.asarray(res.masks["stage1_block0"]["conv1"]["kernel"])
  np.testing.assert_array_equal(
    np.asarray(p["stage1_block0"]["conv1"]["kernel"]), k * m
  )
  # Re-init: fresh draw from the model's initialisers, same mask.
  r, _ = rewind.reinitialize("resnet20", res.masks, jax.random.key(5))
  rk = np.asarray(r["stage1_block0"]["conv1"]["kernel"])
  assert np.all(rk[m == 0] == 0) and not np.allclose(rk[m == 1], k[m == 1])
  rs, _ = rewind.reinitialize("resnet20", res.masks, jax.random.key(5), rescale=True)
  kept = m.mean()
  np.testing.assert_allclose(
    np.asarray(rs["stage1_block0"]["conv1"]["kernel"]), rk / np.sqrt(kept), rtol=1e-6
  )
  # The He fan-out std of a 3x3x16x32 conv is sqrt(2 / (9 * 32)).
  full, _ = rewind.reinitialize("resnet20", masks.ones_like(params), jax.random.key(5))
  std = np.asarray(full["stage1_block0"]["conv1"]["kernel"]).std()
  assert std == pytest.approx(np.sqrt(2 / (9 * 32)), rel=0.1)


@pytest.mark.parametrize(
  ("field", "value"),
  [
    ("name", "magnitude"),
    ("allocation", "erdos"),
    ("criterion", "l1"),
    ("sparsity", 1.5),
    ("mode", "gradual"),
    ("schedule", "cubic"),
  ],
)
def test_invalid_config_fields_raise_naming_the_field(field, value):
  cfg = pruning.default_config()
  cfg.name = "unstructured"
  cfg[field] = value
  with pytest.raises(ValueError, match=rf"pruning\.{field}"):
    pruning.validate(cfg)


def test_none_config_is_dense():
  t = _tree()
  res = pruning.prune(pruning.default_config(), t, model_name="mlp7_relu")
  assert masks.sparsity(res.masks).zeros == 0


def test_uniform_plus_prunes_a_first_dense_layer():
  # Lee et al.'s UNIFORM+ keeps the first *conv* dense; an MLP has none, so
  # MLP-7's fc0 is pruned like every hidden layer (and sparsity >= 0.34 is
  # reachable: fc0 holds 102,400 of the 153,400 kernel weights).
  name = "mlp7_relu"
  v = models.create(name).init(jax.random.key(0), jnp.zeros((1, 32, 32, 1)))
  cfg = pruning.default_config()
  cfg.name, cfg.allocation = "unstructured", "uniform_plus"
  sizes = {"fc0": 1024 * 100, **{f"fc{i}": 100 * 100 for i in range(1, 6)}}
  for s in (0.3, 0.9):
    cfg.sparsity = s
    res = pruning.prune(cfg, v["params"], model_name=name)
    kept = {k: int(np.asarray(res.masks[k]["kernel"]).sum()) for k in [*sizes, "head"]}
    n_total = sum(sizes.values()) + 1000
    head_pruned = min(s * 1000, 0.8 * 1000)  # Classifier cap: 80 %.
    hidden_frac = (round(s * n_total) - head_pruned) / sum(sizes.values())
    assert kept["head"] == 1000 - round(head_pruned)
    for k, n in sizes.items():
      assert kept[k] == n - round(hidden_frac * n), (s, k)
    # Per-tensor rounding: within one weight per tensor of the target.
    got = masks.sparsity(res.masks, res.prunable).sparsity
    assert got == pytest.approx(s, abs=7 / 153_400)
