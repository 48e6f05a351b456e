"""Structured (filter / channel) pruning over a model's coupled channel groups.

A structured decision is ``{group name: sorted kept channel indices}`` over the
:class:`jaxprune.models.ChannelGroup` s of a model (``models.channel_groups``).
From it, :func:`channel_masks` builds params-shaped 0/1 masks that zero every
producer's output filters (kernel ``[..., c]`` and bias ``[c]``), the
BatchNorm scale and bias of the pruned channels, as network slimming's mask
implementation does (a BN over a zeroed conv channel would otherwise output
``beta``, not 0), and the consumers' input rows of those channels: exactly
what :mod:`surgery` removes, so masked and small-dense models compute and
count the same.

Group scores (one value per channel, higher = keep):

* ``l1``: sum of |w| of the channel's filters over all producers (PFEC; Wang's
  mean-|w| ranks identically within a layer).
* ``l2``: L2 norm of the same weights (Zimmer et al. follow Li et al. with L2).
* ``random``: U[0, 1) per channel (NPTM ``--random_rank``, Le & Hua §4.2): with
  the same per-group counts as ``l1`` it is "random pruning".
* ``bn_scale``: |gamma| summed over the group's norms (network slimming);
  groups without a BatchNorm get no score and are not pruned by it.
* ``taylor``: |sum over the filters of grad * weight| (+ bias), the first-order
  Taylor estimate of the loss change when the channel is removed.
* ``taylor_fo_bn``, ``fisher``, ``hrank``: computed from data by
  :mod:`data_scores` and passed in as ``channel_scores``.

Every criterion is an entry of :data:`CRITERIA`; :func:`register` adds one
(``pruning.register_criterion(name, kind="structured")``).

Counts: per-group ratios ``p`` with rounding ``keep_floor`` (keep
``int(n * (1 - p))``, rethinking/NPTM) or ``prune_ceil`` (prune
``ceil(p * n)``, Wang et al.); at least one channel always survives. Or one
global threshold over the scores of all selected groups (network slimming over
BN scales, Wang's ``--compare_mode global``): exactly ``int(p * total)``
channels pruned, ties by (group order, index).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxprune import registry
from jaxprune.models.graph import ChannelGroup
from jaxprune.pruning import surgery
from jaxprune.pruning.data_scores import CHANNEL_CRITERIA

# The built-in criteria computed from the params (SFP's choices).
WEIGHT_CRITERIA = ("l1", "l2", "random", "bn_scale", "taylor")
ROUNDINGS = ("keep_floor", "prune_ceil")

Keep = dict[str, np.ndarray]


def _get(tree: Any, path: Sequence[str]) -> Any:
  for key in path:
    tree = tree[key]
  return tree


def _filters(kernel: Any) -> np.ndarray:
  """(out, everything else) view of a conv/dense kernel."""
  k = np.asarray(kernel, np.float64)
  return np.moveaxis(k, -1, 0).reshape(k.shape[-1], -1)


# Structured criteria: fn(groups, params, *, rng, grads, channel_scores) ->
# {group name: per-channel scores}, higher = keep (see `register`).
CRITERIA: registry.Registry[Callable[..., dict[str, np.ndarray]]] = registry.Registry(
  "criterion"
)


def register(name: str, *, replace: bool = False) -> Callable:
  """Decorator: registers a structured criterion ``fn(groups, params, *, rng,
  grads, channel_scores) -> {group: scores}`` as ``name``."""
  return CRITERIA.decorator(name, replace=replace)


def group_scores(
  groups: Sequence[ChannelGroup],
  params: Any,
  criterion: str,
  *,
  rng: jax.Array | None = None,
  grads: Any = None,
  channel_scores: dict[str, Any] | None = None,
) -> dict[str, np.ndarray]:
  """Per-channel scores of every prunable group (float64 numpy)."""
  fn = CRITERIA.get(criterion)
  grads = jax.device_get(grads) if grads is not None else None
  return fn(
    groups, jax.device_get(params), rng=rng, grads=grads, channel_scores=channel_scores
  )


def _channel(groups, params, *, channel_scores=None, criterion="", **_):
  """The data criteria's scores, computed beforehand (`data_scores`)."""
  if channel_scores is None:
    raise ValueError(f"criterion={criterion!r} needs channel_scores (data_scores)")
  names = [g.name for g in groups if g.prunable]
  if missing := [n for n in names if n not in channel_scores]:
    raise ValueError(f"channel_scores has no scores for groups {missing}")
  return {n: np.asarray(channel_scores[n], np.float64) for n in names}


