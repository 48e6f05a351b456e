"""The explicit train state pytree and its creation.

Everything a run needs to continue bit-identically lives here: step, params,
BatchNorm statistics, optimizer state, pruning masks (all ones for a dense run)
and the rng. The state is a plain pytree (a flax struct), so it is jitted,
sharded, donated and checkpointed as one value.
"""

from __future__ import annotations

from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxprune.models import init_variables


@flax.struct.dataclass
class TrainState:
  step: jax.Array  # int32 scalar: optimizer steps taken.
  params: Any
  batch_stats: Any  # {} for models without BatchNorm.
  opt_state: Any
  masks: Any  # Same structure as params; 1 = kept, 0 = pruned.
  rng: jax.Array  # uint32[2] raw key; per-step keys are folded from it.


def ones_masks(params: Any) -> Any:
  return jax.tree_util.tree_map(jnp.ones_like, params)


def apply_masks(tree: Any, masks: Any) -> Any:
  return jax.tree_util.tree_map(lambda x, m: x * m.astype(x.dtype), tree, masks)


def create_train_state(
  model: nn.Module,
  tx: optax.GradientTransformation,
  input_shape: tuple[int, ...],
  rng: jax.Array,
  masks: Any = None,
) -> TrainState:
  """Initialises a fresh state (pure; jit it with out_shardings to place it)."""
  init_rng, state_rng = jax.random.split(rng)
  params, batch_stats = init_variables(model, init_rng, input_shape)
  return state_from_params(params, batch_stats, tx, state_rng, masks)


def state_from_params(
  params: Any,
  batch_stats: Any,
  tx: optax.GradientTransformation,
  rng: jax.Array,
  masks: Any = None,
  step: int = 0,
) -> TrainState:
  """A state around existing weights, with a fresh optimizer (retraining)."""
  masks = ones_masks(params) if masks is None else masks
  params = apply_masks(params, masks)
  return TrainState(
    step=jnp.asarray(step, jnp.int32),
    params=params,
    batch_stats=batch_stats,
    opt_state=tx.init(params),
    masks=masks,
    rng=rng,
  )


def count_params(params: Any) -> int:
  return int(sum(x.size for x in jax.tree_util.tree_leaves(params)))
