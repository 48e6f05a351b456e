"""Prune -> retrain protocols: `prune_retrain` (one-shot / IMP), `slimming`;
their cycle loop also drives `bimp` (`protocols/bimp.py`).

All three run the same cycle loop after a dense phase:

  dense (shared, see common) -> for each cycle k = 1..J:
      prune to the cycle's cumulative target (hard: pruned stay pruned;
      structured: surgery to the small-dense model) -> optional OrthP ->
      retrain in `cycle<k>/` with a fresh optimizer and the retraining
      schedule restarted (ALLR gets this cycle's stats).

* `prune_retrain`: dense = pretraining for `num_epochs` with `schedule` (or
  `retrain.dense_workdir`); `pruning.schedule` "one_shot" (J = 1) or "imp"
  (targets `pruning.schedules.imp_sparsities`: `imp_cycles` equal cycles, or
  `imp_rate` of the remaining weights per cycle); `retrain.num_epochs` each.
  Structured IMP (surgery every cycle): a uniform `ratio`, or per-group
  counts of a `preset` / `stage_ratios` (`pruning.imp_keep_counts`).
* `bimp`: see `protocols/bimp.py`.
* `slimming` (Liu et al. 2017 as in Rethinking): dense = training with the
  `pruning.slimming_strength * sum|gamma|` penalty (shared, keyed with the
  strength), then one global BN-scale structured pruning with surgery, then
  retraining without the penalty.

ALLR statistics per cycle: `relative_norm_change` = ||W - W_p|| / ||W|| over
`retrain.allr_norm_params`: "all" params (kernels, biases, BatchNorm scale and
bias; BIMP's code, the default) or "kernels" (the paper's "weight vector W");
the summary records which. And
`sparsity` = the fraction of the remaining prunable weights this cycle removed
(structured: of the remaining params). AccALLR (`retrain.schedule="acc_allr"`)
also gets the training accuracy before and after the cycle's pruning (one
inference pass over the training split each, `scoring.train_accuracy`).

Data-dependent criteria (saliency, taylor, taylor_fo_bn, fisher, hrank) are
scored on N training batches before every pruning (`scoring.pruning_inputs`).

Summary: the last cycle's metrics, `sparsity` (unstructured: fraction of the
prunable weights pruned; structured: of the dense model's params removed),
counts (see `common.measure`), `total_epochs`, `cycles` (per cycle: target,
sparsity, pruned fraction, norm change, epochs, schedule, test accuracy before
and after retraining).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any

import jax
import ml_collections
import numpy as np

from jaxprune import config_utils, models, pruning, schedules
from jaxprune.protocols import common, pruned_cache, scoring
from jaxprune.protocols.registry import protocol
from jaxprune.pruning import masks as masks_lib
from jaxprune.schedules import retraining
from jaxprune.train import Start

RETRAIN_SCHEDULES = (*schedules.RETRAINING_NAMES, "piecewise")


# ------------------------------------------------------------------ config
def retrain_schedule(
  config: ml_collections.ConfigDict, epochs: int
) -> ml_collections.ConfigDict:
  """The schedule config of one retraining phase of `epochs` epochs."""
  r = config.retrain
  name = common.choice(config, "retrain.schedule", RETRAIN_SCHEDULES)
  if r.min_lr is not None and name not in ("cosine", "linear"):
    raise ValueError(
      f"retrain.min_lr is only for retrain.schedule cosine/linear, got {name!r}"
    )
  if r.cycle_momentum and (name, r.flavor) != ("clr", "le2021"):
    raise ValueError(
      "retrain.cycle_momentum (NPTM's OneCycle momentum) needs retrain.schedule "
      f"'clr' with retrain.flavor 'le2021', got {name!r} / {r.flavor!r}"
    )
  if name == "piecewise":
    return ml_collections.ConfigDict(dict(name=name, spec=r.spec, epochs=epochs))
  s = ml_collections.ConfigDict()
  s.name = name
  s.base = common.resolved(config.schedule)
  s.retrain_epochs = int(epochs)
  s.flavor = r.flavor
  s.warmup_shape = r.warmup_shape
  s.warmup_init_lr = float(r.warmup_init_lr)
  if r.warmup_fraction is not None:
    s.warmup_fraction = float(r.warmup_fraction)
  if r.cycle_momentum:
    s.cycle_momentum = True
  if name in retraining.TUNED:
    if r.lr is None:
      raise ValueError(f"retrain.lr is required for retrain.schedule={name!r}")
    s.lr = float(r.lr)
  if r.min_lr is not None:
    s.min_lr = float(r.min_lr)
  return s


def validate_pruning(config: ml_collections.ConfigDict, schedules_allowed) -> None:
  """Checks the pruning section for a prune-retrain style protocol."""
  p = config.pruning
  pruning.validate(p)
  common.choice(config, "pruning.name", ("unstructured", "structured"))
  common.choice(config, "pruning.schedule", schedules_allowed)
  if p.prune_epoch is not None:
    raise ValueError("pruning.prune_epoch is only for protocol 'prune_epoch'")
  if p.mode != "hard":
    raise ValueError("pruning.mode must be 'hard' here ('soft' is for protocol 'gmp')")


def validate_retrain(config: ml_collections.ConfigDict, epochs: int = 10) -> None:
  if config.retrain.num_epochs < 1:
    raise ValueError(
      f"retrain.num_epochs must be >= 1, got {config.retrain.num_epochs}"
    )
  common.choice(config, "retrain.flavor", schedules.FLAVORS)
  common.choice(config, "retrain.allr_norm_params", common.NORM_PARAMS)
  sched = retrain_schedule(config, epochs)
  schedules.create(sched, 100, retraining.VALIDATING, path="retrain.schedule")
  schedules.momentum(sched, 100)


def target(config: ml_collections.ConfigDict) -> float:
  p = config.pruning
  return p.sparsity if p.name == "unstructured" else p.ratio


def cycle_targets(config: ml_collections.ConfigDict) -> list[float]:
  """Cumulative target after each cycle (IMP's exponential schedule; for
  per-group structured IMP the fraction k/J of the way to the preset)."""
  p = config.pruning
  if p.schedule == "one_shot":
    return [target(config)]
  if pruning.per_group_imp(p):
    return [k / p.imp_cycles for k in range(1, p.imp_cycles + 1)]
  return pruning.schedules.imp_sparsities(
    target(config), rate=p.imp_rate, cycles=p.imp_cycles
  )


# ------------------------------------------------------------------ one cycle
def _size(tree: Any) -> int:
  return int(sum(np.size(x) for x in jax.tree_util.tree_leaves(tree)))


@dataclasses.dataclass
class Pruned:
  """A pruned (not yet retrained) model and what the cycle measured."""

  start: Start
  widths: Any  # Small-dense widths after surgery, else None.
  prunable: Any  # Unstructured: bool tree; structured: None.
  sparsity: float  # Cumulative (see the module docstring).
  fraction: float  # Of the remaining weights pruned in this cycle.
  norm_change: float


def prune_once(
  config: ml_collections.ConfigDict,
  current: Start,
  *,
  cycle: int,
  cumulative: float,
  previous: float,
) -> Pruned:
  """Prunes `current` to the cumulative target `cumulative` (cycle `cycle`)."""
  p = common.resolved(config.pruning)
  name = config.model.name
  kwargs = dict(
    **common.prune_kwargs(config, cycle),
    **scoring.pruning_inputs(config, current, cycle),
  )
  if p.name == "unstructured":
    res = pruning.prune(
      p,
      current.params,
      current.batch_stats,
      masks=current.masks,
      sparsity=cumulative,
      **kwargs,
    )
    s = common.mask_sparsity(res.masks, res.prunable)
    frac = pruning.schedules.per_cycle_fraction(previous, s)
    widths = None
  else:
    if pruning.per_group_imp(p):
      dense = models.channel_groups(
        name, common.num_classes(config), **config_utils.model_overrides(config)
      )
      kwargs["keep_counts"] = pruning.imp_keep_counts(p, dense, cycle)
    elif p.schedule == "imp":
      p.ratio = pruning.schedules.per_cycle_fraction(previous, cumulative)
    res = pruning.prune(p, current.params, current.batch_stats, **kwargs)
    frac = 1.0 - _size(res.params) / _size(current.params)
    s = cumulative  # Reported from the counts at the end.
    widths = res.widths
  change = common.relative_norm_change(
    current.params, res.params, config.retrain.allr_norm_params
  )
  params = res.params
  if config.retrain.orthp:
    from jaxprune import analysis  # Imported here: only OrthP runs need it.

    gain = config.retrain.orthp_gain or "auto"
    params = masks_lib.apply(
      analysis.orthp(params, gain=gain, model_name=name), res.masks
    )
  start = Start(params, res.batch_stats, res.masks)
  return Pruned(start, widths, res.prunable, s, frac, change)


def first_prune(
  config: ml_collections.ConfigDict,
  workdir: str,
  dense: common.Phase,
  cumulative: float,
) -> Pruned:
  """Cycle 1's pruning of the dense weights, shared through the pruned-state
  cache (`pruned_cache`) by every run that only differs in retraining."""
  return pruned_cache.cached(
    config,
    workdir,
    dense.summary.get("config_hash"),
    cycle=1,
    cumulative=cumulative,
    compute=lambda: prune_once(
      config, dense.final(), cycle=1, cumulative=cumulative, previous=0.0
    ),
    build=Pruned,
  )


def schedule_for(
  config: ml_collections.ConfigDict, steps_per_epoch: int, stats: Any
) -> Any:
  """The LR schedule of a retraining phase of `config` (its `schedule` section)
  with this cycle's pruning statistics (ALLR reads them)."""
  return schedules.create(config.schedule, steps_per_epoch, stats)


