"""Pruning engine: masks, scores, allocations, structured surgery, schedules.

Everything is a pure function over params pytrees; masks are a params-shaped
0/1 tree kept in ``TrainState.masks`` and applied inside the jitted step.

Modules:
  masks       -- mask pytrees, the prunable predicate, sparsity reports.
  scores      -- unstructured scores (magnitude, random, saliency, LAMP).
  allocation  -- GLOBAL / UNIFORM / UNIFORM+ / ERK / LAMP exact-count masks.
  structured  -- channel-group scores (L1, L2, random, BN scale, Taylor),
                 per-group / global selection, channel masks, slimming penalty.
  presets     -- per-stage ratios, skip lists, Li et al. / NPTM presets.
  surgery     -- masked large model -> small-dense model.
  schedules   -- one-shot, IMP, GMP (pruning, not learning-rate, schedules).
  rewind      -- lottery-ticket rewinding and random re-initialisation.
  api         -- ``default_config()``, ``prune(config, params, ...)``.

Typical use between training phases::

  cfg = pruning.default_config(); cfg.name = "unstructured"; cfg.sparsity = 0.9
  res = pruning.prune(cfg, state.params, state.batch_stats, model_name="resnet56")
  state = state_from_params(res.params, res.batch_stats, tx, rng, res.masks)
"""

from jaxprune.pruning import (
  allocation,
  masks,
  presets,
  rewind,
  schedules,
  scores,
  structured,
  surgery,
)
from jaxprune.pruning.api import (
  PruneResult,
  default_config,
  imp_keep_counts,
  keep_targets,
  per_group_imp,
  predicate,
  prune,
  register_criterion,
  slimming_hook,
  validate,
)

__all__ = [
  "PruneResult",
  "allocation",
  "default_config",
  "imp_keep_counts",
  "keep_targets",
  "masks",
  "per_group_imp",
  "predicate",
  "presets",
  "prune",
  "register_criterion",
  "rewind",
  "schedules",
  "scores",
  "slimming_hook",
  "structured",
  "surgery",
  "validate",
]
