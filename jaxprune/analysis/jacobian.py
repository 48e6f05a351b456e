"""Input-output Jacobian singular values (JSV), the dynamical-isometry measure.

Dynamical Isometry (Wang et al. 2021, Eq. 1) measures how well a network
preserves signals by the singular values of J = d logits / d input, one
``C x D`` matrix per example (C classes, D = H*W*C_in flattened input), and
summarises them by their mean: 1 everywhere is exact isometry (Table 1, row 1:
orthogonally initialised MLP-7-Linear). The reference implementation (TPP,
``smilelogging/utils.py``) does one backward pass per class over a batch of
normalised training images, raw logits, model in eval mode, then ``torch.svd``
per example; :func:`jacobian_singular_values` computes the same numbers with
``jax.vmap(jax.jacrev(f))`` (or ``jacfwd``) under one ``jax.jit``, streaming
the examples in fixed-size batches so that memory stays bounded and the
compiled program is reused for every batch.

Reverse mode (``method="jacrev"``) is the default: it costs about C = 10
vector-Jacobian products per example against D = 1024 (MLP-7, LeNet-5) or
3072 (ResNet on CIFAR) Jacobian-vector products for forward mode. The
benchmark (``experiments/benchmarks/jsv.py``, 1000 Fashion-MNIST examples,
2-core CPU) measured jacrev 0.13-0.17 s vs jacfwd 4.5 s on MLP-7-ReLU and
11 s vs 163 s on LeNet-5-ReLU; jacfwd on ResNet-20 needs tens of GB.

The singular values come from the C x C Gram matrix by default
(``solver="gram"``): on CPU an SVD of a 10 x 1024 matrix costs ~1-7 ms (both
LAPACK through XLA and ``torch.linalg.svdvals``), which dominates everything
else for MLP-7; ``solver="svd"`` keeps the backward-stable SVD. The Gram
route squares the condition number: in float32 the eigenvalues of J J^T below
~1e-7 * s_max^2 are rounding noise, so once s_max / s_min passes ~1e4 the
smallest singular value comes out as 0 (or garbage) while the mean barely
moves. :func:`jsv_summary` therefore reports ``min`` / ``max`` from the SVD
path and uses the Gram one only when just the mean and std are asked for.

``apply_fn`` is any function mapping a batch of inputs to logits. Plain
functions (lambdas closing over params) are compiled once per distinct function
object; for repeated measurements of changing weights (training callbacks) use
:func:`apply_fn_from`, whose weights are traced arguments, so new weights reuse
the compiled program.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Mapping
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxprune import blocking_kernels
from jaxprune.models import native_conv

METHODS = ("jacrev", "jacfwd")
# Chosen by experiments/benchmarks/jsv.py (reverse mode wins for C << D).
DEFAULT_METHOD = "jacrev"
SOLVERS = ("gram", "svd")


@flax.struct.dataclass
class ApplyFn:
  """``x -> logits`` of a Flax model in eval mode, as a pytree of its weights.

  The module is static (part of the jit cache key); ``variables`` are leaves,
  so measuring new weights of the same model does not recompile.
  """

  model: nn.Module = flax.struct.field(pytree_node=False)
  variables: Mapping[str, Any]

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.model.apply(self.variables, x, train=False)


def apply_fn_from(model: nn.Module, params: Any, batch_stats: Any = None) -> ApplyFn:
  """Eval-mode ``apply_fn`` of ``model`` with the given weights.

  Args:
    model: an unbound Flax module called as ``apply(variables, x, train)``,
      e.g. from ``jaxprune.models.create``.
    params: its ``params`` collection.
    batch_stats: its BatchNorm statistics; ``None`` or ``{}`` for BN-free nets.

  Returns:
    A callable pytree usable as ``apply_fn`` in :func:`jacobian_singular_values`.
  """
  variables = {"params": params}
  if batch_stats:
    variables["batch_stats"] = batch_stats
  return ApplyFn(model, variables)


def _singular_values(jac: jax.Array, solver: str) -> jax.Array:
  """Descending singular values of one ``[C, D]`` matrix."""
  if solver == "svd":
    return jnp.linalg.svd(jac, compute_uv=False)
  # sqrt of the eigenvalues of the smaller Gram matrix (C x C for C <= D):
  # a 10x10 eigh instead of an SVD of 10x1024, ~100x faster on CPU (LAPACK's
  # gesdd on a wide matrix costs ~1 ms). Squaring costs accuracy only for
  # singular values far below the largest: absolute error ~ eps * s_max^2 / s.
  gram = jac @ jac.T if jac.shape[0] <= jac.shape[1] else jac.T @ jac
  eigenvalues = jnp.linalg.eigvalsh(gram)[::-1]  # eigh is ascending.
  return jnp.sqrt(jnp.maximum(eigenvalues, 0.0))


def _per_example_singular_values(
  apply_fn: Callable[[jax.Array], jax.Array], x: jax.Array, method: str, solver: str
) -> jax.Array:
  """Singular values of d logits / d x for one example ``x`` (no batch axis)."""

  def logits(z: jax.Array) -> jax.Array:
    return apply_fn(z[None])[0]

  jac_fn = jax.jacrev if method == "jacrev" else jax.jacfwd
  jac = jac_fn(logits)(x)  # [C, *x.shape]
  return _singular_values(jnp.reshape(jac, (jac.shape[0], -1)), solver)


@functools.partial(jax.jit, static_argnames=("method", "solver"))
def _batch_singular_values(
  apply_fn: Any, x: jax.Array, method: str, solver: str
) -> jax.Array:
  # Full-precision matmuls: on GPUs/TPUs the default (TF32 / bf16 passes)
  # would cost ~1e-3 relative error in JSVs that the tests pin to 1e-5.
  # jacfwd traces XLA's convs, not the native ones (`models.native_conv`):
  # forward mode cannot see through their custom VJP. jacrev keeps the
  # native kernels: the vmapped cotangents reach them as one call per conv
  # (LeNet-5, 1000 examples: 0.73 s vs 1.66 s on XLA's; ResNet-20, 256:
  # 5.2 s vs 8.6 s).
  only_xla = native_conv.xla_only() if method == "jacfwd" else contextlib.nullcontext()
  with jax.default_matmul_precision("highest"), only_xla:
    return jax.vmap(
      lambda e: _per_example_singular_values(apply_fn, e, method, solver)
    )(x)


def _as_pytree_fn(apply_fn: Callable[[jax.Array], jax.Array]) -> Any:
  if isinstance(apply_fn, ApplyFn | jax.tree_util.Partial):
    return apply_fn
  if not callable(apply_fn):
    raise TypeError(f"apply_fn must be callable, got {type(apply_fn).__name__}")
  # Partial keeps the function in the treedef: jit caches on its identity.
  return jax.tree_util.Partial(apply_fn)


def jacobian_singular_values(
  apply_fn: Callable[[jax.Array], jax.Array],
  inputs: jax.Array | np.ndarray,
  *,
  batch_size: int = 256,
  method: str = DEFAULT_METHOD,
  solver: str = "gram",
) -> jnp.ndarray:
  """Per-example singular values of the input-output Jacobian.

  Args:
    apply_fn: maps a batch ``[B, *input_shape]`` to logits ``[B, C]`` in eval
      mode (examples must not interact, as with BN running averages), e.g.
      ``apply_fn_from(model, params, batch_stats)``.
    inputs: ``[N, *input_shape]`` preprocessed (normalised float) inputs.
    batch_size: examples per compiled batch; the last batch is padded, so every
      batch reuses one compiled program.
    method: ``"jacrev"`` (default; fastest in the benchmark, C << D) or
      ``"jacfwd"``.
    solver: ``"gram"`` (default): square roots of the eigenvalues of the
      ``C x C`` Gram matrix ``J J^T``, ~10-50x faster than an SVD on CPU,
      exact up to ~6e-8 * s_max^2 / s (relative ~1e-7 for well-conditioned
      J, ~3e-4 * s_max absolute for singular values near 0); ``"svd"``:
      LAPACK SVD of J, backward stable, as ``torch.svd`` in the reference
      code.

  Returns:
    ``[N, min(C, D)]`` float32 singular values, descending per row, D being the
    flattened input size.

  Raises:
    ValueError: unknown method or solver, bad batch size or no examples.
  """
  if method not in METHODS:
    raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
  if solver not in SOLVERS:
    raise ValueError(f"solver must be one of {list(SOLVERS)}, got {solver!r}")
  if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
    raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
  inputs = jnp.asarray(inputs, jnp.float32)
  n = inputs.shape[0] if inputs.ndim else 0
  if n == 0:
    raise ValueError("inputs must hold at least one example [N, *input_shape]")
  fn = _as_pytree_fn(apply_fn)
  size = min(batch_size, n)
  chunks = []
  for start in range(0, n, size):
    chunk = inputs[start : start + size]
    valid = chunk.shape[0]
    if valid < size:  # Pad with copies of the first example; dropped below.
      filler = jnp.broadcast_to(chunk[:1], (size - valid, *chunk.shape[1:]))
      chunk = jnp.concatenate([chunk, filler])
    # Batched eigh / SVD: one such program at a time (`blocking_kernels`).
    values = blocking_kernels.run_alone(
      _batch_singular_values, fn, chunk, method, solver
    )
    chunks.append(values[:valid])
  return jnp.concatenate(chunks) if len(chunks) > 1 else chunks[0]


def jsv_stats(singular_values: jax.Array | np.ndarray) -> dict[str, float]:
  """Summary of pooled singular values: ``mean``, ``std``, ``max``, ``min``.

  All singular values of all examples are pooled, as in Dynamical Isometry
  Table 1 (its mean JSV is the mean of Eq. 1's per-example means, equal to the
  pooled mean since every example has the same K = min(C, D) values). ``std``
  is the population standard deviation (ddof=0). ``min`` / ``max`` are only as
  good as the solver: use :func:`jsv_summary`, which picks the SVD for them.
  """
  values = np.asarray(singular_values, np.float64).ravel()
  if values.size == 0:
    raise ValueError("jsv_stats needs at least one singular value")
  return {
    "mean": float(values.mean()),
    "std": float(values.std()),
    "max": float(values.max()),
    "min": float(values.min()),
  }


STATS = ("mean", "std", "max", "min")


def jsv_summary(
  apply_fn: Callable[[jax.Array], jax.Array],
  inputs: jax.Array | np.ndarray,
  *,
  stats: tuple[str, ...] = STATS,
  solver: str | None = None,
  **kwargs: Any,
) -> dict[str, float]:
  """``jsv_stats`` of ``apply_fn`` over ``inputs`` with a solver fit for them.

  Args:
    apply_fn, inputs, kwargs: as :func:`jacobian_singular_values`.
    stats: which of ``mean``, ``std``, ``max``, ``min`` to return.
    solver: None picks ``"svd"`` when ``max`` or ``min`` is asked for (the Gram
      route loses the small singular values of ill-conditioned Jacobians) and
      ``"gram"`` otherwise; ``"gram"`` with ``max``/``min`` is refused.

  Returns:
    ``{stat: value}`` for the requested ``stats``.
  """
  if unknown := sorted(set(stats) - set(STATS)):
    raise ValueError(f"stats: unknown {unknown}; allowed: {list(STATS)}")
  extremes = sorted({"max", "min"} & set(stats))
  if solver == "gram" and extremes:
    raise ValueError(
      f"stats {extremes} need solver='svd' (float32 Gram eigenvalues lose "
      "singular values below ~1e-4 * s_max); pass solver=None or 'svd'"
    )
  solver = solver or ("svd" if extremes else "gram")
  values = jacobian_singular_values(apply_fn, inputs, solver=solver, **kwargs)
  summary = jsv_stats(values)
  return {k: summary[k] for k in stats}


def mean_jsv(
  apply_fn: Callable[[jax.Array], jax.Array],
  inputs: jax.Array | np.ndarray,
  **kwargs: Any,
) -> float:
  """Mean JSV (the paper's S-bar) of ``apply_fn`` over ``inputs``."""
  return jsv_summary(apply_fn, inputs, stats=("mean",), **kwargs)["mean"]
