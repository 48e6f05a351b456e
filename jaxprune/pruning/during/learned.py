"""Shared pieces of the methods whose sparsity is learned (STR, CS, DST).

These methods keep the dense weights and give every prunable layer variables
of its own (a threshold, per-weight mask logits, per-unit thresholds), which
train with the weights (`TrainState.aux`). Here:

* the aux tree: a flat dict keyed by the layer's params path ("fc1/kernel"),
  so checkpoints name what each variable belongs to and the non-prunable
  leaves carry nothing;
* `map_prunable`: the params with every prunable leaf replaced by
  `fn(leaf, its aux)` (the reparameterised forward weights, the final masks);
* `hard_final`: the hard-pruned (params, masks) a run ends with;
* `program_name`: the hooks' name from the method's options and the prunable
  set, so runs that may share one compiled step do (`StepHooks.name`).

Runs grouped under `vmap` differ only in arrays (weights, aux, optimizer
hyperparameters); a method's options are Python constants of its program.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxprune.pruning import masks as masks_lib

# STR, CS and DST learn each weight's pruning threshold or gate, so no per-layer
# split is chosen: only the default `pruning.allocation` describes them, and
# any other value is refused instead of silently ignored.
ALLOCATIONS = ("global",)


def prunable_names(params: Any, prunable: Any) -> list[str | None]:
  """Per leaf of `params` (tree order): its path "a/b/kernel" if prunable."""
  names = masks_lib.leaves_with_names(params)
  flags = jax.tree_util.tree_leaves(prunable)
  return [
    masks_lib.path_str(path) if flag else None
    for (path, _), flag in zip(names, flags, strict=True)
  ]


def aux_init(
  prunable: Any, make: Callable[[jax.Array], jax.Array]
) -> Callable[[Any], dict[str, jax.Array]]:
  """`StepHooks.init_aux`: params -> {path: make(leaf)} over the prunable leaves."""

  def init(params: Any) -> dict[str, jax.Array]:
    leaves = jax.tree_util.tree_leaves(params)
    names = prunable_names(params, prunable)
    return {n: make(x) for n, x in zip(names, leaves, strict=True) if n is not None}

  return init


def map_prunable(
  params: Any,
  prunable: Any,
  aux: dict[str, Any],
  fn: Callable[[jax.Array, Any], jax.Array],
  other: Callable[[jax.Array], jax.Array] = lambda x: x,
) -> Any:
  """`params` with each prunable leaf x replaced by fn(x, aux[path]) and every
  other leaf by other(x)."""
  leaves, treedef = jax.tree_util.tree_flatten(params)
  names = prunable_names(params, prunable)
  out = [
    other(x) if n is None else fn(x, aux[n]) for n, x in zip(names, leaves, strict=True)
  ]
  return jax.tree_util.tree_unflatten(treedef, out)


def ones(x: jax.Array) -> jax.Array:
  """An all-ones float32 mask like `x` (the masks of non-prunable leaves)."""
  return jnp.ones_like(x, jnp.float32)


def hard_final(
  state: Any,
  prunable: Any,
  kept: Callable[[jax.Array, Any], jax.Array],
  weights: Any,
) -> tuple[Any, Any]:
  """A method's `final`: masks kept(w, aux) on the prunable leaves (times the
  run's masks), and `weights` (the method's forward weights) times them, so
  every masked weight is an exact zero."""
  masks = map_prunable(state.params, prunable, state.aux, kept, other=ones)
  masks = jax.tree_util.tree_map(lambda m, old: m * old, masks, state.masks)
  return jax.tree_util.tree_map(lambda w, m: w * m, weights, masks), masks


def program_name(method: str, options: dict[str, Any], prunable: Any) -> str:
  """`StepHooks.name`: the method, its options and (hashed) the prunable set."""
  flags = repr(jax.tree_util.tree_flatten(prunable))
  digest = hashlib.sha256(flags.encode()).hexdigest()[:12]
  opts = ",".join(f"{k}={options[k]!r}" for k in sorted(options))
  return f"{method}({opts},prunable={digest})"
