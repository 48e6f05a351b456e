"""Mixed precision (jaxprune/train/precision.py) against independent computations.

* The bfloat16 step computes what a hand-written bfloat16 MLP computes (and
  not what float32 does), with float32 grads and optimizer state.
* MLP-7 and a narrow ResNet-20 train in every precision on separable toy data
  with 50%-pruned kernels: pruned weights stay exactly zero and the accuracy is
  within 1 point of float32's.
* Dynamic loss scaling: an injected non-finite gradient changes nothing but
  halves the scale, finite steps go on as the plain optimizer would, the scale
  grows after its interval; a float16 run started with an overflowing scale
  recovers and learns.
* A run records precision and matmul_precision in summary.json.
"""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from conftest import make_images

from jaxprune import models
from jaxprune.data import pipeline
from jaxprune.train import hyper as hyper_lib
from jaxprune.train import loop, precision, sharding
from jaxprune.train.state import state_from_params
from jaxprune.train.steps import Steps, eval_variables

pytestmark = pytest.mark.usefixtures("fast_compiles")  # Short runs: compiles dominate.

OPTIMIZER = ml_collections.ConfigDict(dict(name="sgd", momentum=0.9, weight_decay=1e-4))
PRE = pipeline.Preprocess(mean=(0.2,), std=(0.3,))


def _data(n: int, seed: int):
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, 10, n).astype(np.int32)
  return jnp.asarray(make_images(labels, rng)[..., None]), jnp.asarray(labels)


def _random_masks(params, seed: int = 0):
  """50% of every kernel's entries pruned at random (biases, BN kept)."""
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_map_with_path(
    lambda path, x: (
      (rng.random(x.shape) < 0.5).astype(np.float32)
      if "kernel" in jax.tree_util.keystr(path)
      else np.ones(x.shape, np.float32)
    ),
    params,
  )


def _train(name, overrides, prec, epochs, lr, make_tx=None):
  """(accuracy on held-out data, final state, masks) of a short run."""
  model = models.create(name, **overrides)
  params, batch_stats = models.init_variables(model, jax.random.key(0), (28, 28, 1))
  masks = _random_masks(jax.device_get(params))
  hyper = hyper_lib.build(OPTIMIZER, optax.constant_schedule(lr), 64)
  make_tx = make_tx or hyper_lib.make_tx(OPTIMIZER, prec)
  steps = Steps(model, make_tx, PRE, sharding.make_mesh(), 32, 128, precision=prec)
  state = state_from_params(
    params, batch_stats, make_tx(hyper), jax.random.key(1), masks
  )
  state = jax.device_put(state, sharding.replicated(steps.mesh))
  images, labels = _data(256, 0)
  for epoch in range(epochs):
    state, _ = steps.train_epoch(state, hyper, images, labels, jax.random.key(2), epoch)
  test_images, test_labels = _data(128, 1)
  sums = steps.evaluate_resident(eval_variables(state), test_images, test_labels)
  return float(sums["correct_sum"] / sums["count"]), state, masks


def _assert_pruned_exactly_zero(state, masks):
  for p, m in zip(
    jax.tree_util.tree_leaves(jax.device_get(state.params)),
    jax.tree_util.tree_leaves(masks),
  ):
    assert p.dtype == np.float32  # Params stay float32.
    assert np.all(p[m == 0] == 0)


@pytest.mark.parametrize(
  "name,overrides,epochs,lr,precisions",
  [
    ("mlp7_relu", dict(widths=(32,) * 6, init="orthogonal"), 4, 0.05, None),
    # Convolutions and BatchNorm in the low-precision dtype; float16's loss
    # scaling is the same code as for the MLP (and tested on its own below),
    # so the slow conv net runs float32 and bfloat16 only.
    ("resnet20", dict(width_multiplier=0.25), 8, 0.1, ("float32", "bfloat16")),
  ],
)
def test_every_precision_trains_keeps_masks_and_matches_float32(
  name, overrides, epochs, lr, precisions
):
  precisions = precisions or precision.PRECISIONS
  results = {p: _train(name, overrides, p, epochs, lr) for p in precisions}
  reference = results["float32"][0]
  assert reference >= 0.9  # The toy task is learnt at all.
  for prec, (accuracy, state, masks) in results.items():
    _assert_pruned_exactly_zero(state, masks)
    assert abs(accuracy - reference) <= 0.01, (prec, accuracy, reference)
    for stats in jax.tree_util.tree_leaves(state.batch_stats):
      assert stats.dtype == jnp.float32
    for leaf in jax.tree_util.tree_leaves(state.opt_state):
      assert leaf.dtype in (jnp.float32, jnp.int32)
  if "float16" in results:
    assert precision.loss_scale(results["float16"][1].opt_state) is not None
  assert precision.loss_scale(results["float32"][1].opt_state) is None


def test_bfloat16_step_is_the_handwritten_bfloat16_forward():
  model = models.create("mlp7_relu", widths=(16,) * 6)
  params, _ = models.init_variables(model, jax.random.key(0), (28, 28, 1))
  images, labels = _data(32, 0)
  tx = optax.sgd(0.0)
  make_tx, hyper = hyper_lib.fixed(tx, lambda s: 0.0)

  def step_loss(prec):
    steps = Steps(model, make_tx, PRE, sharding.make_mesh(), 32, 32, precision=prec)
    state = state_from_params(params, {}, tx, jax.random.key(1))
    return float(steps._step(state, hyper, images, labels)[1]["loss"])

  def handwritten(dtype):
    x = PRE(images, None, train=False).reshape(32, -1).astype(dtype)
    layers = [k for k in sorted(params) if k != "head"] + ["head"]
    for k in layers:
      w, b = params[k]["kernel"].astype(dtype), params[k]["bias"].astype(dtype)
      x = x @ w + b
      x = jax.nn.relu(x) if k != "head" else x
    logits = x.astype(jnp.float32)
    return float(optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean())

  bf16, f32 = step_loss("bfloat16"), step_loss("float32")
  assert f32 == pytest.approx(handwritten(jnp.float32), rel=1e-6)
  assert bf16 == pytest.approx(handwritten(jnp.bfloat16), rel=1e-3)
  assert abs(bf16 - f32) > 10 * abs(bf16 - handwritten(jnp.bfloat16))


