"""Masks during training: exact zeros through SGD, checkpoints, soft pruning, slimming."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxprune import models, pruning
from jaxprune.pruning import masks as masks_lib
from jaxprune.pruning import step_hooks as hooks_lib
from jaxprune.train import checkpointing
from jaxprune.train import hyper as hyper_lib
from jaxprune.train import steps as steps_lib
from jaxprune.train.state import state_from_params

pytestmark = pytest.mark.usefixtures("fast_compiles")

# 8x8 inputs: ResNet-56's convs and global pooling work at any size, and the
# invariant under test does not depend on the resolution.
SHAPE = (8, 8, 3)


def _step(model, tx, soft=False, regularizer=None):
  make_tx, hyper = hyper_lib.fixed(tx, lambda s: 0.1)
  step = functools.partial(
    steps_lib.train_step,
    model=model,
    make_tx=make_tx,
    preprocess=lambda x, rng, train: x,
    hooks=hooks_lib.from_pieces(regularizer, masks_lib.apply if soft else None),
  )
  return jax.jit(lambda state, images, labels: step(state, hyper, images, labels))


def _data(n=8, seed=0):
  rng = np.random.default_rng(seed)
  return (
    jnp.asarray(rng.normal(size=(n, *SHAPE)), jnp.float32),
    jnp.asarray(rng.integers(0, 10, n), jnp.int32),
  )


def test_resnet56_global_90_exact_through_sgd_and_checkpoint(tmp_path):
  model = models.create("resnet56")
  v = jax.jit(model.init, static_argnames="train")(
    jax.random.key(0), jnp.zeros((1, *SHAPE)), train=False
  )
  cfg = pruning.default_config()
  cfg.name, cfg.sparsity, cfg.allocation = "unstructured", 0.9, "global"
  res = pruning.prune(cfg, v["params"], v["batch_stats"], model_name="resnet56")
  rep = masks_lib.sparsity(res.masks, res.prunable)
  # Conv + dense kernels of ResNet-56 (option A): 848,944 prunable weights.
  assert rep.total == 848_944
  assert abs(rep.zeros - 0.9 * rep.total) <= len(rep.per_layer)
  assert masks_lib.sparsity(res.params, res.prunable).zeros == rep.zeros

  tx = optax.chain(optax.add_decayed_weights(5e-4), optax.sgd(0.05, momentum=0.9))
  state = state_from_params(
    res.params, res.batch_stats, tx, jax.random.key(1), res.masks
  )
  step = _step(model, tx)
  images, labels = _data()
  before = np.asarray(state.params["stage2_block8"]["conv2"]["kernel"]).copy()
  for _ in range(50):
    state, metrics = step(state, images, labels)
  assert np.isfinite(float(metrics["loss"]))
  after = masks_lib.sparsity(state.params, res.prunable)
  assert after.zeros == rep.zeros  # Exactly the pruned weights, still zero.
  pruned = np.asarray(res.masks["stage2_block8"]["conv2"]["kernel"]) == 0
  kernel = np.asarray(state.params["stage2_block8"]["conv2"]["kernel"])
  assert np.all(kernel[pruned] == 0) and not np.allclose(
    kernel[~pruned], before[~pruned]
  )
  # Momentum buffers at pruned positions are zero too (masked gradients).
  trace = jax.tree_util.tree_leaves(state.opt_state)
  assert any(np.asarray(t).shape == kernel.shape for t in trace)

  with checkpointing.Checkpointer(str(tmp_path / "ckpt")) as ckpt:
    ckpt.save("latest", 50, state, {"epoch": 1})
  with checkpointing.Checkpointer(str(tmp_path / "ckpt")) as ckpt:
    restored, _ = ckpt.restore("latest", checkpointing.abstract_like(state))
  jax.tree_util.tree_map(np.testing.assert_array_equal, restored.masks, state.masks)
  jax.tree_util.tree_map(np.testing.assert_array_equal, restored.params, state.params)
  # Training continues from the restored state with the same invariant.
  restored, _ = step(restored, images, labels)
  assert masks_lib.sparsity(restored.params, res.prunable).zeros == rep.zeros


def test_soft_masks_keep_dense_weights_and_regrow_on_recompute():
  model = models.create("mlp7_relu")
  v = jax.jit(model.init, static_argnames="train")(
    jax.random.key(0), jnp.zeros((1, 32, 32, 1)), train=False
  )
  cfg = pruning.default_config()
  cfg.name, cfg.sparsity, cfg.mode = "unstructured", 0.5, "soft"
  res = pruning.prune(cfg, v["params"], None, model_name="mlp7_relu")
  tx = optax.chain(optax.add_decayed_weights(1e-2), optax.sgd(0.1, momentum=0.9))
  # Dense weights are kept: start from the unmasked params.
  state = state_from_params(v["params"], {}, tx, jax.random.key(1))
  state = state.replace(masks=res.masks)
  step = _step(model, tx, soft=True)
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(16, 32, 32, 1)), jnp.float32)
  y = jnp.asarray(rng.integers(0, 10, 16), jnp.int32)
  w0 = np.asarray(v["params"]["fc1"]["kernel"])
  state, _ = step(state, x, y)
  m = np.asarray(res.masks["fc1"]["kernel"]) == 0
  w1 = np.asarray(state.params["fc1"]["kernel"])
  # Pruned weights: no loss gradient, only weight decay: w * (1 - lr * wd).
  np.testing.assert_allclose(w1[m], w0[m] * (1 - 0.1 * 1e-2), rtol=1e-5)
  # Eval sees the masked net.
  ev = steps_lib.eval_variables(state)["params"]["fc1"]["kernel"]
  assert np.all(np.asarray(ev)[m] == 0)
  # Recomputing the soft masks from scratch can revive a pruned weight.
  boosted = jax.tree_util.tree_map(lambda p: p, state.params)
  boosted["fc1"]["kernel"] = jnp.where(
    jnp.asarray(m), 5.0, state.params["fc1"]["kernel"]
  )
  again = pruning.prune(cfg, boosted, None, model_name="mlp7_relu", masks=res.masks)
  assert np.all(np.asarray(again.masks["fc1"]["kernel"])[m] == 1)


def test_slimming_penalty_gradient_is_s_sign_gamma():
  model = models.create("resnet20")
  v = jax.jit(model.init, static_argnames="train")(
    jax.random.key(0), jnp.zeros((1, *SHAPE)), train=False
  )
  params = jax.tree_util.tree_map(
    lambda x: x + 0.3 * jax.random.normal(jax.random.key(3), x.shape), v["params"]
  )
  cfg = pruning.default_config()
  cfg.name, cfg.criterion, cfg.slimming_strength = "structured", "bn_scale", 1e-4
  hook = pruning.slimming_hook(cfg, "resnet20")
  images, labels = _data()
  tx = optax.sgd(0.1)

  def loss(p, with_hook):
    logits, _ = model.apply(
      {"params": p, "batch_stats": v["batch_stats"]},
      images,
      train=True,
      mutable=["batch_stats"],
    )
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    return ce + (hook(p) if with_hook else 0.0)

  g_plain = jax.jit(jax.grad(lambda p: loss(p, False)))(params)
  g_hook = jax.jit(jax.grad(lambda p: loss(p, True)))(params)
  # Network slimming: grad(gamma) += s * sign(gamma) on every BN; nothing else changes.
  for path in (("stem_bn",), ("stage1_block2", "bn1"), ("stage2_block0", "bn2")):
    gp, gh, p = g_plain, g_hook, params
    for k in path:
      gp, gh, p = gp[k], gh[k], p[k]
    np.testing.assert_allclose(
      gh["scale"], gp["scale"] + 1e-4 * np.sign(p["scale"]), rtol=1e-5, atol=1e-8
    )
    np.testing.assert_allclose(gh["bias"], gp["bias"], rtol=1e-6, atol=1e-9)
  np.testing.assert_allclose(
    g_hook["head"]["kernel"], g_plain["head"]["kernel"], rtol=1e-6, atol=1e-9
  )
  # And the hook plugs into the train step.
  state = state_from_params(params, v["batch_stats"], tx, jax.random.key(1))
  new, _ = _step(model, tx, regularizer=hook)(state, images, labels)
  assert np.isfinite(float(new.params["stem_bn"]["scale"].sum()))


def test_prune_between_phases_with_fresh_optimizer():
  model = models.create("resnet20", shortcut="B_conv")
  v = jax.jit(model.init, static_argnames="train")(
    jax.random.key(0), jnp.zeros((1, *SHAPE)), train=False
  )
  cfg = pruning.default_config()
  cfg.name, cfg.criterion, cfg.ratio, cfg.groups = "structured", "l1", 0.5, "all"
  tx = optax.sgd(0.1, momentum=0.9)

  def first_step(surgery: bool):
    """Prune, a fresh optimizer, one step: (widths, loss of that step)."""
    cfg.surgery = surgery
    res = pruning.prune(
      cfg,
      v["params"],
      v["batch_stats"],
      model_name="resnet20",
      model_overrides={"shortcut": "B_conv"},
    )
    widths = {} if res.widths is None else {"widths": res.widths}
    net = models.create("resnet20", shortcut="B_conv", **widths)
    state = state_from_params(
      res.params, res.batch_stats, tx, jax.random.key(1), res.masks
    )
    _, metrics = _step(net, tx)(state, *_data())
    return res.widths, float(metrics["loss"])

  widths, loss = first_step(surgery=True)
  assert widths.stages == (8, 16, 32)
  # The small model's first step sees the loss of the full-size model masked
  # to the same channels (an independent path to the same function).
  full_widths, masked_loss = first_step(surgery=False)
  assert full_widths is None
  assert loss == pytest.approx(masked_loss, rel=1e-5)


def test_config_base_has_pruning_section():
  from jaxprune import config_utils

  c = config_utils.base_config()
  assert c.pruning.name == "none"
  with pytest.raises(ValueError, match=r"pruning\.rounding"):
    c.pruning.name, c.pruning.criterion = "structured", "l1"
    c.pruning.rounding = "round"
    pruning.validate(c.pruning)
