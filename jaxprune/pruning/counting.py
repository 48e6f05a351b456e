"""jaxprune's one parameter and FLOPs counter.

Layers are found by tracing one forward pass (shapes only, nothing runs):
every ``nn.Conv`` and ``nn.Dense`` call is intercepted to record its input and
output shape, so the count follows the model code instead of a per-family
formula. Everything else (BatchNorm, pooling, activations, residual adds) is
counted as zero MACs, as ShrinkBench does.

Conventions (sources in ``docs/provenance.md`` F11):

* MACs are multiply-adds per example, biases excluded:
  conv ``C_in/groups * C_out * kh * kw * H_out * W_out``, dense ``in * out``.
  ``H_out`` is the real output size (``convention="actual"``); ShrinkBench
  and BIMP treat every conv as 'same'-padded, ``H_out = ceil(H_in / stride)``
  (``convention="shrinkbench"``), which over-counts valid convs such as
  LeNet-5's.
* ``flops = 2 * macs``. Wang et al. (TPP, "Why ... Confusing") report FLOPs
  this way (ResNet-56: 125.5M MACs = "0.25G FLOPs"); ShrinkBench and BIMP
  report MACs and call them FLOPs.
* ``params`` counts conv/dense kernels and biases; ``norm_params`` the
  BatchNorm scale and bias; ``total_params`` every leaf of ``params`` (what
  PyTorch's ``model.parameters()`` counts; BN running statistics excluded).
* Nonzero counts follow ShrinkBench: a layer's nonzero MACs are its MACs times
  ``nnz(kernel) / numel(kernel)``, whatever the pattern of zeros. Nonzeros come
  from ``masks`` (a params-shaped 0/1 tree; missing leaves count as dense)
  when they are given, else from exact zeros in concrete params (a checkpoint
  whose pruning was baked into the weights). With masks the values are not
  read: zeros that are not pruning (BatchNorm biases and conv biases start at
  exactly 0) would otherwise count as pruned.
* :func:`sparsity` is the one "sparsity" that result rows and
  ``jaxprune.inspect_model --config`` report.

Example::

  counts = counting.count(models.create("resnet56"), (32, 32, 3))
  counts.macs, counts.flops, counts.total_params  # 125.5M, 251M, 853,018
  for row in counts.layers: print(row.name, row.kernel_shape, row.macs)

Extension points: new conventions go in :func:`_out_spatial`, new nonzero
rules in :func:`_nonzero`; :func:`trace_layers` is reusable on its own.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from jaxprune import checks
from jaxprune.pruning import masks as masks_lib

CONVENTIONS = ("actual", "shrinkbench")
Path = tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class LayerCount:
  """Counts of one Conv or Dense layer (per example)."""

  path: Path
  kind: str  # "conv" or "dense"
  kernel_shape: tuple[int, ...]
  in_shape: tuple[int, ...]  # without the batch axis
  out_shape: tuple[int, ...]  # without the batch axis (as counted)
  params: int  # kernel + bias
  macs: int
  nonzero_params: int
  nonzero_macs: float

  @property
  def name(self) -> str:
    return "/".join(self.path)


@dataclasses.dataclass(frozen=True)
class Counts:
  """Per-layer rows and totals; see the module docstring for conventions."""

  layers: tuple[LayerCount, ...]
  norm_params: int
  norm_nonzero_params: int
  other_params: int  # leaves neither in a conv/dense layer nor a norm
  convention: str = "actual"

  @property
  def params(self) -> int:
    return sum(r.params for r in self.layers)

  @property
  def nonzero_params(self) -> int:
    return sum(r.nonzero_params for r in self.layers)

  @property
  def total_params(self) -> int:
    return self.params + self.norm_params + self.other_params

  @property
  def total_nonzero_params(self) -> int:
    return self.nonzero_params + self.norm_nonzero_params + self.other_params

  @property
  def macs(self) -> int:
    return sum(r.macs for r in self.layers)

  @property
  def nonzero_macs(self) -> float:
    return float(sum(r.nonzero_macs for r in self.layers))

  @property
  def flops(self) -> int:
    return 2 * self.macs

  @property
  def nonzero_flops(self) -> float:
    return 2 * self.nonzero_macs

  @property
  def theoretical_speedup(self) -> float:
    """Dense over nonzero MACs (ShrinkBench's ``theoretical_speedup``)."""
    return self.macs / self.nonzero_macs if self.nonzero_macs else math.inf

  @property
  def compression(self) -> float:
    """All params over nonzero params (ShrinkBench's ``compression_ratio``)."""
    nnz = self.total_nonzero_params
    return self.total_params / nnz if nnz else math.inf

  def summary(self) -> dict[str, Any]:
    """Totals as a JSON-friendly dict."""
    return {
      "params": self.total_params,
      "flops": self.flops,
      "macs": self.macs,
      "conv_dense_params": self.params,
      "norm_params": self.norm_params,
      "nonzero_params": self.total_nonzero_params,
      "nonzero_flops": self.nonzero_flops,
      "nonzero_macs": self.nonzero_macs,
      "theoretical_speedup": self.theoretical_speedup,
      "compression": self.compression,
      "convention": self.convention,
    }


@dataclasses.dataclass(frozen=True)
class LayerCall:
  """One traced Conv/Dense call; shapes include a batch axis of 1."""

  path: Path
  kind: str
  in_shape: tuple[int, ...]
  out_shape: tuple[int, ...]
  strides: tuple[int, ...]  # () for dense


def trace_layers(
  model: nn.Module, variables: Any, input_shape: Sequence[int]
) -> list[LayerCall]:
  """Every Conv/Dense call of one forward pass in eval mode, in call order.

  Runs under ``jax.eval_shape``, so nothing is computed or compiled.
  """
  calls = []

  def interceptor(next_fn, args, kwargs, context):
    out = next_fn(*args, **kwargs)
    module = context.module
    if context.method_name == "__call__" and isinstance(module, nn.Conv | nn.Dense):
      in_shape, out_shape = tuple(args[0].shape), tuple(out.shape)
      if isinstance(module, nn.Conv):
        strides = module.strides or 1
        if isinstance(strides, int):
          strides = (strides,) * (len(in_shape) - 2)
        calls.append(LayerCall(module.path, "conv", in_shape, out_shape, strides))
      else:
        calls.append(LayerCall(module.path, "dense", in_shape, out_shape, ()))
    return out

  x = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)
  with nn.intercept_methods(interceptor):
    jax.eval_shape(lambda v, x: model.apply(v, x, train=False), variables, x)
  return calls


