"""`lottery`: winning tickets (Frankle & Carbin; Liu et al. 2019 Sec. 6).

Phases (T = `num_epochs`, k = `pruning.rewind_epoch` for `pruning.rewind=
"epoch"`, 0 for "init"):

  dense (shared pretraining, T epochs)
  rewind point: "init" -> the dense run's initial weights (recomputed from the
      seed exactly as the train loop draws them); "epoch" -> the state after k
      epochs, from a shared phase that trains the same config for k epochs with
      the schedule pinned to T epochs (same LRs and data order, so the same
      weights as the dense run's epoch k; it costs k extra epochs once per
      config, the only training done twice).
  for level j = 1..J (one-shot: J = 1; IMP: `imp_sparsities`): prune the
      previous level's trained weights to the cumulative target (hard), rewind
      the survivors to the rewind point and train `level<j>/` for T - k epochs
      with the original schedule's last T - k epochs (the "lrw" retraining
      schedule of `schedule`: LR rewinding with the weights).
  random/ (with `lottery.random_control`): the last level's mask around a fresh
      random initialisation (`pruning.rewind.reinitialize`, `pruning.
      reinit_rescale`), trained identically: the tickets' control. Both runs
      share mask, schedule, data order and seed; they differ in init only.

Each trained phase logs `start/sq_norm` (sum of squared starting params) at
epoch 0. Summary: the (last) ticket's metrics, the control's as `random/...`,
`sparsity` over the prunable weights, counts, and per-level details.

Structured (filter) tickets (Liu et al. 2019 Table 8; one-shot, with surgery):
the kept filters of the trained net are sliced out of the rewind point
(`surgery.shrink` of the initial weights: the ticket) and the small-dense
model is trained from them; the random control is the same small-dense
architecture from a fresh initialisation. `sparsity` is then the fraction of
the dense model's params removed.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import ml_collections

from jaxprune import config_utils, pruning
from jaxprune.protocols import common, prune_retrain, scoring
from jaxprune.protocols.registry import protocol
from jaxprune.pruning import masks as masks_lib
from jaxprune.pruning import rewind as rewind_lib
from jaxprune.pruning import surgery
from jaxprune.train import Start


def rewind_epoch(config: ml_collections.ConfigDict) -> int:
  return int(config.pruning.rewind_epoch) if config.pruning.rewind == "epoch" else 0


def validate(config: ml_collections.ConfigDict) -> None:
  prune_retrain.validate_pruning(config, ("one_shot", "imp"))
  if config.pruning.name == "structured":
    common.choice(config, "pruning.schedule", ("one_shot",))
    if not config.pruning.surgery:
      raise ValueError("structured lottery tickets need pruning.surgery=True")
  common.choice(config, "pruning.rewind", ("init", "epoch"))
  if config.pruning.reinit:
    raise ValueError(
      "pruning.reinit is not used by protocol 'lottery'; its random-init "
      "control is lottery.random_control"
    )
  k = rewind_epoch(config)
  if config.pruning.rewind == "epoch" and not 0 < k < config.num_epochs:
    raise ValueError(
      f"pruning.rewind_epoch must be in (0, num_epochs={config.num_epochs}), got {k}"
    )


def ticket_schedule(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The original schedule from epoch k on (LRW over T - k epochs)."""
  return ml_collections.ConfigDict(
    dict(
      name="lrw",
      base=common.resolved(config.schedule),
      retrain_epochs=config.num_epochs - rewind_epoch(config),
    )
  )


def rewind_point(
  config: ml_collections.ConfigDict, workdir: str
) -> rewind_lib.RewindPoint:
  k = rewind_epoch(config)
  if k == 0:
    return rewind_lib.snapshot(*common.init_params(config), epoch=0)
  prefix = common.phase_config(common.training_config(config), k)
  final = common.cached_phase(prefix, workdir, config).final()
  return rewind_lib.snapshot(final.params, final.batch_stats, epoch=k)


