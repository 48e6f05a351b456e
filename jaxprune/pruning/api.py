"""Config-driven entry point: ``default_config()`` and ``prune(config, params, ...)``.

``config.name`` picks the structure ("none" = dense, "unstructured",
"structured"); the other fields pick score, allocation, schedule and the
prunable predicate independently (see :func:`default_config`). ``prune`` is a
pure host function over params trees, meant to be called between training
phases; the caller builds a fresh optimizer around the result with
``jaxprune.train.state.state_from_params(result.params, result.batch_stats,
tx, rng, result.masks)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import ml_collections
from ml_collections import config_dict

from jaxprune import checks, models
from jaxprune.pruning import allocation as alloc_lib
from jaxprune.pruning import (
  counting,
  data_scores,
  presets,
  schedules,
  structured,
  surgery,
)
from jaxprune.pruning import masks as masks_lib
from jaxprune.pruning import scores as scores_lib

NAMES = ("none", "unstructured", "structured")
STRUCTURED_ALLOCATIONS = ("per_group", "global")
MODES = ("hard", "soft")
REWINDS = ("none", "init", "epoch")


def default_config() -> ml_collections.ConfigDict:
  """Every pruning field, with defaults (``name="none"``: dense training)."""
  c = ml_collections.ConfigDict()
  c.name = "none"  # none | unstructured | structured
  # Score: unstructured magnitude|random|saliency; structured
  # l1|l2|random|bn_scale|taylor|taylor_fo_bn|fisher|hrank; "" = magnitude / l1.
  c.criterion = ""
  # Data-dependent criteria (pruning.data_scores): training batches scored;
  # 0 = the criterion's paper default (data_scores.DEFAULT_BATCHES).
  c.score_batches = 0
  # fisher: keep-score minus flops_weight * (FLOPs of one channel / dense
  # FLOPs), Theis et al.'s FLOPs-aware penalty (matters across groups only).
  c.flops_weight = 0.0
  # Unstructured: global|uniform|uniform_plus|erk|lamp|pattern.
  c.allocation = "global"
  # allocation='pattern': {layer: keep ratio} as inline JSON or a JSON file
  # (analysis.architecture.write_pattern); sparsity is then ignored.
  c.pattern = ""
  c.sparsity = 0.0  # Unstructured target: fraction of prunable weights zeroed.
  c.normalize = False  # global: divide each layer's scores by their L2 norm.
  c.erk_power = 1.0
  c.classifier_max = 0.8  # uniform_plus: largest classifier sparsity.
  # The prunable predicate (unstructured).
  c.prune_conv = True
  c.prune_dense = True
  c.prune_first_layer = True
  c.prune_classifier = True
  c.exclude = ()  # Regexes on "module/path/kernel".
  # Structured.
  c.groups = "inner"  # inner (first conv of every block) | all
  # per_group: ratio/stage_ratios/preset per group; global: one threshold
  # over all selected groups' scores (network slimming over BN scales).
  c.group_allocation = "per_group"
  c.ratio = 0.0  # Uniform prune ratio per group (or the global fraction).
  c.stage_ratios = ()  # Per-stage ratios; overrides ratio when set.
  c.skip = ()  # Group names or Li et al. layer ids left dense.
  c.preset = ""  # e.g. resnet56_b; see presets.PRESETS.
  c.rounding = "keep_floor"  # keep_floor | prune_ceil
  c.surgery = True  # Return the small-dense model (else masks on the big one).
  c.slimming_strength = 0.0  # s of the s*sum|gamma| training penalty.
  # Schedule (see pruning.schedules).
  c.schedule = "one_shot"  # one_shot | imp | gmp
  c.prune_epoch = config_dict.placeholder(int)  # None: prune the given weights.
  c.imp_cycles = 0  # >0: BIMP's equal per-cycle rate; 0: use imp_rate.
  c.imp_rate = 0.2  # Fraction of the remaining weights pruned per cycle.
  c.gmp_start = 0  # GMP (epochs): first and last pruning epoch, frequency.
  c.gmp_end = 0
  c.gmp_frequency = 1
  c.mode = "hard"  # hard: pruned stay pruned; soft: masks recomputed (GMP).
  # Rewinding / re-initialisation of the survivors before retraining.
  c.rewind = "none"  # none | init | epoch
  c.rewind_epoch = 0
  c.reinit = False  # Random re-init of the same mask.
  c.reinit_rescale = False  # Scale the re-init std by 1/sqrt(kept fraction).
  return c


CRITERION_KINDS = ("unstructured", "structured")


def register_criterion(
  name: str, kind: str = "unstructured", *, replace: bool = False
) -> Callable[[Callable], Callable]:
  """Decorator: makes ``pruning.criterion=name`` score with the decorated function.

  ``kind="unstructured"``: ``fn(params, *, rng, grads) -> score tree`` shaped
  like ``params`` (higher = keep; see :mod:`scores`). ``kind="structured"``:
  ``fn(groups, params, *, rng, grads, channel_scores) -> {group name:
  per-channel scores}`` over the prunable ``models.ChannelGroup`` s (see
  :mod:`structured`). Extra keyword arguments may be ignored with ``**_``.
  The name is then valid in configs, sweeps and every protocol.
  """
  checks.choice(kind, "kind", CRITERION_KINDS)
  lib = scores_lib if kind == "unstructured" else structured
  return lib.register(name, replace=replace)


def per_group_imp(config: ml_collections.ConfigDict) -> bool:
  """Structured IMP towards a preset's / stage ratios' per-group counts."""
  per_group = config.preset or tuple(config.stage_ratios)
  return config.name == "structured" and config.schedule == "imp" and bool(per_group)


def validate(config: ml_collections.ConfigDict) -> None:
  """ValueError naming the first invalid field and the allowed values."""
  checks.choice(config.name, "pruning.name", NAMES)
  checks.choice(config.mode, "pruning.mode", MODES)
  checks.choice(config.schedule, "pruning.schedule", schedules.SCHEDULES)
  checks.choice(config.rewind, "pruning.rewind", REWINDS)
  if config.name == "unstructured":
    checks.choice(
      config.criterion, "pruning.criterion", ("", *scores_lib.CRITERIA.names())
    )
    checks.choice(
      config.allocation, "pruning.allocation", alloc_lib.ALLOCATIONS.names()
    )
    if not 0.0 <= config.sparsity <= 1.0:
      raise ValueError(f"pruning.sparsity must be in [0, 1], got {config.sparsity}")
    if config.allocation == "pattern":
      alloc_lib.load_pattern(config.pattern)
  elif config.name == "structured":
    checks.choice(
      config.criterion, "pruning.criterion", ("", *structured.CRITERIA.names())
    )
    checks.choice(
      config.group_allocation, "pruning.group_allocation", STRUCTURED_ALLOCATIONS
    )
    checks.choice(config.rounding, "pruning.rounding", structured.ROUNDINGS)
    checks.choice(config.groups, "pruning.groups", presets.GROUP_SETS)
    checks.choice(config.preset, "pruning.preset", presets.PRESETS)
    if config.flops_weight and config.criterion != "fisher":
      raise ValueError(
        f"pruning.flops_weight is for criterion 'fisher', got {config.criterion!r}"
      )
    for r in (config.ratio, *config.stage_ratios):
      if not 0.0 <= r < 1.0:
        raise ValueError(f"pruning.ratio/stage_ratios must be in [0, 1), got {r}")
  if config.score_batches < 0:
    raise ValueError(f"pruning.score_batches must be >= 0, got {config.score_batches}")
  if config.schedule == "imp" and config.name == "structured":
    if not config.surgery or config.group_allocation != "per_group":
      raise ValueError(
        "structured IMP needs pruning.surgery=True and group_allocation='per_group'"
      )
    if per_group_imp(config) and config.imp_cycles < 1:
      raise ValueError(
        "structured IMP with a preset / stage_ratios needs imp_cycles >= 1"
      )
  if not 0.0 <= config.imp_rate < 1.0:
    raise ValueError(f"pruning.imp_rate must be in [0, 1), got {config.imp_rate}")
  if config.gmp_frequency < 1:
    raise ValueError(f"pruning.gmp_frequency must be >= 1, got {config.gmp_frequency}")
  if config.schedule == "gmp" and config.gmp_end < config.gmp_start:
    raise ValueError("pruning.gmp_end must be >= pruning.gmp_start")


@dataclasses.dataclass
class PruneResult:
  """What :func:`prune` returns; ``params``/``masks`` fit ``widths``' model."""

  params: Any
  batch_stats: Any
  masks: Any
  widths: Any = None  # Small-dense widths after surgery, else None.
  keep: dict | None = None  # Structured: kept channels per group.
  prunable: Any = None  # Unstructured: the predicate's bool tree.


