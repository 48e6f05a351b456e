"""The matmul every Dense layer (and the matmul convolution path) runs on.

Autodiff turns ``y = x @ k`` (x: [M, K] activations, k: [K, N] kernel) into
a kernel gradient ``dk = x^T @ dy`` with a [K, N] output. XLA:CPU runs that
dot (left operand contracted on its first axis, a tall-and-narrow output)
on a slow kernel when N is small next to K: MLP-7's first layer after
pruning (K=1024, N=10, batch 100) spends 400 us there per step, against
100 us for the same sums computed as ``dy^T @ x`` ([N, K]) and transposed
(`experiments/benchmarks/dense_grads.md`).

`dot_general` is ``lax.dot_general`` with that choice made for 2-D operands:
where `prefer_swapped` holds it computes ``y = x @ (k^T)^T`` with the kernel's
transpose behind an optimization barrier, so the gradient autodiff emits for
``k^T`` is the fast [N, K] dot followed by one transpose (which XLA would
otherwise fold back into the slow form). It is plain autodiff, not a custom
rule: forward-mode (the `jax.jacfwd` of the Jacobian analysis), vmap and
higher derivatives work unchanged. Values are the same sums in another
order: equal to float32 rounding, not bit for bit.

The choice is made at trace time from static shapes and the backend (on GPU
and TPU, always ``lax.dot_general``), so it adds no recompiles; params,
masks, surgery and checkpoints never see it.
"""

from __future__ import annotations

import jax
from jax import lax

_MATMUL_DIMS = (((1,), (0,)), ((), ()))  # [M, K] x [K, N] -> [M, N].
_AGAINST_KT = (((1,), (1,)), ((), ()))  # [M, K] x [N, K] -> [M, N].


def prefer_swapped(k_in: int, n_out: int) -> bool:
  """Whether the [N, K] kernel gradient beats XLA:CPU's own [K, N] one.

  Read off `experiments/benchmarks/dense_grads.md`: the kernel gradient alone
  over a grid (batch 100 for Dense layers, 2048 rows for matmul convolutions;
  K from 25 to 4608, N from 6 to 512), and whole layers (forward + gradients:
  the swapped forward contracts against k^T, which costs more as N grows).
  The swap won 1.2-16x on the gradient where K >= 8N and N <= 64 (one 0.83x
  at 2048x576x64), and 2.3x for N <= 8 at K >= 4N (LeNet-5's first conv);
  whole layers with N = 100 or more ran 0.7-1.0x, so they stay plain.
  """
  return (k_in >= 8 * n_out and n_out <= 64) or (n_out <= 8 and k_in >= 4 * n_out)


def swapped_matmul(
  lhs: jax.Array, rhs: jax.Array, precision=None, preferred_element_type=None
):
  """``lhs @ rhs`` whose autodiff kernel gradient is an [N, K] dot + transpose."""
  rhs_t = lax.optimization_barrier(rhs.T)
  return lax.dot_general(
    lhs,
    rhs_t,
    _AGAINST_KT,
    precision=precision,
    preferred_element_type=preferred_element_type,
  )


def dot_general(
  lhs: jax.Array,
  rhs: jax.Array,
  dimension_numbers,
  precision=None,
  preferred_element_type=None,
) -> jax.Array:
  """``lax.dot_general``, swapped (see the module docstring) for a 2-D matmul
  on CPU where `prefer_swapped` says it is faster."""
  plain = (
    lhs.ndim == 2
    and rhs.ndim == 2
    and _same_dims(dimension_numbers, _MATMUL_DIMS)
    and jax.default_backend() == "cpu"
  )
  if plain and prefer_swapped(rhs.shape[0], rhs.shape[1]):
    return swapped_matmul(lhs, rhs, precision, preferred_element_type)
  return lax.dot_general(
    lhs,
    rhs,
    dimension_numbers,
    precision=precision,
    preferred_element_type=preferred_element_type,
  )


def _same_dims(a, b) -> bool:
  return tuple(tuple(tuple(x) for x in part) for part in a) == b
