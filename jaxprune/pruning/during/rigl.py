"""RigL (Evci et al. 2020): sparse training that drops the smallest weights and
regrows where the dense gradient is largest; and the drop/grow engine SET
(`set_.py`) shares with it.

The rule implemented (both methods; sources in docs/provenance.md, "SET and
RigL"):

* Start: sparse from the first step at the target sparsity
  `config.pruning.sparsity`. The initial masks are random with per-layer
  densities from `pruning.allocation` (the one allocation field of every
  method): "erk" (Erdos-Renyi-Kernel, Evci et al.'s default for their best
  results) or "uniform" (every prunable layer at the target); the top-k
  methods' "global" is refused (one threshold over random scores would give
  each layer a random count, neither paper's start). The kept weights are the
  dense init's (`init_scale` "dense", as the papers) or divided by sqrt(the
  layer's density) ("density", Liu et al.'s rescaled init, `pruning.
  reinit_rescale`): a deep ReLU MLP at 90 % does not train from the dense
  scale (MLP-7 on Fashion-MNIST stays at 10 % test accuracy for 4 epochs of
  static sparse training, 85.9 % with "density"). `Method.init_sparse`.
* Every `delta_t` steps while `t < t_end` (`t` = optimizer steps done,
  `t_end` = `during.<m>.t_end` times the run's total steps), in every prunable
  layer with `n` active weights: `k = floor(alpha_t * n)` with
  `alpha_t = alpha / 2 * (1 + cos(pi t / t_end))`;
  drop the `k` active weights of smallest magnitude; grow `k` of the weights
  that are then inactive (the ones just dropped included, as in RigL's code)
  with the largest grow score: RigL |dense loss gradient of the step|, SET a
  uniform random number. Ties go to the lower flat index. Every layer keeps
  exactly `n` weights, so the sparsity never changes.
* Grown weights start at zero (RigL's choice; SET, whose paper draws new
  weights at random, uses zero here too, so the two differ only in where they
  grow). Between updates the masks are hard (pruned weights exactly zero, no
  gradient). The optimizer state of regrown weights is not reset.
* The run ends with the current masks (`final`).

The update runs inside the jitted train step (`after_step`, under
`lax.cond`), with the drop count computed from the traced mask, so runs at
different sparsities share one program and vmap together; only the
initial masks depend on the target.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from jaxprune import checks
from jaxprune.pruning import allocation, rewind
from jaxprune.pruning import masks as masks_lib
from jaxprune.pruning.during import target
from jaxprune.pruning.during.base import Context, Method, register
from jaxprune.pruning.step_hooks import StepHooks

DEFAULTS = {
  "delta_t": 100,  # Steps between mask updates.
  "alpha": 0.3,  # Initial drop fraction (cosine-decayed to 0 at t_end).
  "t_end": 0.75,  # Last update, as a fraction of the run's total steps.
  "init_scale": "dense",  # dense | density: see the module docstring.
}
DISTRIBUTIONS = ("erk", "uniform")
INIT_SCALES = ("dense", "density")

# (state, dense grads of the step, leaf index, prunable leaf) -> grow scores.
GrowScore = Callable[[Any, Any, int, jax.Array], jax.Array]


def drop_fraction(step: jax.Array, alpha: float, t_end: int) -> jax.Array:
  """`alpha / 2 (1 + cos(pi t / t_end))`: the fraction of a layer's active
  weights dropped (and regrown) at update step `t`."""
  return alpha / 2 * (1 + jnp.cos(jnp.pi * step / t_end))


def drop_and_grow(
  mask: jax.Array, weight: jax.Array, grow_score: jax.Array, fraction: jax.Array
) -> tuple[jax.Array, jax.Array]:
  """One layer's update -> (new mask, survivors): the `floor(fraction * n)`
  active weights of smallest |weight| leave, as many of the then inactive
  positions with the largest `grow_score` join. Both 0/1 like `mask`."""
  active = mask > 0
  n = jnp.sum(active, dtype=jnp.int32)
  k = jnp.floor(fraction * n).astype(jnp.int32)
  survivors = allocation.topk_mask(jnp.where(active, jnp.abs(weight), -jnp.inf), n - k)
  # Survivors can never win: candidates' scores are finite (NaN -> 0).
  candidates = jnp.where(survivors, -jnp.inf, jnp.nan_to_num(grow_score, nan=0.0))
  grown = allocation.topk_mask(candidates, k)
  return (survivors | grown).astype(mask.dtype), survivors.astype(mask.dtype)


def update(
  state: Any, grads: Any, prunable: Any, fraction: jax.Array, grow: GrowScore
) -> Any:
  """`state` with every prunable layer's masks dropped and regrown
  (`drop_and_grow`) and the weights that did not survive set to zero."""
  p_leaves, treedef = jax.tree_util.tree_flatten(state.params)
  m_leaves = treedef.flatten_up_to(state.masks)
  g_leaves = treedef.flatten_up_to(grads)
  flags = treedef.flatten_up_to(prunable)
  params, masks = list(p_leaves), list(m_leaves)
  for i, flag in enumerate(flags):
    if flag:
      score = grow(state, g_leaves[i], i, p_leaves[i])
      masks[i], survivors = drop_and_grow(m_leaves[i], p_leaves[i], score, fraction)
      params[i] = p_leaves[i] * survivors.astype(p_leaves[i].dtype)
  return state.replace(params=treedef.unflatten(params), masks=treedef.unflatten(masks))


def options(config: ml_collections.ConfigDict, name: str) -> ml_collections.ConfigDict:
  """`config.during.<name>`: SET's or RigL's options (`DEFAULTS`)."""
  return config.during[name]


def validate_options(config: ml_collections.ConfigDict, name: str) -> None:
  """One-line errors naming `during.<name>.<field>`."""
  o = options(config, name)
  field = f"during.{name}"
  if isinstance(o.delta_t, bool) or not isinstance(o.delta_t, int) or o.delta_t < 1:
    raise ValueError(f"{field}.delta_t must be an integer >= 1, got {o.delta_t!r}")
  if checks.rate(o.alpha, f"{field}.alpha") == 0:
    raise ValueError(f"{field}.alpha must be a float in (0, 1), got {o.alpha!r}")
  t_end = o.t_end
  if (
    isinstance(t_end, bool) or not isinstance(t_end, int | float) or not 0 < t_end <= 1
  ):
    raise ValueError(f"{field}.t_end must be a fraction in (0, 1], got {t_end!r}")
  target.allocation(config, name, DISTRIBUTIONS)
  checks.choice(o.init_scale, f"{field}.init_scale", INIT_SCALES)
  checks.field_choice(config, "pruning.name", ("unstructured",))
  sparsity = config.pruning.sparsity
  if not 0 <= sparsity < 1:
    raise ValueError(f"pruning.sparsity must be in [0, 1) for {name}, got {sparsity!r}")


def build_drop_grow(context: Context, name: str, grow: GrowScore) -> Method:
  """The `Method` of SET / RigL (`name`) with its grow score `grow`."""
  o = options(context.config, name)
  total_steps = context.steps_per_epoch * context.config.num_epochs
  t_end = max(1, math.floor(o.t_end * total_steps))
  delta_t, alpha = int(o.delta_t), float(o.alpha)
  prunable = context.prunable
  sparsity = float(context.config.pruning.sparsity)
  distribution = target.allocation(context.config, name, DISTRIBUTIONS)
  rescale = o.init_scale == "density"

  def after_step(state, grads):
    t = state.step  # Steps done, this one included.
    due = (t % delta_t == 0) & (t < t_end)
    fraction = drop_fraction(t, alpha, t_end)
    return jax.lax.cond(
      due, lambda s: update(s, grads, prunable, fraction, grow), lambda s: s, state
    )

  def init_sparse(params: Any, key: jax.Array) -> tuple[Any, Any]:
    # Random scores, so the kept positions are random, at exact per-layer
    # counts of the chosen distribution.
    leaves, treedef = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(key, len(leaves))
    scores = treedef.unflatten(
      [jax.random.uniform(k, jnp.shape(x)) for k, x in zip(keys, leaves, strict=True)]
    )
    masks = allocation.unstructured_masks(scores, prunable, sparsity, distribution)
    params = masks_lib.apply(params, masks)
    return (rewind.rescale_to_density(params, masks) if rescale else params), masks

  def final(state: Any) -> tuple[Any, Any]:
    return masks_lib.apply(state.params, state.masks), state.masks

  hooks = StepHooks(
    name=f"{name}(delta_t={delta_t},alpha={alpha},t_end={t_end})",
    after_step=after_step,
  )
  return Method(hooks=hooks, final=final, init_sparse=init_sparse)


def gradient_magnitude(
  state: Any, grad: jax.Array, index: int, weight: jax.Array
) -> jax.Array:
  """RigL's grow score: |dense gradient of the step|."""
  del state, index, weight
  return jnp.abs(grad)


@register(
  "rigl", defaults=DEFAULTS, validate=lambda config: validate_options(config, "rigl")
)
def rigl(context: Context) -> Method:
  return build_drop_grow(context, "rigl", gradient_magnitude)
