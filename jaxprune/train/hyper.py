"""A run's optimizer hyperparameters as data, so many runs share one program.

A schedule is a step -> LR function; evaluating it once per step on the host
gives a table, and the train step reads `table[step]`. A run's `Hyper` is a
small pytree of such arrays:

  lr            float32[T]  the LR of steps 0..T-1 (T >= the run's steps, a
                            power of two; later steps hold the last value);
  momentum_lr   float32[T]  (only when the schedule cycles SGD momentum, le2021
                            CLR) the momentum of every step;
  weight_decay  float32[]   `optimizer.weight_decay`;
  momentum      float32[]   `optimizer.momentum` (SGD).

Runs whose hyperparameters differ only in these values (seeds, LR schedules of
any kind and length, ALLR's per-run statistics, weight decay, momentum) have
the same program: `make_tx(config.optimizer)` builds the optimizer inside the
step from the traced values, and `jax.vmap` over a leading run axis of the
hyper trees trains them together (`jaxprune.train.loop.train_runs`). What does
change the program is in `loop.Run.program_key`: the optimizer's kind,
Nesterov, whether momentum and weight decay are on at all, whether momentum is
scheduled.

The tables equal the schedule functions bit for bit (the same jnp arithmetic,
evaluated by `jax.vmap`; tests/test_hyper.py pins it against the schedule
evaluated step by step inside a scan, as a train step did).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from jaxprune.train import optim
from jaxprune.train import precision as precision_lib

Hyper = dict[str, Any]
MakeTx = Callable[[Hyper], optax.GradientTransformation]


def table(schedule: Callable[[Any], Any], num_steps: int) -> np.ndarray:
  """`schedule(0..num_steps-1)` as a float32 array (at least one entry)."""
  steps = jnp.arange(max(int(num_steps), 1), dtype=jnp.int32)
  return np.asarray(jax.jit(jax.vmap(schedule))(steps), np.float32)


def lookup(values: jax.Array, step: jax.Array) -> jax.Array:
  """`values[step]`, holding the last value past the end (as the schedules do)."""
  index = jnp.clip(jnp.asarray(step, jnp.int32), 0, values.shape[-1] - 1)
  return jnp.asarray(values)[index]


def learning_rate(hyper: Hyper, step: jax.Array) -> jax.Array:
  return lookup(hyper["lr"], step).astype(jnp.float32)


def build(
  optimizer: ml_collections.ConfigDict,
  lr_schedule: Callable[[Any], Any],
  num_steps: int,
  momentum_schedule: Callable[[Any], Any] | None = None,
) -> Hyper:
  """The hyperparameter tree of one run of `num_steps` optimizer steps."""
  length = bucket(num_steps)
  hyper = {
    "lr": table(lr_schedule, length),
    "weight_decay": np.float32(optimizer.get("weight_decay", 0.0)),
    "momentum": np.float32(optimizer.get("momentum", 0.0) or 0.0),
  }
  if momentum_schedule is not None:
    hyper["momentum_lr"] = table(momentum_schedule, length)
  return hyper


def bucket(num_steps: int) -> int:
  """The table length for `num_steps`: the next power of two, so runs of
  nearby lengths (budgets, phases) have equal shapes and share a program; the
  extra entries hold the schedule's final value and are never reached."""
  return 1 << max(int(num_steps) - 1, 0).bit_length()


def pad(hyper: Hyper, num_steps: int) -> Hyper:
  """`hyper` with its tables extended to `num_steps` by their last value (runs
  of different lengths then stack; steps past a run's end are never taken)."""

  def extend(x):
    x = np.asarray(x)
    if x.ndim == 0 or x.shape[-1] >= num_steps:
      return x
    return np.concatenate([x, np.repeat(x[-1:], num_steps - x.shape[-1])])

  return {k: extend(v) for k, v in hyper.items()}


def make_tx(optimizer: ml_collections.ConfigDict, precision: str = "float32") -> MakeTx:
  """`hyper -> optax transformation` for runs of `optimizer` (= config.optimizer)
  in `precision` (= config.precision; float16 wraps the optimizer in dynamic
  loss scaling, `jaxprune.train.precision`)."""
  precision_lib.compute_dtype(precision)  # Fails early on a typo.

  def build_tx(hyper: Hyper) -> optax.GradientTransformation:
    momentum_schedule = None
    if "momentum_lr" in hyper:
      momentum_schedule = lambda count: lookup(hyper["momentum_lr"], count)  # noqa: E731
    tx = optim.create(
      optimizer,
      lambda count: learning_rate(hyper, count),
      momentum_schedule,
      weight_decay=hyper["weight_decay"],
      momentum=hyper["momentum"],
    )
    return precision_lib.loss_scaling(tx) if precision == "float16" else tx

  return build_tx


def fixed(
  tx: optax.GradientTransformation,
  lr_schedule: Callable[[Any], Any],
  num_steps: int = 1,
) -> tuple[MakeTx, Hyper]:
  """A prebuilt optimizer for `Steps` (tests, notebooks): `make_tx` ignores
  the hyper data; the table only feeds the logged `lr` metric."""
  return (lambda hyper: tx), {"lr": table(lr_schedule, num_steps)}
