"""SET and RigL (`pruning.during.set_`, `pruning.during.rigl`): the drop/grow
update against the same update written out with numpy on tiny layers, the
exactly constant sparsity over many updates, the drop-fraction schedule, and a
short end-to-end run; plus the train step's promise that `after_step` sees the
gradients of pruned weights (RigL grows by them)."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from step_helpers import jitted_step, tiny_mlp

from jaxprune import config_utils, protocols
from jaxprune.protocols import common as protocols_common
from jaxprune.protocols import during as during_protocol
from jaxprune.pruning import allocation, during
from jaxprune.pruning.during import rigl
from jaxprune.pruning.step_hooks import StepHooks
from jaxprune.train import steps as steps_lib
from jaxprune.train.state import state_from_params

LR = 0.1
pytestmark = pytest.mark.usefixtures("fast_compiles")


def test_after_step_gets_the_gradient_of_pruned_weights_under_hard_masks():
  model, params, x, y = tiny_mlp()
  masks = jax.tree_util.tree_map(
    lambda p: (jax.random.uniform(jax.random.key(3), p.shape) < 0.5).astype(
      jnp.float32
    ),
    params,
  )
  # after_step stores the gradients it is given in the masks, to look at them.
  hooks = StepHooks(
    name="grads", after_step=lambda state, grads: state.replace(masks=grads)
  )
  tx = optax.sgd(LR)
  state = state_from_params(params, {}, tx, jax.random.key(0), masks)
  new, _ = jitted_step(model, tx, hooks, LR)(state, x, y)

  def loss(p):
    logits = model.apply({"params": p}, x, train=False)
    return steps_lib.cross_entropy(logits, y).mean()

  dense = jax.grad(loss)(state.params)  # At the masked weights, not masked.
  jax.tree_util.tree_map(
    lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
    new.masks,
    dense,
  )
  pruned = np.asarray(masks["fc1"]["kernel"]) == 0
  assert np.any(np.asarray(new.masks["fc1"]["kernel"])[pruned] != 0)


# ------------------------------------------------------------- SET and RigL
STEPS_PER_EPOCH, EPOCHS = 10, 4  # 40 steps; t_end = 0.75 * 40 = 30.


def _config(name, allocation="erk", **options):
  config = config_utils.base_config()
  config.during.method = name
  config.num_epochs = EPOCHS
  config.pruning.name, config.pruning.sparsity = "unstructured", 0.5
  config.pruning.allocation = allocation  # The initial distribution.
  config.during[name].update({"delta_t": 10, **options})
  return config


def _method(name, prunable, **options):
  config = _config(name, **options)
  during.validate(config)
  method = during.build(during.Context(config, prunable, STEPS_PER_EPOCH))
  # One compile per method for the tests that call the update alone.
  object.__setattr__(method, "jitted", jax.jit(method.hooks.after_step))
  return method


def _layers(seed=0):
  rng = np.random.default_rng(seed)
  params = {
    "a": {"kernel": rng.normal(size=(6, 5))},
    "b": {"kernel": rng.normal(size=(5, 4)), "bias": rng.normal(size=(4,))},
  }
  params = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float32), params)
  prunable = {"a": {"kernel": True}, "b": {"kernel": True, "bias": False}}
  masks = {
    "a": {"kernel": jnp.asarray(rng.random((6, 5)) < 0.5, jnp.float32)},
    "b": {
      "kernel": jnp.asarray(rng.random((5, 4)) < 0.5, jnp.float32),
      "bias": jnp.ones(4),
    },
  }
  grads = jax.tree_util.tree_map(
    lambda x: jnp.asarray(rng.normal(size=x.shape), jnp.float32), params
  )
  state = state_from_params(params, {}, optax.sgd(LR), jax.random.key(0), masks)
  return state, grads, prunable


def _numpy_drop(mask, weight, t, alpha=0.3, t_end=30):
  """The active weights that survive, written out: k = floor(alpha_t * n)
  smallest |w| among the active ones leave."""
  mask, weight = np.asarray(mask).ravel(), np.asarray(weight).ravel()
  active = np.flatnonzero(mask)
  k = int(np.floor(alpha / 2 * (1 + np.cos(np.pi * t / t_end)) * active.size))
  order = active[np.argsort(np.abs(weight[active]), kind="stable")]
  survivors = np.zeros_like(mask)
  survivors[order[k:]] = 1
  return survivors, k


def _after(method, state, grads, step):
  return method.jitted(state.replace(step=jnp.int32(step)), grads)


def test_rigl_drops_the_smallest_active_and_grows_the_largest_gradients():
  state, grads, prunable = _layers()
  method = _method("rigl", prunable, alpha=0.6)
  new = _after(method, state, grads, 10)  # alpha_10 = 0.3 (1 + cos(pi / 3)).
  for layer in ("a", "b"):
    w, m = state.params[layer]["kernel"], state.masks[layer]["kernel"]
    survivors, k = _numpy_drop(m, w, 10, alpha=0.6)
    assert k >= 2
    g = np.abs(np.asarray(grads[layer]["kernel"])).ravel()
    candidates = np.flatnonzero(survivors == 0)
    grown = candidates[np.argsort(-g[candidates], kind="stable")[:k]]
    want = survivors.copy()
    want[grown] = 1
    got = np.asarray(new.masks[layer]["kernel"]).ravel()
    np.testing.assert_array_equal(got, want)
    assert got.sum() == np.asarray(m).sum()  # Same count in every layer.
    # Survivors keep their values; dropped and grown weights are zero.
    np.testing.assert_array_equal(
      np.asarray(new.params[layer]["kernel"]).ravel(), np.asarray(w).ravel() * survivors
    )
  np.testing.assert_array_equal(new.masks["b"]["bias"], 1.0)
  np.testing.assert_array_equal(new.params["b"]["bias"], state.params["b"]["bias"])


def test_set_drops_like_rigl_and_grows_at_random_among_the_inactive():
  state, grads, prunable = _layers(1)
  method = _method("set", prunable)
  grown_sets = []
  for step in (10, 20):
    new = _after(method, state, grads, step)
    again = _after(method, state, grads, step)
    jax.tree_util.tree_map(np.testing.assert_array_equal, new.masks, again.masks)
    w, m = state.params["a"]["kernel"], state.masks["a"]["kernel"]
    survivors, k = _numpy_drop(m, w, step)
    got = np.asarray(new.masks["a"]["kernel"]).ravel()
    assert np.all(got[survivors == 1] == 1)
    grown = np.flatnonzero((got == 1) & (survivors == 0))
    assert grown.size == k and got.sum() == np.asarray(m).sum()
    assert np.all(np.asarray(new.params["a"]["kernel"]).ravel()[grown] == 0)
    grown_sets.append(set(grown.tolist()))
  assert grown_sets[0] != grown_sets[1]  # Fresh randomness per update.


def test_updates_only_every_delta_t_steps_before_t_end():
  state, grads, prunable = _layers(2)
  method = _method("rigl", prunable, delta_t=5, alpha=0.9)
  for step, due in ((5, True), (7, False), (20, True), (30, False), (35, False)):
    new = _after(method, state, grads, step)
    changed = not np.array_equal(new.masks["a"]["kernel"], state.masks["a"]["kernel"])
    assert changed == due, step
  np.testing.assert_allclose(
    rigl.drop_fraction(jnp.int32(25), 0.3, 30),
    0.15 * (1 + math.cos(math.pi * 25 / 30)),
    rtol=1e-6,
  )


@pytest.mark.parametrize("name", ["set", "rigl"])
def test_sparsity_stays_exactly_constant_through_training(name):
  model, params, x, y = tiny_mlp()
  prunable = jax.tree_util.tree_map(lambda p: p.ndim == 2, params)
  method = _method(name, prunable, delta_t=3, alpha=0.5, t_end=1.0)
  params, masks = method.init_sparse(params, jax.random.key(7))
  tx = optax.sgd(LR, momentum=0.9)
  state = state_from_params(params, {}, tx, jax.random.key(0), masks)
  counts = [float(jnp.sum(m)) for m in jax.tree_util.tree_leaves(masks)]
  step = jitted_step(model, tx, method.hooks, LR)
  changes = 0
  for t in range(1, 10):
    before = state.masks
    state, _ = step(state, x, y)
    assert [float(jnp.sum(m)) for m in jax.tree_util.tree_leaves(state.masks)] == counts
    moved = any(
      not np.array_equal(a, b)
      for a, b in zip(
        jax.tree_util.tree_leaves(before), jax.tree_util.tree_leaves(state.masks)
      )
    )
    assert moved == (t % 3 == 0), t
    changes += moved
    assert all(
      np.all(np.asarray(p)[np.asarray(m) == 0] == 0)
      for p, m in zip(
        jax.tree_util.tree_leaves(state.params), jax.tree_util.tree_leaves(state.masks)
      )
    )
  assert changes == 3


@pytest.mark.parametrize("distribution", ["erk", "uniform"])
def test_initial_masks_are_random_at_the_distribution_counts(distribution):
  _, params, _, _ = tiny_mlp()
  prunable = jax.tree_util.tree_map(lambda p: p.ndim == 2, params)
  method = _method("rigl", prunable, allocation=distribution)
  kernels = [p for p in jax.tree_util.tree_leaves(params) if p.ndim == 2]
  start, masks = method.init_sparse(params, jax.random.key(0))
  kept = [int(m.sum()) for m in jax.tree_util.tree_leaves(masks) if m.ndim == 2]
  if distribution == "erk":
    want = allocation.erk_keep_counts([k.shape for k in kernels], 0.5)
  else:
    want = [k.size - math.floor(0.5 * k.size + 0.5) for k in kernels]
  assert kept == want
  _, other = method.init_sparse(params, jax.random.key(1))
  assert not all(
    np.array_equal(a, b)
    for a, b in zip(jax.tree_util.tree_leaves(masks), jax.tree_util.tree_leaves(other))
  )
  for leaf in jax.tree_util.tree_leaves(masks):
    if leaf.ndim == 1:
      assert np.all(np.asarray(leaf) == 1)
  # init_scale "dense": the kept weights are the dense init's.
  jax.tree_util.tree_map(
    lambda s, p, m: np.testing.assert_array_equal(s, np.asarray(p) * np.asarray(m)),
    start,
    params,
    masks,
  )


def test_density_init_scale_divides_each_kernel_by_sqrt_density():
  _, params, _, _ = tiny_mlp()
  prunable = jax.tree_util.tree_map(lambda p: p.ndim == 2, params)
  method = _method("set", prunable, init_scale="density")
  start, masks = method.init_sparse(params, jax.random.key(0))
  for layer in params:
    w, m = np.asarray(params[layer]["kernel"]), np.asarray(masks[layer]["kernel"])
    density = m.sum() / m.size
    assert 0 < density < 1
    np.testing.assert_allclose(
      start[layer]["kernel"], w * m / np.sqrt(density), rtol=1e-6
    )
    np.testing.assert_array_equal(start[layer]["bias"], params[layer]["bias"])


@pytest.mark.parametrize(
  "field,value,message",
  [
    ("alpha", 1.5, "during.rigl.alpha"),
    ("alpha", 0.0, "during.rigl.alpha"),
    ("delta_t", 0, "during.rigl.delta_t"),
    ("t_end", 1.2, "during.rigl.t_end"),
    (
      "allocation",
      "global",
      r"pruning\.allocation must be one of \['erk', 'uniform'\] for "
      r"during\.method='rigl'",
    ),
    ("init_scale", "he", "during.rigl.init_scale"),
  ],
)
def test_bad_options_name_the_field(field, value, message):
  config = _config("rigl", **{field: value})
  with pytest.raises(ValueError, match=message):
    during.validate(config)


def test_rigl_trains_end_to_end_through_the_during_protocol(tiny_config, tmp_path):
  config = tiny_config.copy_and_resolve_references()
  config.protocol, config.num_epochs = "during", 2
  config.model.width_multiplier = 0.32
  config.pruning.name, config.pruning.sparsity = "unstructured", 0.8
  config.during.method = "rigl"
  config.pruning.allocation = "erk"
  config.during.rigl.delta_t = 2  # 16 steps, t_end 12: updates at 2, 4, ..., 10.
  method, _ = during_protocol.build_method(config)
  masks0 = during_protocol.sparse_start(config, method).masks
  assert rigl.DEFAULTS["init_scale"] == "dense"
  summary = protocols.run(config, str(tmp_path))
  train = protocols_common.Phase(str(tmp_path / "train"), {})
  params, masks = method.final(during_protocol.final_state(train))
  flat = jax.tree_util.tree_leaves
  for m, m0 in zip(flat(masks), flat(masks0)):
    assert np.sum(m) == np.sum(m0)  # Every layer keeps its initial count.
  assert not all(np.array_equal(a, b) for a, b in zip(flat(masks), flat(masks0)))
  for p, m in zip(flat(params), flat(masks)):
    assert np.all(np.asarray(p)[np.asarray(m) == 0] == 0)
  assert summary["sparsity"] == pytest.approx(0.8, abs=1e-3)
  assert summary["exact_target"]
  assert summary["test/accuracy"] > 0.2  # Learning sparse: twice chance (0.1).


@pytest.mark.parametrize("name", ["set", "rigl"])
def test_runs_at_other_sparsities_vmap_to_their_own_updates(name):
  # Two runs whose masks differ in density, one at an update step and one
  # not: vmapped together, each gets exactly its own update.
  (a, grads_a, prunable), (b, grads_b, _) = _layers(3), _layers(4)
  b = b.replace(
    masks=jax.tree_util.tree_map(lambda m: jnp.ones_like(m).at[0].set(0.0), b.masks)
  )
  a, b = a.replace(step=jnp.int32(10)), b.replace(step=jnp.int32(11))
  method = _method(name, prunable, alpha=0.6)
  stack = functools.partial(jax.tree_util.tree_map, lambda *xs: jnp.stack(xs))
  both = jax.jit(jax.vmap(method.hooks.after_step))(
    stack(a, b), stack(grads_a, grads_b)
  )
  for i, (state, grads) in enumerate(((a, grads_a), (b, grads_b))):
    alone = method.jitted(state, grads)
    jax.tree_util.tree_map(
      lambda x, y, i=i: np.testing.assert_array_equal(x[i], y),
      (both.params, both.masks),
      (alone.params, alone.masks),
    )
  assert not np.array_equal(both.masks["a"]["kernel"][0], a.masks["a"]["kernel"])