def retrain_kwargs(
  pruned: Pruned, widths: Any, evaluate_start: bool = True, stats=None
) -> dict[str, Any]:
  """The `train_and_evaluate` keywords of the retraining after `pruned`
  (`stats`: the schedule's PruningStats, default from `pruned`)."""
  stats = stats or schedules.PruningStats(
    pruned.norm_change, max(pruned.fraction, 1e-12)
  )
  return dict(
    start=pruned.start,
    model_overrides={"widths": widths} if widths is not None else None,
    schedule=functools.partial(schedule_for, stats=stats),
    evaluate_start=evaluate_start,
  )


def cycle_record(
  k: int, cum: float, epochs: int, sched, pruned: Pruned, phase: common.Phase
) -> dict[str, Any]:
  return {
    "cycle": k,
    "target": cum,
    "sparsity": pruned.sparsity,
    "pruned_fraction": pruned.fraction,
    "relative_norm_change": pruned.norm_change,
    "epochs": epochs,
    "schedule": sched.name,
    "accuracy_before": phase.start_row().get("test/accuracy"),
    "accuracy_after": phase.summary.get("test/accuracy"),
  }


def cycles_summary(
  config: ml_collections.ConfigDict,
  dense: common.Phase,
  phase: common.Phase,
  current: Start,
  pruned: Pruned,
  widths: Any,
  cycles: list[dict[str, Any]],
  cycle_epochs: list[int],
) -> dict[str, Any]:
  """The run's summary after its last retraining `phase` (final weights
  `current`)."""
  counts = common.measure(
    config, current.params, current.masks, widths, pruned.prunable
  )
  return {
    **common.final_metrics(phase.summary),
    "epoch": phase.summary["epoch"],
    "sparsity": counts["sparsity"],
    "target_sparsity": target(config),
    **counts,
    "widths": common.widths_json(widths),
    "dense_workdir": dense.workdir,
    "dense/test/accuracy": dense.summary.get("test/accuracy"),
    "dense_epochs": dense.summary.get("epoch"),
    "total_epochs": int(dense.summary.get("epoch", 0)) + sum(cycle_epochs),
    "allr_norm_params": config.retrain.allr_norm_params,
    "cycles": cycles,
  }


