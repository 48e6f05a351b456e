"""`StepHooks`: each place a pruning method changes the train step, checked
against the same step written out with plain `jax.grad` on a tiny MLP, and
checkpoints of states with and without method variables (`aux`)."""

from __future__ import annotations

from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from step_helpers import jitted_step, tiny_mlp

from jaxprune.pruning import step_hooks as hooks_lib
from jaxprune.train import checkpointing
from jaxprune.train import steps as steps_lib
from jaxprune.train.state import from_checkpoint, state_from_params, to_checkpoint

LR = 0.1


def _loss(model, params, x, y):
  logits = model.apply({"params": params}, x, train=False)
  return steps_lib.cross_entropy(logits, y).mean()


def _close(a, b, **kw):
  jax.tree_util.tree_map(lambda u, v: np.testing.assert_allclose(u, v, **kw), a, b)


def test_aux_variables_get_the_loss_gradient_and_the_optimizer():
  model, params, x, y = tiny_mlp()
  # A learnable output scale: forward multiplies the last kernel by it.
  hooks = hooks_lib.StepHooks(
    name="scale",
    forward=lambda p, aux, m, s: {
      **p,
      "head": {**p["head"], "kernel": p["head"]["kernel"] * aux["scale"]},
    },
    init_aux=lambda p: {"scale": jnp.float32(1.5)},
  )
  tx = optax.sgd(LR)
  state = state_from_params(params, {}, tx, jax.random.key(0), init_aux=hooks.init_aux)
  new, _ = jitted_step(model, tx, hooks, LR)(state, x, y)

  def plain(p, scale):
    return _loss(model, hooks.forward(p, {"scale": scale}, None, 0), x, y)

  gp, gs = jax.grad(plain, argnums=(0, 1))(params, jnp.float32(1.5))
  _close(
    new.params,
    jax.tree_util.tree_map(lambda w, g: w - LR * g, params, gp),
    rtol=1e-5,
    atol=1e-6,
  )
  np.testing.assert_allclose(new.aux["scale"], 1.5 - LR * gs, rtol=1e-5)
  # Evaluation uses the forward weights.
  ev = steps_lib.eval_variables(new, hooks)["params"]["head"]["kernel"]
  np.testing.assert_allclose(
    ev, new.params["head"]["kernel"] * new.aux["scale"], rtol=1e-6
  )


def test_penalty_select_grads_and_after_step():
  model, params, x, y = tiny_mlp(1)
  keep = {
    k: jax.tree_util.tree_map(lambda _, k=k: k != "fc1", v) for k, v in params.items()
  }
  seen = {}

  def after_step(state, grads):
    # Masks from the dense gradients of the step (e.g. RigL growth).
    return state.replace(
      masks=jax.tree_util.tree_map(lambda g: (g != 0).astype(jnp.float32), grads)
    )

  hooks = hooks_lib.StepHooks(
    name="all",
    penalty=lambda p, aux, s: 0.5 * jnp.sum(p["fc2"]["kernel"] ** 2),
    select_grads=lambda g, p, m, s: jax.tree_util.tree_map(
      lambda gi, k: gi * k, g, keep
    ),
    after_step=after_step,
  )
  tx = optax.sgd(LR)
  state = state_from_params(params, {}, tx, jax.random.key(0))
  new, metrics = jitted_step(model, tx, hooks, LR)(state, x, y)
  seen["loss"] = float(metrics["loss"])

  def total(p):
    return _loss(model, p, x, y) + 0.5 * jnp.sum(p["fc2"]["kernel"] ** 2)

  g = jax.grad(total)(params)
  g = jax.tree_util.tree_map(lambda gi, k: gi * k, g, keep)
  _close(
    new.params,
    jax.tree_util.tree_map(lambda w, gi: w - LR * gi, params, g),
    rtol=1e-5,
    atol=1e-6,
  )
  np.testing.assert_array_equal(new.params["fc1"]["kernel"], params["fc1"]["kernel"])
  # The logged loss is the cross-entropy alone, without the penalty.
  np.testing.assert_allclose(seen["loss"], _loss(model, params, x, y), rtol=1e-5)
  assert float(jnp.sum(new.masks["fc1"]["kernel"])) == 0.0  # Selected-away grads.
  assert float(jnp.min(new.masks["fc2"]["kernel"])) == 1.0


@flax.struct.dataclass
class _LegacyState:
  """TrainState's fields before `aux` existed (what older checkpoints hold)."""

  step: Any
  params: Any
  batch_stats: Any
  opt_state: Any
  masks: Any
  rng: Any


@pytest.mark.parametrize("with_aux", [False, True])
def test_checkpoints_with_and_without_aux(tmp_path, with_aux):
  _, params, _, _ = tiny_mlp()
  init_aux = (lambda p: {"s": jnp.ones(3)}) if with_aux else None
  tx = optax.sgd(LR, momentum=0.9)
  state = state_from_params(params, {}, tx, jax.random.PRNGKey(0), init_aux=init_aux)
  with checkpointing.Checkpointer(str(tmp_path)) as ckpt:
    ckpt.save("latest", 1, to_checkpoint(state), {"epoch": 1})
  with checkpointing.Checkpointer(str(tmp_path)) as ckpt:
    tree, _ = ckpt.restore("latest", checkpointing.abstract_like(to_checkpoint(state)))
  restored = from_checkpoint(tree)
  jax.tree_util.tree_map(np.testing.assert_array_equal, restored, state)
  assert ("aux" in to_checkpoint(state)) == with_aux


def test_a_checkpoint_written_before_aux_existed_restores(tmp_path):
  _, params, _, _ = tiny_mlp()
  state = state_from_params(
    params, {}, optax.sgd(LR, momentum=0.9), jax.random.PRNGKey(0)
  )
  legacy = _LegacyState(**{k: v for k, v in to_checkpoint(state).items()})
  with checkpointing.Checkpointer(str(tmp_path)) as ckpt:
    ckpt.save("latest", 1, legacy, {"epoch": 1})
  with checkpointing.Checkpointer(str(tmp_path)) as ckpt:
    tree, _ = ckpt.restore("latest", checkpointing.abstract_like(to_checkpoint(state)))
  restored = from_checkpoint(tree)
  assert restored.aux == {}
  jax.tree_util.tree_map(np.testing.assert_array_equal, restored.params, state.params)


def test_combine_refuses_two_forwards_and_adds_penalties():
  one = hooks_lib.StepHooks(
    "a", forward=lambda p, a, m, s: p, penalty=lambda p, a, s: 1.0
  )
  two = hooks_lib.StepHooks("b", penalty=lambda p, a, s: 2.0, hard_masks=False)
  both = hooks_lib.combine(one, two)
  assert both.penalty(None, None, 0) == 3.0 and not both.hard_masks
  with pytest.raises(ValueError, match="forward"):
    hooks_lib.combine(one, hooks_lib.StepHooks("c", forward=lambda p, a, m, s: p))