def test_loss_scaling_skips_an_overflow_and_goes_on():
  inner = optax.sgd(0.1, momentum=0.9)
  tx = precision.loss_scaling(inner, init_scale=8.0, growth_interval=2)
  params = {"w": jnp.ones(3)}
  grads = {"w": jnp.asarray([1.0, 2.0, 3.0])}
  state = tx.init(params)
  bad = {"w": jnp.asarray([1.0, jnp.inf, jnp.nan])}
  updates, after_bad = tx.update(bad, state, params)
  np.testing.assert_array_equal(updates["w"], np.zeros(3))
  assert float(after_bad.scale) == 4.0 and int(after_bad.good_steps) == 0
  # Momentum untouched by the overflow.
  jax.tree_util.tree_map(np.testing.assert_array_equal, after_bad.inner, state.inner)
  # Finite steps: exactly the plain optimizer's updates; the scale doubles
  # after `growth_interval` of them.
  plain_state = inner.init(params)
  s = after_bad
  for _ in range(2):
    updates, s = tx.update(grads, s, params)
    plain, plain_state = inner.update(grads, plain_state, params)
    np.testing.assert_array_equal(updates["w"], plain["w"])
  assert float(s.scale) == 8.0 and int(s.good_steps) == 0


def test_float16_run_recovers_from_an_overflowing_loss_scale():
  # 2**24 makes the backward pass overflow float16 (its max is 65504): the
  # first steps are skipped and halve the scale until gradients are finite.
  def make_tx(hyper):
    inner = hyper_lib.make_tx(OPTIMIZER)(hyper)
    return precision.loss_scaling(inner, init_scale=2.0**24)

  overrides = dict(widths=(32,) * 6, init="orthogonal")
  accuracy, state, masks = _train("mlp7_relu", overrides, "float16", 6, 0.05, make_tx)
  scale = float(precision.loss_scale(state.opt_state))
  assert scale < 2.0**24  # Overflows happened and were skipped.
  assert accuracy >= 0.9
  _assert_pruned_exactly_zero(state, masks)


def test_summary_records_precision(tiny_config, tmp_path):
  config = tiny_config.copy_and_resolve_references()
  with config.unlocked():
    config.num_epochs = 1
    config.precision = "bfloat16"
    config.matmul_precision = "highest"
  loop.train_and_evaluate(config, str(tmp_path))
  with open(os.path.join(tmp_path, "summary.json")) as f:
    summary = json.load(f)
  assert summary["precision"] == "bfloat16"
  assert summary["matmul_precision"] == "highest"


def test_bad_precision_names_the_field(tiny_config, tmp_path):
  for field, value in (("precision", "fp8"), ("matmul_precision", "tf32")):
    config = tiny_config.copy_and_resolve_references()
    with config.unlocked():
      config[field] = value
    with pytest.raises(ValueError, match=f"^{field} must be one of"):
      loop.train_and_evaluate(config, str(tmp_path / field))


def test_vmapped_float16_group_trains_like_its_runs_alone():
  # Each run of a vmapped group carries its own loss scale (a leading run axis).
  model = models.create("mlp7_relu", widths=(16,) * 6, init="orthogonal")
  params, _ = models.init_variables(model, jax.random.key(0), (28, 28, 1))
  hyper = hyper_lib.build(OPTIMIZER, optax.constant_schedule(0.05), 16)
  make_tx = hyper_lib.make_tx(OPTIMIZER, "float16")
  mesh = sharding.make_mesh()
  images, labels = _data(64, 0)
  keys = jax.random.split(jax.random.PRNGKey(2), 2)
  alone = []
  for i in range(2):
    steps = Steps(model, make_tx, PRE, mesh, 32, 64, precision="float16")
    state = state_from_params(params, {}, make_tx(hyper), jax.random.key(i))
    state = jax.device_put(state, sharding.replicated(mesh))
    alone.append(steps.train_epoch(state, hyper, images, labels, keys[i], 0)[0])
  vsteps = Steps(model, make_tx, PRE, mesh, 32, 64, vmapped=True, precision="float16")
  states = [
    state_from_params(params, {}, make_tx(hyper), jax.random.key(i)) for i in range(2)
  ]
  group = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *states)
  group = jax.device_put(group, sharding.replicated(mesh))
  ghyper = jax.tree_util.tree_map(lambda x: np.stack([x, x]), hyper)
  group, _ = vsteps.train_epoch(group, ghyper, images, labels, keys, np.zeros(2))
  assert precision.loss_scale(group.opt_state).shape == (2,)
  for i, state in enumerate(alone):
    one = jax.tree_util.tree_map(lambda x, i=i: x[i], group.params)
    for a, b in zip(
      jax.tree_util.tree_leaves(one), jax.tree_util.tree_leaves(state.params)
    ):
      np.testing.assert_allclose(a, b, atol=1e-5)
