"""`prune_epoch`: Wang et al. 2023's prune-at-epoch-k protocols (Table 4).

The training `schedule` (E = `num_epochs` epochs, a staircase such as
piecewise/step) is the scratch schedule S. With k = `prune_epoch.epoch`:

  pkfn  (S4.2, "PkFn") train S for k epochs, prune, fine-tune E - k epochs
        with the rest of S (`budget.pkfn`);
  sx_a  train k epochs, prune, fine-tune E - k epochs from
        `prune_epoch.finetune_lr` down to S's final LR by the halving rule
        (`budget.sx_a`; `max_stage_epochs` is Rule 3, 0 = off);
  sx_b  as sx_a but the pretraining is squeezed to round(k / speedup) epochs
        (same total FLOPs as scratch); `prune_epoch.speedup`, or when None
        the FLOPs speedup of the pruning applied to the initial weights
        (exact for structured pruning, whose FLOPs depend on the widths only).

`prune_epoch.extra_epochs` = N lengthens the fine-tuning's first LR stage by N
epochs (Tables 5 and 8: "P90F30, 1e-4 (+270 epochs)").

Phases: `<cache>/train/<hash>/` the first k (or k / speedup) epochs of S (the
schedule pinned to E epochs, so the LRs are S's; shared by every run pruning at
that epoch), then one-shot pruning with `config.pruning` (+ surgery, optional
OrthP), then `finetune/`. Summary: the fine-tuned metrics, sparsity, counts,
`setup` (e.g. "S4.2 P30F90, 1e-2"), `total_epochs` and the fine-tuning's
trainability accuracy (Eq. 1) as `trainability/train_accuracy` (the split of
the paper's TA values) and `trainability/test_accuracy`.
"""

from __future__ import annotations

import os
from typing import Any

import ml_collections

from jaxprune import checks
from jaxprune.analysis import training_stats
from jaxprune.protocols import budget, common, prune_retrain, scoring
from jaxprune.protocols.registry import protocol
from jaxprune.train import Start

SETUPS = ("pkfn", "sx_a", "sx_b")


def validate(config: ml_collections.ConfigDict) -> None:
  prune_retrain.validate_pruning(config, ("one_shot",))
  common.choice(config, "prune_epoch.setup", SETUPS)
  k = config.prune_epoch.epoch
  if not 0 < k < config.num_epochs:
    raise ValueError(
      f"prune_epoch.epoch must be in (0, num_epochs={config.num_epochs}), got {k}"
    )
  if config.prune_epoch.max_stage_epochs < 0:
    raise ValueError("prune_epoch.max_stage_epochs must be >= 0 (0 = no limit)")
  checks.nonneg_int(
    config.prune_epoch.get("extra_epochs", 0), "prune_epoch.extra_epochs"
  )


def init_speedup(config: ml_collections.ConfigDict) -> float:
  """FLOPs speedup of `config.pruning` applied to the initial weights."""
  return common.measure_at_init(
    config, lambda params, stats: scoring.pruning_inputs(config, Start(params, stats))
  )["speedup"]


def epoch_protocol(
  config: ml_collections.ConfigDict, speedup: float | None = None
) -> budget.PruneProtocol:
  """The point's phases. SX-B needs the pruning's FLOPs speedup:
  `prune_epoch.speedup` if set, else `speedup` if given (a caller that knows
  it, e.g. setup labelling), else measured on the initial weights."""
  e = config.prune_epoch
  scratch = common.resolved(config.schedule)
  stage = e.max_stage_epochs or None
  if e.setup == "pkfn":
    proto = budget.pkfn(scratch, e.epoch)
  elif e.setup == "sx_a":
    proto = budget.sx_a(scratch, e.epoch, e.finetune_lr, stage)
  else:
    if e.speedup is not None:
      speedup = e.speedup
    elif speedup is None:
      speedup = init_speedup(config)
    proto = budget.sx_b(scratch, e.epoch, speedup, e.finetune_lr, stage)
  return budget.extend_first_stage(proto, e.get("extra_epochs", 0))


def trainability(finetune_workdir: str, split: str) -> float | None:
  """Trainability accuracy (Eq. 1) of the fine-tuning on `split`; None if not
  defined.

  N is the first LR stage of the fine-tuning schedule; schedules without
  stages (halving with a single stage is fine, cosine is not) have none.
  """
  try:
    return training_stats.trainability_from_workdir(finetune_workdir, split=split)
  except ValueError:
    return None


@protocol("prune_epoch", validate=validate)
def prune_epoch(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  proto = epoch_protocol(config)
  pre = common.phase_config(common.training_config(config), proto.prune_epoch)
  dense = common.cached_phase(pre, workdir, config)
  pruned = prune_retrain.prune_once(
    config,
    dense.final(),
    cycle=1,
    cumulative=prune_retrain.target(config),
    previous=0.0,
  )
  finetune = proto.finetune
  phase = common.run_phase(
    common.phase_config(config, finetune.epochs, finetune),
    os.path.join(workdir, "finetune"),
    start=pruned.start,
    model_overrides={"widths": pruned.widths} if pruned.widths is not None else None,
    evaluate_start=True,
  )
  final = phase.final()
  counts = common.measure(
    config, final.params, final.masks, pruned.widths, pruned.prunable
  )
  summary = {
    **common.final_metrics(phase.summary),
    "epoch": phase.summary["epoch"],
    "sparsity": counts["sparsity"],
    "target_sparsity": prune_retrain.target(config),
    **counts,
    "widths": common.widths_json(pruned.widths),
    "prune_epoch": proto.prune_epoch,
    "finetune_epochs": finetune.epochs,
    "finetune_spec": finetune.spec,
    "total_epochs": proto.total_epochs,
    "accuracy_before": phase.start_row().get("test/accuracy"),
    # The key names the split: Wang et al.'s TA is on training accuracy.
    "trainability/train_accuracy": trainability(phase.workdir, "train"),
    "trainability/test_accuracy": trainability(phase.workdir, "test"),
    "dense_workdir": dense.workdir,
    "setup": f"{proto.setup} {proto.label}",
  }
  return common.finish(config, workdir, summary)
