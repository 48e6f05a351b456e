"""What a pruning method changes inside the train step: `StepHooks`.

Pruning-during-training methods (GMP soft, network slimming, DNW, DPF, GSM,
LC, CS, STR, DST, SET, RigL ...) differ from plain masked training in a few
places of one SGD step. `StepHooks` names those places, so every method runs
through the one `steps.train_step` (and its scanned / looped / vmapped
drivers) instead of a step of its own:

  forward(params, aux, masks, step) -> params   the weights the forward pass
      uses (e.g. `params * masks`; the top-k of `params` with a
      straight-through gradient; soft-thresholded weights). Evaluation uses
      the same function, so the evaluated net is the one trained.
  penalty(params, aux, step) -> scalar   added to the loss (l1 on BatchNorm
      scales, LC's quadratic pull, CS's mask penalty ...).
  select_grads(grads, params, masks, step) -> grads   applied to the loss
      gradients before the optimizer (GSM: only the top-Q get a gradient).
  after_step(state, grads) -> state   in-step updates after the optimizer
      step (masks regrown / re-pruned every k steps: SET, RigL, DPF); `grads`
      are the loss gradients of the step after `select_grads`, not multiplied
      by the hard masks (the gradient a pruned weight would get).
  init_aux(params) -> aux   the method's own trainable variables
      (`TrainState.aux`: STR's per-layer thresholds, CS's mask logits); they
      get the gradient of the loss and the same optimizer as the params.
  hard_masks   True: gradients and params are multiplied by the masks (pruned
      weights stay exactly zero); False: the dense params keep training and
      the masks act through `forward` only.

`name` identifies the computation: runs whose hooks have equal names (and
otherwise equal programs) share one compiled program, so a method's hooks must
be built from its config alone (values that change per run, e.g. a target
sparsity, belong in the config-derived name or in the state).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax

Forward = Callable[[Any, Any, Any, jax.Array], Any]
Penalty = Callable[[Any, Any, jax.Array], jax.Array]
SelectGrads = Callable[[Any, Any, Any, jax.Array], Any]
AfterStep = Callable[[Any, Any], Any]  # (TrainState, grads) -> TrainState.
InitAux = Callable[[Any], Any]

Regularizer = Callable[[Any], jax.Array]  # params -> scalar added to the loss.
ForwardParams = Callable[[Any, Any], Any]  # (params, masks) -> forward params.


@dataclasses.dataclass(frozen=True)
class StepHooks:
  """A method's changes to the train step (see the module docstring)."""

  name: str
  forward: Forward | None = None
  penalty: Penalty | None = None
  select_grads: SelectGrads | None = None
  after_step: AfterStep | None = None
  init_aux: InitAux | None = None
  hard_masks: bool = True

  def forward_params(self, params: Any, aux: Any, masks: Any, step: jax.Array) -> Any:
    """The weights the forward pass (training and evaluation) uses."""
    if self.forward is None:
      return params
    return self.forward(params, aux, masks, step)


def _key(fn: Any) -> Any:
  # Functions may declare what they compute (`fn.group_key`); otherwise only
  # the very same function object names the same computation.
  return None if fn is None else getattr(fn, "group_key", f"id{id(fn)}")


def from_pieces(
  regularizer: Regularizer | None = None,
  forward_params: ForwardParams | None = None,
) -> StepHooks | None:
  """The hooks of the older `regularizer` / `forward_params` pieces of a run
  (`forward_params` set: soft masks, as GMP soft pruning uses them)."""
  if regularizer is None and forward_params is None:
    return None
  forward = penalty = None
  if forward_params is not None:

    def forward(params, aux, masks, step):
      del aux, step
      return forward_params(params, masks)

  if regularizer is not None:

    def penalty(params, aux, step):
      del aux, step
      return regularizer(params)

  return StepHooks(
    name=repr(("pieces", _key(regularizer), _key(forward_params))),
    forward=forward,
    penalty=penalty,
    hard_masks=forward_params is None,
  )


def combine(first: StepHooks | None, second: StepHooks | None) -> StepHooks | None:
  """`first` and `second` together (e.g. a method's hooks plus a protocol's
  regularizer). Only one of them may define `forward`, `select_grads`,
  `after_step` or `init_aux`; penalties add up; masks are hard only if both
  say so."""
  if first is None or second is None:
    return first or second
  for field in ("forward", "select_grads", "after_step", "init_aux"):
    if getattr(first, field) is not None and getattr(second, field) is not None:
      raise ValueError(
        f"two step hooks both define {field!r}: {first.name}, {second.name}"
      )
  penalty = first.penalty or second.penalty
  if first.penalty is not None and second.penalty is not None:

    def penalty(params, aux, step):
      return first.penalty(params, aux, step) + second.penalty(params, aux, step)

  return StepHooks(
    name=f"{first.name}+{second.name}",
    forward=first.forward or second.forward,
    penalty=penalty,
    select_grads=first.select_grads or second.select_grads,
    after_step=first.after_step or second.after_step,
    init_aux=first.init_aux or second.init_aux,
    hard_masks=first.hard_masks and second.hard_masks,
  )
