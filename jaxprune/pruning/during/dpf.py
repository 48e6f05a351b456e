"""DPF, Dynamic Pruning with Feedback (Lin et al. 2020), as Zimmer et al. 2023
compare it (Sec. 2.2, Table 2, App. B): a pruning mask extended with Zhu &
Gupta's schedule, "error compensation by modifying the update rule to use the
(stochastic) gradient of the pruned model while updating the dense parameters".

Update rule (one SGD step t; w the dense prunable weights, m the current mask):
  loss  = L(w * m)              the forward pass is the pruned model's
  dL/dw = dL/d(w * m)           the gradient at the pruned model reaches every
                                weight, pruned or not (error feedback: a pruned
                                weight keeps integrating the gradient and can
                                re-enter the mask)
  w    <- optimizer(w, dL/dw)   dense update
  every `update_every` steps (Lin et al.: 16; and at every scheduled sparsity
  change): m <- TopK(|w|, s(t)), recomputed from the dense weights
Sparsity schedule s(t) (Zhu & Gupta's cubic, `common.cubic_sparsity`):
  s(t) = s_f (1 - (1 - t'/t_end)^3) for t' <= t_end, then s_f, where
  * `pruning_interval` = 0: t' = t (s grows at every mask update);
  * `pruning_interval` = k epochs: t' = t rounded down to a multiple of k
    epochs, so s only grows at the end of epochs k, 2k, ... (the GMP events
    of Zimmer et al.'s code, whose DPF re-prunes every 16 iterations at the
    sparsity of the last event; their grid tunes the number of these steps);
  * t_end = `end_epoch` epochs; 0: k (T // k - 1) with k = max(interval, 1),
    the last event leaving at least one interval of training at s_f (as their
    code); T = `num_epochs`.
`final`: the top-k of the final dense weights at s_f (the last mask is this
one when an update falls after t_end and the ranking did not change since; the
recomputation makes the achieved sparsity exact even when it does not).
Evaluation during training uses the pruned model (`w * m`).

Selection `pruning.allocation` (the one field of every method): global |
uniform. Options (`config.during.dpf`): `update_every` (steps),
`pruning_interval` (epochs), `end_epoch`. Unstructured only.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from jaxprune import checks
from jaxprune.pruning.during import common, target
from jaxprune.pruning.during.base import Context, Method, register
from jaxprune.pruning.during.dnw import straight_through
from jaxprune.pruning.step_hooks import StepHooks

DEFAULTS = {
  "update_every": 16,
  "pruning_interval": 0,
  "end_epoch": 0,
}


def end_epoch(config: ml_collections.ConfigDict) -> int:
  """The epoch at which the schedule reaches the target (see the docstring)."""
  d = config.during.dpf
  if d.end_epoch:
    return int(d.end_epoch)
  k = max(int(d.pruning_interval), 1)
  return k * (int(config.num_epochs) // k - 1)


def _nonneg_int(config: ml_collections.ConfigDict, field: str, minimum: int) -> int:
  value = config.during.dpf[field]
  if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
    raise ValueError(
      f"during.dpf.{field} must be an integer >= {minimum}, got {value!r}"
    )
  return value


def validate(config: ml_collections.ConfigDict) -> None:
  target.allocation(config, "dpf")
  checks.field_choice(config, "pruning.name", ("unstructured",))
  _nonneg_int(config, "update_every", 1)
  k = _nonneg_int(config, "pruning_interval", 0)
  _nonneg_int(config, "end_epoch", 0)
  epochs = int(config.num_epochs)
  if 2 * max(k, 1) > epochs:
    raise ValueError(
      f"during.dpf.pruning_interval={k} needs num_epochs >= {2 * max(k, 1)} "
      f"(an interval of pruning and one of training after it), got {epochs}"
    )
  end = end_epoch(config)
  if not 1 <= end <= epochs:
    raise ValueError(
      f"during.dpf.end_epoch must be in [1, num_epochs={epochs}] (0: the "
      f"default), got {end}"
    )


def scheduled_sparsity(
  step: jax.Array, goal: float, end_step: int, quantum: int
) -> jax.Array:
  """s(t) of the docstring: the cubic schedule at `step` rounded down to a
  multiple of `quantum` steps (1: not rounded)."""
  held = (step // quantum) * quantum
  return common.cubic_sparsity(held, goal, 0, end_step)


def remask(
  masks: Any,
  due: jax.Array,
  scores: Any,
  sparsity: jax.Array,
  prunable: Any,
  allocation: str,
) -> Any:
  """The top-k masks of `scores` at `sparsity` where `due` (traced), else
  `masks` (both branches share shapes, so vmapped runs stay in lockstep)."""
  return jax.lax.cond(
    due,
    lambda s: common.topk_masks(s, prunable, sparsity, allocation),
    lambda s: masks,
    scores,
  )


@register("dpf", defaults=DEFAULTS, validate=validate)
def build(context: Context) -> Method:
  config, prunable = context.config, context.prunable
  d = config.during.dpf
  goal = float(config.pruning.sparsity)
  allocation = target.allocation(config, "dpf")
  spe = context.steps_per_epoch
  every, interval = int(d.update_every), int(d.pruning_interval)
  end_step = end_epoch(config) * spe
  quantum = max(interval * spe, 1)

  def forward(params, aux, masks, step):
    del aux, step
    return straight_through(params, masks)

  def after_step(state, grads):
    del grads
    step = state.step  # Steps taken, this one included.
    due = step % every == 0
    if interval:  # The scheduled sparsity changes at the end of these epochs.
      due = due | (step % quantum == 0)
    sparsity = scheduled_sparsity(step, goal, end_step, quantum)
    scores = jax.tree_util.tree_map(jnp.abs, state.params)
    masks = remask(state.masks, due, scores, sparsity, prunable, allocation)
    return state.replace(masks=masks)

  def final(state) -> tuple[Any, Any]:
    masks = common.magnitude_masks(state.params, prunable, goal, allocation)
    return jax.tree_util.tree_map(lambda w, m: w * m, state.params, masks), masks

  name = f"dpf:{allocation}:{goal!r}:{every}:{quantum}:{end_step}"
  hooks = StepHooks(name=name, forward=forward, after_step=after_step, hard_masks=False)
  return Method(hooks=hooks, final=final)
