"""SET and RigL (`pruning.during.set_`, `pruning.during.rigl`): the drop/grow
update against the same update written out with numpy on tiny layers, the
exactly constant sparsity over many updates, the drop-fraction schedule, and a
short end-to-end run; plus the train step's promise that `after_step` sees the
gradients of pruned weights (RigL grows by them)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxprune import models
from jaxprune.pruning.step_hooks import StepHooks
from jaxprune.train import hyper as hyper_lib
from jaxprune.train import steps as steps_lib
from jaxprune.train.state import state_from_params

LR = 0.1


def _mlp(seed=0):
  model = models.create("mlp7_linear", num_classes=10, widths=(8,) * 6)
  x = jax.random.normal(jax.random.key(seed), (16, 32, 32, 1))
  y = jax.random.randint(jax.random.key(seed + 1), (16,), 0, 10)
  params = model.init(jax.random.key(2), x[:1], train=False)["params"]
  return model, params, x, y


def _jitted_step(model, tx, hooks):
  make_tx, hyper = hyper_lib.fixed(tx, lambda s: LR)
  step = functools.partial(
    steps_lib.train_step,
    model=model,
    make_tx=make_tx,
    preprocess=lambda x, rng, train: x,
    hooks=hooks,
  )
  return jax.jit(lambda state, x, y: step(state, hyper, x, y))


def test_after_step_gets_the_gradient_of_pruned_weights_under_hard_masks():
  model, params, x, y = _mlp()
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
  new, _ = _jitted_step(model, tx, hooks)(state, x, y)

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
