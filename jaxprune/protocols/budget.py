"""Epoch budgets: Scratch-E / Scratch-B and the prune-epoch protocols.

Pure Python on plain numbers; FLOPs come from a counter elsewhere (any unit,
only the ratio F1/F2 = speedup matters).

* Scratch-E (Liu et al. 2019): the pruned architecture is trained from scratch
  for as many epochs as the dense model ("rethinking2019"); Le & Hua 2021
  count the original plus the retraining epochs ("le2021").
* Scratch-B (Wang et al. 2023 Sec. 2.2): K1 * F1 / F2 + K2 epochs, K1 = dense
  training epochs, K2 = fine-tuning epochs; Liu et al. use K2 = 0
  (`int(160 * F1/F2)`) and on ImageNet cap the speedup factor at 2
  (`max_speedup=2`). The schedule's milestones are stretched proportionally
  (`stretch`), e.g. decays at int(0.5 E), int(0.75 E).
* Prune-epoch protocols of Wang et al. 2023 Table 4 (scratch schedule S of E
  epochs, pruning at epoch k): `pkfn` (S4.2: keep S, fine-tune with its last
  E - k epochs), `sx_a` (same total epochs, fine-tune from a chosen LR down to
  S's final LR with the halving rule), `sx_b` (as SX-A but pretraining only
  round(k / speedup) epochs so that total FLOPs match).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import ml_collections

from jaxprune.schedules import core, training

SCRATCH_E_CONVENTIONS = ("rethinking2019", "le2021")


def scratch_e_epochs(
  train_epochs: int, retrain_epochs: int = 0, convention: str = "rethinking2019"
) -> int:
  """Scratch-E epochs: same epochs as the dense run (+ retraining for le2021)."""
  train_epochs = core.nonneg_int(train_epochs, "train_epochs")
  retrain_epochs = core.nonneg_int(retrain_epochs, "retrain_epochs")
  if convention not in SCRATCH_E_CONVENTIONS:
    raise ValueError(
      f"convention must be one of {list(SCRATCH_E_CONVENTIONS)}, got {convention!r}"
    )
  return train_epochs + (retrain_epochs if convention == "le2021" else 0)


def scratch_b_epochs(
  train_epochs: int,
  dense_flops: float,
  pruned_flops: float,
  retrain_epochs: int = 0,
  max_speedup: float | None = None,
) -> int:
  """K1 * F1 / F2 + K2 epochs (Wang et al. 2023 Sec. 2.2), rounded down.

  `max_speedup=2` is Liu et al.'s ImageNet rule (at most double the epochs).
  """
  k1 = core.nonneg_int(train_epochs, "train_epochs")
  k2 = core.nonneg_int(retrain_epochs, "retrain_epochs")
  f1 = core.positive(dense_flops, "dense_flops")
  f2 = core.positive(pruned_flops, "pruned_flops")
  if f2 > f1:
    raise ValueError(f"pruned_flops={f2} must be <= dense_flops={f1}")
  speedup = f1 / f2
  if max_speedup is not None:
    speedup = min(speedup, core.positive(max_speedup, "max_speedup"))
  # Round to 9 digits first: 200 * 0.251 / (0.251 / 2) must give 400, not 399.
  return int(round(k1 * speedup, 9)) + k2


def stretch(config: Any, epochs: int) -> ml_collections.ConfigDict:
  """Copy of a training schedule config lasting `epochs`, milestones scaled.

  Milestone m of E0 epochs moves to int(m * epochs / E0) (Liu et al.'s
  Scratch-B extends the decay schedule proportionally); halving is recomputed
  by its rules; warm-up lengths stay as they are.
  """
  epochs = core.nonneg_int(epochs, "epochs")
  if epochs == 0:
    raise ValueError("epochs must be > 0")
  new = ml_collections.ConfigDict(config.to_dict())
  old = training.get_epochs(config, "schedule")

  def scale(m: int) -> int:
    return int(m * epochs / old + 1e-9)

  if config.name == "piecewise":
    starts, values = core.parse_spec(config.spec, "schedule", old)
    new.spec = core.format_spec([scale(s) for s in starts], values)
  elif config.name == "step":
    new.milestones = [scale(m) for m in config.milestones]
  new.epochs = epochs
  return new


@dataclasses.dataclass(frozen=True)
class PruneProtocol:
  """Where to prune and how to fine-tune, relative to a scratch schedule."""

  setup: str  # "S4.2", "SX-A" or "SX-B" (Wang et al. 2023 Table 4)
  prune_epoch: int  # epochs of dense (pre)training before pruning
  finetune: ml_collections.ConfigDict  # piecewise schedule, restarts at 0
  label: str  # e.g. "P30F90, 1e-1"

  @property
  def total_epochs(self) -> int:
    return self.prune_epoch + self.finetune.epochs


def _scratch_staircase(scratch: Any, prune_epoch: int) -> tuple[list, list, int]:
  if scratch.name not in training.STAIRCASES:
    raise ValueError(
      f"scratch schedule must be one of {list(training.STAIRCASES)}, got {scratch.name!r}"
    )
  starts, values, epochs = training.staircase(scratch, "scratch")
  if epochs is None:
    raise ValueError("scratch.epochs is required")
  prune_epoch = core.nonneg_int(prune_epoch, "prune_epoch")
  if not 0 < prune_epoch < epochs:
    raise ValueError(
      f"prune_epoch={prune_epoch} must be in (0, scratch.epochs={epochs})"
    )
  return starts, values, epochs


def _piecewise(starts: list, values: list, epochs: int) -> ml_collections.ConfigDict:
  spec = core.format_spec(starts, values)
  return ml_collections.ConfigDict(dict(name="piecewise", spec=spec, epochs=epochs))


def pkfn(scratch: Any, prune_epoch: int) -> PruneProtocol:
  """S4.2: prune at epoch k of the scratch schedule and continue it (PkFn)."""
  starts, values, epochs = _scratch_staircase(scratch, prune_epoch)
  current = values[sum(s <= prune_epoch for s in starts) - 1]
  later = [(s - prune_epoch, v) for s, v in zip(starts, values) if s > prune_epoch]
  new_starts = [0] + [s for s, _ in later]
  new_values = [current] + [v for _, v in later]
  finetune = _piecewise(new_starts, new_values, epochs - prune_epoch)
  label = f"P{prune_epoch}F{epochs - prune_epoch}, {current:.0e}".replace("e-0", "e-")
  return PruneProtocol("S4.2", prune_epoch, finetune, label)


def _halving_finetune(
  scratch: Any, prune_epoch: int, finetune_epochs: int, lr: float, max_stage: Any
) -> ml_collections.ConfigDict:
  _, values, _ = _scratch_staircase(scratch, prune_epoch)
  final_lr = values[-1]  # Rule 1: end at the scratch schedule's final LR
  starts, lrs = training.halving_spec(lr, final_lr, finetune_epochs, max_stage)
  return _piecewise(starts, lrs, finetune_epochs)


def sx_a(
  scratch: Any, prune_epoch: int, finetune_lr: float, max_stage_epochs: int | None = 30
) -> PruneProtocol:
  """SX-A: same total epochs as scratch; fine-tune from `finetune_lr` (halving)."""
  _, _, epochs = _scratch_staircase(scratch, prune_epoch)
  f_epochs = epochs - prune_epoch
  finetune = _halving_finetune(
    scratch, prune_epoch, f_epochs, finetune_lr, max_stage_epochs
  )
  label = f"P{prune_epoch}F{f_epochs}, {finetune_lr:.0e}".replace("e-0", "e-")
  return PruneProtocol("SX-A", prune_epoch, finetune, label)


def sx_b(
  scratch: Any,
  prune_epoch: int,
  speedup: float,
  finetune_lr: float,
  max_stage_epochs: int | None = 30,
) -> PruneProtocol:
  """SX-B: prune at round(k / speedup) and fine-tune E - k epochs (same FLOPs).

  Wang et al. 2023 Sec. 4: "the pruning epoch should be squeezed by the
  speedup ratio", e.g. 30 / 1.11 ~= 27.
  """
  _, _, epochs = _scratch_staircase(scratch, prune_epoch)
  speedup = core.positive(speedup, "speedup")
  if speedup < 1:
    raise ValueError(f"speedup must be >= 1, got {speedup}")
  f_epochs = epochs - prune_epoch
  finetune = _halving_finetune(
    scratch, prune_epoch, f_epochs, finetune_lr, max_stage_epochs
  )
  squeezed = max(1, round(prune_epoch / speedup))
  label = f"P{prune_epoch}/kF{f_epochs}, {finetune_lr:.0e}".replace("e-0", "e-")
  return PruneProtocol("SX-B", squeezed, finetune, label)


def extend_first_stage(proto: PruneProtocol, extra_epochs: int) -> PruneProtocol:
  """`proto` with `extra_epochs` more fine-tuning epochs at its first LR.

  Wang et al. 2023 Tables 5 and 8 ("P90F30, 1e-4 (+1485 epochs)"): the added
  epochs lengthen the first LR stage and the later stages follow unchanged
  ("the number of the 1st LR stage is now 1500 epochs" = 15 + 1485).
  """
  extra = core.nonneg_int(extra_epochs, "prune_epoch.extra_epochs")
  if not extra:
    return proto
  starts, values = core.parse_spec(proto.finetune.spec)
  starts = [0] + [s + extra for s in starts[1:]]
  finetune = _piecewise(starts, values, proto.finetune.epochs + extra)
  label = f"{proto.label} (+{extra} epochs)"
  return dataclasses.replace(proto, finetune=finetune, label=label)
