"""STR: soft threshold weight reparameterization (Kusupati et al. 2020).

The rule implemented (method name "str", options `config.during.str.*`):

* every prunable layer l has one trainable scalar s_l (`TrainState.aux`,
  keyed by the layer's path), initialised to `s_init`;
* the forward pass (training and evaluation) uses the soft-thresholded
  weights  W_l' = sign(W_l) * relu(|W_l| - g(s_l)),  g = sigmoid;
  autodiff through relu and sigmoid gives the gradients of W and s (as in
  Zimmer et al.'s reimplementation, `ZIB-IOL/BIMP` `STR`);
* s gets the same optimizer as the weights, weight decay included: with a
  very negative s the loss gradient on s is tiny (sigmoid is flat there), and
  weight decay pulling s towards 0 is what raises the threshold. Sparsity
  therefore emerges from `s_init` (higher: more sparsity, from the start) and
  `optimizer.weight_decay` (higher: s climbs faster, more sparsity); no
  target sparsity is given;
* the dense W keep training (no hard mask); the run ends with
  `final`: the thresholded weights W' and masks 1[|W| > g(s)], so the pruned
  weights are exact zeros and the final net is the one evaluated in training.

Source: Zimmer et al. (ICLR 2023) Sec. 2.2 / Table 2 and App. B.1 (the grid
s_init in {-100, -50, -5, -2, -1, 0, 5, 50, 100}, extended {-40 .. -10} with
weight decay {5e-5, 1e-4}); the update rule is Kusupati et al.'s as Zimmer's
code implements it. The default s_init = -5 is a member of that grid (initial
threshold sigmoid(-5) = 0.0067), not a published best value. Per-layer
thresholds (STR's "layerwise" variant, the one Zimmer uses); unstructured only.
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

DEFAULTS = {"s_init": -5.0}


def validate(config: ml_collections.ConfigDict) -> None:
  checks.number(config.during.str.s_init, "during.str.s_init")
  checks.field_choice(config, "pruning.name", ("unstructured",))
  target.allocation(config, "str", learned.ALLOCATIONS)


def soft_threshold(w: jax.Array, s: jax.Array) -> jax.Array:
  """sign(w) * relu(|w| - sigmoid(s))."""
  return jnp.sign(w) * jax.nn.relu(jnp.abs(w) - jax.nn.sigmoid(s))


def kept(w: jax.Array, s: jax.Array) -> jax.Array:
  """1.0 where the soft threshold leaves w nonzero: |w| > sigmoid(s)."""
  return (jnp.abs(w) > jax.nn.sigmoid(s)).astype(jnp.float32)


@register("str", defaults=DEFAULTS, validate=validate)
def build(context: Context) -> Method:
  validate(context.config)
  s_init = float(context.config.during.str.s_init)
  prunable = context.prunable

  init_aux = learned.aux_init(prunable, lambda w: jnp.asarray(s_init, w.dtype))

  def forward(params, aux, masks, step):
    del masks, step
    return learned.map_prunable(params, prunable, aux, soft_threshold)

  def final(state) -> tuple[Any, Any]:
    weights = forward(state.params, state.aux, None, None)
    return learned.hard_final(state, prunable, kept, weights)

  hooks = StepHooks(
    name=learned.program_name("str", {"s_init": s_init}, prunable),
    forward=forward,
    init_aux=init_aux,
    hard_masks=False,
  )
  return Method(hooks=hooks, final=final, exact_sparsity=False)