def report_dense(config: ml_collections.ConfigDict, dense: common.Phase) -> None:
  """Says which dense weights the retraining starts from, and how good they are."""
  source = "retrain.dense_workdir" if config.retrain.dense_workdir else "shared cache"
  acc = dense.summary.get("test/accuracy")
  shown = f"{100 * acc:.2f}%" if acc is not None else "n/a"
  field = "sparsity" if config.pruning.name == "unstructured" else "ratio"
  print(
    f"[{config.protocol}] dense weights: {dense.workdir} ({source}), "
    f"test acc {shown}; pruning.{field}={target(config):g}",
    flush=True,
  )


def run_cycles(
  config: ml_collections.ConfigDict,
  workdir: str,
  dense: common.Phase,
  cycle_epochs: list[int],
) -> dict[str, Any]:
  """The prune -> retrain cycles after `dense`; returns the run's summary."""
  targets = cycle_targets(config)
  if len(cycle_epochs) != len(targets):
    raise ValueError(f"{len(targets)} cycles but epochs for {len(cycle_epochs)}")
  current, widths, previous = None, None, 0.0
  cycles, phase, pruned = [], None, None
  for k, (cum, epochs) in enumerate(zip(targets, cycle_epochs), start=1):
    if k == 1:
      pruned = first_prune(config, workdir, dense, cum)
      report_dense(config, dense)
    else:
      pruned = prune_once(config, current, cycle=k, cumulative=cum, previous=previous)
    widths = pruned.widths if pruned.widths is not None else widths
    sched = retrain_schedule(config, epochs)
    stats = None
    if sched.name == "acc_allr":
      before = dense.final() if k == 1 else current
      stats = scoring.acc_allr_stats(
        config, before, pruned.start, pruned.norm_change, pruned.fraction
      )
    phase = common.run_phase(
      common.phase_config(config, epochs, sched),
      os.path.join(workdir, f"cycle{k}"),
      **retrain_kwargs(pruned, widths, stats=stats),
    )
    cycles.append(cycle_record(k, cum, epochs, sched, pruned, phase))
    if stats is not None:
      cycles[-1]["train_accuracy_before"] = stats.train_accuracy_before
      cycles[-1]["train_accuracy_after"] = stats.train_accuracy_after
    current, previous = phase.final(), pruned.sparsity
  return cycles_summary(
    config, dense, phase, current, pruned, widths, cycles, cycle_epochs
  )


