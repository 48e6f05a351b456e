"""DNW, DPF and the in-step GMP (`jaxprune.pruning.during`): each update rule
against the same step written out with numpy and plain `jax.grad` on a tiny
MLP, the invariants Zimmer et al.'s comparison rests on (DNW/DPF forward =
the masked model's, pruned weights still get the gradient, GMP hard masks only
shrink), and the in-step GMP against the host-side `gmp` protocol end to end."""

from __future__ import annotations

import os
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxprune import config_utils, models, protocols, pruning
from jaxprune.pruning import during
from jaxprune.pruning import masks as masks_lib
from jaxprune.pruning.during import dpf as dpf_lib
from jaxprune.train import checkpointing
from jaxprune.train import hyper as hyper_lib
from jaxprune.train import steps as steps_lib
from jaxprune.train.state import state_from_params

pytestmark = pytest.mark.usefixtures("fast_compiles")
LR, SPE = 0.5, 4  # SGD step size; steps per epoch given to the methods.


def _setup(method: str, sparsity: float = 0.6, epochs: int = 4, **options: object):
  model = models.create("mlp7_linear", num_classes=10, widths=(8,) * 6)
  x = jax.random.normal(jax.random.key(0), (16, 32, 32, 1))
  y = jax.random.randint(jax.random.key(1), (16,), 0, 10)
  params = model.init(jax.random.key(2), x[:1], train=False)["params"]
  config = config_utils.base_config()
  config.num_epochs = epochs
  config.pruning.name, config.pruning.sparsity = "unstructured", sparsity
  config.during.method = method
  for key, value in options.items():  # "during.dpf.end_epoch": 2, ...
    *sections, field = key.split(".")
    node = config
    for name in sections:
      node = node[name]
    node[field] = value
  during.validate(config)
  prunable = masks_lib.prunable_tree(
    params, pruning.predicate(config.pruning, "mlp7_linear", 10)
  )
  built = during.build(during.Context(config, prunable, SPE))
  tx = optax.sgd(LR)
  make_tx, hyper = hyper_lib.fixed(tx, lambda s: LR)
  state = state_from_params(params, {}, tx, jax.random.key(0))

  @jax.jit
  def run(s):  # One train step on the fixed batch, no preprocessing.
    kw = dict(make_tx=make_tx, preprocess=lambda x, rng, train: x)
    return steps_lib.train_step(s, hyper, x, y, model=model, hooks=built.hooks, **kw)[0]

  def loss(p):
    logits = model.apply({"params": p}, x, train=False)
    return steps_lib.cross_entropy(logits, y).mean()

  return SimpleNamespace(
    built=built, state=state, run=run, loss=loss, model=model, x=x, prunable=prunable
  )


def _topk(params, prunable, sparsity: float):
  """Global magnitude masks with numpy: the (1 - s) n largest |w| kept."""
  leaves = jax.tree_util.tree_leaves(params)
  flags = jax.tree_util.tree_leaves(prunable)
  flat = np.concatenate([np.abs(np.ravel(w)) for w, f in zip(leaves, flags) if f])
  keep = flat.size - round(sparsity * flat.size)
  threshold = np.sort(flat)[::-1][keep - 1]
  masks = [
    (np.abs(np.asarray(w)) >= threshold).astype(np.float32) if f else np.ones_like(w)
    for w, f in zip(leaves, flags)
  ]
  return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(params), masks)


def _mul(a, b):
  return jax.tree_util.tree_map(lambda u, v: u * v, a, b)


def _close(a, b, **kw):
  jax.tree_util.tree_map(
    lambda u, v: np.testing.assert_allclose(u, v, **{"atol": 1e-6, **kw}), a, b
  )


def _assert_forward_is_masked(t, state, masks) -> None:
  """The method's forward pass computes what the net with `masks` computes."""
  fwd = t.built.hooks.forward_params(state.params, {}, state.masks, state.step)
  np.testing.assert_allclose(
    t.model.apply({"params": fwd}, t.x, train=False),
    t.model.apply({"params": _mul(state.params, masks)}, t.x, train=False),
    rtol=1e-6,
    atol=1e-6,
  )


def _sparsity(masks, prunable) -> float:
  return float(during.common.mask_sparsity(masks, prunable))