def predicate(
  config: ml_collections.ConfigDict,
  model_name: str | None,
  num_classes: int = 10,
  **overrides,
) -> masks_lib.Prunable:
  """The :class:`masks.Prunable` the config asks for, roles from the model graph."""
  kw = {}
  # A model added with models.register has no channel graph: the predicate
  # falls back to the zoo's layer names for the first layer / classifier.
  if model_name is not None and models.has_channel_groups(model_name):
    first, cls = masks_lib.roles_from_groups(
      models.channel_groups(model_name, num_classes, **overrides)
    )
    kw = {"first_layers": first, "classifiers": cls}
  return masks_lib.Prunable(
    conv=config.prune_conv,
    dense=config.prune_dense,
    first_layer=config.prune_first_layer,
    classifier=config.prune_classifier,
    exclude=tuple(config.exclude),
    **kw,
  )


def _num_classes(params: Any) -> int:
  return int(params["head"]["kernel"].shape[-1])


def prune(
  config: ml_collections.ConfigDict,
  params: Any,
  batch_stats: Any = None,
  *,
  model_name: str,
  rng: jax.Array | None = None,
  grads: Any = None,
  channel_scores: dict[str, Any] | None = None,
  masks: Any = None,
  sparsity: float | None = None,
  model_overrides: dict[str, Any] | None = None,
  input_shape: tuple[int, ...] | None = None,
  keep_counts: dict[str, int] | None = None,
) -> PruneResult:
  """Applies the config's pruning once.

  Args:
    config: a :func:`default_config` (possibly modified).
    params, batch_stats: current variables.
    model_name: registered model name (for roles, groups and surgery).
    rng: needed by random scores.
    grads: needed by saliency / taylor scores.
    channel_scores: {group: per-channel scores} of the data criteria
      (taylor_fo_bn / fisher / hrank), from ``data_scores``.
    masks: current masks; with ``mode="hard"`` pruned weights stay pruned.
    sparsity: overrides ``config.sparsity`` (a schedule's current target).
    model_overrides: the model's ``create`` overrides (``shortcut``, ...),
      without ``widths``.
    input_shape: one example's NHWC shape (default: the model's registered
      one); surgery checks the small-dense params against it.
    keep_counts: structured per-group pruning: channels each listed group
      keeps (structured IMP's per-cycle counts), instead of the ratios.
  """
  validate(config)
  batch_stats = {} if batch_stats is None else batch_stats
  overrides = dict(model_overrides or {})
  overrides.pop("widths", None)
  if config.name == "none":
    m = masks if masks is not None else masks_lib.ones_like(params)
    return PruneResult(masks_lib.apply(params, m), batch_stats, m)
  widths = models.read_widths(model_name, params, **overrides)
  if config.name == "unstructured":
    # Only a zoo model's roles need the class count (read from its head).
    ncls = _num_classes(params) if models.has_channel_groups(model_name) else 10
    pred = predicate(config, model_name, ncls, widths=widths, **overrides)
    prunable = masks_lib.prunable_tree(params, pred)
    s = config.sparsity if sparsity is None else sparsity
    criterion = config.criterion or "magnitude"
    scores = scores_lib.compute(criterion, params, rng=rng, grads=grads)
    new = alloc_lib.unstructured_masks(
      scores,
      prunable,
      s,
      config.allocation,
      current=masks if config.mode == "hard" else None,
      roles=alloc_lib.roles_tree(params, pred),
      erk_power=config.erk_power,
      classifier_max=config.classifier_max,
      normalize=config.normalize,
      pattern=config.pattern,
    )
    new = masks_lib.from_bool(new, params)
    return PruneResult(
      masks_lib.apply(params, new), batch_stats, new, prunable=prunable
    )

  num_classes = _num_classes(params)
  groups = models.channel_groups(model_name, num_classes, widths=widths, **overrides)
  source = params if masks is None else masks_lib.apply(params, masks)
  scores = structured.group_scores(
    groups,
    source,
    config.criterion or "l1",
    rng=rng,
    grads=grads,
    channel_scores=channel_scores,
  )
  if config.flops_weight:
    model = models.create(model_name, num_classes, widths=widths, **overrides)
    shape = input_shape or models.input_shape(model_name)
    scores = _flops_penalised(scores, groups, model, shape, config.flops_weight)
  ratios, sizes = _ratios_and_sizes(config, groups)
  if keep_counts is not None:
    ratios, sizes = {}, dict(keep_counts)
  # Criteria may leave groups unscored (bn_scale: groups without BN).
  ratios = {k: v for k, v in ratios.items() if k in scores}
  sizes = {k: v for k, v in sizes.items() if k in scores}
  if config.group_allocation == "global":
    names = [n for n in presets.select_groups(groups, config.groups) if n in scores]
    ratio = config.ratio if sparsity is None else sparsity
    keep = structured.select_global(scores, names, ratio)
  else:
    keep = structured.select_per_group(scores, ratios, config.rounding)
    for name, k in sizes.items():
      keep[name] = structured.top_indices(scores[name], k)
  if not config.surgery:
    m = structured.channel_masks(groups, keep, params)
    if masks is not None:
      m = masks_lib.combine(m, masks)
    return PruneResult(masks_lib.apply(params, m), batch_stats, m, keep=keep)
  small = surgery.shrink(
    model_name,
    source,
    batch_stats,
    keep,
    num_classes=num_classes,
    input_shape=input_shape,
    **overrides,
  )
  return PruneResult(
    small.params,
    small.batch_stats,
    masks_lib.ones_like(small.params),
    small.widths,
    keep,
  )


