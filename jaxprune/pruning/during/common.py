"""Jittable pieces the during-training methods share: magnitude top-k masks
(global or per layer, exact counts) and sparsity schedules as functions of
the step, so methods can recompute masks inside the train step.

The host-side pruning engine (`jaxprune.pruning.prune`) is for one-off pruning
with every criterion and allocation; these are its in-step counterparts for
the score-and-keep-the-top-k rule the during-training methods repeat every
step or every few steps.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxprune.pruning import allocation

ALLOCATIONS = ("global", "uniform")


def prunable_leaves(tree: Any, prunable: Any) -> list[jax.Array]:
  """The leaves of `tree` where `prunable` is True, in tree order."""
  leaves = jax.tree_util.tree_leaves(tree)
  flags = jax.tree_util.tree_leaves(prunable)
  return [x for x, f in zip(leaves, flags, strict=True) if f]


def _exact_topk(scores: jax.Array, keep: int | jax.Array) -> jax.Array:
  """1.0 at the `keep` largest entries of the flat `scores` (ties broken by
  position, so exactly `keep` entries), else 0.0; `keep` static or traced (a
  sparsity that changes with the step). The pruning engine's exact top-k."""
  return allocation.topk_mask(scores, keep).astype(jnp.float32)


def keep_count(size: int, sparsity: float | jax.Array) -> int | jax.Array:
  """Weights kept of `size` at `sparsity`: the pruned count rounded to the
  nearest integer (traced in, traced out)."""
  if isinstance(sparsity, jax.Array):
    return size - jnp.round(sparsity * size).astype(jnp.int32)
  return size - round(float(sparsity) * size)


def topk_masks(
  scores: Any, prunable: Any, sparsity: float, allocation: str = "global"
) -> Any:
  """Masks (float 0/1, like `scores`) keeping the largest scores.

  `scores`: a tree like the params (e.g. |w|); `prunable`: True where a leaf
  may be pruned (other leaves get all-ones masks); `sparsity`: a Python float
  (the kept counts are static: `lax.top_k`) or a traced scalar (e.g. from a
  schedule of the step: entries are ranked). "global": one threshold over all
  prunable leaves, exactly keep_count(total) kept; "uniform": every prunable
  leaf at `sparsity`.
  """
  if allocation not in ALLOCATIONS:
    raise ValueError(f"allocation must be one of {ALLOCATIONS}, got {allocation!r}")
  leaves, treedef = jax.tree_util.tree_flatten(scores)
  flags = jax.tree_util.tree_leaves(prunable)
  out = [jnp.ones_like(x, jnp.float32) for x in leaves]
  chosen = [i for i, f in enumerate(flags) if f]
  if allocation == "uniform":
    for i in chosen:
      flat = leaves[i].reshape(-1)
      out[i] = _exact_topk(flat, keep_count(flat.size, sparsity)).reshape(
        leaves[i].shape
      )
  elif chosen:
    flat = jnp.concatenate([leaves[i].reshape(-1) for i in chosen])
    kept = _exact_topk(flat, keep_count(flat.size, sparsity))
    offsets = np.cumsum([0] + [leaves[i].size for i in chosen])
    for j, i in enumerate(chosen):
      out[i] = kept[offsets[j] : offsets[j + 1]].reshape(leaves[i].shape)
  return jax.tree_util.tree_unflatten(treedef, out)


def magnitude_masks(
  params: Any, prunable: Any, sparsity: float, allocation: str = "global"
) -> Any:
  """`topk_masks` of |params|."""
  return topk_masks(
    jax.tree_util.tree_map(jnp.abs, params), prunable, sparsity, allocation
  )


def mask_sparsity(masks: Any, prunable: Any) -> jax.Array:
  """Fraction of the prunable weights that the masks remove."""
  leaves = prunable_leaves(masks, prunable)
  total = sum(x.size for x in leaves)
  kept = sum(jnp.sum(x) for x in leaves)
  return 1.0 - kept / max(total, 1)


def cubic_sparsity(
  step: jax.Array, final: float, start_step: int, end_step: int, initial: float = 0.0
) -> jax.Array:
  """Zhu & Gupta's schedule as a traced function of the step:
  s(t) = s_f + (s_i - s_f) (1 - (t - t0) / (t1 - t0))^3, clipped to [t0, t1]."""
  span = max(end_step - start_step, 1)
  progress = jnp.clip((step - start_step) / span, 0.0, 1.0)
  return final + (initial - final) * (1.0 - progress) ** 3
