"""`scratch`: train a pruned architecture from scratch (Liu et al. 2019 Sec. 4-5).

The architecture (`scratch.source`):
  pruned   prune the shared dense pretraining once with `config.pruning`
           (one-shot): structured -> the small-dense widths after surgery;
           unstructured -> the mask ("large-sparse");
  uniform  no pretraining: the same pruning config with a uniform allocation
           applied to the initial weights (structured: `per_group`, every group
           pruned by `pruning.ratio`; unstructured: `uniform` layer-wise
           sparsity with random scores);
  guided   (structured) the pruned widths averaged per stage ("Guided
           Pruning", Sec. 5): ResNets: every block of a stage gets the stage's
           mean inner width; MLPs: every hidden layer the mean width.
It is then trained from a fresh random initialisation in `scratch/`:
structured -> the small-dense model (`model.widths` overridden); unstructured
-> the full model with the fixed mask, weights from the model's initialisers
with a different key than the dense run (not a lottery ticket); with
`pruning.reinit_rescale` their std is divided by sqrt(kept fraction) per layer
(BN-free nets need it at high sparsity).

Budget (`scratch.budget`, `jaxprune.protocols.budget`): "E" =
`scratch_e_epochs(num_epochs, retrain.num_epochs, scratch.e_convention)`;
"B" = `scratch_b_epochs(num_epochs, F1, F2, scratch.b_extra_epochs,
scratch.max_speedup or None)` = int(K1 * F1 / F2) + K2 with F1 the dense
model's FLOPs and F2 the pruned model's nonzero FLOPs (`common.measure`). The
training `schedule` is stretched to the budget (`budget.stretch`: milestones
scaled).
"""

from __future__ import annotations

import os
from typing import Any

import ml_collections
import numpy as np

from jaxprune import config_utils, pruning
from jaxprune.protocols import budget, common, prune_retrain, scoring
from jaxprune.protocols.registry import protocol
from jaxprune.pruning import rewind as rewind_lib
from jaxprune.train import Start

SOURCES = ("pruned", "uniform", "guided")


def validate(config: ml_collections.ConfigDict) -> None:
  prune_retrain.validate_pruning(config, ("one_shot",))
  common.choice(config, "scratch.budget", ("E", "B"))
  common.choice(config, "scratch.source", SOURCES)
  common.choice(config, "scratch.e_convention", budget.SCRATCH_E_CONVENTIONS)
  if config.scratch.source == "guided":
    common.choice(config, "pruning.name", ("structured",))
  if config.pruning.name == "structured" and not config.pruning.surgery:
    raise ValueError(
      "protocol 'scratch' with structured pruning needs pruning.surgery=True"
    )


def guided_widths(model_name: str, widths: Any) -> Any:
  """Per-stage averages of pruned widths (Liu et al.'s Guided Pruning)."""
  if hasattr(widths, "blocks"):  # ResNetWidths
    blocks = tuple(
      (round(float(np.mean(stage))),) * len(stage) for stage in widths.blocks
    )
    return type(widths)(tuple(widths.stages), blocks)
  if model_name.startswith("mlp"):
    return (round(float(np.mean(widths))),) * len(widths)
  raise ValueError(
    f"scratch.source='guided' knows the stages of ResNets and MLPs, not {model_name!r}"
  )


def architecture(
  config: ml_collections.ConfigDict, workdir: str
) -> tuple[pruning.PruneResult, common.Phase | None]:
  """The pruning result defining the architecture, and the dense phase used."""
  p = common.resolved(config.pruning)
  kwargs = common.prune_kwargs(config, 1)
  if config.scratch.source == "uniform":
    if p.name == "structured":
      p.group_allocation = "per_group"
    else:
      p.allocation, p.criterion = "uniform", "random"
    params, batch_stats = common.init_params(config)
    data = scoring.pruning_inputs(config, Start(params, batch_stats))
    return pruning.prune(p, params, batch_stats, **kwargs, **data), None
  dense = common.dense_phase(config, workdir)
  final = dense.final()
  data = scoring.pruning_inputs(config, final)
  return pruning.prune(p, final.params, final.batch_stats, **kwargs, **data), dense


def scratch_epochs(config: ml_collections.ConfigDict, counts: dict[str, Any]) -> int:
  s = config.scratch
  if s.budget == "E":
    return budget.scratch_e_epochs(
      config.num_epochs, config.retrain.num_epochs, s.e_convention
    )
  return budget.scratch_b_epochs(
    config.num_epochs,
    counts["dense_flops"],
    counts["nonzero_flops"],
    s.b_extra_epochs,
    s.max_speedup or None,
  )


@protocol("scratch", validate=validate)
def scratch(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  res, dense = architecture(config, workdir)
  structured = config.pruning.name == "structured"
  if structured:
    widths = res.widths
    if config.scratch.source == "guided":
      widths = guided_widths(config.model.name, widths)
    counts = common.measure(config, None, None, widths)
    start, overrides = None, {"widths": widths}
  else:
    widths, overrides = None, None
    counts = common.measure(config, res.params, res.masks, prunable=res.prunable)
    params, batch_stats = rewind_lib.reinitialize(
      config.model.name,
      res.masks,
      common.pruning_rng(config, common.SCRATCH_REINIT_SALT),
      num_classes=common.num_classes(config),
      input_shape=common.input_shape(config),
      rescale=config.pruning.reinit_rescale,
      **config_utils.model_overrides(config),
    )
    start = Start(params, batch_stats, res.masks)
  epochs = scratch_epochs(config, counts)
  schedule = budget.stretch(common.resolved(config.schedule), epochs)
  phase = common.run_phase(
    common.phase_config(config, epochs, schedule),
    os.path.join(workdir, "scratch"),
    start=start,
    model_overrides=overrides,
  )
  summary = {
    **common.final_metrics(phase.summary),
    "epoch": phase.summary["epoch"],
    "sparsity": counts["sparsity"],
    "target_sparsity": prune_retrain.target(config),
    **counts,
    "widths": common.widths_json(widths),
    "scratch_epochs": epochs,
    "total_epochs": epochs,
    "dense_workdir": dense.workdir if dense else None,
    "dense/test/accuracy": dense.summary.get("test/accuracy") if dense else None,
    "setup": f"Scratch-{config.scratch.budget} {config.scratch.source}",
  }
  return common.finish(config, workdir, summary)
