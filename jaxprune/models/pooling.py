"""2x2 / stride-2 max pooling with a cheap gradient on every backend.

`nn.max_pool` lowers to `reduce_window`, whose gradient is `select_and_scatter`.
XLA:CPU expands that into a reduce-window over (value, index) tuples plus index
iotas and a scatter: in the LeNet-5 train step at batch 128 the two pooling
gradients took about 80 of 120 ms of op time, more than all convolutions
(experiments/benchmarks/RESULTS.md, profile). For the non-overlapping 2x2 window
that LeNet-5 and VGG use, the pool is the maximum of four strided slices, and
its derivative goes, like `select_and_scatter`'s, wholly to the first maximum
of each window in row-major order (a `custom_jvp`, so forward and reverse mode
both work). Values and gradients equal `nn.max_pool`'s exactly, ties included
(tests/test_pooling.py).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

# Window positions in row-major order: select_and_scatter's tie-break order.
_OFFSETS = ((0, 0), (0, 1), (1, 0), (1, 1))


def _corners(x: jax.Array) -> list[jax.Array]:
  h, w = x.shape[1] // 2 * 2, x.shape[2] // 2 * 2  # VALID: odd edges dropped.
  return [x[:, i:h:2, j:w:2, :] for i, j in _OFFSETS]


@jax.custom_jvp
def max_pool_2x2(x: jax.Array) -> jax.Array:
  """Max over non-overlapping 2x2 windows of NHWC `x` (VALID, stride 2)."""
  a, b, c, d = _corners(x)
  return jnp.maximum(jnp.maximum(a, b), jnp.maximum(c, d))


@max_pool_2x2.defjvp
def _jvp(primals, tangents):
  # Linear in the tangent, so reverse mode is its transpose (strided slices
  # transpose to interior pads): jacrev and jacfwd both work.
  (x,), (t,) = primals, tangents
  out = max_pool_2x2(x)
  taken = jnp.zeros(out.shape, bool)
  dout = jnp.zeros(out.shape, t.dtype)
  for corner, tangent in zip(_corners(x), _corners(t), strict=True):
    hit = (corner == out) & ~taken
    dout = jnp.where(hit, tangent, dout)
    taken = taken | hit
  return out, dout
