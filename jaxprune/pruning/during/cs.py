"""CS: continuous sparsification (Savarese et al. 2020), one training round.

The rule implemented (method name "cs", options `config.during.cs.*`):

* every prunable weight w has a trainable mask logit s (`TrainState.aux`, one
  array per prunable layer, keyed by its path), initialised to `s_init`;
* at step t of a run of T = num_epochs * steps_per_epoch steps the
  temperature is  beta_t = beta_final ** (t / T)  (1 at the start, `beta_final`
  at the end: the geometric per-iteration increase of Zimmer et al.'s
  reimplementation, `ZIB-IOL/BIMP` `CS`; Savarese et al. multiply beta by the
  same factor per epoch instead);
* the forward pass uses the soft-masked weights
  w' = w * sigmoid(beta_t * s) / sigmoid(s_init)
  (the constant rescaling makes w' = w at initialisation, as both the
  authors' code and Zimmer's do);
* the loss gets the l0-style penalty  lambda * sum sigmoid(beta_t * s)  over
  all mask logits (`penalty` = lambda);
* w and s train with the same optimizer (weight decay included, as in
  Zimmer's single SGD over all parameters);
* `final`: the hard masks 1[s > 0] and the weights w' * 1[s > 0] (so pruned
  weights are exact zeros; the kept ones keep their soft factor, which is ~1
  for beta ~ beta_final).

Sparsity emerges from `s_init` (lower: more weights end with s <= 0) and
`penalty` (higher: more); no target sparsity is given.

Out of scope: CS's rounds with weight rewinding (Savarese et al. retrain
several rounds, rewinding the weights and resetting the kept logits between
rounds); Zimmer et al. compare one round under the epoch budget, as here.

Source: Zimmer et al. (ICLR 2023) App. B.1: beta fixed at 300, s_init in
{-0.3, -0.25, -0.2, -0.1, -0.05, 0, 0.05, 0.1, 0.2, 0.25, 0.3}, lambda in
{1e-8, 1e-7}. The defaults (beta_final 300, s_init 0, lambda 1e-8) are from
that grid; s_init 0 is its middle, not a published best value.
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

DEFAULTS = {"s_init": 0.0, "penalty": 1e-8, "beta_final": 300.0}


def validate(config: ml_collections.ConfigDict) -> None:
  checks.number(config.during.cs.s_init, "during.cs.s_init")
  checks.number(config.during.cs.penalty, "during.cs.penalty", minimum=0)
  checks.number(config.during.cs.beta_final, "during.cs.beta_final", minimum=1)
  checks.field_choice(config, "pruning.name", ("unstructured",))
  target.allocation(config, "cs", learned.ALLOCATIONS)


def temperature(step: jax.Array, beta_final: float, total_steps: int) -> jax.Array:
  """beta_final ** (t / T), t clipped to [0, T]: 1 -> beta_final."""
  progress = jnp.clip(jnp.asarray(step, jnp.float32) / max(total_steps, 1), 0.0, 1.0)
  return jnp.power(jnp.float32(beta_final), progress)


def kept(w: jax.Array, s: jax.Array) -> jax.Array:
  """The hard mask 1[s > 0]."""
  del w
  return (s > 0).astype(jnp.float32)


@register("cs", defaults=DEFAULTS, validate=validate)
def build(context: Context) -> Method:
  validate(context.config)
  options = context.config.during.cs
  s_init, lam = float(options.s_init), float(options.penalty)
  beta_final = float(options.beta_final)
  total = int(context.config.num_epochs) * int(context.steps_per_epoch)
  # Rescales the forward weights so that they equal w at initialisation.
  scale = float(1.0 / jax.nn.sigmoid(s_init))
  prunable = context.prunable

  init_aux = learned.aux_init(prunable, lambda w: jnp.full_like(w, s_init))

  def forward(params, aux, masks, step):
    del masks
    beta = temperature(step, beta_final, total)
    return learned.map_prunable(
      params, prunable, aux, lambda w, s: w * jax.nn.sigmoid(beta * s) * scale
    )

  def penalty(params, aux, step):
    del params
    beta = temperature(step, beta_final, total)
    return lam * sum(jnp.sum(jax.nn.sigmoid(beta * s)) for s in aux.values())

  def final(state) -> tuple[Any, Any]:
    weights = forward(state.params, state.aux, None, state.step)
    return learned.hard_final(state, prunable, kept, weights)

  name = learned.program_name(
    "cs",
    {"s_init": s_init, "penalty": lam, "beta_final": beta_final, "steps": total},
    prunable,
  )
  hooks = StepHooks(
    name=name, forward=forward, penalty=penalty, init_aux=init_aux, hard_masks=False
  )
  return Method(hooks=hooks, final=final, exact_sparsity=False)
