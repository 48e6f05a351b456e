"""DNW, Discovering Neural Wirings (Wortsman et al. 2019), as Zimmer et al.
2023 compare it (Sec. 2.2, Table 2): "zeroes out the smallest k weights in
the forward pass while still using a dense gradient".

Update rule (one SGD step, w the dense prunable weights, s = `pruning.sparsity`):
  m     = TopK(|w|, s)          1 at the (1 - s) n largest |w| (global over all
                                prunable weights, or per layer: `allocation`)
  loss  = L(w * m)              the forward pass uses the top-k weights only
  dL/dw = dL/d(w * m)           straight-through: every weight, kept or not,
                                gets the gradient at the pruned net, so a
                                pruned weight can grow back into the top k
  w    <- optimizer(w, dL/dw)   dense update (weight decay on all of w)
The sparsity is the target from the first step (no schedule), as in the
authors' and Zimmer et al.'s code (a threshold at the k-th smallest |w| over
all prunable weights, recomputed every forward pass). `final`: the top-k of
the final dense weights, which is exactly the net the last forward used, so
hard pruning changes nothing (pruning stability 1).

Selection `pruning.allocation` (the one field of every method): "global"
(Zimmer et al.'s selection for every method) or "uniform" (every prunable
layer at s). `config.during.dnw` has no options. Unstructured only. The target sparsity is static (exact `lax.top_k` counts),
so it is part of the hooks' name: runs that differ in seed, LR or weight
decay share one compiled program, runs of other sparsities do not.
"""

from __future__ import annotations

from typing import Any

import jax
import ml_collections

from jaxprune import checks
from jaxprune.pruning.during import common, target
from jaxprune.pruning.during.base import Context, Method, register
from jaxprune.pruning.step_hooks import StepHooks


def straight_through(params: Any, masks: Any) -> Any:
  """`params * masks` in the forward pass with the identity as its gradient
  (the gradient at the masked weights reaches every weight)."""
  return jax.tree_util.tree_map(
    lambda w, m: w + jax.lax.stop_gradient(w * m - w), params, masks
  )


def validate(config: ml_collections.ConfigDict) -> None:
  target.allocation(config, "dnw")
  checks.field_choice(config, "pruning.name", ("unstructured",))


@register("dnw", validate=validate)
def build(context: Context) -> Method:
  sparsity = float(context.config.pruning.sparsity)
  allocation = target.allocation(context.config, "dnw")
  prunable = context.prunable

  def topk(params: Any) -> Any:
    return common.magnitude_masks(
      jax.lax.stop_gradient(params), prunable, sparsity, allocation
    )

  def forward(params, aux, masks, step):
    del aux, masks, step
    return straight_through(params, topk(params))

  def final(state) -> tuple[Any, Any]:
    masks = topk(state.params)
    return jax.tree_util.tree_map(lambda w, m: w * m, state.params, masks), masks

  hooks = StepHooks(
    name=f"dnw:{allocation}:{sparsity!r}", forward=forward, hard_masks=False
  )
  return Method(hooks=hooks, final=final)