@register("random")
def _random(groups, params, *, rng=None, **_):
  if rng is None:
    raise ValueError("criterion='random' needs an rng")
  return {
    g.name: np.asarray(
      jax.random.uniform(jax.random.fold_in(rng, i), (g.size,)), np.float64
    )
    for i, g in enumerate(groups)
    if g.prunable
  }


@register("bn_scale")
def _bn_scale(groups, params, **_):
  out = {}
  for g in groups:
    if not g.prunable or not g.norms:
      continue  # Slimming only ranks channels that have a BN scale.
    s = np.zeros(g.size)
    for j, norm in enumerate(g.norms):
      off = g.norm_offset(j)
      s += np.abs(np.asarray(_get(params, norm)["scale"])[off : off + g.size])
    out[g.name] = s
  if not out:
    raise ValueError("criterion='bn_scale' needs BatchNorm layers; this model has none")
  return out


def _producer_scores(groups, params, per_producer) -> dict[str, np.ndarray]:
  """Sum over each prunable group's producers of `per_producer(path, filters)`."""
  out = {}
  for g in groups:
    if g.prunable:
      out[g.name] = sum(
        (per_producer(p, _filters(_get(params, p)["kernel"])) for p in g.producers),
        np.zeros(g.size),
      )
  return out


@register("l1")
def _l1(groups, params, **_):
  return _producer_scores(groups, params, lambda _, w: np.abs(w).sum(1))


@register("l2")
def _l2(groups, params, **_):
  out = _producer_scores(groups, params, lambda _, w: (w**2).sum(1))
  return {n: np.sqrt(s) for n, s in out.items()}


@register("taylor")
def _taylor(groups, params, *, grads=None, **_):
  """|sum g*w| over the producers' filters (+ bias)."""
  if grads is None:
    raise ValueError("criterion='taylor' needs grads")

  def one(path, w):
    mod, gmod = _get(params, path), _get(grads, path)
    s = (w * _filters(gmod["kernel"])).sum(1)
    if "bias" in mod:
      s = s + np.asarray(mod["bias"]) * np.asarray(gmod["bias"])
    return s

  return {n: np.abs(s) for n, s in _producer_scores(groups, params, one).items()}


for _name in CHANNEL_CRITERIA:
  register(_name)(functools.partial(_channel, criterion=_name))


def keep_count(n: int, ratio: float, rounding: str) -> int:
  """Channels kept out of ``n`` at prune ratio ``ratio`` (>= 1)."""
  if rounding == "keep_floor":
    keep = int(n * (1 - ratio))  # Same float expression as rethinking's code.
  elif rounding == "prune_ceil":
    keep = n - math.ceil(ratio * n)
  else:
    raise ValueError(f"rounding must be one of {list(ROUNDINGS)}, got {rounding!r}")
  return max(keep, 1)


def imp_keep_counts(
  sizes: Mapping[str, int], final: Mapping[str, int], cycle: int, cycles: int
) -> dict[str, int]:
  """Channels each group keeps after IMP cycle `cycle` of `cycles`: the same
  fraction of the remaining channels per cycle, (final/n)^(k/J) of the dense
  n, rounded, exactly `final` after the last cycle."""
  if not 1 <= cycle <= cycles:
    raise ValueError(f"cycle must be in [1, {cycles}], got {cycle}")
  if cycle == cycles:
    return dict(final)
  return {
    name: max(k, round(sizes[name] * (k / sizes[name]) ** (cycle / cycles)))
    for name, k in final.items()
  }


def top_indices(scores: np.ndarray, k: int) -> np.ndarray:
  """Sorted indices of the k highest scores; ties -> lower index kept."""
  order = np.argsort(-scores, kind="stable")
  return np.sort(order[:k])


