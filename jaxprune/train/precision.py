"""Mixed precision: the compute dtype of a run, and dynamic loss scaling.

`config.precision` is the dtype the forward and backward passes compute in:

  float32   everything in float32 (the default; programs unchanged);
  bfloat16  convolutions, matmuls and activations in bfloat16 (GPUs since
            Ampere, TPUs): float32's range, 8 bits of mantissa, no scaling;
  float16   the same in float16, with dynamic loss scaling (its range is
            small: gradients underflow unless the loss is scaled up first).

What stays float32 in every precision: the params (the step casts a copy to
the compute dtype for the forward pass, so gradients arrive in float32 through
the cast), the optimizer state, BatchNorm statistics (flax reduces the batch
mean and variance in float32 and the running averages keep their float32
variables), the logits handed to the loss and the loss itself. This is what
flax's layers do with `dtype=bfloat16, param_dtype=float32` (they cast params
and inputs to `dtype` inside each layer); casting once in the step does it for
every model family, registered models included, without a field per module.
Pruned weights stay exactly zero: masks apply to the float32 grads and params,
and a cast keeps zero zero.

`config.matmul_precision` ("default" | "high" | "highest") is
`jax.default_matmul_precision` while the run's programs are traced: on GPUs
"default" lets float32 matmuls and convolutions use TF32, "highest" does not.

Dynamic loss scaling (`loss_scaling`) is an optax wrapper, so its state lives
in the optimizer state and a float32 run's TrainState keeps its layout (old
checkpoints restore). The step multiplies the loss by `loss_scale(opt_state)`
and divides the gradients by it; the wrapper skips the update and halves the
scale when a gradient is not finite, and doubles it after `growth_interval`
finite steps in a row.
"""

from __future__ import annotations

import contextlib
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxprune import checks

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}
PRECISIONS = tuple(DTYPES)
MATMUL_PRECISIONS = ("default", "high", "highest")
# float16's largest value is 65504; 2**15 leaves the loss's gradients room.
INIT_SCALE = 2.0**15
GROWTH_INTERVAL = 2000


def check(config: ml_collections.ConfigDict) -> None:
  """ValueError naming `precision` or `matmul_precision` if not allowed."""
  checks.choice(config.get("precision", "float32"), "precision", PRECISIONS)
  checks.choice(
    config.get("matmul_precision", "default"), "matmul_precision", MATMUL_PRECISIONS
  )


def compute_dtype(precision: str) -> Any:
  return DTYPES[checks.choice(precision, "precision", PRECISIONS)]


def cast(tree: Any, dtype: Any) -> Any:
  """The floating leaves of `tree` in `dtype` (integers and keys untouched)."""

  def leaf(x):
    is_float = jnp.issubdtype(jnp.result_type(x), jnp.floating)
    return x.astype(dtype) if is_float and x.dtype != dtype else x

  return jax.tree_util.tree_map(leaf, tree)


def matmul(matmul_precision: str) -> contextlib.AbstractContextManager:
  """The context the run's programs are traced in (`matmul_precision`)."""
  checks.choice(matmul_precision, "matmul_precision", MATMUL_PRECISIONS)
  if matmul_precision == "default":
    return contextlib.nullcontext()
  return jax.default_matmul_precision(matmul_precision)


class LossScaleState(NamedTuple):
  scale: jax.Array  # float32 scalar the loss is multiplied by.
  good_steps: jax.Array  # int32: finite steps since the last change.
  inner: Any  # The wrapped optimizer's state.


def all_finite(tree: Any) -> jax.Array:
  leaves = jax.tree_util.tree_leaves(tree)
  return jnp.all(jnp.asarray([jnp.all(jnp.isfinite(x)) for x in leaves]))


def loss_scaling(
  inner: optax.GradientTransformation,
  init_scale: float = INIT_SCALE,
  growth_interval: int = GROWTH_INTERVAL,
) -> optax.GradientTransformation:
  """`inner` with dynamic loss scaling; it takes the unscaled gradients.

  A step whose gradients are not all finite changes nothing (zero updates,
  `inner`'s state kept) and halves the scale; `growth_interval` finite steps in
  a row double it.
  """

  def init(params):
    return LossScaleState(
      jnp.asarray(init_scale, jnp.float32), jnp.zeros([], jnp.int32), inner.init(params)
    )

  def update(grads, state, params=None):
    finite = all_finite(grads)
    # Non-finite grads would poison the inner state even if discarded later
    # (0 * inf = nan), so the inner update sees zeros on a skipped step.
    safe = jax.tree_util.tree_map(lambda g: jnp.where(finite, g, 0), grads)
    updates, inner_state = inner.update(safe, state.inner, params)
    keep = lambda new, old: jnp.where(finite, new, old)  # noqa: E731
    updates = jax.tree_util.tree_map(lambda u: keep(u, jnp.zeros_like(u)), updates)
    inner_state = jax.tree_util.tree_map(keep, inner_state, state.inner)
    grow = finite & (state.good_steps + 1 >= growth_interval)
    scale = jnp.where(
      finite, jnp.where(grow, state.scale * 2, state.scale), state.scale / 2
    )
    good = jnp.where(finite & ~grow, state.good_steps + 1, 0)
    return updates, LossScaleState(scale, good.astype(jnp.int32), inner_state)

  return optax.GradientTransformation(init, update)


def loss_scale(opt_state: Any) -> jax.Array | None:
  """The current loss scale of a `loss_scaling` optimizer state, else None."""
  return opt_state.scale if isinstance(opt_state, LossScaleState) else None


def unscale(grads: Any, scale: jax.Array | None) -> Any:
  if scale is None:
    return grads
  return jax.tree_util.tree_map(lambda g: g / scale.astype(g.dtype), grads)
