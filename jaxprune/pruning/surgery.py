"""Surgery: turn a structurally pruned network into the small-dense model.

Given the kept channels of some channel groups (:mod:`structured`), every
module touched by a group is sliced once:

* producers (conv/dense): kernel output axis ``[..., keep]`` and ``bias``;
* norms: ``scale``/``bias`` in params and ``mean``/``var`` in batch_stats, at
  the group's offset inside the norm (DenseNet concatenations);
* consumers: kernel input axis (second to last) at ``s * in_channels + offset
  + c`` for every flatten position ``s``.

A module can be both a producer (of one group) and a consumer (of another);
the output and input axes are sliced independently. The new widths come from
``models.with_widths``, and the result is checked against ``jax.eval_shape``
of ``models.create(name, widths=new_widths, ...).init`` so a mismatch fails
loudly here rather than at the next ``apply``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxprune import models
from jaxprune.models.graph import ChannelGroup


@dataclasses.dataclass
class SmallDense:
  """The compact model: its widths and variables."""

  widths: Any
  params: Any
  batch_stats: Any
  sizes: dict[str, int]  # New size of every pruned group.


def _keep_vector(store: dict, key: tuple, length: int) -> np.ndarray:
  if key not in store:
    store[key] = np.ones(length, bool)
  elif store[key].size != length:
    raise ValueError(
      f"inconsistent channel counts for {key}: {store[key].size} vs {length}"
    )
  return store[key]


def _get(tree: Any, path: Sequence[str]) -> Any:
  for key in path:
    tree = tree[key]
  return tree


def _slicing_plan(
  groups: Sequence[ChannelGroup], keep: Mapping[str, np.ndarray], params: Any
) -> tuple[dict, dict, dict]:
  """(out-channel keeps per producer, in-channel keeps per consumer, norm keeps)."""
  by_name = {g.name: g for g in groups}
  outs, ins, norms = {}, {}, {}
  for name, kept in keep.items():
    if name not in by_name:
      raise ValueError(f"unknown channel group {name!r}")
    g = by_name[name]
    if not g.prunable and len(kept) != g.size:
      raise ValueError(f"channel group {name!r} is not prunable: {g.reason}")
    pruned = np.setdiff1d(np.arange(g.size), np.asarray(kept))
    if pruned.size == 0:
      continue
    if len(kept) == 0:
      raise ValueError(f"channel group {name!r} would lose all its channels")
    for prod in g.producers:
      k = _get(params, prod)["kernel"]
      _keep_vector(outs, tuple(prod), k.shape[-1])[pruned] = False
    for j, norm in enumerate(g.norms):
      n = _get(params, norm)["scale"].shape[-1]
      _keep_vector(norms, tuple(norm), n)[pruned + g.norm_offset(j)] = False
    for c in g.consumers:
      k = _get(params, c.path)["kernel"]
      vec = _keep_vector(ins, tuple(c.path), k.shape[-2])
      in_ch = c.in_channels if c.in_channels is not None else g.size
      for s in range(c.spatial):
        vec[s * in_ch + c.offset + pruned] = False
  return outs, ins, norms


def _apply_plan(tree: Any, plan: tuple[dict, dict, dict], op) -> Any:
  """``op(array, keep vector, axis)`` on every axis the plan touches."""
  outs, ins, norms = plan

  def fn(path, leaf):
    names = tuple(getattr(p, "key", str(p)) for p in path)
    module, name = names[:-1], names[-1]
    x = np.asarray(leaf)
    if module in outs and name in ("kernel", "bias"):
      x = op(x, outs[module], -1)
    if module in ins and name == "kernel":
      x = op(x, ins[module], -2)
    if module in norms and name in ("scale", "bias", "mean", "var"):
      x = op(x, norms[module], -1)
    return jnp.asarray(x, dtype=jnp.asarray(leaf).dtype)

  return jax.tree_util.tree_map_with_path(fn, jax.device_get(tree))


def _take(x: np.ndarray, keep: np.ndarray, axis: int) -> np.ndarray:
  return np.take(x, np.nonzero(keep)[0], axis=axis)


def _zero(x: np.ndarray, keep: np.ndarray, axis: int) -> np.ndarray:
  sl = [slice(None)] * x.ndim
  sl[axis] = ~keep
  x = x.copy()
  x[tuple(sl)] = 0
  return x


def removal_masks(
  groups: Sequence[ChannelGroup], keep: Mapping[str, np.ndarray], params: Any
) -> Any:
  """Params-shaped 0/1 masks zeroing exactly what :func:`shrink` removes.

  Producers' pruned filters (kernel and bias), the norms' pruned scale and
  bias, and the consumers' kernel rows that read pruned channels: the masked
  model computes the small-dense one's function and counts the same nonzero
  params and MACs.
  """
  ones = jax.tree_util.tree_map(
    lambda x: np.ones(np.shape(x), np.asarray(x).dtype), jax.device_get(params)
  )
  return _apply_plan(ones, _slicing_plan(groups, keep, params), _zero)


def shrink(
  model_name: str,
  params: Any,
  batch_stats: Any,
  keep: Mapping[str, np.ndarray],
  *,
  num_classes: int | None = None,
  input_shape: tuple[int, ...] | None = None,
  **overrides: Any,
) -> SmallDense:
  """Slices ``params``/``batch_stats`` to the channels in ``keep``.

  Args:
    model_name: registered model name.
    params, batch_stats: variables of the (large or already pruned) model.
    keep: ``{group name: kept indices}``; groups not listed keep everything.
    num_classes: classifier width (default: read from ``params["head"]``).
    **overrides: the model's non-width overrides (``shortcut``, ...).

  Returns:
    :class:`SmallDense` whose variables fit ``models.create(model_name,
    num_classes, widths=result.widths, **overrides)`` exactly.
  """
  overrides = {k: v for k, v in overrides.items() if k != "widths"}
  if num_classes is None:
    num_classes = int(_get(params, ("head", "kernel")).shape[-1])
  widths = models.read_widths(model_name, params, **overrides)
  groups = models.channel_groups(model_name, num_classes, widths=widths, **overrides)
  plan = _slicing_plan(groups, keep, params)
  new_params = _apply_plan(params, plan, _take)
  new_stats = _apply_plan(batch_stats or {}, plan, _take)
  by_name = {g.name: g for g in groups}
  sizes = {n: len(k) for n, k in keep.items() if len(k) != by_name[n].size}
  new_widths = models.with_widths(model_name, widths, sizes, **overrides)
  input_shape = input_shape or models.input_shape(model_name)
  _check_shapes(
    model_name, num_classes, new_widths, overrides, new_params, new_stats, input_shape
  )
  return SmallDense(new_widths, new_params, new_stats, sizes)


def _check_shapes(name, num_classes, widths, overrides, params, stats, shape) -> None:
  model = models.create(name, num_classes, widths=widths, **overrides)
  x = jax.ShapeDtypeStruct((1, *shape), jnp.float32)
  want = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
  for col, got in (("params", params), ("batch_stats", stats)):
    w = jax.tree_util.tree_map(lambda a: (a.shape, a.dtype), want.get(col, {}))
    g = jax.tree_util.tree_map(lambda a: (a.shape, a.dtype), got)
    if w != g:
      raise ValueError(
        f"surgery produced {col} that do not fit {name} with widths {widths}"
      )