def test_dnw_step_is_sgd_on_the_topk_weights_with_a_dense_gradient():
  t = _setup("dnw")
  built, state, run, loss, prunable = t.built, t.state, t.run, t.loss, t.prunable
  w0 = state.params
  m0 = _topk(w0, prunable, 0.6)
  # Plain: the gradient of the loss at the top-k weights, applied to all of w.
  expected = jax.tree_util.tree_map(
    lambda w, g: w - LR * g, w0, jax.grad(loss)(_mul(w0, m0))
  )
  new = run(state)
  _close(new.params, expected)
  # Pruned weights moved too (straight-through), the forward is the masked net.
  pruned = [
    np.asarray(a) != np.asarray(b)
    for a, b in zip(
      jax.tree_util.tree_leaves(new.params), jax.tree_util.tree_leaves(w0)
    )
  ]
  zero = [np.asarray(m) == 0 for m in jax.tree_util.tree_leaves(m0)]
  assert sum(int((p & z).sum()) for p, z in zip(pruned, zero)) > 0
  m1 = _topk(new.params, prunable, 0.6)
  _assert_forward_is_masked(t, new, m1)
  params, masks = built.final(new)
  _close(masks, m1)
  _close(params, _mul(new.params, m1))
  assert _sparsity(masks, prunable) == pytest.approx(0.6, abs=1e-3)


def test_dpf_two_steps_match_the_pruned_gradient_applied_to_dense_weights():
  # update_every=1, cubic to 0.6 over end_epoch=2 epochs of SPE steps.
  t = _setup("dpf", **{"during.dpf.update_every": 1, "during.dpf.end_epoch": 2})
  built, state, run, loss, prunable = t.built, t.state, t.run, t.loss, t.prunable
  w0 = state.params
  s1 = 0.6 * (1 - (1 - 1 / (2 * SPE)) ** 3)  # Zhu & Gupta at step 1 of 8.
  s2 = 0.6 * (1 - (1 - 2 / (2 * SPE)) ** 3)
  # Step 1: masks all ones (s(0) = 0); then re-masked at s(1).
  w1 = jax.tree_util.tree_map(lambda w, g: w - LR * g, w0, jax.grad(loss)(w0))
  m1 = _topk(w1, prunable, s1)
  one = run(state)
  _close(one.params, w1)
  _close(one.masks, m1)
  # Step 2: gradient at the pruned model w1 * m1, applied to every weight.
  g = jax.grad(loss)(_mul(w1, m1))
  w2 = jax.tree_util.tree_map(lambda w, g: w - LR * g, w1, g)
  two = run(one)
  _close(two.params, w2, rtol=1e-5)
  _close(two.masks, _topk(w2, prunable, s2))
  moved = [
    (np.asarray(m) == 0) & (np.abs(np.asarray(gg)) > 0)
    for m, gg in zip(jax.tree_util.tree_leaves(m1), jax.tree_util.tree_leaves(g))
  ]
  assert sum(int(m.sum()) for m in moved) > 0  # Pruned weights got gradient.
  _assert_forward_is_masked(t, two, two.masks)
  _, masks = built.final(two)  # Exact target from the dense weights.
  _close(masks, _topk(two.params, prunable, 0.6))
  assert _sparsity(masks, prunable) == pytest.approx(0.6, abs=1e-3)


