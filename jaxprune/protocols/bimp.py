"""`bimp`: Budgeted IMP (Zimmer et al. 2023 Sec. 2.2) on the prune-retrain loop.

Dense = T0 = `num_epochs` epochs with a linearly decaying `schedule` (the
paper: "train a network for some T0 < T epochs using a linearly decaying
learning rate schedule"; any other T0 schedule is refused unless
`bimp.allow_nonlinear_t0` says it is a deliberate ablation), then J
prune-retrain cycles (`prune_retrain.run_cycles`) splitting the rest of the budget
T = `bimp.budget_epochs` (`schedules.core.split_epochs`: (T - T0) // J each,
the last gets the remainder), with LLR/ALLR, so the total is exactly T epochs.
"""

from __future__ import annotations

from typing import Any

import ml_collections

from jaxprune.protocols import common, prune_retrain
from jaxprune.protocols.registry import protocol
from jaxprune.schedules import core


def bimp_epochs(config: ml_collections.ConfigDict) -> list[int]:
  """Per-cycle retraining epochs: (T - T0) split over the J cycles."""
  total, t0 = config.bimp.budget_epochs, config.num_epochs
  if total <= t0:
    raise ValueError(f"bimp.budget_epochs must be > num_epochs (T0={t0}), got {total}")
  return core.split_epochs(total - t0, len(prune_retrain.cycle_targets(config)))


def validate_bimp(config: ml_collections.ConfigDict) -> None:
  name = config.schedule.get("name")
  if name != "linear" and not config.bimp.allow_nonlinear_t0:
    raise ValueError(
      f"schedule.name must be 'linear' for protocol 'bimp' (BIMP trains its T0 "
      f"epochs with a linearly decaying LR), got {name!r}; set "
      "bimp.allow_nonlinear_t0=True to run another T0 schedule"
    )
  prune_retrain.validate_pruning(config, ("one_shot", "imp"))
  prune_retrain.validate_retrain(config, bimp_epochs(config)[0])


@protocol("bimp", validate=validate_bimp)
def bimp(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  epochs = bimp_epochs(config)
  dense = common.dense_phase(config, workdir)
  summary = prune_retrain.run_cycles(config, workdir, dense, epochs)
  summary["setup"] = f"BIMP {config.retrain.schedule} T={config.bimp.budget_epochs}"
  return common.finish(config, workdir, summary)
