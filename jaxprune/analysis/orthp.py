"""OrthP: QR-orthogonalise the kernels of a pruned network (Dynamical Isometry Eq. 2).

Wang et al. (2021, Sec. 3.2) recover the dynamical isometry that structured
pruning destroys by replacing every weight matrix W of the small-dense pruned
model with its orthogonal factor: ``Q, R = qr(W); W* = Q * sign(diag(R))``,
times the activation gain. It is an optional step between pruning and
retraining, applied (as in TPP's ``exact_isometry_based_on_existing_weights``)
to every conv and dense kernel including the classifier; biases and BatchNorm
parameters are left alone.

Which matrix. The paper (and PyTorch) orthogonalises ``W`` of shape
``[out, in*kh*kw]`` (rows = output units = filters/neurons, columns flattened
in PyTorch's ``(in, kh, kw)`` order). Flax stores Dense kernels as
``[in, out]`` and Conv kernels as ``[kh, kw, in, out]``, so
:func:`kernel_to_matrix` transposes a Dense kernel and permutes a Conv kernel
to ``[out, in, kh, kw]`` before flattening; :func:`matrix_to_kernel` undoes it.
The column order matters: when ``out > in*kh*kw`` QR orthogonalises the
columns one after another (Gram-Schmidt), so a different flattening order would
give a different (equally orthogonal, but not the paper's) result.

Per matrix (TPP ``orthogonalize_weights``): if ``out < in*kh*kw`` transpose
first, so QR always runs on a tall matrix; reduced QR; multiply column ``j`` of
Q by ``sign(R[j, j])`` (this makes the result unique and the identity on an
already orthonormal matrix); transpose back. Hence ``W W^T = gain^2 I`` when
``out <= in*kh*kw`` and ``W^T W = gain^2 I`` otherwise.

Gain. ``gain`` is a float, or ``"auto"``: then ``activation`` (``"linear"`` ->
1, ``"relu"`` -> sqrt(2), PyTorch's ``calculate_gain``) or ``model_name``
(``*_linear`` -> 1, ``*_relu`` and the ReLU ResNets -> sqrt(2)) must say which.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxprune.models import initializers

# Kernel ranks OrthP handles: Dense [in, out] and 2-D Conv [kh, kw, in, out].
_DENSE_RANK, _CONV_RANK = 2, 4


def gain_for(
  gain: float | str = "auto",
  *,
  activation: str | None = None,
  model_name: str | None = None,
) -> float:
  """Resolves OrthP's gain (see the module docstring for what "auto" does)."""
  if not isinstance(gain, str):
    if isinstance(gain, bool) or not math.isfinite(float(gain)) or float(gain) <= 0:
      raise ValueError(f"gain must be a positive float or 'auto', got {gain!r}")
    return float(gain)
  if gain != "auto":
    raise ValueError(f"gain must be a positive float or 'auto', got {gain!r}")
  if activation is None and model_name is not None:
    if model_name.endswith("_linear"):
      activation = "linear"
    elif model_name.endswith("_relu") or model_name.startswith("resnet"):
      activation = "relu"
    else:
      raise ValueError(
        f"gain='auto' cannot tell the activation of model {model_name!r}; "
        "pass activation= or a float gain"
      )
  if activation is None:
    raise ValueError(
      "gain='auto' needs activation= ('linear' or 'relu') or model_name= "
      "(e.g. 'mlp7_linear'), or pass a float gain"
    )
  if activation not in initializers.ACTIVATION_GAINS:
    raise ValueError(
      f"activation must be one of {sorted(initializers.ACTIVATION_GAINS)}, "
      f"got {activation!r}"
    )
  return initializers.activation_gain(activation)


def kernel_to_matrix(kernel: jax.Array | np.ndarray) -> np.ndarray:
  """Flax kernel -> the paper's ``[out, in*kh*kw]`` matrix (PyTorch layout)."""
  kernel = np.asarray(kernel)
  if kernel.ndim == _DENSE_RANK:
    return kernel.T
  if kernel.ndim == _CONV_RANK:
    out = kernel.shape[-1]
    return np.transpose(kernel, (3, 2, 0, 1)).reshape(out, -1)
  raise ValueError(
    f"expected a Dense [in, out] or Conv [kh, kw, in, out] kernel, got {kernel.shape}"
  )