def test_dpf_schedule_with_a_pruning_interval_changes_only_at_its_epochs():
  # interval 2 epochs of SPE steps, T = 8: t_end = 2 (8 // 2 - 1) = 6 epochs.
  config = config_utils.base_config()
  config.num_epochs, config.during.dpf.pruning_interval = 8, 2
  assert dpf_lib.end_epoch(config) == 6
  steps = jnp.arange(0, 8 * SPE + 1)
  got = np.asarray(dpf_lib.scheduled_sparsity(steps, 0.9, 6 * SPE, 2 * SPE))
  epoch_held = (np.arange(0, 8 * SPE + 1) // (2 * SPE)) * 2
  expected = 0.9 * (1 - (1 - np.minimum(epoch_held / 6, 1)) ** 3)
  np.testing.assert_allclose(got, expected, rtol=1e-6)
  assert got[2 * SPE - 1] == 0 and got[6 * SPE] == pytest.approx(0.9)


@pytest.mark.parametrize("mode", ["hard", "soft"])
def test_gmp_after_step_masks_at_the_cubic_sparsity_of_the_event(mode):
  # T = 4, frequency 1, defaults: events after epochs 1, 2, 3 (t_end = 3).
  t = _setup("gmp", **{"pruning.mode": mode})
  built, state, prunable = t.built, t.state, t.prunable
  leaves = jax.tree_util.tree_leaves(state.params)
  i0 = jax.tree_util.tree_leaves(prunable).index(True)  # The first kernel.
  big = jax.tree_util.tree_unflatten(
    jax.tree_util.tree_structure(state.params),
    [5.0 + np.abs(w) if i == i0 else w for i, w in enumerate(leaves)],
  )
  # A first-layer mask that has already pruned the first row: a hard GMP keeps
  # it pruned although its weights are the largest; a soft one brings it back.
  masks = [np.ones_like(leaf) for leaf in leaves]
  masks[i0][0] = 0.0
  masks = jax.tree_util.tree_unflatten(
    jax.tree_util.tree_structure(state.params), masks
  )
  at_event = state.replace(params=big, masks=masks, step=jnp.asarray(SPE, jnp.int32))
  out = built.hooks.after_step(at_event, None)
  s1 = 0.6 * (1 - (1 - 1 / 3) ** 3)
  scores = big if mode == "soft" else _mul(big, masks)
  _close(out.masks, _topk(scores, prunable, s1))
  row_kept = float(np.asarray(jax.tree_util.tree_leaves(out.masks)[i0])[0].max())
  assert row_kept == (1.0 if mode == "soft" else 0.0)
  off = built.hooks.after_step(at_event.replace(step=jnp.asarray(SPE + 1)), None)
  _close(off.masks, masks)  # Not an event step: nothing changes.


@pytest.mark.parametrize("method", ["dnw", "dpf", "gmp"])
def test_methods_batch_under_vmap_as_grouped_runs_do(method):
  # Two runs of one program (the second with other weights) vmapped over a
  # leading run axis step exactly as each does alone; at step SPE GMP prunes
  # and DPF (update_every=2) re-masks, so the traced branches are covered.
  t = _setup(method, **({"during.dpf.update_every": 2} if method == "dpf" else {}))
  other = t.state.replace(
    params=jax.tree_util.tree_map(lambda w: 1.5 * w, t.state.params)
  )
  states = [
    t.state.replace(step=jnp.asarray(SPE - 1)),
    other.replace(step=jnp.asarray(SPE - 1)),
  ]
  stacked = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *states)
  together = jax.jit(jax.vmap(t.run.__wrapped__))(stacked)
  for i, alone in enumerate(t.run(s) for s in states):
    mine = jax.tree_util.tree_map(lambda x, i=i: x[i], together)
    _close(mine.masks, alone.masks)
    _close(mine.params, alone.params, rtol=1e-5)
    if method != "dnw":  # DNW masks in its forward pass only.
      assert _sparsity(alone.masks, t.prunable) > 0.1


def _final_tree(workdir):
  with checkpointing.Checkpointer(os.path.join(workdir, "checkpoints")) as ckpt:
    return jax.device_get(ckpt.restore("final")[0])


def test_in_step_gmp_equals_the_gmp_protocol(prune_config, tmp_path):
  c = prune_config  # MLP-7 (width 32), 256 examples, linear LR 0.05.
  c.num_epochs, c.optimizer.momentum = 3, 0.9
  c.pruning.schedule, c.pruning.gmp_start, c.pruning.gmp_end = "gmp", 1, 2
  host = c.copy_and_resolve_references()
  host.protocol = "gmp"
  protocols.run(host, str(tmp_path / "host"))
  c.protocol, c.during.method = "during", "gmp"
  row = protocols.run(c, str(tmp_path / "in_step"))
  a, b = (
    _final_tree(str(tmp_path / "host/train")),
    _final_tree(str(tmp_path / "in_step/train")),
  )
  _close(a["masks"], b["masks"])
  _close(a["params"], b["params"], atol=1e-5)
  assert row["sparsity"] == pytest.approx(0.8, abs=1e-3)


def test_uniform_allocation_prunes_every_layer_at_the_target():
  t = _setup("dnw", **{"pruning.allocation": "uniform"})
  _, masks = t.built.final(t.state)
  flags = jax.tree_util.tree_leaves(t.prunable)
  for m, f in zip(jax.tree_util.tree_leaves(masks), flags, strict=True):
    expected = 0.6 if f else 0.0
    assert 1 - float(np.mean(m)) == pytest.approx(expected, abs=1 / np.size(m))
