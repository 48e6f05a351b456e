"""GSM: global sparse momentum SGD (Ding et al. 2019), a `during` method.

The update rule implemented (Ding et al., as Zimmer et al. 2023 Sec. 2.2
summarise it and as the code Zimmer et al. ran applies it), every step t:

  score_i = |w_i * g_i|        g = dL/dw, the loss gradient of the batch;
  active  = the Q largest scores over all prunable weights ("global"; or Q
            per layer with pruning.allocation="uniform"), Q = the number of
            weights kept at the target sparsity pruning.sparsity;
  g'_i    = g_i if i is active or not prunable, else 0;
  SGD with momentum and weight decay on g' (PyTorch order, the project's
  optimizer): d = g' + wd * w;  buf = beta * buf + d;  w -= lr * buf.

So the Q active weights follow momentum SGD on loss + wd/2 ||w||^2, and every
other prunable weight follows the same momentum recursion with a zero loss
gradient: it only decays (at rate wd, through the momentum buffer). The
choice of the active set is redone every step from the current weights and
gradients, so weights may move in and out of it. Training is dense (no mask
in the forward pass); `final` keeps the top-Q weights by magnitude (exact
count) and zeroes the rest.

Selection `pruning.allocation` (the one field of every method): "global"
(Ding et al.'s Q over the whole net) or "uniform" (Q per prunable layer);
`config.during.gsm` has no options. GSM's momentum beta is
`optimizer.momentum` (Zimmer et al. App. B tune it over {0.9, 0.95, 0.99})
and its decay is `optimizer.weight_decay`, which must be > 0 (without it the
passive weights never shrink and GSM is only gradient masking). The passive
weights shrink by about exp(-sum_t lr_t * wd / (1 - beta)) over a run, so a
short budget needs a larger wd or beta. Unstructured only.

Where this differs from the code Zimmer et al. ran (docs/provenance.md, GSM):
that code ranks every parameter with a gradient (biases and BatchNorm
included) against a Q counted over the prunable weights; here only prunable
weights compete and the others always get their gradient.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from jaxprune import checks
from jaxprune.pruning.during import common, target
from jaxprune.pruning.during.base import Context, Method, register
from jaxprune.pruning.step_hooks import StepHooks


def active_masks(grads: Any, params: Any, prunable: Any, tgt: target.Target) -> Any:
  """1.0 where a weight gets its loss gradient this step: the top-Q of
  |w * g| over the prunable weights (all ones on the other leaves)."""
  scores = jax.tree_util.tree_map(lambda w, g: jnp.abs(w * g), params, grads)
  return common.topk_masks(scores, prunable, tgt.sparsity, tgt.allocation)


def validate(config: ml_collections.ConfigDict) -> None:
  target.read(config, "gsm")
  checks.choice(config.optimizer.name, "optimizer.name (GSM is momentum SGD)", ("sgd",))
  if not config.optimizer.weight_decay > 0:
    raise ValueError(
      "optimizer.weight_decay must be > 0 for during.method='gsm' (the passive "
      f"weights only decay), got {config.optimizer.weight_decay!r}"
    )


@register("gsm", validate=validate)
def build(context: Context) -> Method:
  tgt = target.read(context.config, "gsm")
  prunable = context.prunable

  def select_grads(grads, params, masks, step):
    del masks, step
    active = active_masks(grads, params, prunable, tgt)
    return jax.tree_util.tree_map(lambda g, a: g * a.astype(g.dtype), grads, active)

  hooks = StepHooks(
    name=target.hooks_name("gsm", prunable, tgt),
    select_grads=select_grads,
    hard_masks=False,  # Every weight keeps training; only its gradient is chosen.
  )
  return Method(hooks=hooks, final=target.final(prunable, tgt))
