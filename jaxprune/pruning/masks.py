"""Pruning masks as pytrees shaped like the params, and which leaves may be pruned.

A mask tree has exactly the structure, shapes and dtypes of the params tree it
belongs to: float 1.0 = kept, 0.0 = pruned, all ones for leaves that are not
prunable. There are no ``None`` leaves, so every mask operation is a plain
``jax.tree_util.tree_map`` and the train step can multiply without special
cases (``TrainState.masks``).

Which leaves are prunable is an explicit predicate (:class:`Prunable`), because
the papers disagree: Rethinking's weight-level experiments prune conv kernels
only, BIMP every non-BN weight including the classifier, ShrinkBench excludes
the classifier, UNIFORM+ keeps the first conv dense. Biases and BatchNorm
parameters are never prunable by the unstructured predicate (structured
pruning zeroes them through channel groups instead).

Leaves are addressed by their *name path*, e.g. ``("stage0_block0", "conv1",
"kernel")``; :func:`path_str` joins it with ``/`` for display and regexes.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Path = tuple[str, ...]

# Module names the registered models give their first layer and classifier;
# used when no model graph is available to tell the roles apart.
FIRST_LAYER_NAMES = ("stem_conv", "conv0", "fc0", "conv1_1", "features_0")
CLASSIFIER_NAMES = ("head",)


def path_names(path: Sequence[Any]) -> Path:
  """``jax.tree_util`` key path -> tuple of plain strings."""
  out = []
  for key in path:
    for attr in ("key", "name", "idx"):
      if hasattr(key, attr):
        out.append(str(getattr(key, attr)))
        break
    else:
      out.append(str(key))
  return tuple(out)


def path_str(path: Sequence[Any]) -> str:
  names = path if all(isinstance(p, str) for p in path) else path_names(path)
  return "/".join(names)


def leaves_with_names(tree: Any) -> list[tuple[Path, Any]]:
  """(name path, leaf) pairs in the canonical ``tree_flatten`` order."""
  flat, _ = jax.tree_util.tree_flatten_with_path(tree)
  return [(path_names(p), leaf) for p, leaf in flat]


def map_with_names(fn, tree: Any, *rest: Any) -> Any:
  """``tree_map_with_path`` with name paths: ``fn(names, leaf, *rest_leaves)``."""
  return jax.tree_util.tree_map_with_path(
    lambda p, x, *r: fn(path_names(p), x, *r), tree, *rest
  )


@dataclasses.dataclass(frozen=True)
class Prunable:
  """The predicate saying which params leaves unstructured pruning may touch.

  Attributes:
    conv: prune conv kernels (ndim 4).
    dense: prune dense kernels (ndim 2).
    first_layer: prune the first layer (the one reading the input image).
    classifier: prune the classifier ``head``.
    exclude: regexes matched (``re.search``) against ``"a/b/kernel"``; a match
      makes the leaf non-prunable.
    first_layers / classifiers: module paths with those roles (defaults: the
      names the model zoo uses; :func:`roles_from_groups` reads them from a
      model's channel graph).
  """

  conv: bool = True
  dense: bool = True
  first_layer: bool = True
  classifier: bool = True
  exclude: tuple[str, ...] = ()
  first_layers: tuple[Path, ...] = tuple((n,) for n in FIRST_LAYER_NAMES)
  classifiers: tuple[Path, ...] = tuple((n,) for n in CLASSIFIER_NAMES)

  def role(self, names: Path) -> str:
    module = names[:-1]
    if module in self.classifiers:
      return "classifier"
    if module in self.first_layers:
      return "first"
    return "hidden"

  def __call__(self, names: Path, leaf: Any) -> bool:
    if not names or names[-1] != "kernel":
      return False  # Biases, BN scale/bias: never pruned element-wise.
    ndim = np.ndim(leaf)
    if ndim == 4 and not self.conv:
      return False
    if ndim == 2 and not self.dense:
      return False
    if ndim not in (2, 4):
      return False
    role = self.role(names)
    if role == "first" and not self.first_layer:
      return False
    if role == "classifier" and not self.classifier:
      return False
    text = path_str(names)
    return not any(re.search(p, text) for p in self.exclude)


def roles_from_groups(
  groups: Sequence[Any],
) -> tuple[tuple[Path, ...], tuple[Path, ...]]:
  """(first layers, classifiers) from a model's channel groups.

  The classifier produces the ``head`` group; a first layer produces some group
  but consumes none (it reads the image).
  """
  producers = {p for g in groups for p in g.producers}
  consumers = {c.path for g in groups for c in g.consumers}
  classifiers = tuple(p for g in groups if g.name == "head" for p in g.producers)
  first = tuple(sorted(p for p in producers - consumers if p not in classifiers))
  return first, classifiers


def prunable_tree(params: Any, predicate: Prunable) -> Any:
  """Pytree of Python bools: which leaves ``predicate`` allows pruning."""
  return map_with_names(lambda n, x: bool(predicate(n, x)), params)


def ones_like(params: Any) -> Any:
  return jax.tree_util.tree_map(jnp.ones_like, params)


def apply(params: Any, masks: Any) -> Any:
  """params * masks (in the params' dtype)."""
  return jax.tree_util.tree_map(lambda x, m: x * m.astype(x.dtype), params, masks)


def combine(a: Any, b: Any) -> Any:
  """Intersection: kept only where kept in both."""
  return jax.tree_util.tree_map(lambda x, y: x * y, a, b)


def union(a: Any, b: Any) -> Any:
  """Kept where kept in either."""
  return jax.tree_util.tree_map(jnp.maximum, a, b)


def invert(masks: Any, prunable: Any | None = None) -> Any:
  """1 - mask; with ``prunable`` given, non-prunable leaves stay all ones."""
  if prunable is None:
    return jax.tree_util.tree_map(lambda m: 1 - m, masks)
  return jax.tree_util.tree_map(
    lambda m, p: 1 - m if p else jnp.ones_like(m), masks, prunable
  )


def from_bool(bool_masks: Any, like: Any) -> Any:
  """Boolean/0-1 arrays -> masks with the dtype of the ``like`` leaves."""
  return jax.tree_util.tree_map(
    lambda b, x: jnp.asarray(b, dtype=x.dtype), bool_masks, like
  )


@dataclasses.dataclass(frozen=True)
class SparsityReport:
  """Zero counts of masks (or of params: zeros are read as pruned)."""

  total: int  # Entries of the leaves counted.
  zeros: int
  per_layer: dict[str, tuple[int, int]]  # "a/b/kernel" -> (zeros, size)

  @property
  def sparsity(self) -> float:
    return self.zeros / self.total if self.total else 0.0

  def layer_sparsity(self) -> dict[str, float]:
    return {k: z / n for k, (z, n) in self.per_layer.items()}


def sparsity(tree: Any, prunable: Any | None = None) -> SparsityReport:
  """Fraction of zeros over the prunable leaves (all leaves if ``prunable`` is None)."""
  host = jax.device_get(tree)
  flags = (
    [True] * len(jax.tree_util.tree_leaves(host))
    if prunable is None
    else jax.tree_util.tree_leaves(prunable)
  )
  per_layer = {}
  total = zeros = 0
  for (names, leaf), flag in zip(leaves_with_names(host), flags, strict=True):
    if not flag:
      continue
    z = int(np.size(leaf) - np.count_nonzero(leaf))
    per_layer[path_str(names)] = (z, int(np.size(leaf)))
    total += int(np.size(leaf))
    zeros += z
  return SparsityReport(total, zeros, per_layer)
