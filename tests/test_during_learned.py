"""STR, CS and DST (`jaxprune.pruning.during.{str_, cs, dst}`): each update
rule against the same steps written out here with plain `jax.grad`, the
direction in which each method's sparsity follows its hyperparameters, exact
final masks, grouped (vmapped) runs, and one `train_and_evaluate` run each."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from step_helpers import step_fn, tiny_mlp

from jaxprune import config_utils, models, pruning
from jaxprune.pruning import during
from jaxprune.pruning import masks as masks_lib
from jaxprune.pruning.during import common, cs
from jaxprune.train import loop
from jaxprune.train import steps as steps_lib
from jaxprune.train.state import state_from_params

LR, WD = 0.1, 0.01
MODEL = "mlp7_linear"
pytestmark = pytest.mark.usefixtures("fast_compiles")


def _config(method: str, num_epochs: int = 1, **options) -> ml_collections.ConfigDict:
  c = config_utils.base_config()
  c.num_epochs = num_epochs
  c.pruning.name = "unstructured"
  c.during.method = method
  for k, v in options.items():
    c.during[method][k] = v
  return c


def _method(config, params, steps_per_epoch=2, model=MODEL):
  pred = pruning.predicate(config.pruning, model, 10)
  prunable = masks_lib.prunable_tree(params, pred)
  return during.build(during.Context(config, prunable, steps_per_epoch)), prunable


def _tx(wd=WD):
  # PyTorch SGD: the decay is added to the gradient.
  return optax.chain(optax.add_decayed_weights(wd), optax.sgd(LR))


def _step_and_init(model, method, tx):
  """The (unjitted) train step with the method's hooks, and a state maker."""
  step, hyper = step_fn(model, tx, method.hooks, LR)
  step = functools.partial(step, hyper=hyper)
  init = functools.partial(
    state_from_params, tx=tx, rng=jax.random.key(0), init_aux=method.hooks.init_aux
  )
  return step, init


def _train(model, method, params, x, y, steps, tx=None):
  step, init = _step_and_init(model, method, tx or _tx())
  step = jax.jit(step)
  state = init(params, {})
  for _ in range(steps):
    state, _ = step(state, images=x, labels=y)
  return state


def _ce(model, params, x, y):
  logits = model.apply({"params": params}, x, train=False)
  return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def _names(params, prunable):
  return [
    "/".join(p)
    for (p, _), f in zip(
      masks_lib.leaves_with_names(params), jax.tree_util.tree_leaves(prunable)
    )
    if f
  ]


def _reparam(params, aux, prunable, fn):
  """params with fn(w, aux[name]) at the prunable leaves (written out here)."""
  flat, treedef = jax.tree_util.tree_flatten_with_path(params)
  flags = jax.tree_util.tree_leaves(prunable)
  out = [
    fn(w, aux["/".join(masks_lib.path_names(p))]) if f else w
    for (p, w), f in zip(flat, flags)
  ]
  return jax.tree_util.tree_unflatten(treedef, out)


def _sgd_steps(model, params, aux, x, y, loss_extra, forward, steps, wd=WD):
  """Plain SGD with L2 decay on (params, aux), `steps` times, by hand."""

  def total(p, a, t):
    return _ce(model, forward(p, a, t), x, y) + loss_extra(a, t)

  grad = jax.jit(jax.grad(total, argnums=(0, 1)))
  for t in range(steps):
    gp, ga = grad(params, aux, jnp.float32(t))
    params = jax.tree_util.tree_map(lambda w, g: w - LR * (g + wd * w), params, gp)
    aux = jax.tree_util.tree_map(lambda w, g: w - LR * (g + wd * w), aux, ga)
  return params, aux


def _close(a, b):
  jax.tree_util.tree_map(
    lambda u, v: np.testing.assert_allclose(u, v, rtol=2e-4, atol=2e-6), a, b
  )


def _sigmoid(z):
  return 1.0 / (1.0 + jnp.exp(-z))


# --- the update rules, against hand-written steps ----------------------------


def test_str_step_is_the_soft_threshold_rule():
  model, params, x, y = tiny_mlp()
  config = _config("str", s_init=-2.0)
  method, prunable = _method(config, params)
  state = _train(model, method, params, x, y, steps=2)

  def forward(p, a, t):
    return _reparam(
      p,
      a,
      prunable,
      lambda w, s: jnp.sign(w) * jnp.maximum(jnp.abs(w) - _sigmoid(s), 0),
    )

  aux0 = {n: jnp.float32(-2.0) for n in _names(params, prunable)}
  want_p, want_a = _sgd_steps(model, params, aux0, x, y, lambda a, t: 0.0, forward, 2)
  _close(state.params, want_p)
  _close(state.aux, want_a)
  # Weight decay alone moves a flat-sigmoid s towards 0 (raising the threshold).
  assert all(float(state.aux[n]) > -2.0 for n in state.aux)


