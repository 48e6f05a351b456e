"""Unstructured importance scores: one score per weight, higher = more important.

Every function maps a params-shaped tree to a tree of float32 scores with the
same structure. Scores of non-prunable leaves are computed too (it is cheap and
keeps the trees aligned); the allocation step ignores them.

* ``magnitude``: |w| (Han et al. 2015; IMP, GMP, BIMP).
* ``random``: i.i.d. U[0, 1) per weight, seeded (NPTM ``--random_rank``,
  ShrinkBench ``RandomPruning``, SMS ``random``).
* ``saliency``: |w * g| (first-order Taylor per weight; ShrinkBench
  ``GlobalMagGrad``); needs gradients.
* :func:`lamp`: Lee et al. (2021) layer-adaptive magnitude score
  ``w_u^2 / sum_{v >= u} w_v^2`` over the layer's weights sorted by magnitude;
  ranking it globally gives the LAMP allocation.

Criteria are looked up in :data:`CRITERIA` (a :class:`jaxprune.registry.Registry`);
:func:`register` adds one, e.g. from a user's module (``pruning.register_criterion``
with ``kind="unstructured"``). A criterion is called as ``fn(params, rng=...,
grads=...)`` and returns a params-shaped score tree.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from jaxprune import registry

Criterion = Callable[..., Any]  # fn(params, *, rng, grads) -> score tree.
CRITERIA: registry.Registry[Criterion] = registry.Registry("criterion")


def register(name: str, *, replace: bool = False) -> Callable[[Criterion], Criterion]:
  """Decorator: registers ``fn(params, *, rng, grads) -> scores`` as ``name``."""
  return CRITERIA.decorator(name, replace=replace)


def magnitude(params: Any) -> Any:
  return jax.tree_util.tree_map(lambda w: jnp.abs(w).astype(jnp.float32), params)


def random(params: Any, rng: jax.Array) -> Any:
  """U[0, 1) scores; leaf ``i`` (flatten order) uses ``fold_in(rng, i)``."""
  leaves, treedef = jax.tree_util.tree_flatten(params)
  out = [
    jax.random.uniform(jax.random.fold_in(rng, i), jnp.shape(w), jnp.float32)
    for i, w in enumerate(leaves)
  ]
  return jax.tree_util.tree_unflatten(treedef, out)


def saliency(params: Any, grads: Any) -> Any:
  return jax.tree_util.tree_map(
    lambda w, g: jnp.abs(w * g).astype(jnp.float32), params, grads
  )


@register("magnitude")
def _magnitude(params: Any, **_) -> Any:
  return magnitude(params)


@register("random")
def _random(params: Any, *, rng: jax.Array | None = None, **_) -> Any:
  if rng is None:
    raise ValueError("criterion='random' needs an rng")
  return random(params, rng)


@register("saliency")
def _saliency(params: Any, *, grads: Any = None, **_) -> Any:
  if grads is None:
    raise ValueError("criterion='saliency' needs grads")
  return saliency(params, grads)


def compute(
  name: str, params: Any, *, rng: jax.Array | None = None, grads: Any = None
) -> Any:
  """Scores by name; ValueError naming ``criterion`` for unknown names."""
  return CRITERIA.get(name)(params, rng=rng, grads=grads)


def lamp_leaf(score: jax.Array) -> jax.Array:
  """LAMP scores of one tensor from its magnitude scores (jit-safe).

  Weights are sorted ascending by magnitude (stable: ties by index); weight u
  gets ``s_u^2 / sum_{v >= u} s_v^2``. The largest weight of every layer scores
  1, so a global threshold never empties a layer.
  """
  flat = score.reshape(-1).astype(jnp.float32) ** 2
  order = jnp.argsort(flat, stable=True)
  sorted_sq = flat[order]
  suffix = jnp.cumsum(sorted_sq[::-1])[::-1]
  lamp_sorted = jnp.where(suffix > 0, sorted_sq / jnp.where(suffix > 0, suffix, 1), 0)
  out = jnp.zeros_like(flat).at[order].set(lamp_sorted)
  return out.reshape(score.shape)


def lamp(scores: Any, prunable: Any) -> Any:
  """LAMP-transformed scores on prunable leaves; others unchanged."""
  return jax.tree_util.tree_map(lambda s, p: lamp_leaf(s) if p else s, scores, prunable)
