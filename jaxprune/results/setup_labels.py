"""Comparison setups (Wang et al. 2023 Table 2) of two protocol config points.

`results.setups.comparison_setup` labels two runs described by their phases
(base model, pretraining / pruning / fine-tuning / scratch epochs and LRs,
FLOPs). `describe(config, speedup)` derives that description from a sweep
point, so a table's comparisons (fine-tuned vs Scratch-E / Scratch-B, BIMP vs
GMP, FT vs CLR on one base model, ...) can be labelled from the configs that
reproduce them, and `label(a, b, speedup, budget)` does both.

How each protocol maps onto the Table 2 pipeline:
  prune_retrain, slimming  pretraining = the shared dense phase (its cache key
      is the base model id, or `retrain.dense_workdir`); IMP's earlier cycles
      are pruning epochs, the last cycle is fine-tuning.
  bimp     no base model: T0 linear epochs, then T - T0 retraining epochs.
  gmp      no base model: the whole run prunes while training.
  prune_epoch  no base model: k epochs of S, then its fine-tuning (Table 4).
  scratch  no base model, no pretraining: Scratch-E / Scratch-B epochs
      (`budget.scratch_e_epochs` / `scratch_b_epochs`) of the stretched
      schedule on the pruned architecture.
FLOPs are relative: dense 1, pruned 1 / `speedup` (the counted speedup of a
real run; only the ratio matters).
"""

from __future__ import annotations

from typing import Any

import ml_collections

from jaxprune import checks, config_utils
from jaxprune.protocols import budget, common, prune_epoch, prune_retrain
from jaxprune.results import setups
from jaxprune.schedules import training

DESCRIBED = ("prune_retrain", "slimming", "bimp", "gmp", "prune_epoch", "scratch")


def _staircase(schedule: Any) -> Any:
  """The schedule if Table 2 can compare it epoch by epoch, else None."""
  return schedule if schedule.get("name") in training.STAIRCASES else None


def _retrain_lr(config: ml_collections.ConfigDict) -> str | None:
  r = config.retrain
  if r.schedule == "piecewise":
    return r.spec
  if r.schedule == "constant" and not r.warmup_fraction:
    return f"0:{r.lr}"
  return None  # A derived per-step variant: never "the same" LR schedule.


def _target(config: ml_collections.ConfigDict) -> str:
  p = config.pruning
  if p.name == "unstructured":
    return f"sparsity {p.sparsity}"
  return f"{p.criterion} {p.preset or p.ratio}"


def describe(config: ml_collections.ConfigDict, speedup: float | None) -> dict:
  """The `comparison_setup` fields of one config point (module docstring)."""
  name = config.protocol
  checks.choice(name, "protocol", DESCRIBED)
  run: dict[str, Any] = {
    "dataset": config.data.name,
    "network": config.model.name,
    "target": _target(config),
    "dense_flops": 1.0,
    "pruned_flops": None if speedup is None else 1.0 / speedup,
  }
  schedule = common.resolved(config.schedule)
  if name in ("prune_retrain", "slimming"):
    dense = config.retrain.dense_workdir
    key = config_utils.config_hash(common.training_config(config))
    cycles = len(prune_retrain.cycle_targets(config))
    epochs = config.retrain.num_epochs
    run.update(
      base_model=dense or f"dense {key}",
      pretrain_epochs=config.num_epochs,
      pretrain_lr=_staircase(schedule),
      prune_epochs=epochs * (cycles - 1),
      prune_lr=None,
      finetune_epochs=epochs,
      finetune_lr=_retrain_lr(config),
    )
  elif name == "bimp":
    t0 = config.num_epochs
    run.update(
      base_model=None,
      pretrain_epochs=t0,
      pretrain_lr=None,  # Linear: no epoch-wise staircase.
      finetune_epochs=config.bimp.budget_epochs - t0,
    )
  elif name == "gmp":
    run.update(
      base_model=None,
      prune_epochs=config.num_epochs,
      prune_lr=_staircase(schedule),
    )
  elif name == "prune_epoch":
    proto = prune_epoch.epoch_protocol(config, speedup)
    run.update(
      base_model=None,
      pretrain_epochs=proto.prune_epoch,
      pretrain_lr=schedule.spec if schedule.name == "piecewise" else None,
      finetune_epochs=proto.finetune.epochs,
      finetune_lr=proto.finetune,
    )
  else:  # scratch
    s = config.scratch
    if s.budget == "E":
      epochs = budget.scratch_e_epochs(
        config.num_epochs, config.retrain.num_epochs, s.e_convention
      )
    elif speedup is None:
      raise ValueError("a Scratch-B point needs the pruned model's speedup")
    else:
      epochs = budget.scratch_b_epochs(
        config.num_epochs, 1.0, 1.0 / speedup, s.b_extra_epochs, s.max_speedup or None
      )
    stretched = budget.stretch(schedule, epochs) if _staircase(schedule) else None
    run.update(base_model=None, scratch_epochs=epochs, scratch_lr=stretched)
  return run


def label(
  a: ml_collections.ConfigDict,
  b: ml_collections.ConfigDict,
  speedup: float | None = None,
  budget: str = "wang2023",
) -> str:
  """Wang et al. 2023 Table 2 setup of the comparison of points `a` and `b`."""
  return setups.comparison_setup(describe(a, speedup), describe(b, speedup), budget)
