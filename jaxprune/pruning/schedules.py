"""Pruning schedules: *when* to prune and to *which* sparsity.

(Learning-rate schedules live in ``jaxprune.schedules``; nothing here touches
the learning rate.)

* ``one_shot``: prune once to the target (after training, or "prune at epoch
  k" of a training run: Wang et al.'s P30F90 etc.).
* ``imp``: iterative magnitude pruning, exponential to the target. Either a
  fixed fraction of the *remaining* weights per cycle (OpenLTH / Renda: 20%),
  cycle k reaching ``1 - (1 - rate)^k`` (the last cycle is clipped to the
  target), or BIMP's ``n`` equal cycles with ``rate = 1 - (1 - target)^(1/n)``.
* ``gmp``: Zhu & Gupta's cubic ``s(t) = s_f (1 - (1 - (t - t0)/(t1 - t0))^3)``
  for ``t0 <= t <= t1``, pruning every ``frequency`` steps (or epochs).
  :func:`gmp_sparsity` is jit-safe; with ``jaxprune.pruning.allocation``'s
  jit-safe top-k, soft GMP can run inside a compiled loop.
"""

from __future__ import annotations

import math
from typing import Any

import jax.numpy as jnp
import ml_collections

SCHEDULES = ("one_shot", "imp", "gmp")


def imp_sparsities(target: float, *, rate: float = 0.2, cycles: int = 0) -> list[float]:
  """Cumulative sparsity after each IMP cycle (the last equals ``target``)."""
  if not 0.0 <= target < 1.0:
    raise ValueError(f"sparsity must be in [0, 1) for IMP, got {target}")
  if target == 0.0:
    return []
  if cycles > 0:
    per = 1 - (1 - target) ** (1 / cycles)
    out = [1 - (1 - per) ** k for k in range(1, cycles + 1)]
    out[-1] = target  # Exactly the target despite float round-off.
    return out
  if not 0.0 < rate < 1.0:
    raise ValueError(f"imp_rate must be in (0, 1), got {rate}")
  n = math.ceil(math.log(1 - target) / math.log(1 - rate) - 1e-9)
  return [min(1 - (1 - rate) ** k, target) for k in range(1, n)] + [target]


def per_cycle_fraction(before: float, after: float) -> float:
  """Fraction of the remaining weights a cycle prunes (BIMP's conversion)."""
  return 1 - (1 - after) / (1 - before)


def gmp_sparsity(
  step: Any, target: float, start: int, end: int, initial: float = 0.0
) -> Any:
  """Cubic GMP sparsity at ``step`` (jit-safe; clipped outside [start, end])."""
  if end <= start:
    return jnp.where(jnp.asarray(step) >= start, target, initial)
  progress = jnp.clip(
    (jnp.asarray(step, jnp.float32) - start) / (end - start), 0.0, 1.0
  )
  return target + (initial - target) * (1.0 - progress) ** 3


def gmp_is_pruning_step(step: Any, start: int, end: int, frequency: int) -> Any:
  """True at ``start, start + f, ...`` up to ``end`` (jit-safe)."""
  step = jnp.asarray(step)
  return (step >= start) & (step <= end) & ((step - start) % frequency == 0)


def bimp_gmp_epochs(
  num_epochs: int, interval: int, target: float
) -> list[tuple[int, float]]:
  """BIMP's GMP: prune at the end of epochs ``t * interval``, t = 1..n-1.

  ``n_steps = num_epochs // interval - 1`` and ``s(t) = s_f - s_f (1 - t /
  n_steps)^3``, so the target is reached one interval before the end.
  """
  n_steps = num_epochs // interval - 1
  if n_steps < 1:
    raise ValueError(
      f"GMP needs num_epochs >= 2 * interval, got {num_epochs}, {interval}"
    )
  return [
    (t * interval, target - target * (1 - t / n_steps) ** 3)
    for t in range(1, n_steps + 1)
  ]


def events(
  config: ml_collections.ConfigDict, num_epochs: int
) -> list[tuple[int, float]]:
  """``(epoch, sparsity)`` pruning events of a training run of ``num_epochs``.

  Pruning happens *after* the given epoch (epoch 0 = before training). For
  ``one_shot`` the epoch is ``config.prune_epoch`` (None = after training);
  ``imp`` returns one event per cycle at epoch 0 (the caller retrains between
  them); ``gmp`` uses ``gmp_start``/``gmp_end``/``gmp_frequency`` in epochs.
  The sparsity is ``config.sparsity`` (unstructured) or ``config.ratio``.
  """
  target = config.sparsity if config.name == "unstructured" else config.ratio
  if config.schedule == "one_shot":
    epoch = num_epochs if config.prune_epoch is None else int(config.prune_epoch)
    if not 0 <= epoch <= num_epochs:
      raise ValueError(f"pruning.prune_epoch must be in [0, {num_epochs}], got {epoch}")
    return [(epoch, target)]
  if config.schedule == "imp":
    return [
      (0, s)
      for s in imp_sparsities(target, rate=config.imp_rate, cycles=config.imp_cycles)
    ]
  if config.schedule == "gmp":
    start, end, f = config.gmp_start, config.gmp_end, config.gmp_frequency
    if end > num_epochs:
      raise ValueError(
        f"pruning.gmp_end must be <= num_epochs ({num_epochs}), got {end}"
      )
    epochs = list(range(start, end + 1, f))
    if epochs[-1] != end:  # Always finish exactly at the target.
      epochs.append(end)
    return [(e, float(gmp_sparsity(e, target, start, end))) for e in epochs]
  raise ValueError(
    f"pruning.schedule must be one of {list(SCHEDULES)}, got {config.schedule!r}"
  )