def test_cs_step_is_the_soft_mask_rule_with_temperature_and_penalty():
  model, params, x, y = tiny_mlp(1)
  s0, lam, beta_final = 0.1, 0.05, 300.0
  config = _config("cs", s_init=s0, penalty=lam, beta_final=beta_final)
  method, prunable = _method(config, params, steps_per_epoch=2)  # T = 2 steps.
  state = _train(model, method, params, x, y, steps=2)

  def beta(t):
    return beta_final ** (t / 2)  # 1 at step 0, sqrt(300) at step 1.

  def forward(p, a, t):
    return _reparam(
      p, a, prunable, lambda w, s: w * _sigmoid(beta(t) * s) / _sigmoid(s0)
    )

  def penalty(a, t):
    return lam * sum(jnp.sum(_sigmoid(beta(t) * s)) for s in a.values())

  leaves = dict(zip(_names(params, prunable), common.prunable_leaves(params, prunable)))
  aux0 = {n: jnp.full_like(w, s0) for n, w in leaves.items()}
  want_p, want_a = _sgd_steps(model, params, aux0, x, y, penalty, forward, 2)
  _close(state.params, want_p)
  _close(state.aux, want_a)
  # The temperature stays at beta_final past the run's last step.
  assert float(cs.temperature(jnp.int32(5), beta_final, 2)) == pytest.approx(300.0)
  # The forward weights equal the dense ones at initialisation.
  fresh = method.hooks.init_aux(params)
  _close(method.hooks.forward(params, fresh, None, jnp.int32(0)), params)


def _long_tailed_step(x):
  """Unit step whose gradient is DST's estimator, via its antiderivative h:
  h' = 2 - 4|x| on [0, 0.4], 0.4 on (0.4, 1], 0 beyond (h(0.4) = 0.48)."""
  a = jnp.abs(x)
  h = jnp.where(
    a <= 0.4, 2 * a - 2 * a**2, jnp.where(a <= 1.0, 0.48 + 0.4 * (a - 0.4), 0.72)
  )
  h = jnp.sign(x) * h
  return jax.lax.stop_gradient((x > 0).astype(x.dtype) - h) + h


def test_dst_step_is_the_trainable_mask_rule():
  model, params, x, y = tiny_mlp(2)
  alpha = 0.02  # Small enough that no layer is reset (tested below).
  config = _config("dst", alpha=alpha)
  method, prunable = _method(config, params)
  state = _train(model, method, params, x, y, steps=2)

  def forward(p, a, t):
    return _reparam(
      p, a, prunable, lambda w, th: w * _long_tailed_step(jnp.abs(w) - th)
    )

  def penalty(a, t):
    return alpha * sum(jnp.sum(jnp.exp(-th)) for th in a.values())

  leaves = dict(zip(_names(params, prunable), common.prunable_leaves(params, prunable)))
  aux0 = {n: jnp.zeros(w.shape[-1]) for n, w in leaves.items()}
  want_p, want_a = _sgd_steps(model, params, aux0, x, y, penalty, forward, 2)
  _close(state.params, want_p)
  _close(state.aux, want_a)
  # One threshold per output unit (the kernel's last axis), raised by alpha.
  for n, w in leaves.items():
    assert state.aux[n].shape == (w.shape[-1],)
    assert float(jnp.mean(state.aux[n])) > 0


def test_dst_resets_a_layer_that_keeps_at_most_one_percent():
  model, params, x, y = tiny_mlp(3)
  method, prunable = _method(_config("dst", alpha=1e-3), params)
  state = _train(model, method, params, x, y, steps=0)
  first, second = _names(params, prunable)[:2]
  state = state.replace(aux={**state.aux, first: state.aux[first] + 100.0})
  new = method.hooks.after_step(state, None)
  np.testing.assert_array_equal(new.aux[first], 0.0)
  np.testing.assert_array_equal(new.aux[second], state.aux[second])


# --- sparsity follows the hyperparameters; final masks are exact ------------


def _final_sparsity(method, prunable, state):
  params, masks = method.final(state)
  for w, m in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(masks)):
    m = np.asarray(m)
    assert set(np.unique(m)) <= {0.0, 1.0}
    assert np.all(np.asarray(w)[m == 0] == 0)
  return float(common.mask_sparsity(masks, prunable))


@pytest.mark.parametrize(
  "method,low,high,wd",
  [
    ("str", {"s_init": -3.0}, {"s_init": -1.5}, WD),  # Higher s_init: sparser.
    ("str", {"s_init": -3.0}, {"s_init": -3.0}, "wd"),  # More decay: sparser.
    ("cs", {"s_init": 0.05}, {"s_init": -0.05}, WD),  # Lower s_init: sparser.
    ("cs", {"s_init": 0.02, "penalty": 0.0}, {"s_init": 0.02, "penalty": 0.05}, WD),
    ("dst", {"alpha": 1e-4}, {"alpha": 0.5}, WD),  # Higher alpha: sparser.
  ],
)
def test_sparsity_moves_in_the_documented_direction(method, low, high, wd):
  model, params, x, y = tiny_mlp(4)
  got = []
  for options, decay in (
    (low, 0.0 if wd == "wd" else wd),
    (high, 0.5 if wd == "wd" else wd),
  ):
    m, prunable = _method(_config(method, num_epochs=5, **options), params)
    state = _train(model, m, params, x, y, steps=10, tx=_tx(decay))
    got.append(_final_sparsity(m, prunable, state))
  assert 0.0 <= got[0] < got[1] <= 1.0, got


