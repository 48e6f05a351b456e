"""Learning-rate schedules for training and for retraining after pruning.

`create(config, steps_per_epoch, pruning=None)` returns an `optax.Schedule`
(step -> LR): pure `jnp`, usable under `jax.jit`, also called with Python ints.
`config.name` picks the schedule; invalid configs raise ValueError naming the
field (`validate(config)` checks without building for a data pipeline).

Training schedules (see `training.py`; epoch-wise ones are constant within an
epoch, epoch = step // steps_per_epoch, as in the papers' codes):
  constant   lr, [epochs]
  piecewise  spec "0:0.1,80:0.01,120:0.001" (Wang et al. notation), epochs
  step       lr, epochs, milestones, gamma=0.1
  halving    lr, final_lr, epochs, max_stage_epochs=30, gamma=0.1
             (Wang et al. 2023 App. A Rules 1-3; max_stage_epochs=None: no Rule 3)
  cosine     lr, epochs, min_lr=0, warmup_epochs=0        (per step)
  linear     lr, epochs, final_lr=0, warmup_epochs=0      (per step)
  cyclic_linear  lr, epochs, restarts=(epochs...), final_lr=0: linear to
             final_lr, restarted at each epoch of `restarts` (per step)
  onecycle   max_lr, epochs, initial_lr=max_lr/100, final_lr=initial_lr/100,
             warmup_fraction=0.1   (PyTorch OneCycleLR, cosine both phases)
  All but onecycle and cyclic_linear also take warmup_epochs=0, warmup_shape="linear"|"cosine",
  warmup_init_lr=0 (per-step ramp to the schedule's LR at the warm-up's end).

Retraining schedules (see `retraining.py`): fields `base` (a training schedule
config), `retrain_epochs`, `flavor="zimmer2023"|"le2021"`, `warmup_fraction`
(0.1; 0 for the tuned ones), `warmup_shape="cosine"`, `warmup_init_lr`
(0; le2021 SLR: eta_min):
  ft, lrw, slr, clr, llr, allr, acc_allr, allr_d1, allr_d2, and the tuned
  baselines constant / step / cosine / linear with `lr` -- a config named
  constant/step/cosine/linear is a retraining schedule iff it has a `base`.
  ALLR variants need `pruning` (PruningStats or dict) for each cycle.

Iterative pruning restarts the schedule each prune-retrain cycle: build one
schedule per cycle with that cycle's stats (`create` with the cycle's
`retrain_epochs`; the step counter restarts at 0), or use `cyclic` to get the
whole BIMP-style cyclic curve at once (e.g. for plots).

`register(name)` adds a training schedule from a user's module (see
docs/extending.md); `names()` lists every accepted name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import optax

from jaxprune import checks, registry
from jaxprune.schedules import core, retraining, training
from jaxprune.schedules.core import Schedule, format_spec, parse_spec
from jaxprune.schedules.retraining import (
  DEFAULT_FLAVOR,
  FLAVORS,
  PruningStats,
  allr_initial_lr,
)
from jaxprune.schedules.training import check_fields, halving_spec

TRAINING_NAMES = (
  "constant",
  "piecewise",
  "step",
  "halving",
  "cosine",
  "linear",
  "cyclic_linear",
  "onecycle",
)
RETRAINING_NAMES = retraining.VARIANTS + retraining.TUNED

# Training schedules by name: fn(config, steps_per_epoch, path) -> (schedule,
# epochs or None). The built-ins share `training.build`; `register` adds more.
Builder = Callable[[Any, int, str], tuple[Schedule, int | None]]
TRAINING: registry.Registry[Builder] = registry.Registry("schedule")
for _name in TRAINING_NAMES:
  TRAINING.add(_name, training.build)


def register(name: str, *, replace: bool = False) -> Callable[[Builder], Builder]:
  """Decorator: registers a training schedule ``fn(config, steps_per_epoch,
  path) -> (step -> lr, epochs or None)`` as ``schedule.name=name``.

  ``fn`` must be jit-safe (``jnp``) and should reject fields it does not know
  with a ValueError naming ``f"{path}.FIELD"``.
  """
  return TRAINING.decorator(name, replace=replace)


def names() -> tuple[str, ...]:
  """Every schedule name: the training ones (built-in and registered), then
  the retraining ones."""
  return tuple(dict.fromkeys(TRAINING.names() + RETRAINING_NAMES))


def is_retraining(config: Any) -> bool:
  """True if `config` describes a retraining schedule (it has a `base`)."""
  name = config.get("name")
  return name in retraining.VARIANTS or (
    name in retraining.TUNED and config.get("base") is not None
  )


def _build(config: Any, steps_per_epoch: int, pruning: Any, path: str) -> Schedule:
  name = config.get("name") if hasattr(config, "get") else None
  checks.choice(name, f"{path}.name", names())
  # Building evaluates the base schedule (eta_max, tables) with concrete
  # numbers, also when `create` is called inside a jitted function.
  with jax.ensure_compile_time_eval():
    if is_retraining(config):
      return retraining.build(config, steps_per_epoch, pruning, path)
    return TRAINING.get(name)(config, steps_per_epoch, path)[0]


def _check_steps_per_epoch(steps_per_epoch: Any) -> int:
  if (
    isinstance(steps_per_epoch, bool)
    or not isinstance(steps_per_epoch, int | float)
    or int(steps_per_epoch) != steps_per_epoch
    or steps_per_epoch <= 0
  ):
    raise ValueError(
      f"steps_per_epoch must be a positive integer, got {steps_per_epoch!r}"
    )
  return int(steps_per_epoch)


def create(
  config: Any,
  steps_per_epoch: int,
  pruning: PruningStats | dict | None = None,
  path: str = "schedule",
) -> optax.Schedule:
  """Returns the jit-safe `step -> learning rate` function for `config`."""
  return _build(config, _check_steps_per_epoch(steps_per_epoch), pruning, path)


def momentum(config: Any, steps_per_epoch: int) -> optax.Schedule | None:
  """`step -> SGD momentum` when `config` cycles it (le2021 CLR), else None."""
  if not hasattr(config, "get") or config.get("name") not in retraining.VARIANTS:
    return None
  return retraining.momentum_schedule(config, steps_per_epoch)


def validate(config: Any, path: str = "schedule") -> None:
  """Checks `config` (names, fields, ranges); raises ValueError if invalid."""
  _build(config, 1, retraining.VALIDATING, path)


def cyclic(
  config: Any,
  steps_per_epoch: int,
  pruning: Sequence[PruningStats | dict | None],
  path: str = "schedule",
) -> tuple[Schedule, list[int]]:
  """Whole LR curve of iterative prune-retrain cycles (BIMP's cyclic ALLR).

  `config.retrain_epochs` is the total retraining budget, split over
  `len(pruning)` cycles as BIMP does (`total // n` each, the last one gets the
  remainder). Returns the schedule and the per-cycle epochs.
  """
  spe = _check_steps_per_epoch(steps_per_epoch)
  if not is_retraining(config):
    raise ValueError(f"{path} must be a retraining schedule for cyclic()")
  epochs = core.split_epochs(config.retrain_epochs, len(pruning))
  pieces, bounds, start = [], [], 0
  for k, (cycle_epochs, stats) in enumerate(zip(epochs, pruning)):
    cycle = config.copy_and_resolve_references()
    cycle.retrain_epochs = cycle_epochs
    pieces.append(_build(cycle, spe, stats, f"{path}[cycle {k}]"))
    if k:
      bounds.append(start)
    start += cycle_epochs * spe
  return core.join(pieces, bounds), epochs


__all__ = [
  "DEFAULT_FLAVOR",
  "FLAVORS",
  "RETRAINING_NAMES",
  "TRAINING_NAMES",
  "PruningStats",
  "Schedule",
  "allr_initial_lr",
  "check_fields",
  "create",
  "cyclic",
  "format_spec",
  "halving_spec",
  "is_retraining",
  "momentum",
  "names",
  "parse_spec",
  "register",
  "validate",
]
