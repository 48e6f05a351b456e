"""DST: dynamic sparse training with trainable masked layers (Liu et al. 2020).

The rule implemented (method name "dst", options `config.during.dst.*`):

* every prunable layer has a trainable threshold per output unit, t of the
  size of the kernel's last axis (flax kernels put the output units last:
  Dense (in, out), Conv (kh, kw, in, out)), initialised to 0 and kept in
  `TrainState.aux` keyed by the layer's path;
* mask  M = S(|W| - t)  (t broadcast over the output axis), S the unit step
  (1 where the argument is > 0); its gradient is the long-tailed estimator
      S'(x) = 2 - 4|x|  for |x| <= 0.4,   0.4  for 0.4 < |x| <= 1,   0 beyond,
  so both W (through |W|) and t get a gradient from the loss;
* the forward pass (training and evaluation) uses W * M;
* the loss gets the sparsity penalty  alpha * sum_layers sum_units exp(-t)
  (`alpha`), which pushes the thresholds up;
* a layer whose mask keeps at most 1 % of its weights has its thresholds reset
  to 0 (all weights back), checked after every optimizer step on the updated
  weights and thresholds (the authors' code, and Zimmer's reimplementation
  `ZIB-IOL/BIMP` `DST`, check at the start of the next forward pass, which
  sees the same values);
* W and t train with the same optimizer (weight decay included, as in
  Zimmer's single SGD over all parameters);
* `final`: the masks S(|W| - t) at the end and W times them.

Sparsity emerges from `alpha` (higher: more) and the weight decay (which pulls
t back towards 0: less); no target sparsity is given.

Source: Zimmer et al. (ICLR 2023) App. B.1: alpha in {5e-6, 1e-5, 5e-5, 1e-4,
5e-4}, extended {1e-7, 5e-7, 1e-6} with weight decay {0, 1e-4}; the default
alpha = 5e-6 is the smallest value of the main grid, not a published best.
Unstructured only.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from jaxprune import checks
from jaxprune.pruning.during import learned, target
from jaxprune.pruning.during.base import Context, Method, register
from jaxprune.pruning.step_hooks import StepHooks

DEFAULTS = {"alpha": 5e-6}
RESET_BELOW = 0.01  # A layer keeping at most this fraction is reset.


def validate(config: ml_collections.ConfigDict) -> None:
  checks.number(config.during.dst.alpha, "during.dst.alpha", minimum=0)
  checks.field_choice(config, "pruning.name", ("unstructured",))
  target.allocation(config, "dst", learned.ALLOCATIONS)


def step_derivative(x: jax.Array) -> jax.Array:
  """The long-tailed estimator of the unit step's derivative."""
  a = jnp.abs(x)
  return jnp.where(a <= 0.4, 2.0 - 4.0 * a, jnp.where(a <= 1.0, 0.4, 0.0))


@jax.custom_vjp
def binary_step(x: jax.Array) -> jax.Array:
  """1.0 where x > 0, else 0.0; gradient: `step_derivative`."""
  return (x > 0).astype(x.dtype)


def _step_fwd(x):
  return binary_step(x), x


def _step_bwd(x, g):
  return (g * step_derivative(x),)


binary_step.defvjp(_step_fwd, _step_bwd)


def mask(w: jax.Array, t: jax.Array) -> jax.Array:
  """S(|w| - t), t per output unit (the last axis)."""
  return binary_step(jnp.abs(w) - t)


def masked(w: jax.Array, t: jax.Array) -> jax.Array:
  return w * mask(w, t)


def kept(w: jax.Array, t: jax.Array) -> jax.Array:
  return (jnp.abs(w) > t).astype(jnp.float32)


def reset_thresholds(params: Any, aux: dict[str, jax.Array], prunable: Any) -> dict:
  """`aux` with the thresholds of every layer keeping <= 1 % set to 0."""
  leaves = jax.tree_util.tree_leaves(params)
  names = learned.prunable_names(params, prunable)
  out = dict(aux)
  for name, w in zip(names, leaves, strict=True):
    if name is not None:
      t = aux[name]
      fraction = jnp.mean(kept(w, t))
      out[name] = jnp.where(fraction <= RESET_BELOW, jnp.zeros_like(t), t)
  return out


@register("dst", defaults=DEFAULTS, validate=validate)
def build(context: Context) -> Method:
  validate(context.config)
  alpha = float(context.config.during.dst.alpha)
  prunable = context.prunable

  init_aux = learned.aux_init(prunable, lambda w: jnp.zeros(w.shape[-1:], w.dtype))

  def forward(params, aux, masks, step):
    del masks, step
    return learned.map_prunable(params, prunable, aux, masked)

  def penalty(params, aux, step):
    del params, step
    return alpha * sum(jnp.sum(jnp.exp(-t)) for t in aux.values())

  def after_step(state, grads):
    del grads
    return state.replace(aux=reset_thresholds(state.params, state.aux, prunable))

  def final(state) -> tuple[Any, Any]:
    return learned.hard_final(state, prunable, kept, state.params)

  hooks = StepHooks(
    name=learned.program_name("dst", {"alpha": alpha}, prunable),
    forward=forward,
    penalty=penalty,
    after_step=after_step,
    init_aux=init_aux,
    hard_masks=False,
  )
  return Method(hooks=hooks, final=final, exact_sparsity=False)
