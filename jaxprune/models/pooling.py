"""2x2 / stride-2 max pooling with a cheap gradient on every backend.

`nn.max_pool` lowers to `reduce_window`, whose gradient is `select_and_scatter`.
XLA:CPU expands that into a reduce-window over (value, index) tuples plus index
iotas and a scatter: in the LeNet-5 train step at batch 128 the two pooling
gradients took about 80 of 120 ms of op time, more than all convolutions
(experiments/benchmarks/RESULTS.md, profile). For the non-overlapping 2x2 window
that LeNet-5 and VGG use, the input reshapes for free to [N, H/2, 2, W/2, 2, C]
and the pool is a max over the two window axes; its derivative goes, like `select_and_scatter`'s, wholly to the first maximum
of each window in row-major order (a `custom_jvp`, so forward and reverse mode
both work). Values and gradients equal `nn.max_pool`'s exactly, ties included
(tests/test_pooling.py).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _windows(x: jax.Array) -> jax.Array:
  """NHWC `x` as [N, H/2, 2, W/2, 2, C] (a free reshape; VALID drops odd edges)."""
  n, h, w, c = x.shape
  x = x[:, : h // 2 * 2, : w // 2 * 2, :]
  return x.reshape(n, h // 2, 2, w // 2, 2, c)


def _first_maximum(windows: jax.Array, out: jax.Array) -> jax.Array:
  """Mask of each window's first maximum in row-major order (select_and_scatter's
  tie-break): the smallest position 2i + j among the window's maxima."""
  position = (2 * jnp.arange(2)[:, None, None] + jnp.arange(2)[None, None, :]).astype(
    jnp.int32
  )[:, :, :, None]  # [2, 1, 2, 1]: broadcasts against [i, W/2, j, C].
  at_max = windows == out[:, :, None, :, None, :]
  first = jnp.min(jnp.where(at_max, position, 4), axis=(2, 4), keepdims=True)
  return position == first


@jax.custom_jvp
def max_pool_2x2(x: jax.Array) -> jax.Array:
  """Max over non-overlapping 2x2 windows of NHWC `x` (VALID, stride 2)."""
  return jnp.max(_windows(x), axis=(2, 4))


@max_pool_2x2.defjvp
def _jvp(primals, tangents):
  # Linear in the tangent, so reverse mode is its transpose: a broadcast of the
  # output gradient, masked, reshaped back (a pad only for odd edges); no
  # strided slices, whose transposes (interior pads) XLA:CPU loops over slowly.
  (x,), (t,) = primals, tangents
  windows = _windows(x)
  out = jnp.max(windows, axis=(2, 4))
  first = _first_maximum(windows, out)
  return out, jnp.sum(jnp.where(first, _windows(t), 0), axis=(2, 4))
