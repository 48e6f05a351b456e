"""GSM and LC (`jaxprune.pruning.during.gsm` / `.lc`): each step of the
project's train step against the same steps written out with numpy and plain
`jax.grad` on a tiny MLP; GSM's passive weights only decay; LC's C-step keeps
exactly the top-k and its pull shrinks ||w - theta|| as mu grows; vmapped
(grouped) steps equal single ones; a short `train_and_evaluate` run ends at
the target sparsity."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxprune import config_utils, models
from jaxprune.protocols import gmp
from jaxprune.pruning import during
from jaxprune.pruning.during import common
from jaxprune.train import hyper as hyper_lib
from jaxprune.train import steps as steps_lib
from jaxprune.train.loop import train_and_evaluate
from jaxprune.train.state import state_from_params

pytestmark = pytest.mark.usefixtures("fast_compiles")

LR, BETA, WD, SPARSITY = 0.1, 0.9, 0.01, 0.6


def _config(method: str, **lc) -> ml_collections.ConfigDict:
  c = config_utils.base_config()
  c.model.name, c.num_epochs = "mlp7_linear", 5  # 50 steps of 10 (below).
  c.model.widths = (8,) * 6
  c.optimizer.momentum, c.optimizer.weight_decay = BETA, WD
  c.pruning.name, c.pruning.sparsity = "unstructured", SPARSITY
  c.during.method = method
  c.during.lc.update(lc)
  return c


def _setup(config, seed=0):
  model = models.create("mlp7_linear", num_classes=10, widths=(8,) * 6)
  x = jax.random.normal(jax.random.key(seed), (16, 32, 32, 1))
  y = jax.random.randint(jax.random.key(seed + 1), (16,), 0, 10)
  params = model.init(jax.random.key(seed + 2), x[:1], train=False)["params"]
  prunable = gmp.prunable_tree(config, params)
  during.validate(config)
  method = during.build(during.Context(config, prunable, steps_per_epoch=10))
  return model, params, prunable, method, x, y


def _stepper(config, model, hooks, vmapped=False, lr=LR):
  make_tx = hyper_lib.make_tx(config.optimizer)
  hyper = hyper_lib.build(config.optimizer, lambda s: lr, 8)
  plain = dict(make_tx=make_tx, preprocess=lambda x, rng, train: x)
  step = functools.partial(steps_lib.train_step, model=model, hooks=hooks, **plain)
  if vmapped:
    return jax.jit(jax.vmap(lambda s, x, y: step(s, hyper, x, y)[0]))
  return jax.jit(lambda s, x, y: step(s, hyper, x, y)[0]), make_tx(hyper)


def _loss(model, params, x, y):
  logits = model.apply({"params": params}, x, train=False)
  return steps_lib.cross_entropy(logits, y).mean()


def _flat(tree, prunable):
  return np.concatenate(
    [np.asarray(x).ravel() for x in common.prunable_leaves(tree, prunable)]
  )


def _unflat(flat, like, prunable):
  """`like` with its prunable leaves replaced from the flat vector."""
  leaves, treedef = jax.tree_util.tree_flatten(like)
  flags, out, at = jax.tree_util.tree_leaves(prunable), [], 0
  for x, f in zip(leaves, flags, strict=True):
    if f:
      out.append(jnp.asarray(flat[at : at + x.size].reshape(x.shape)))
      at += x.size
    else:
      out.append(x)
  return jax.tree_util.tree_unflatten(treedef, out)


def _sgd(w, buf, g):
  """PyTorch SGD: d = g + wd w; buf = beta buf + d; w -= lr buf (trees)."""
  d = jax.tree_util.tree_map(lambda gi, wi: gi + WD * wi, g, w)
  buf = jax.tree_util.tree_map(lambda b, di: BETA * b + di, buf, d)
  return jax.tree_util.tree_map(lambda wi, b: wi - LR * b, w, buf), buf


def _topk(values, keep):
  """1.0 at the `keep` largest entries of a flat numpy vector."""
  out = np.zeros(values.size, np.float32)
  out[np.argsort(-values, kind="stable")[:keep]] = 1.0
  return out


def _close(a, b):
  jax.tree_util.tree_map(
    lambda u, v: np.testing.assert_allclose(u, v, rtol=2e-5, atol=2e-6), a, b
  )


def test_gsm_steps_match_numpy_and_passive_weights_only_decay():
  config = _config("gsm")
  model, params, prunable, method, x, y = _setup(config)
  step, tx = _stepper(config, model, method.hooks)
  state = state_from_params(params, {}, tx, jax.random.key(0))
  n = _flat(params, prunable).size
  keep = n - round(SPARSITY * n)

  w, buf, actives = params, jax.tree_util.tree_map(jnp.zeros_like, params), []
  for _ in range(2):
    state = step(state, x, y)
    g = jax.jit(jax.grad(lambda p: _loss(model, p, x, y)))(w)
    active = _topk(np.abs(_flat(w, prunable) * _flat(g, prunable)), keep)
    actives.append(active)
    g = _unflat(_flat(g, prunable) * active, g, prunable)  # Others: full grad.
    w, buf = _sgd(w, buf, g)
  _close(state.params, w)

  # Weights passive at both steps follow momentum SGD with a zero loss gradient.
  passive = (actives[0] == 0) & (actives[1] == 0)
  assert passive.sum() > 0.3 * n
  w0 = _flat(params, prunable)
  buf1 = WD * w0
  w1 = w0 - LR * buf1
  w2 = w1 - LR * (BETA * buf1 + WD * w1)
  np.testing.assert_allclose(
    _flat(state.params, prunable)[passive], w2[passive], rtol=1e-6
  )
  # Training stays dense; `final` keeps exactly the top-Q magnitudes.
  assert float(common.mask_sparsity(state.masks, prunable)) == 0.0
  final_params, final_masks = method.final(state)
  m = _flat(final_masks, prunable)
  np.testing.assert_array_equal(m, _topk(np.abs(_flat(state.params, prunable)), keep))
  assert np.all(_flat(final_params, prunable)[m == 0] == 0)


def test_lc_l_and_c_steps_match_the_penalized_gradient_and_projection():
  mu_init, mu_factor = 0.5, 3.0
  config = _config("lc", mu_init=mu_init, mu_factor=mu_factor, c_step_every=1)
  model, params, prunable, method, x, y = _setup(config, seed=3)
  step, tx = _stepper(config, model, method.hooks)
  state = state_from_params(params, {}, tx, jax.random.key(0))
  n = _flat(params, prunable).size
  keep = n - round(SPARSITY * n)

  def objective(p, theta, mu):
    pull = sum(
      jnp.sum((a - b) ** 2)
      for a, b in zip(
        common.prunable_leaves(p, prunable), common.prunable_leaves(theta, prunable)
      )
    )
    return _loss(model, p, x, y) + 0.5 * mu * pull

  w, buf = params, jax.tree_util.tree_map(jnp.zeros_like, params)
  for t in range(3):
    state = step(state, x, y)
    if t == 0:  # Before the first C-step theta = w: plain training.
      theta, mu = w, 0.0
    else:  # C-step of the current weights, then mu_init * factor^(t - 1).
      flat = _flat(w, prunable)
      theta = _unflat(flat * _topk(np.abs(flat), keep), w, prunable)
      mu = mu_init * mu_factor ** (t - 1)
    w, buf = _sgd(w, buf, jax.jit(jax.grad(objective))(w, theta, mu))
  _close(state.params, w)
  # The C-step after the last step kept exactly the top-k magnitudes.
  m = _flat(state.masks, prunable)
  assert m.sum() == keep
  np.testing.assert_array_equal(m, _topk(np.abs(_flat(state.params, prunable)), keep))
  np.testing.assert_allclose(
    float(during.lc.mu_at(jnp.int32(3), mu_init, mu_factor, 1)), mu_init * mu_factor**2
  )


def test_lc_c_steps_every_k_steps():
  config = _config("lc", mu_init=0.1, c_step_every=2)
  model, params, prunable, method, x, y = _setup(config, seed=4)
  step, tx = _stepper(config, model, method.hooks)
  state = state_from_params(params, {}, tx, jax.random.key(0))
  seen = []
  for _ in range(3):
    state = step(state, x, y)
    seen.append(float(common.mask_sparsity(state.masks, prunable)))
  # Masks change only after steps 2, 4, ...
  assert seen[0] == 0.0 and seen[1] == seen[2] > 0.5


def test_lc_pull_shrinks_distance_to_theta_as_mu_grows():
  def distance(mu_init, mu_factor=1.0):
    config = _config("lc", mu_init=mu_init, mu_factor=mu_factor)
    model, params, prunable, method, x, y = _setup(config, seed=5)
    step, tx = _stepper(config, model, method.hooks, lr=0.01)
    state = state_from_params(params, {}, tx, jax.random.key(0))
    out = []
    for _ in range(40):
      state = step(state, x, y)
      w = _flat(state.params, prunable)
      out.append(np.linalg.norm(w * (1 - _flat(state.masks, prunable))))
    return out

  finals = [distance(mu)[-1] for mu in (0.01, 0.3, 3.0)]
  assert finals[0] > finals[1] > finals[2]
  # One run whose mu grows 0.01 -> 0.01 * 1.2^38 ~ 10: the distance falls
  # from ~0.8 (measured 0.81 -> 0.17) while the constant 0.01 stays ~0.79.
  growing = distance(0.01, mu_factor=1.2)
  assert growing[-1] < 0.25 * growing[0] and growing[-1] < 0.5 * finals[0]


@pytest.mark.parametrize("method", ["gsm", "lc"])
def test_grouped_steps_equal_single_ones(method):
  config = _config(method, mu_init=0.5)
  model, _, _, built, x, y = _setup(config)
  step, tx = _stepper(config, model, built.hooks)
  states = []
  for seed in (0, 7):
    params = _setup(config, seed)[1]
    states.append(state_from_params(params, {}, tx, jax.random.key(seed)))
  singles = [step(step(s, x, y), x, y) for s in states]
  stacked = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *states)
  vstep = _stepper(config, model, built.hooks, vmapped=True)
  xs, ys = jnp.stack([x, x]), jnp.stack([y, y])
  grouped = vstep(vstep(stacked, xs, ys), xs, ys)
  for i, single in enumerate(singles):
    run = functools.partial(jax.tree_util.tree_map, lambda a, i=i: a[i])
    _close(run(grouped.params), single.params)
    _close(run(grouped.masks), single.masks)


@pytest.mark.parametrize(
  "field,value,method",
  [
    ("during.lc.mu_factor", 0.5, "lc"),
    ("during.lc.mu_init", 0.0, "lc"),
    ("during.lc.c_step_every", 0, "lc"),
    ("optimizer.weight_decay", 0.0, "gsm"),
    ("pruning.allocation", "erk", "gsm"),
    ("pruning.allocation", "lamp", "lc"),
    ("pruning.name", "structured", "lc"),
  ],
)
def test_bad_options_name_the_field(field, value, method):
  config = _config(method)
  section, name = field.rsplit(".", 1)
  parent = config
  for part in section.split("."):
    parent = parent[part]
  parent[name] = value
  with pytest.raises(ValueError, match=field.replace(".", r"\.")):
    during.validate(config)


def test_lc_refuses_a_mu_that_overflows():
  with pytest.raises(ValueError, match=r"during\.lc\.mu_factor"):
    during.lc.check_growth(1e-4, 2.0, every=1, num_steps=1000)


@pytest.mark.parametrize("method", ["gsm", "lc"])
def test_end_to_end_run_ends_at_the_target_sparsity(tiny_config, tmp_path, method):
  config = ml_collections.ConfigDict(
    tiny_config.copy_and_resolve_references().to_dict()
  )
  config.num_epochs, config.data.train_limit = 1, 256
  config.schedule.spec = "0:0.05"
  config.model.widths = (16,) * 6
  config.pruning.name, config.pruning.sparsity = "unstructured", 0.8
  config.during.method = method
  config.during.lc.mu_init = 0.5
  during.validate(config)
  params = models.init_variables(
    models.create(config.model.name, num_classes=10, widths=(16,) * 6),
    jax.random.key(0),
    (1, 32, 32, 1),
  )[0]
  prunable = gmp.prunable_tree(config, params)
  built = during.build(during.Context(config, prunable, steps_per_epoch=4))
  seen = {}

  def capture(epoch, state):
    seen["state"] = state
    return {}

  summary = train_and_evaluate(
    config, str(tmp_path / method), hooks=built.hooks, callbacks=[capture]
  )
  assert summary["status"] == "completed"
  final_params, final_masks = built.final(seen["state"])
  n = _flat(final_masks, prunable).size
  assert _flat(final_masks, prunable).sum() == n - round(0.8 * n)
  assert np.all(_flat(final_params, prunable)[_flat(final_masks, prunable) == 0] == 0)
  if method == "lc":  # Evaluation during training already measured theta.
    assert _flat(seen["state"].masks, prunable).sum() == n - round(0.8 * n)