def select_per_group(
  scores: Mapping[str, np.ndarray], ratios: Mapping[str, float], rounding: str
) -> Keep:
  """Keep the top ``keep_count`` channels of every group in ``ratios``."""
  keep, over = {}, []
  for name, ratio in ratios.items():
    if name not in scores:
      raise ValueError(f"group {name!r} is not a prunable channel group")
    if not 0.0 <= ratio < 1.0:
      raise ValueError(f"ratio of group {name!r} must be in [0, 1), got {ratio}")
    s = scores[name]
    k = keep_count(s.size, ratio, rounding)
    # Floating point can floor an exact count one lower (100 * 0.2 -> 19.99..).
    if rounding == "keep_floor" and k < max(math.floor(s.size * (1 - ratio) + 1e-9), 1):
      over.append(f"{name}: {k} of {s.size} kept at ratio {ratio}")
    keep[name] = top_indices(s, k)
  if over:
    warnings.warn(
      f"pruning.rounding={rounding!r} prunes more than pruning.ratio asks (float "
      f"rounding) in "
      f"{len(over)} group(s) ({'; '.join(over[:3])}); rounding='prune_ceil' "
      "keeps the nearest count",
      stacklevel=2,
    )
  return keep


def select_global(
  scores: Mapping[str, np.ndarray], names: Sequence[str], ratio: float
) -> Keep:
  """One threshold over all channels of ``names``: prune ``int(ratio * total)``.

  Network slimming's global BN-scale threshold; at least one channel of every
  group is kept (slimming crashes when a layer empties).
  """
  if not 0.0 <= ratio < 1.0:
    raise ValueError(f"ratio must be in [0, 1), got {ratio}")
  names = list(names)
  flat = np.concatenate([scores[n] for n in names])
  n_prune = int(flat.size * ratio)
  order = np.argsort(flat, kind="stable")  # ascending: pruned first
  pruned = np.zeros(flat.size, bool)
  pruned[order[:n_prune]] = True
  keep, start = {}, 0
  for n in names:
    size = scores[n].size
    local = ~pruned[start : start + size]
    if not local.any():  # Keep the group's best channel.
      local[np.argmax(scores[n])] = True
    keep[n] = np.nonzero(local)[0]
    start += size
  return keep


def channel_masks(
  groups: Sequence[ChannelGroup], keep: Mapping[str, np.ndarray], params: Any
) -> Any:
  """Params-shaped 0/1 masks zeroing the pruned channels of ``keep``'s groups.

  The same entries surgery removes (:func:`surgery.removal_masks`): the
  producers' filters, the norms' scale and bias, *and* the next layers' kernel
  rows reading those channels, so counting the masked model gives the small
  model's nonzero params and MACs.
  """
  return surgery.removal_masks(groups, keep, params)


def keep_from_masks(groups: Sequence[ChannelGroup], masks: Any) -> Keep:
  """Reads the kept channels back from masks made by :func:`channel_masks`."""
  masks = jax.device_get(masks)
  keep = {}
  for g in groups:
    if not g.prunable:
      continue
    alive = np.zeros(g.size, bool)
    for prod in g.producers:
      alive |= _filters(_get(masks, prod)["kernel"]).any(1)
    keep[g.name] = np.nonzero(alive)[0]
  return keep


def bn_l1_penalty(strength: float, norm_paths: Sequence[Sequence[str]]):
  """``regularizer(params) = strength * sum |gamma|`` over the given BatchNorms.

  Its subgradient ``strength * sign(gamma)`` is network slimming's sparsity
  update (added to the BN weight gradients before the optimizer step).
  """
  paths = [tuple(p) for p in norm_paths]

  def hook(params: Any) -> jax.Array:
    total = jnp.zeros((), jnp.float32)
    for p in paths:
      total = total + jnp.sum(jnp.abs(_get(params, p)["scale"]))
    return strength * total

  return hook


def all_norm_paths(
  groups: Sequence[ChannelGroup], prunable_only: bool = False
) -> list[tuple[str, ...]]:
  """Every BatchNorm named by the (prunable) groups, deduplicated, in order."""
  seen, out = set(), []
  for g in groups:
    if prunable_only and not g.prunable:
      continue
    for n in g.norms:
      if n not in seen:
        seen.add(n)
        out.append(tuple(n))
  return out