def _out_spatial(convention: str, call: LayerCall) -> tuple[int, ...]:
  """Spatial output size used for the MAC count."""
  if convention == "shrinkbench" and call.kind == "conv":
    return tuple(-(-h // s) for h, s in zip(call.in_shape[1:-1], call.strides))
  return call.out_shape[1:-1]


def _is_concrete(x: Any) -> bool:
  return isinstance(x, np.ndarray | jax.Array) and not isinstance(x, jax.core.Tracer)


def _nonzero(leaf: Any, mask: Any, use_values: bool) -> int:
  """Nonzero entries of a param leaf: its mask's, else (``use_values``) its own."""
  if mask is not None:
    return int(np.count_nonzero(np.asarray(mask)))
  if use_values and _is_concrete(leaf):
    return int(np.count_nonzero(np.asarray(leaf)))
  return int(np.prod(leaf.shape))


def count(
  model: nn.Module,
  input_shape: Sequence[int],
  variables: Mapping[str, Any] | None = None,
  masks: Mapping[str, Any] | None = None,
  convention: str = "actual",
) -> Counts:
  """Counts params and MACs of ``model`` on one example of ``input_shape``.

  Args:
    model: a Flax module called as ``apply(variables, x, train)``.
    input_shape: one example's shape, e.g. ``(32, 32, 3)``.
    variables: the model's variables (or the ``params`` tree alone); when
      omitted they are built abstractly with ``model.init``.
    masks: optional params-shaped 0/1 tree; nonzero counts use it (and then
      ignore the values of ``variables``).
    convention: ``"actual"`` or ``"shrinkbench"`` (see module docstring).

  Returns:
    :class:`Counts`.
  """
  checks.choice(convention, "convention", CONVENTIONS)
  x = jax.ShapeDtypeStruct((1, *input_shape), jnp.float32)
  if variables is None:
    variables = jax.eval_shape(
      lambda x: model.init(jax.random.key(0), x, train=False), x
    )
  elif "params" not in variables:
    variables = {"params": variables}
  if masks is not None and "params" in masks:
    masks = masks["params"]
  flat = traverse_util.flatten_dict(dict(variables["params"]))
  flat_masks = traverse_util.flatten_dict(dict(masks)) if masks is not None else {}
  use_values = masks is None

  def nonzero(key: Path) -> int:
    return _nonzero(flat[key], flat_masks.get(key), use_values)

  rows, seen = {}, set()
  for call in trace_layers(model, variables, input_shape):
    path = tuple(call.path)
    kernel_shape = tuple(flat[(*path, "kernel")].shape)
    spatial = _out_spatial(convention, call)
    macs = int(np.prod(kernel_shape)) * int(np.prod(spatial, dtype=np.int64))
    leaves = [k for k in flat if k[:-1] == path]
    params = sum(int(np.prod(flat[k].shape)) for k in leaves)
    nnz_params = sum(nonzero(k) for k in leaves)
    kernel_nnz = nonzero((*path, "kernel"))
    density = kernel_nnz / int(np.prod(kernel_shape))
    if path in rows:  # A layer applied twice: its MACs add up, params do not.
      prev = rows[path]
      rows[path] = dataclasses.replace(
        prev, macs=prev.macs + macs, nonzero_macs=prev.nonzero_macs + macs * density
      )
      continue
    seen.update(leaves)
    rows[path] = LayerCount(
      path=path,
      kind=call.kind,
      kernel_shape=kernel_shape,
      in_shape=call.in_shape[1:],
      out_shape=(*spatial, call.out_shape[-1]),
      params=params,
      macs=macs,
      nonzero_params=nnz_params,
      nonzero_macs=macs * density,
    )
  norm_params = norm_nnz = other = 0
  for key, leaf in flat.items():
    if key in seen:
      continue
    size = int(np.prod(leaf.shape))
    if key[-1] in ("scale", "bias") and (*key[:-1], "kernel") not in flat:
      norm_params += size
      norm_nnz += nonzero(key)
    else:
      other += size
  return Counts(tuple(rows.values()), norm_params, norm_nnz, other, convention)


def sparsity(
  dense: Counts, pruned: Counts, masks: Any = None, prunable: Any = None
) -> float:
  """The one "sparsity" jaxprune reports (result rows, ``inspect --config``).

  * Unstructured pruning (``prunable`` given, a bool tree shaped like
    ``masks``): the fraction of the prunable weights that ``masks`` zero, the
    quantity the papers' sparsity targets name.
  * Otherwise (structured pruning, surgery or masks): the fraction of all the
    dense model's parameters (kernels, biases, BatchNorm scale and bias,
    classifier) that surgery removed or masks zero,
    ``1 - pruned.total_nonzero_params / dense.total_params``. This is how
    Wang et al. 2023 count Table 6 (ResNet-56, first conv of every block at
    ratio 0.3: 31.14 %).
  """
  if prunable is not None:
    return masks_lib.sparsity(masks, prunable).sparsity
  return 1.0 - pruned.total_nonzero_params / dense.total_params
