"""GMP, gradual magnitude pruning (Zhu & Gupta 2017), as a method of the
`during` protocol: the variants of Zimmer et al. 2023 App. C.3 (Tables 28-29),
global or uniform selection, hard or soft pruning, under any LR schedule
(stepped, `linear`, or `cyclic_linear` restarted at the pruning epochs).

Rule: at the end of each pruning epoch e >= 1 of `pruning.schedules.events`
(every f = `pruning.gmp_frequency` epochs from e0 = `pruning.gmp_start` to
e1 = `pruning.gmp_end`, always ending at e1), the masks become the top-k
magnitudes at the cubic sparsity s(e) = s_f (1 - (1 - (e - e0)/(e1 - e0))^3).
`pruning.schedule` is not read. The defaults e0 = 0, e1 = 0 (read as
f (T // f - 1)) are Zimmer et al.'s code's GMP: events at f, 2f, ... with the
cubic counted from the start of training, the last one leaving at least f
epochs of training at s_f.
  * `pruning.mode="hard"`: chosen among the weights still kept (pruned ones
    stay pruned); params and gradients are masked (exact zeros);
  * `pruning.mode="soft"`: chosen among all dense weights, which keep
    training; the forward pass uses `params * masks` (a pruned weight gets no
    loss gradient, only weight decay and momentum) and may return at the next
    event.
Selection `pruning.allocation`: "global" (one threshold over all prunable
weights, Zimmer et al.'s choice) or "uniform" (every prunable layer at s).
`final`: the masks after the last event (`gmp_end`), so the target sparsity is
exact; the weights masked.

The same computation as the `gmp` protocol (which prunes on the host between
epochs with `pruning.prune`), here inside the jitted step (`after_step` at the
last step of an event epoch), so GMP runs group with the other methods and
gets the `during` protocol's fine-tuning and row. Options are the `pruning`
section's GMP fields (one place for them); `config.during.gmp` has none.
The `gmp` protocol is not a front for this method: it prunes with the host
engine, so it takes every allocation (uniform_plus, erk, lamp with their
options) and the `random` criterion, which this in-step top-k does not.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxprune import checks
from jaxprune.pruning import schedules
from jaxprune.pruning.during import target
from jaxprune.pruning.during.base import Context, Method, register
from jaxprune.pruning.during.dpf import remask
from jaxprune.pruning.step_hooks import StepHooks

NO_EVENT = -1.0


def gmp_end(config: ml_collections.ConfigDict) -> int:
  """`pruning.gmp_end`, or with 0 Zimmer et al.'s code's last event
  f (T // f - 1) (f = `gmp_frequency`, T = `num_epochs`): at least one
  interval of training at the target follows it."""
  p = config.pruning
  if p.gmp_end:
    return int(p.gmp_end)
  f = int(p.gmp_frequency)
  return f * (int(config.num_epochs) // f - 1)


def plan(config: ml_collections.ConfigDict) -> np.ndarray:
  """Sparsity after each epoch 0..num_epochs (`NO_EVENT` where none)."""
  p = ml_collections.ConfigDict(config.pruning.to_dict())
  p.schedule, p.gmp_end = "gmp", gmp_end(config)
  table = np.full(int(config.num_epochs) + 1, NO_EVENT, np.float32)
  for epoch, sparsity in schedules.events(p, int(config.num_epochs)):
    table[epoch] = sparsity
  table[0] = NO_EVENT  # Nothing to prune before training.
  return table


def validate(config: ml_collections.ConfigDict) -> None:
  checks.field_choice(config, "pruning.name", ("unstructured",))
  target.allocation(config, "gmp")
  checks.field_choice(config, "pruning.mode", ("hard", "soft"))
  checks.field_choice(config, "pruning.criterion", ("", "magnitude"))
  p, epochs = config.pruning, int(config.num_epochs)
  if p.gmp_frequency < 1:
    raise ValueError(f"pruning.gmp_frequency must be >= 1, got {p.gmp_frequency}")
  end = gmp_end(config)
  if not 0 <= p.gmp_start < end <= epochs:
    raise ValueError(
      f"pruning.gmp_start={p.gmp_start} and pruning.gmp_end={end} (0: "
      f"gmp_frequency * (num_epochs // gmp_frequency - 1)) must satisfy "
      f"0 <= gmp_start < gmp_end <= num_epochs={epochs}"
    )


def _apply(params: Any, masks: Any) -> Any:
  return jax.tree_util.tree_map(lambda w, m: w * m, params, masks)


@register("gmp", validate=validate)
def build(context: Context) -> Method:
  config, prunable = context.config, context.prunable
  allocation = target.allocation(config, "gmp")
  soft = config.pruning.mode == "soft"
  table = plan(config)
  spe = context.steps_per_epoch

  def scores(state) -> Any:
    # Hard: the pruned rank below every kept weight, so masks only shrink.
    if soft:
      return jax.tree_util.tree_map(jnp.abs, state.params)
    return jax.tree_util.tree_map(
      lambda w, m: jnp.where(m > 0, jnp.abs(w), -1.0), state.params, state.masks
    )

  def after_step(state, grads):
    del grads
    epoch = jnp.minimum(state.step // spe, len(table) - 1)
    sparsity = jnp.asarray(table)[epoch]
    due = (state.step % spe == 0) & (sparsity >= 0)
    masks = remask(state.masks, due, scores(state), sparsity, prunable, allocation)
    params = state.params if soft else _apply(state.params, masks)
    return state.replace(params=params, masks=masks)

  def forward(params, aux, masks, step):
    del aux, step
    return _apply(params, masks)

  def final(state) -> tuple[Any, Any]:
    return _apply(state.params, state.masks), state.masks

  events = tuple((int(e), round(float(s), 9)) for e, s in enumerate(table) if s >= 0)
  hooks = StepHooks(
    name=f"gmp:{config.pruning.mode}:{allocation}:{spe}:{events}",
    forward=forward if soft else None,
    after_step=after_step,
    hard_masks=not soft,
  )
  return Method(hooks=hooks, final=final)
