"""LC: the learning-compression algorithm for pruning (Carreira-Perpinan &
Idelbayev 2018), a `during` method, in its quadratic-penalty form.

LC alternates two steps on the dense weights w and a compressed copy theta
that satisfies the sparsity constraint ||theta||_0 <= (1 - s) * n:

  C-step  theta = Pi(w): the magnitude projection onto the constraint (keep
          the (1 - s) * n largest |w| over the prunable weights, "global", or
          per layer with pruning.allocation="uniform"; zero the rest);
  L-step  SGD (the run's optimizer) on  L(w) + mu/2 ||w - theta||^2,  theta
          fixed, i.e. the gradient dL/dw + mu (w - theta) on the prunable
          weights;

with the penalty weight growing geometrically, mu_c = mu_init * mu_factor^(c-1)
during the L-steps after the c-th C-step (c = 1, 2, ...).

How it runs inside the one train step (jaxprune.train.steps.train_step):
  * the C-step is `after_step`: after every `c_step_every`-th optimizer step
    the masks become Pi's mask m of the new weights (state.masks);
  * the L-step's penalty gradient is added in `select_grads`:
    g + mu * (w - theta) with theta = w * m, i.e. mu * w on the weights the
    last C-step zeroed. With c_step_every=1 (the default) theta = Pi(w_t) at
    every step and this is exactly the gradient of mu/2 ||w - Pi(w_t)||^2 with
    theta held fixed. With c_step_every=k > 1 the kept entries of theta follow
    w between C-steps instead of staying at their C-step values (their pull
    is zero; keeping theta's values would need per-run state outside
    TrainState); the zeroed entries are pulled to 0 exactly as in LC;
  * before the first C-step the masks are all ones (theta = w): the first
    L-step is plain training of the reference net, as LC starts from one;
  * the forward pass is dense (L-step on L(w)); evaluation multiplies by the
    masks, so it measures theta, the compressed net LC returns;
  * `final` is the C-step on the trained weights.

Selection `pruning.allocation` (the one field of every method): "global" |
"uniform" (the C-step's projection, above). Options (`config.during.lc`):
  mu_init       mu after the first C-step (> 0);
  mu_factor     mu is multiplied by this after every later C-step (>= 1;
                1: a constant mu);
  c_step_every  optimizer steps per L-step (>= 1).
Defaults follow the code Zimmer et al. 2023 ran for their Table 2 LC row
(docs/provenance.md, LC): a C-step every step, a constant mu, there equal to
the weight decay (1e-4 is the smallest value of their App. B grid). The
paper's increasing schedule is mu_factor > 1; short budgets need it (theta is
the net LC returns, and a small constant mu leaves w relying on the weights
theta drops: measured in configs/protocols/during.py). To reach mu_end after
C C-steps: mu_factor = (mu_end / mu_init)^(1 / C). Unstructured only.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections

from jaxprune.pruning.during import common, target
from jaxprune.pruning.during.base import Context, Method, register
from jaxprune.pruning.step_hooks import StepHooks

DEFAULTS = {
  "mu_init": 1e-4,
  "mu_factor": 1.0,
  "c_step_every": 1,
}


def mu_at(step: jax.Array, mu_init: float, mu_factor: float, every: int) -> jax.Array:
  """The penalty weight of `step`: mu_init * mu_factor^(c - 1) after c >= 1
  C-steps (0 before the first; the masks are all ones then anyway)."""
  done = jnp.asarray(step, jnp.int32) // every
  grown = mu_init * jnp.float32(mu_factor) ** jnp.maximum(done - 1, 0)
  return jnp.where(done > 0, grown, 0.0).astype(jnp.float32)


def penalty_grads(grads: Any, params: Any, masks: Any, prunable: Any, mu) -> Any:
  """grads + mu * (w - w * m) on the prunable leaves (the L-step's pull of the
  weights the last C-step zeroed towards theta = 0 there)."""

  def add(g, w, m, p):
    if not p:
      return g
    return g + (mu * w * (1 - m.astype(w.dtype))).astype(g.dtype)

  return jax.tree_util.tree_map(add, grads, params, masks, prunable)


def _options(config: ml_collections.ConfigDict) -> tuple[float, float, int]:
  mu_init = target.positive(config, "during.lc.mu_init")
  mu_factor = target.positive(config, "during.lc.mu_factor")
  if mu_factor < 1:
    raise ValueError(f"during.lc.mu_factor must be a float >= 1, got {mu_factor!r}")
  every = target.positive_int(config, "during.lc.c_step_every")
  return mu_init, mu_factor, every


def validate(config: ml_collections.ConfigDict) -> None:
  target.read(config, "lc")
  _options(config)


def check_growth(mu_init: float, mu_factor: float, every: int, num_steps: int) -> float:
  """mu at the last step; ValueError if it leaves float32's range (a
  mu_factor too large for the run's length)."""
  c_steps = max(num_steps // every - 1, 0)
  log_mu = math.log(mu_init) + c_steps * math.log(mu_factor)
  if log_mu > math.log(3e38):
    raise ValueError(
      f"during.lc.mu_factor={mu_factor} grows mu past float32 over {c_steps} "
      "C-steps; use a smaller mu_factor or a larger during.lc.c_step_every"
    )
  return math.exp(log_mu)


@register("lc", defaults=DEFAULTS, validate=validate)
def build(context: Context) -> Method:
  config = context.config
  tgt = target.read(config, "lc")
  mu_init, mu_factor, every = _options(config)
  check_growth(
    mu_init, mu_factor, every, int(config.num_epochs) * context.steps_per_epoch
  )
  prunable = context.prunable

  def select_grads(grads, params, masks, step):
    mu = mu_at(step, mu_init, mu_factor, every)
    return penalty_grads(grads, params, masks, prunable, mu)

  def after_step(state, grads):
    del grads

    def c_step():
      new = common.magnitude_masks(state.params, prunable, tgt.sparsity, tgt.allocation)
      return jax.tree_util.tree_map(lambda n, o: n.astype(o.dtype), new, state.masks)

    masks = jax.lax.cond(state.step % every == 0, c_step, lambda: state.masks)
    return state.replace(masks=masks)

  hooks = StepHooks(
    name=target.hooks_name("lc", prunable, tgt, mu_init, mu_factor, every),
    select_grads=select_grads,
    after_step=after_step,
    hard_masks=False,  # w trains densely; the masks define theta = w * m.
  )
  return Method(hooks=hooks, final=target.final(prunable, tgt))
