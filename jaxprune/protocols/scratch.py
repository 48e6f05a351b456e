"""`scratch`: train a pruned architecture from scratch (Liu et al. 2019 Sec. 4-5).

The architecture (`scratch.source`):
  pruned   prune the shared dense pretraining once with `config.pruning`
           (one-shot): structured -> the small-dense widths after surgery;
           unstructured -> the mask ("large-sparse");
  uniform  no pretraining: the same pruning config with a uniform allocation
           applied to the initial weights (structured: `per_group`, every group
           pruned by `pruning.ratio`; unstructured: `uniform` layer-wise
           sparsity with random scores);
  guided   structured: the pruned widths averaged per stage ("Guided
           Pruning", Sec. 5; `analysis.architecture.guided_widths`): VGGs:
           the convs between two poolings; ResNets: the blocks of a stage;
           MLPs: all hidden layers. Unstructured ("Guided Sparsification"):
           the pruned mask's kept-weight ratio per stage
           (`analysis.architecture.sparsity_pattern(guided=True)`) given to
           every layer of the stage, placed at random on the initial weights
           (allocation 'pattern', random scores);
  transferred  the per-stage kept ratios of the same pruning applied to
           `scratch.transfer_model` trained on `scratch.transfer_data`
           (empty: this run's model / data), given to this run's model
           (Sec. 5: VGG-16 on CIFAR-10 -> VGG-19 on CIFAR-100). Structured
           ("Transferred Guided Pruning"): the stages' kept channel ratios
           scale this model's widths (`analysis.architecture.
           transferred_widths`). Unstructured ("Transferred Guided
           Sparsification"): the source mask's kept-weight ratio per stage
           given to every prunable layer of the same stage here, the
           classifier matched by layer name (`analysis.transfer`), placed
           at random as for guided. The source's pretraining is the one a
           `pruned` run of the source model / data shares. The summary
           records the source's dense accuracy and workdir as
           `source/test/accuracy` and `source_workdir` (this model is never
           trained dense here, so `dense/test/accuracy` is empty).
With `pruning.criterion="bn_scale"` and `pruning.slimming_strength > 0` the
pretraining is network slimming's sparsity training (shared with the
`slimming` protocol), so "pruned" is the slimmed architecture.
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

import json
import os
from typing import Any

import ml_collections

from jaxprune import checks, config_utils, models, pruning
from jaxprune.analysis import architecture, transfer
from jaxprune.protocols import budget, common, prune_retrain, scoring
from jaxprune.protocols.registry import protocol
from jaxprune.pruning import rewind as rewind_lib
from jaxprune.train import Start

SOURCES = ("pruned", "uniform", "guided", "transferred")


def validate(config: ml_collections.ConfigDict) -> None:
  prune_retrain.validate_pruning(config, ("one_shot",))
  common.choice(config, "scratch.budget", ("E", "B"))
  common.choice(config, "scratch.source", SOURCES)
  common.choice(config, "scratch.e_convention", budget.SCRATCH_E_CONVENTIONS)
  if config.scratch.source == "transferred":
    if not (config.scratch.transfer_model or config.scratch.transfer_data):
      raise ValueError(
        "scratch.source='transferred' needs scratch.transfer_model and/or "
        "scratch.transfer_data (the model / data the pattern comes from); "
        f"scratch.transfer_model is one of {models.names()}"
      )
    if config.scratch.transfer_model:
      checks.field_choice(config, "scratch.transfer_model", models.names())
    if config.pruning.name == "unstructured":
      # Stages are known per family; an unknown one would only fail after the
      # source's whole pretraining.
      names = {
        "scratch.transfer_model": config.scratch.transfer_model or config.model.name,
        "model.name": config.model.name,
      }
      for field, name in names.items():
        try:
          architecture.param_stage(name)
        except ValueError as e:
          raise ValueError(
            f"scratch.source='transferred', {field}={name!r}: {e}"
          ) from e
  if config.pruning.name == "structured" and not config.pruning.surgery:
    raise ValueError(
      "protocol 'scratch' with structured pruning needs pruning.surgery=True"
    )


def architecture_of(
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
  dense = prune_retrain.pretraining(config, workdir)
  final = dense.final()
  data = scoring.pruning_inputs(config, final)
  res = pruning.prune(p, final.params, final.batch_stats, **kwargs, **data)
  if config.scratch.source == "guided" and p.name == "unstructured":
    pattern = architecture.sparsity_pattern(
      res.masks, prunable=res.prunable, model_name=config.model.name, guided=True
    )
    return pattern_masks(config, pattern), dense
  return res, dense


def pattern_masks(
  config: ml_collections.ConfigDict, pattern: dict[str, float]
) -> pruning.PruneResult:
  """`config`'s model at initialisation pruned to `pattern` (allocation
  'pattern', random scores): where the kept weights sit is left to chance."""
  p = common.resolved(config.pruning)
  p.allocation, p.criterion, p.pattern = "pattern", "random", json.dumps(pattern)
  params, batch_stats = common.init_params(config)
  return pruning.prune(p, params, batch_stats, **common.prune_kwargs(config, 1))


def transferred_masks(
  config: ml_collections.ConfigDict, source: pruning.PruneResult
) -> pruning.PruneResult:
  """Unstructured "transferred": `source` (the pruning of
  `transfer_source(config)`) averaged per stage onto `config`'s model."""
  # The target's prunable layers under this very predicate: a uniform random
  # pruning of its initialisation reports them (api.prune builds the
  # predicate from the model graph; not rebuilt here).
  p = common.resolved(config.pruning)
  p.allocation, p.criterion = "uniform", "random"
  params, batch_stats = common.init_params(config)
  target = pruning.prune(p, params, batch_stats, **common.prune_kwargs(config, 1))
  pattern = transfer.transfer_pattern(
    source.masks,
    source.prunable,
    transfer_source(config).model.name,
    transfer.prunable_layers(target.prunable),
    config.model.name,
  )
  return pattern_masks(config, pattern)