def test_grouped_runs_equal_runs_alone():
  """Two runs (different inits) vmapped together give each run's own result."""
  model, params, x, y = tiny_mlp(5)
  params2 = jax.tree_util.tree_map(lambda w: 0.9 * w, params)
  # DST has every piece the others have (aux, forward, penalty) and an
  # in-step reset (`after_step` with jnp.where on traced values).
  method, _ = _method(_config("dst", alpha=0.2), params)
  step, init = _step_and_init(model, method, _tx())
  alone = [jax.jit(step)(init(p, {}), images=x, labels=y)[0] for p in (params, params2)]
  stacked = jax.tree_util.tree_map(
    lambda *a: jnp.stack(a), init(params, {}), init(params2, {})
  )
  both, _ = jax.jit(jax.vmap(lambda s: step(s, images=x, labels=y)))(stacked)
  for i, one in enumerate(alone):
    mine = jax.tree_util.tree_map(lambda a, i=i: a[i], (both.params, both.aux))
    _close(mine, (one.params, one.aux))
  first = next(iter(both.aux))  # The two runs did differ.
  assert not np.array_equal(both.aux[first][0], both.aux[first][1])


# --- options -----------------------------------------------------------------


@pytest.mark.parametrize(
  "method,field,value,message",
  [
    ("str", "s_init", math.nan, "during.str.s_init must be a finite number"),
    ("str", "s_init", None, "during.str.s_init must be a number"),
    ("cs", "penalty", -1e-8, "during.cs.penalty must be >= 0"),
    ("cs", "beta_final", 0.5, "during.cs.beta_final must be >= 1"),
    ("dst", "alpha", -1.0, "during.dst.alpha must be >= 0"),
  ],
)
def test_bad_options_are_refused_with_the_field(method, field, value, message):
  config = _config(method)
  with config.unlocked():
    config.during[method][field] = value
  with pytest.raises(ValueError, match=message):
    during.validate(config)


@pytest.mark.parametrize("method", ["str", "cs", "dst"])
def test_structured_pruning_is_refused(method):
  config = _config(method)
  config.pruning.name = "structured"
  with pytest.raises(
    ValueError, match=r"^pruning.name must be one of \['unstructured'\]"
  ):
    during.validate(config)


# --- end to end ----------------------------------------------------------------


@pytest.mark.parametrize(
  "method,options",
  [
    ("str", {"s_init": -3.0}),
    ("cs", {"s_init": -0.01, "penalty": 1e-3}),
    ("dst", {"alpha": 1e-2}),
  ],
)
def test_train_and_evaluate_ends_with_exact_masks(
  prune_config, tmp_path, method, options
):
  config = prune_config.copy_and_resolve_references()
  with config.unlocked():
    config.protocol = "train"
    config.during.method = method
    for k, v in options.items():
      config.during[method][k] = v
  steps_per_epoch = 256 // config.batch_size
  name = config.model.name
  config.model.widths = (8,) * 6
  params = models.create(name, num_classes=10, widths=(8,) * 6).init(
    jax.random.key(0), jnp.zeros((1, 32, 32, 1)), train=False
  )["params"]
  built, prunable = _method(config, params, steps_per_epoch, model=name)
  seen = {}

  def keep_last(epoch, state):
    seen["state"] = jax.device_get(state)
    return state

  summary = loop.train_and_evaluate(
    config, str(tmp_path), hooks=built.hooks, on_epoch_end=keep_last
  )
  assert summary["status"] == "completed"
  state = seen["state"]
  assert int(state.step) == steps_per_epoch
  sparsity = _final_sparsity(built, prunable, state)
  # The masks are the rule's: |w| > sigmoid(s), s > 0, |w| > t.
  kept = {
    "str": lambda w, s: np.abs(w) > 1 / (1 + np.exp(-s)),
    "cs": lambda w, s: s > 0,
    "dst": lambda w, t: np.abs(w) > t,
  }[method]
  names = _names(state.params, prunable)
  leaves = common.prunable_leaves(state.params, prunable)
  count = sum(
    np.sum(kept(np.asarray(w), np.asarray(state.aux[n]))) for n, w in zip(names, leaves)
  )
  total = sum(w.size for w in leaves)
  assert sparsity == pytest.approx(1 - count / total, abs=1e-6)
  assert 0.0 < sparsity < 1.0
  if method != "cs":  # The evaluated net is the final one (CS: soft -> hard).
    evaluated = steps_lib.eval_variables(state, built.hooks)["params"]
    _close(evaluated, built.final(state)[0])