# ------------------------------------------------------------------ protocols
def validate_prune_retrain(config: ml_collections.ConfigDict) -> None:
  validate_pruning(config, ("one_shot", "imp"))
  validate_retrain(config, config.retrain.num_epochs)


@protocol("prune_retrain", validate=validate_prune_retrain)
def prune_retrain(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  dense = common.dense_phase(config, workdir)
  epochs = [config.retrain.num_epochs] * len(cycle_targets(config))
  summary = run_cycles(config, workdir, dense, epochs)
  summary["setup"] = prune_retrain_setup(config)
  return common.finish(config, workdir, summary)


def prune_retrain_setup(config: ml_collections.ConfigDict) -> str:
  kind = "IMP" if config.pruning.schedule == "imp" else "one-shot"
  return f"{kind} {config.retrain.schedule}"


def validate_slimming(config: ml_collections.ConfigDict) -> None:
  validate_pruning(config, ("one_shot",))
  common.choice(config, "pruning.name", ("structured",))
  common.choice(config, "pruning.criterion", ("bn_scale",))
  if not config.pruning.slimming_strength > 0:
    raise ValueError(
      f"pruning.slimming_strength must be > 0, got {config.pruning.slimming_strength}"
    )
  validate_retrain(config, config.retrain.num_epochs)


def slimming_dense_phase(
  config: ml_collections.ConfigDict, workdir: str
) -> common.Phase:
  """The shared sparsity training of network slimming (the `s * sum|gamma|`
  penalty), keyed with `pruning.slimming_strength`."""
  hook = pruning.slimming_hook(
    config.pruning,
    config.model.name,
    common.num_classes(config),
    **config_utils.model_overrides(config),
  )
  train_cfg = common.training_config(config, keep_pruning=("slimming_strength",))
  return common.cached_phase(train_cfg, workdir, config, regularizer=hook)


def pretraining(config: ml_collections.ConfigDict, workdir: str) -> common.Phase:
  """The dense phase a pruning of `config` starts from: network slimming's
  sparsity training when `pruning.slimming_strength > 0` with the `bn_scale`
  criterion (what the `slimming` protocol prunes), else the plain training."""
  p = config.pruning
  slimming_run = p.criterion == "bn_scale" and p.get("slimming_strength", 0) > 0
  if slimming_run and not config.retrain.dense_workdir:
    return slimming_dense_phase(config, workdir)
  return common.dense_phase(config, workdir)


@protocol("slimming", validate=validate_slimming)
def slimming(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  dense = slimming_dense_phase(config, workdir)
  summary = run_cycles(config, workdir, dense, [config.retrain.num_epochs])
  summary["setup"] = f"slimming s={config.pruning.slimming_strength}"
  return common.finish(config, workdir, summary)