def transfer_source(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """`config` on the model and data the transferred pattern is found on."""
  src = common.resolved(config)
  src.model.name = config.scratch.transfer_model or config.model.name
  src.data.name = config.scratch.transfer_data or config.data.name
  src.scratch.source = "pruned"
  return src


def scratch_widths(config: ml_collections.ConfigDict, res: pruning.PruneResult) -> Any:
  """The widths trained from scratch for a structured `scratch.source`; `res`
  is the pruning of `transfer_source(config)` for "transferred"."""
  # The run's model overrides: a `model.widths` is the unpruned net.
  overrides = config_utils.model_overrides(config)
  if config.scratch.source == "guided":
    return architecture.guided_widths(config.model.name, res.widths, **overrides)
  if config.scratch.source == "transferred":
    src = transfer_source(config)
    return architecture.transferred_widths(
      src.model.name,
      res.widths,
      config.model.name,
      source_overrides=config_utils.model_overrides(src),
      **overrides,
    )
  return res.widths


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
  transferred = config.scratch.source == "transferred"
  res, dense = architecture_of(
    transfer_source(config) if transferred else config, workdir
  )
  structured = config.pruning.name == "structured"
  if transferred and not structured:
    res = transferred_masks(config, res)
  if structured:
    widths = scratch_widths(config, res)
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
    "dense_workdir": dense.workdir if dense and not transferred else None,
    "dense/test/accuracy": (
      dense.summary.get("test/accuracy") if dense and not transferred else None
    ),
    "setup": f"Scratch-{config.scratch.budget} {config.scratch.source}",
  }
  if transferred:  # The pattern's net, not a dense version of this one.
    summary["source_workdir"] = dense.workdir
    summary["source/test/accuracy"] = dense.summary.get("test/accuracy")
  return common.finish(config, workdir, summary)