def matrix_to_kernel(
  matrix: jax.Array | np.ndarray, kernel_shape: tuple[int, ...]
) -> np.ndarray:
  """Inverse of :func:`kernel_to_matrix` for a kernel of ``kernel_shape``."""
  matrix = np.asarray(matrix)
  if len(kernel_shape) == _DENSE_RANK:
    return matrix.T
  kh, kw, cin, out = kernel_shape
  return np.transpose(matrix.reshape(out, cin, kh, kw), (2, 3, 1, 0))


def orthogonalize(matrix: jax.Array | np.ndarray) -> np.ndarray:
  """Eq. 2 on one ``[rows, cols]`` matrix: orthonormal rows or columns.

  The shorter side ends up orthonormal: rows when ``rows <= cols``, columns
  otherwise. Runs on the host in float64 numpy (Householder QR from LAPACK,
  like ``torch.linalg.qr``): a one-off step between pruning and retraining,
  where eager per-shape XLA compilations would cost far more than the QR.
  """
  matrix = np.asarray(matrix, np.float64)
  wide = matrix.shape[0] < matrix.shape[1]
  q, r = np.linalg.qr(matrix.T if wide else matrix, mode="reduced")
  # sign(0) = 0 would zero a column; a zero diagonal only arises for
  # rank-deficient W, where +1 keeps Q orthonormal.
  q = q * np.where(np.diagonal(r) < 0, -1.0, 1.0)[None, :]
  return q.T if wide else q


def _is_kernel(path: tuple[Any, ...], leaf: Any) -> bool:
  key = path[-1] if path else None
  name = getattr(key, "key", getattr(key, "name", None))
  return name == "kernel" and getattr(leaf, "ndim", 0) in (_DENSE_RANK, _CONV_RANK)


def orthp(
  params: Mapping[str, Any],
  *,
  gain: float | str = "auto",
  activation: str | None = None,
  model_name: str | None = None,
) -> Any:
  """OrthP: orthogonalises every Dense/Conv kernel of ``params`` (Eq. 2).

  Args:
    params: a ``params`` collection (or any pytree); leaves named ``kernel``
      with rank 2 (Dense) or 4 (Conv) are replaced, all others (biases, BN
      scale/bias, ...) are returned unchanged.
    gain: a positive float, or ``"auto"`` (resolved by :func:`gain_for` from
      ``activation`` or ``model_name``).
    activation: ``"linear"`` or ``"relu"`` for ``gain="auto"``.
    model_name: registered model name for ``gain="auto"``, e.g.
      ``"mlp7_linear"``.

  Returns:
    A params tree of the same structure, shapes and dtypes where each kernel's
    ``[out, in*kh*kw]`` matrix W satisfies ``W W^T = gain^2 I`` (out <= cols)
    or ``W^T W = gain^2 I`` (out > cols).
  """
  scale = gain_for(gain, activation=activation, model_name=model_name)

  def visit(path: tuple[Any, ...], leaf: Any) -> Any:
    if not _is_kernel(path, leaf):
      return leaf
    matrix = orthogonalize(kernel_to_matrix(leaf))
    return jnp.asarray(scale * matrix_to_kernel(matrix, leaf.shape), leaf.dtype)

  return jax.tree_util.tree_map_with_path(visit, params)


def orthogonality_error(params: Mapping[str, Any], gain: float) -> dict[str, float]:
  """Per-kernel max |W W^T - gain^2 I| (shorter side), keyed by "layer/kernel".

  A diagnostic for OrthP (and orthogonal init): 0 means the kernel's paper
  matrix has orthonormal rows (or columns) scaled by ``gain``.
  """
  errors = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
    if not _is_kernel(path, leaf):
      continue
    w = kernel_to_matrix(leaf).astype(np.float64)
    gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w
    name = "/".join(str(getattr(k, "key", k)) for k in path)
    errors[name] = float(np.max(np.abs(gram - gain**2 * np.eye(gram.shape[0]))))
  return errors
