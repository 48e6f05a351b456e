"""Shared pieces of the tests: a tiny MLP-7 problem and the one train step
with a method's hooks (so each method test writes only its own rule), and the
tiny protocol config the protocol and grouped-run tests start from."""

from __future__ import annotations

import functools

import jax

from jaxprune import models
from jaxprune.train import hyper as hyper_lib
from jaxprune.train import steps as steps_lib


def tiny_mlp(seed: int = 0, model_name: str = "mlp7_linear"):
  """(model, params, x, y): MLP-7 of width 8 and 16 random 32x32 examples."""
  model = models.create(model_name, num_classes=10, widths=(8,) * 6)
  x = jax.random.normal(jax.random.key(seed), (16, 32, 32, 1))
  y = jax.random.randint(jax.random.key(seed + 1), (16,), 0, 10)
  params = model.init(jax.random.key(2), x[:1], train=False)["params"]
  return model, params, x, y


def step_fn(model, tx, hooks, lr: float):
  """`steps.train_step` with `hooks` and the fixed optimizer `tx` (logged LR
  `lr`), unjitted, as `step(state, hyper, images, labels)`, and its hyper."""
  make_tx, hyper = hyper_lib.fixed(tx, lambda s: lr)
  step = functools.partial(
    steps_lib.train_step,
    model=model,
    make_tx=make_tx,
    preprocess=lambda x, rng, train: x,
    hooks=hooks,
  )
  return step, hyper


def jitted_step(model, tx, hooks, lr: float):
  """`step_fn` jitted as `step(state, images, labels)`."""
  step, hyper = step_fn(model, tx, hooks, lr)
  return jax.jit(lambda state, x, y: step(state, hyper, x, y))


def tiny_protocol_config(tiny_fmnist, width: int, cache_dir: str):
  """MLP-7 of `width` on 256 tiny Fashion-MNIST examples, batch 64, 2 epochs
  of linear LR 0.05, 1 retraining epoch, 80 % unstructured pruning: the base
  of the protocol tests (one run in seconds)."""
  import ml_collections

  from jaxprune import config_utils

  data_dir, manual_dir, _ = tiny_fmnist
  c = config_utils.base_config()
  c.data.data_dir, c.data.manual_dir = data_dir, manual_dir
  c.data.image_size = (32, 32)
  c.data.train_limit = 256
  c.num_epochs = 2
  c.batch_size, c.eval_batch_size = 64, 128
  c.progress = False
  c.model.init = "orthogonal"
  c.model.widths = (width,) * 6
  c.schedule = ml_collections.ConfigDict(
    dict(name="linear", lr=0.05, epochs=c.get_ref("num_epochs"))
  )
  c.retrain.num_epochs = 1
  c.pruning.name, c.pruning.sparsity = "unstructured", 0.8
  c.cache_dir = cache_dir
  return c