def start_fingerprint(epoch: int, state) -> dict[str, float]:
  """Callback: the starting params' squared norm, at epoch 0 only."""
  return (
    {"start/sq_norm": common.sq_norm(jax.device_get(state.params))}
    if epoch == 0
    else {}
  )


def ticket(
  config: ml_collections.ConfigDict,
  res: pruning.PruneResult,
  point: rewind_lib.RewindPoint,
) -> tuple[Start, dict[str, Any] | None]:
  """(start, model overrides) of the ticket: the survivors at the rewind point
  (unstructured: masked; structured: the kept filters sliced out)."""
  if res.widths is None:
    return Start(*rewind_lib.rewind(res.masks, point), res.masks), None
  small = surgery.shrink(
    config.model.name,
    point.params,
    point.batch_stats,
    res.keep,
    num_classes=common.num_classes(config),
    input_shape=common.input_shape(config),
    **common.overrides_without_widths(config),
  )
  start = Start(small.params, small.batch_stats, masks_lib.ones_like(small.params))
  return start, {"widths": small.widths}


def _sparsity(config: ml_collections.ConfigDict, res: pruning.PruneResult) -> float:
  if res.widths is None:
    return common.mask_sparsity(res.masks, res.prunable)
  counts = common.measure(config, res.params, None, res.widths)
  return 1.0 - counts["params"] / counts["dense_params"]


@protocol("lottery", validate=validate)
def lottery(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  dense = common.dense_phase(config, workdir)
  point = rewind_point(config, workdir)
  epochs = config.num_epochs - rewind_epoch(config)
  phase_cfg = common.phase_config(config, epochs, ticket_schedule(config))
  current, previous, levels = dense.final(), 0.0, []
  res = phase = None
  for j, cum in enumerate(prune_retrain.cycle_targets(config), start=1):
    res = pruning.prune(
      config.pruning,
      current.params,
      current.batch_stats,
      masks=current.masks,
      sparsity=cum,
      **common.prune_kwargs(config, j),
      **scoring.pruning_inputs(config, current, j),
    )
    start, overrides = ticket(config, res, point)
    phase = common.run_phase(
      phase_cfg,
      os.path.join(workdir, f"level{j}"),
      start=start,
      model_overrides=overrides,
      callbacks=[start_fingerprint],
    )
    s = _sparsity(config, res)
    levels.append(
      {
        "level": j,
        "target": cum,
        "sparsity": s,
        "pruned_fraction": pruning.schedules.per_cycle_fraction(previous, s),
        "epochs": epochs,
        "accuracy": phase.summary.get("test/accuracy"),
      }
    )
    current, previous = phase.final(), s
  summary = {
    **common.final_metrics(phase.summary),
    "epoch": phase.summary["epoch"],
    "sparsity": None,  # Set by measure (keeps the row's key order).
    "target_sparsity": prune_retrain.target(config),
    **common.measure(config, current.params, current.masks, res.widths, res.prunable),
    "widths": common.widths_json(res.widths),
    "rewind_epoch": rewind_epoch(config),
    "dense_workdir": dense.workdir,
    "dense/test/accuracy": dense.summary.get("test/accuracy"),
    "levels": levels,
    "setup": f"lottery rewind={config.pruning.rewind}{rewind_epoch(config) or ''}",
  }
  if config.lottery.random_control:
    params, batch_stats = rewind_lib.reinitialize(
      config.model.name,
      res.masks,
      common.pruning_rng(config, common.LOTTERY_REINIT_SALT),
      num_classes=common.num_classes(config),
      input_shape=common.input_shape(config),
      rescale=config.pruning.reinit_rescale,
      **{**config_utils.model_overrides(config), **(overrides or {})},
    )
    control = common.run_phase(
      phase_cfg,
      os.path.join(workdir, "random"),
      start=Start(params, batch_stats, res.masks),
      model_overrides=overrides,
      callbacks=[start_fingerprint],
    )
    summary.update(common.final_metrics(control.summary, prefix="random/"))
  return common.finish(config, workdir, summary)
