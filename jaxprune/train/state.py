"""The explicit train state pytree and its creation.

Everything a run needs to continue bit-identically lives here: step, params,
BatchNorm statistics, optimizer state, pruning masks (all ones for a dense run)
and the rng. The state is a plain pytree (a flax struct), so it is jitted,
sharded, donated and checkpointed as one value.

A run's first state: `seed_keys(seed)` splits the seed into init and data keys
(the one place), `init_program` compiles the init of one model/optimizer kind
once, and `initial_state` gives a run's state from a fresh init or from
given weights (`Start`: pretrained, pruned, rewound ...).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxprune.models import init_variables
from jaxprune.train import hyper as hyper_lib
from jaxprune.train import sharding


@flax.struct.dataclass
class TrainState:
  step: jax.Array  # int32 scalar: optimizer steps taken.
  params: Any
  batch_stats: Any  # {} for models without BatchNorm.
  opt_state: Any
  masks: Any  # Same structure as params; 1 = kept, 0 = pruned.
  rng: jax.Array  # uint32[2] raw key; per-step keys are folded from it.
  # A pruning method's own trainable variables (`hooks.StepHooks.init_aux`),
  # optimized with the params; {} for every other run.
  aux: Any = dataclasses.field(default_factory=dict)


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
  init_aux: Callable[[Any], Any] | None = None,
) -> TrainState:
  """Initialises a fresh state (pure; jit it with out_shardings to place it)."""
  init_rng, state_rng = jax.random.split(rng)
  params, batch_stats = init_variables(model, init_rng, input_shape)
  return state_from_params(params, batch_stats, tx, state_rng, masks, init_aux=init_aux)


def state_from_params(
  params: Any,
  batch_stats: Any,
  tx: optax.GradientTransformation,
  rng: jax.Array,
  masks: Any = None,
  step: int = 0,
  init_aux: Callable[[Any], Any] | None = None,
) -> TrainState:
  """A state around existing weights, with a fresh optimizer (retraining).

  `init_aux(params)` gives a pruning method's own trainable variables; the
  optimizer then covers (params, aux)."""
  masks = ones_masks(params) if masks is None else masks
  params = apply_masks(params, masks)
  aux = {} if init_aux is None else init_aux(params)
  trained = (params, aux) if jax.tree_util.tree_leaves(aux) else params
  return TrainState(
    step=jnp.asarray(step, jnp.int32),
    params=params,
    batch_stats=batch_stats,
    opt_state=tx.init(trained),
    masks=masks,
    rng=rng,
    aux=aux,
  )


def to_checkpoint(state: TrainState) -> dict[str, Any]:
  """The tree a checkpoint stores: the state's fields, without `aux` when a
  run has none (so checkpoints keep the layout they had before `aux` existed
  and older ones restore unchanged)."""
  tree = {f.name: getattr(state, f.name) for f in dataclasses.fields(state)}
  if not jax.tree_util.tree_leaves(tree["aux"]):
    del tree["aux"]
  return tree


def from_checkpoint(tree: Any) -> TrainState:
  """The state of a `to_checkpoint` tree (restored into its abstract tree)."""
  return TrainState(**{"aux": {}, **tree})


def count_params(params: Any) -> int:
  return int(sum(x.size for x in jax.tree_util.tree_leaves(params)))


@dataclasses.dataclass
class Start:
  """Weights a training phase starts from (pretrained, pruned, rewound ...)."""

  params: Any
  batch_stats: Any
  masks: Any = None  # None: dense (all ones).


def seed_keys(seed: int) -> tuple[jax.Array, jax.Array]:
  """(init key, data key) of a run of `seed`: the one place the seed is split.

  `init key` -> (param init key, state rng) in `create_train_state`; a run that
  starts from given weights (`Start`) keeps only the state rng. Protocols that
  need a run's initial weights (lottery rewinding, Scratch) derive them here.
  """
  init_rng, data_rng = jax.random.split(jax.random.PRNGKey(seed))
  return init_rng, data_rng


def init_program(
  model,
  make_tx,
  input_shape: tuple[int, ...],
  mesh,
  init_aux: Callable[[Any], Any] | None = None,
) -> Callable:
  """`init(init_rng, hyper, start_arrays) -> TrainState`, jitted and replicated
  on `mesh`: a fresh init (`start_arrays` None) or a state around given
  (params, batch_stats, masks) with a fresh optimizer (and `init_aux`: a
  pruning method's variables). The run's hyper and weights are arguments,
  not constants of a program per run, so the runs of a program (and later
  phases with its shapes) compile it once."""

  def init(init_rng, hyper, start_arrays):
    tx = make_tx(hyper)
    if start_arrays is None:
      return create_train_state(model, tx, input_shape, init_rng, init_aux=init_aux)
    params, batch_stats, masks = start_arrays
    state_rng = jax.random.split(init_rng)[1]
    return state_from_params(
      params, batch_stats, tx, state_rng, masks, init_aux=init_aux
    )

  return jax.jit(init, out_shardings=sharding.replicated(mesh))


def initial_state(
  config: ml_collections.ConfigDict,
  init: Callable,
  hyper: hyper_lib.Hyper,
  start: Start | None = None,
) -> tuple[TrainState, jax.Array]:
  """(state, data_rng) a fresh run of `config` starts from, by `init`
  (`init_program`). Every run of a group starts exactly as its own run would
  (`seed_keys`)."""
  init_rng, data_rng = seed_keys(config.seed)
  arrays = None if start is None else (start.params, start.batch_stats, start.masks)
  return init(init_rng, hyper, arrays), data_rng