def _ratios_and_sizes(config, groups) -> tuple[dict[str, float], dict[str, int]]:
  """Per-group ratios and explicit kept sizes of the config's structured pruning."""
  if config.preset:
    return presets.preset(config.preset, groups)
  ratios = presets.ratios(
    groups,
    which=config.groups,
    ratio=config.ratio,
    stage_ratios=tuple(config.stage_ratios),
    skip=tuple(config.skip),
  )
  return ratios, {}


def keep_targets(config: ml_collections.ConfigDict, groups) -> dict[str, int]:
  """Channels every pruned group keeps under the config's per-group ratios,
  stage ratios or preset (structured, `group_allocation="per_group"`)."""
  ratios, sizes = _ratios_and_sizes(config, groups)
  size = {g.name: g.size for g in groups}
  out = {
    n: structured.keep_count(size[n], r, config.rounding) for n, r in ratios.items()
  }
  return {**out, **sizes}


def imp_keep_counts(
  config: ml_collections.ConfigDict, groups: list, cycle: int
) -> dict[str, int]:
  """Kept channels per group after structured IMP cycle `cycle` of
  `config.imp_cycles` (`groups`: the dense model's): the same fraction of the
  remaining channels per cycle towards `keep_targets`, or for
  `presets.REPEATED` presets their ratios applied again at every cycle."""
  sizes = {g.name: g.size for g in groups}
  if config.preset in presets.REPEATED:
    counts = sizes
    for _ in range(cycle):
      current = [dataclasses.replace(g, size=counts[g.name]) for g in groups]
      counts = {**counts, **keep_targets(config, current)}
    return {n: counts[n] for n in keep_targets(config, groups)}
  final = keep_targets(config, groups)
  return structured.imp_keep_counts(sizes, final, cycle, config.imp_cycles)


def _flops_penalised(scores, groups, model, shape, weight: float):
  """Scores minus `weight` * each channel's share of the model's FLOPs."""

  counts = counting.count(model, shape)
  cost = data_scores.flops_per_channel(groups, counts.layers)
  total = max(counts.flops, 1)
  return {n: s - weight * cost[n] / total for n, s in scores.items()}


def slimming_hook(
  config: ml_collections.ConfigDict, model_name: str, num_classes: int = 10, **overrides
):
  """The network-slimming ``regularizer`` (None when ``slimming_strength`` is 0).

  Like network slimming, it penalises every BatchNorm scale of the model.
  """
  if not config.slimming_strength:
    return None
  groups = models.channel_groups(model_name, num_classes, **overrides)
  return structured.bn_l1_penalty(
    config.slimming_strength, structured.all_norm_paths(groups)
  )
