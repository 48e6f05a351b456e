"""Optimizer factory: SGD (PyTorch semantics) and Adam from `config.optimizer`.

Weight decay is L2 added to the gradient before momentum, as in PyTorch's
`SGD(weight_decay=...)`, which every seed repository uses; `adamw` is decoupled.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import optax

OPTIMIZERS = ("sgd", "adam", "adamw")


class _TraceState(NamedTuple):
  count: jnp.ndarray
  trace: Any


def _scheduled_trace(momentum: optax.Schedule, nesterov: bool):
  """optax.trace with a per-step decay (PyTorch SGD whose momentum a scheduler
  sets every step, as OneCycleLR's `cycle_momentum`)."""

  def init(params):
    zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
    return _TraceState(jnp.zeros([], jnp.int32), zeros)

  def update(updates, state, params=None):
    del params
    m = momentum(state.count)
    trace = jax.tree_util.tree_map(lambda g, t: g + m * t, updates, state.trace)
    if nesterov:
      updates = jax.tree_util.tree_map(lambda g, t: g + m * t, updates, trace)
    else:
      updates = trace
    return updates, _TraceState(state.count + 1, trace)

  return optax.GradientTransformation(init, update)


def create(
  config: ml_collections.ConfigDict,
  learning_rate: optax.ScalarOrSchedule,
  momentum_schedule: optax.Schedule | None = None,
  *,
  weight_decay: Any = None,
  momentum: Any = None,
) -> optax.GradientTransformation:
  """Builds the optax transformation described by `config` (= config.optimizer);
  `momentum_schedule` (SGD only) replaces `momentum` by a per-step value.

  `weight_decay` / `momentum` (possibly traced arrays: `jaxprune.train.hyper`)
  replace the config's values; whether each is on at all is read from the
  config, so the structure of the optimizer state never depends on them.
  """
  name = config.name
  wd = float(config.get("weight_decay", 0.0))
  if wd < 0:
    raise ValueError(f"optimizer.weight_decay must be >= 0, got {wd}")
  wd_value = wd if weight_decay is None else weight_decay
  decay = optax.add_decayed_weights(wd_value) if wd else optax.identity()
  if name == "sgd":
    m = float(config.get("momentum", 0.0))
    if not 0.0 <= m < 1.0:
      raise ValueError(f"optimizer.momentum must be in [0, 1), got {m}")
    nesterov = bool(config.get("nesterov", False))
    if nesterov and m == 0.0:
      raise ValueError("optimizer.nesterov=True needs optimizer.momentum > 0")
    # PyTorch: d = g + wd * w; buf = m * buf + d; w -= lr * buf (nesterov: d + m*buf).
    if momentum_schedule is not None:
      return optax.chain(
        decay,
        _scheduled_trace(momentum_schedule, nesterov),
        optax.scale_by_learning_rate(learning_rate),
      )
    m_value = m if momentum is None else momentum
    return optax.chain(
      decay,
      optax.sgd(learning_rate, momentum=m_value if m else None, nesterov=nesterov),
    )
  if momentum_schedule is not None:
    raise ValueError(f"a momentum schedule needs optimizer.name='sgd', got {name!r}")
  if name == "adam":
    b1, b2 = float(config.get("b1", 0.9)), float(config.get("b2", 0.999))
    return optax.chain(
      decay,
      optax.adam(learning_rate, b1=b1, b2=b2, eps=float(config.get("eps", 1e-8))),
    )
  if name == "adamw":
    return optax.adamw(
      learning_rate,
      b1=float(config.get("b1", 0.9)),
      b2=float(config.get("b2", 0.999)),
      weight_decay=wd_value,
    )
  raise ValueError(f"optimizer.name must be one of {list(OPTIMIZERS)}, got {name!r}")
