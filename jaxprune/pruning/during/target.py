"""The target sparsity of the during-training methods that are given one.

GSM and LC (and any method told "end at sparsity s", as Zimmer et al. give
GMP, GSM, DPF, DNW and LC the same target as BIMP) read the same three
config fields and end the same way: a final magnitude projection onto the
constraint "at most (1 - s) of the prunable weights are nonzero". This module
is the one place for both: `read` validates and returns the target, `final`
builds the `Method.final` that keeps the top-k magnitudes at the end.

The target (unstructured pruning only):
  pruning.sparsity    the fraction of prunable weights zeroed, [0, 1);
  pruning.allocation  how the kept weights are spread over the layers, one
                      field for every method (so methods compare "at equal
                      allocation" by setting it once): the top-k methods
                      (GMP, DNW, DPF, GSM, LC) take "global" (one threshold
                      over all prunable weights, as Zimmer et al. run every
                      method) or "uniform" (every prunable leaf at the
                      ratio); SET and RigL take their initial distribution,
                      "erk" or "uniform". `allocation` checks the value
                      against what the run's method accepts.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import ml_collections

from jaxprune import checks
from jaxprune.pruning.during import common


@dataclasses.dataclass(frozen=True)
class Target:
  sparsity: float
  allocation: str


def read(config: ml_collections.ConfigDict, method: str) -> Target:
  """The target of a run of `method`; ValueError naming the first invalid
  field."""
  checks.choice(config.pruning.name, "pruning.name", ("unstructured",))
  sparsity = checks.rate(config.pruning.sparsity, "pruning.sparsity")
  return Target(sparsity, allocation(config, method))


def allocation(
  config: ml_collections.ConfigDict,
  method: str,
  allowed: tuple[str, ...] = common.ALLOCATIONS,
) -> str:
  """`pruning.allocation` if `method` accepts it (`allowed`: the in-step
  top-k selections by default), else a one-line ValueError naming the field,
  the method and the allowed values."""
  value = config.pruning.allocation
  if value not in allowed:
    raise ValueError(
      f"pruning.allocation must be one of {list(allowed)} for "
      f"during.method={method!r}, got {value!r}"
    )
  return value


def positive(config: ml_collections.ConfigDict, field: str) -> float:
  """The dotted float `field`, which must be finite and > 0."""
  value = _get(config, field)
  if isinstance(value, bool) or not isinstance(value, int | float):
    raise ValueError(f"{field} must be a float > 0, got {value!r}")
  if not (math.isfinite(value) and value > 0):
    raise ValueError(f"{field} must be a float > 0, got {value!r}")
  return float(value)


def positive_int(config: ml_collections.ConfigDict, field: str) -> int:
  """The dotted int `field`, which must be >= 1."""
  value = _get(config, field)
  if isinstance(value, bool) or not isinstance(value, int) or value < 1:
    raise ValueError(f"{field} must be an int >= 1, got {value!r}")
  return int(value)


def _get(config: Any, dotted: str) -> Any:
  for part in dotted.split("."):
    config = config[part]
  return config


def hooks_name(method: str, prunable: Any, tgt: Target, *options: Any) -> str:
  """A `StepHooks.name` naming everything the hooks compute from: the method,
  which leaves are prunable (a pruning-config choice the program key does not
  hold), the target and the method's options."""
  flags = "".join("1" if f else "0" for f in jax.tree_util.tree_leaves(prunable))
  return repr((method, flags, tgt.sparsity, tgt.allocation, *options))


def projection(params: Any, prunable: Any, target: Target) -> tuple[Any, Any]:
  """(params with all but the kept magnitudes zeroed, masks): the magnitude
  projection onto the target's sparsity constraint (exact counts)."""
  masks = common.magnitude_masks(params, prunable, target.sparsity, target.allocation)
  pruned = jax.tree_util.tree_map(lambda w, m: w * m.astype(w.dtype), params, masks)
  return pruned, masks


def final(prunable: Any, target: Target):
  """`Method.final`: the magnitude projection of the trained weights."""

  def finish(state) -> tuple[Any, Any]:
    return projection(state.params, prunable, target)

  return finish
