"""Layer-wise sparsity allocation and exact-count top-k masks (unstructured).

Given scores and a target sparsity ``s`` over the prunable weights, an
allocation decides how many weights each prunable tensor keeps:

* ``global``: one threshold across all prunable tensors (Han et al.; IMP/BIMP,
  GMP in Zimmer et al.). Optional per-layer L2 normalisation of the scores
  (jaxpruner's default) is **off** by default.
* ``uniform``: every prunable tensor pruned to ``s`` (Zhu & Gupta).
* ``uniform_plus``: Gale et al., as implemented by Lee et al. (whose code
  Zimmer et al. follow): the first conv stays dense (a first dense layer,
  as in an MLP, does not), the remaining tensors are
  pruned uniformly so that the overall sparsity is ``s``, but the classifier
  keeps at least ``1 - classifier_max`` of its weights (80% cap), the excess
  going to the middle layers.
* ``erk``: Evci et al. Erdős–Rényi-Kernel densities ``eps * (sum(shape) /
  prod(shape)) ** power`` with ``eps`` solved so the total matches; tensors
  whose density would exceed 1 are made dense and ``eps`` re-solved.
* ``lamp``: global threshold over LAMP scores (:func:`scores.lamp`).
* ``pattern``: every tensor keeps the fraction ``pruning.pattern`` names for
  its layer (Liu et al. 2019's "Guided Sparsification": a pattern read from a
  pruned run, optionally averaged per stage by :func:`guided_pattern`); the
  target ``sparsity`` is then ignored. Keep count ``round(r * n)`` (half up).

Counts are exact: the number pruned is ``round(s * n)`` (half up) per tensor
(uniform), in total (global, lamp), or with largest-remainder rounding (erk,
uniform_plus), so the achieved sparsity is within one weight per tensor of the
target. Ties are broken by flat index (lower index kept first), so masks are
deterministic. Everything except ``erk`` also works with a traced sparsity
inside ``jax.jit`` (for GMP inside a compiled loop).

Each allocation is an entry of :data:`ALLOCATIONS`; :func:`register` adds one
(from a user's module too: ``pruning.allocation=NAME`` then accepts it).
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxprune import registry
from jaxprune.pruning import masks as masks_lib
from jaxprune.pruning import scores as scores_lib


@dataclasses.dataclass(frozen=True)
class Allocation:
  """A registered allocation (see :func:`register`)."""

  # (scores of the prunable tensors, sparsity, *, roles, erk_power,
  # classifier_max, normalize) -> one 0/1 keep mask per tensor.
  select: Callable[..., list[Any]]
  # (scores tree, prunable tree) -> scores tree, applied before the already
  # pruned weights of hard pruning are set to -inf (LAMP's rescoring).
  transform: Callable[[Any, Any], Any] | None = None


ALLOCATIONS: registry.Registry[Allocation] = registry.Registry("allocation")


def register(
  name: str, *, transform: Callable[[Any, Any], Any] | None = None, replace=False
) -> Callable:
  """Decorator: registers ``select(scores, sparsity, *, roles, erk_power,
  classifier_max, normalize) -> masks`` as allocation ``name``.

  ``scores`` lists the prunable tensors' scores (already pruned weights of
  hard pruning score -inf); ``roles`` their "first" / "classifier" / "hidden"
  roles. Return one bool keep mask per tensor hitting ``sparsity`` overall
  (:func:`topk_mask` keeps an exact count).
  """

  def decorator(select):
    ALLOCATIONS.add(name, Allocation(select, transform), replace=replace)
    return select

  return decorator


def _traced(x: Any) -> bool:
  return isinstance(x, jax.core.Tracer)


def round_half_up(x: Any) -> Any:
  if _traced(x) or isinstance(x, jax.Array):
    return jnp.floor(x + 0.5).astype(jnp.int32)
  return math.floor(x + 0.5)


def _ordered_bits(x: jax.Array) -> jax.Array:
  """float32 -> uint32 with the same order (-0.0 counts as 0.0)."""
  x = x.astype(jnp.float32)
  # Not x + 0.0: XLA folds that to x and keeps -0.0's sign bit.
  u = jax.lax.bitcast_convert_type(jnp.where(x == 0, 0.0, x), jnp.uint32)
  sign = jnp.uint32(0x80000000)
  return jnp.where(u & sign, ~u, u | sign)  # Negatives reversed, below positives.


def topk_mask(scores: jax.Array, k: Any) -> jax.Array:
  """Bool mask keeping the ``k`` highest scores; ties -> lower index (jit-safe;
  ``k`` a Python int or traced). NaN scores count as -inf.

  The k-th largest value is found bit by bit (32 count passes over the scores:
  the largest t with at least k scores >= t), then ties at it are kept in
  index order. The same mask as ranking by a stable argsort, without a sort:
  XLA's CPU sort of MLP-7's 153k weights takes ~0.2 s, two argsorts ~0.8 s
  per call, which made DPF's mask updates and DNW's every-step top-k the
  bulk of their step time.
  """
  # One jitted program per shape, k passed as data: called eagerly (mask
  # updates between steps) the search loop must not be rebuilt, and so
  # recompiled, on every call (tests/test_pruning_masks.py).
  return _topk_mask(scores, jnp.asarray(k, jnp.int32))


@jax.jit
def _topk_mask(scores: jax.Array, k: jax.Array) -> jax.Array:
  flat = scores.reshape(-1)
  bits = _ordered_bits(jnp.where(jnp.isnan(flat), -jnp.inf, flat))

  def refine(i, t):
    candidate = t | (jnp.uint32(1) << (31 - i).astype(jnp.uint32))
    return jnp.where(jnp.sum(bits >= candidate) >= k, candidate, t)

  kth = jax.lax.fori_loop(0, 32, refine, jnp.uint32(0))
  above, tied = bits > kth, bits == kth
  room = k - jnp.sum(above)  # Ties kept, lowest index first.
  keep = above | (tied & (jnp.cumsum(tied) <= room))
  return keep.reshape(scores.shape)


def _largest_remainder(
  target: Sequence[float], total: int, caps: Sequence[int]
) -> list[int]:
  """Integers near ``target`` (each in [0, cap]) summing to ``total``."""
  base = [min(cap, max(0, math.floor(t))) for t, cap in zip(target, caps)]
  rest = total - sum(base)
  order = sorted(
    range(len(target)), key=lambda i: (-(target[i] - math.floor(target[i])), i)
  )
  step = 1 if rest > 0 else -1
  while rest != 0:
    moved = False
    for i in order if step > 0 else order[::-1]:
      if rest == 0:
        break
      if 0 <= base[i] + step <= caps[i]:
        base[i] += step
        rest -= step
        moved = True
    if not moved:
      raise ValueError("cannot distribute the kept weights within the layer sizes")
  return base


def erk_keep_counts(
  shapes: Sequence[tuple[int, ...]], sparsity: float, power: float = 1.0
) -> list[int]:
  """Kept weights per tensor under ERK (host only; dense layers redistributed)."""
  sizes = [int(np.prod(s)) for s in shapes]
  raw = [(sum(s) / np.prod(s)) ** power for s in shapes]
  keep_total = sum(sizes) - round_half_up(sparsity * sum(sizes))
  dense = [False] * len(shapes)
  while True:
    budget = keep_total - sum(n for n, d in zip(sizes, dense) if d)
    denom = sum(r * n for r, n, d in zip(raw, sizes, dense) if not d)
    eps = budget / denom if denom > 0 else 0.0
    over = [i for i in range(len(shapes)) if not dense[i] and eps * raw[i] > 1.0]
    if not over:
      break
    dense[max(over, key=lambda i: raw[i])] = True
  target = [n if d else eps * r * n for r, n, d in zip(raw, sizes, dense)]
  return _largest_remainder(target, keep_total, sizes)


def uniform_plus_keep_counts(
  sizes: Sequence[int], roles: Sequence[str], sparsity: Any, classifier_max: float = 0.8
) -> list[Any]:
  """Kept weights per tensor under UNIFORM+ (works with a traced sparsity)."""
  xp = jnp if _traced(sparsity) else np
  n_total = sum(sizes)
  to_prune = round_half_up(sparsity * n_total)
  first = [r == "first" for r in roles]
  cls = [r == "classifier" for r in roles]
  n_rest = sum(n for n, f in zip(sizes, first) if not f)
  n_mid = sum(n for n, f, c in zip(sizes, first, cls) if not f and not c)
  n_cls = sum(n for n, c in zip(sizes, cls) if c)
  frac = to_prune / max(n_rest, 1)
  cls_prune_cap = math.floor(classifier_max * n_cls + 0.5)
  capped = frac * n_cls > cls_prune_cap
  cls_prune = xp.where(capped, cls_prune_cap, frac * n_cls)
  mid_frac = xp.where(capped, (to_prune - cls_prune) / max(n_mid, 1), frac)
  if not _traced(sparsity) and (mid_frac > 1.0 + 1e-12):
    raise ValueError(
      f"sparsity {sparsity} is unreachable with allocation='uniform_plus' "
      "(first layer dense, classifier at most "
      f"{classifier_max:.0%} pruned)"
    )
  out = []
  for n, f, c in zip(sizes, first, cls):
    if f:
      out.append(n)
    elif c:
      out.append(n - round_half_up(xp.minimum(cls_prune / max(n_cls, 1), 1.0) * n))
    else:
      out.append(n - round_half_up(xp.minimum(mid_frac, 1.0) * n))
  return out


def check_sparsity(sparsity: Any, field: str = "sparsity") -> None:
  if _traced(sparsity):
    return
  if not 0.0 <= float(sparsity) <= 1.0:
    raise ValueError(f"{field} must be in [0, 1], got {sparsity!r}")


def unstructured_masks(
  scores: Any,
  prunable: Any,
  sparsity: Any,
  allocation: str = "global",
  *,
  current: Any = None,
  roles: Any = None,
  erk_power: float = 1.0,
  classifier_max: float = 0.8,
  normalize: bool = False,
  pattern: Any = None,
) -> Any:
  """Float 0/1 masks (dtype of ``scores``' leaves) hitting ``sparsity`` exactly.

  Args:
    scores: score tree (higher = keep).
    prunable: tree of bools (:func:`masks.prunable_tree`).
    sparsity: target fraction of zeros over all prunable weights.
    allocation: one of :data:`ALLOCATIONS`.
    current: existing masks for *hard* pruning: weights pruned there score
      -inf (pruned first) and stay pruned. None = from scratch (soft pruning).
    roles: tree of "first" / "classifier" / "hidden" strings (uniform_plus).
    erk_power: ERK power scale (1 = Evci et al.).
    classifier_max: largest classifier sparsity under uniform_plus.
    normalize: divide each tensor's scores by their L2 norm (global only).
    pattern: allocation 'pattern': ``{layer: keep ratio}`` (layer = the
      kernel's path without ``kernel``, e.g. ``stage0/block1/conv1``), an
      inline JSON object or a JSON file path (:func:`load_pattern`).
  """
  entry = ALLOCATIONS.get(allocation)
  check_sparsity(sparsity)
  if entry.transform is not None:
    scores = entry.transform(scores, prunable)
  if current is not None:
    scores = jax.tree_util.tree_map(
      lambda s, m: jnp.where(m > 0, s, -jnp.inf), scores, current
    )
  s_leaves, treedef = jax.tree_util.tree_flatten(scores)
  p_leaves = treedef.flatten_up_to(prunable)
  idx = [i for i, p in enumerate(p_leaves) if p]
  out = [jnp.ones(jnp.shape(s), jnp.float32) for s in s_leaves]
  if not idx:
    return jax.tree_util.tree_unflatten(treedef, out)
  role_leaves = (
    treedef.flatten_up_to(roles) if roles is not None else ["hidden"] * len(p_leaves)
  )
  names = [layer_name(n) for n, _ in masks_lib.leaves_with_names(scores)]
  new = entry.select(
    [s_leaves[i] for i in idx],
    sparsity,
    roles=[role_leaves[i] for i in idx],
    erk_power=erk_power,
    classifier_max=classifier_max,
    normalize=normalize,
    names=[names[i] for i in idx],
    pattern=pattern,
  )
  for i, m in zip(idx, new):
    out[i] = m.astype(jnp.float32)
  result = jax.tree_util.tree_unflatten(treedef, out)
  if current is not None:
    result = masks_lib.combine(result, current)
  return result


def roles_tree(params: Any, predicate: masks_lib.Prunable) -> Any:
  """Tree of role strings ("first", "classifier", "hidden") for uniform_plus.

  "first" only for a convolution kernel (ndim 4): Lee et al. keep the first
  *conv* dense, so an MLP's first dense layer is pruned like a hidden one.
  """
  leaves = masks_lib.leaves_with_names(params)
  treedef = jax.tree_util.tree_structure(params)
  roles = [predicate.role(n) for n, _ in leaves]
  roles = [
    "hidden" if r == "first" and np.ndim(x) != 4 else r
    for r, (_, x) in zip(roles, leaves)
  ]
  return treedef.unflatten(roles)


def _sizes(sel: Sequence[Any]) -> list[int]:
  return [int(np.size(x)) for x in sel]


def _global_top(sel: Sequence[Any], sparsity: Any) -> list[Any]:
  """One exact-count threshold over all tensors' scores."""
  sizes = _sizes(sel)
  n_total = sum(sizes)
  kept = topk_mask(
    jnp.concatenate([x.reshape(-1) for x in sel]),
    n_total - round_half_up(sparsity * n_total),
  )
  parts = jnp.split(kept, np.cumsum(sizes)[:-1])
  return [part.reshape(jnp.shape(x)) for part, x in zip(parts, sel)]


@register("global")
def _global(sel, sparsity, *, normalize=False, **_):
  if normalize:
    sel = [x / (jnp.linalg.norm(jnp.where(jnp.isfinite(x), x, 0)) + 1e-8) for x in sel]
  return _global_top(sel, sparsity)


@register("uniform")
def _uniform(sel, sparsity, **_):
  return [
    topk_mask(x, n - round_half_up(sparsity * n)) for x, n in zip(sel, _sizes(sel))
  ]


@register("uniform_plus")
def _uniform_plus(sel, sparsity, *, roles, classifier_max=0.8, **_):
  keeps = uniform_plus_keep_counts(_sizes(sel), roles, sparsity, classifier_max)
  return [topk_mask(x, k) for x, k in zip(sel, keeps)]


@register("erk")
def _erk(sel, sparsity, *, erk_power=1.0, **_):
  if _traced(sparsity):
    raise ValueError("allocation='erk' needs a concrete (host) sparsity")
  keeps = erk_keep_counts(
    [tuple(jnp.shape(x)) for x in sel], float(sparsity), erk_power
  )
  return [topk_mask(x, k) for x, k in zip(sel, keeps)]


@register("lamp", transform=scores_lib.lamp)
def _lamp(sel, sparsity, **_):
  return _global_top(sel, sparsity)


def layer_name(path: Sequence[str]) -> str:
  """``analysis.weights.kernels``' layer name of a params path (``kernel`` dropped)."""
  parts = list(path)
  if parts and parts[-1] == "kernel":
    parts = parts[:-1]
  return "/".join(parts)


def load_pattern(pattern: Any, field: str = "pruning.pattern") -> dict[str, float]:
  """``{layer: keep ratio}`` from a mapping, an inline JSON object or a JSON file.

  Every ratio must lie in (0, 1] (a sparsity in [0, 1)).
  """
  if isinstance(pattern, str):
    text = pattern.strip()
    if not text:
      raise ValueError(
        f"{field} must name per-layer keep ratios (a JSON object or file) "
        "for allocation='pattern', got ''"
      )
    source = "inline JSON"
    if not text.startswith("{"):
      source = text
      try:
        with open(text) as f:
          text = f.read()
      except OSError as e:
        raise ValueError(f"{field}: cannot read pattern file {source!r} ({e})") from e
    try:
      pattern = json.loads(text)
    except json.JSONDecodeError as e:
      raise ValueError(f"{field}: {source} is not JSON ({e})") from e
  if not isinstance(pattern, Mapping):
    raise ValueError(f"{field} must map layer names to keep ratios, got {pattern!r}")
  out = {}
  for layer, r in pattern.items():
    if isinstance(r, bool) or not isinstance(r, (int, float)) or not 0.0 < r <= 1.0:
      raise ValueError(
        f"{field}[{layer!r}] must be a keep ratio in (0, 1] (sparsity in [0, 1)), "
        f"got {r!r}"
      )
    out[str(layer)] = float(r)
  return out


def pattern_keep_counts(
  names: Sequence[str], sizes: Sequence[int], pattern: Any
) -> list[int]:
  """Weights each named tensor keeps under ``pattern``: ``round(r * n)`` (half up)."""
  ratios = load_pattern(pattern)
  unknown = sorted(set(ratios) - set(names))
  if unknown:
    raise ValueError(
      f"pruning.pattern names unknown layers {unknown}; allowed: {list(names)}"
    )
  missing = [n for n in names if n not in ratios]
  if missing:
    raise ValueError(
      f"pruning.pattern lacks the prunable layers {missing}; allowed: {list(names)}"
    )
  return [min(n, math.floor(ratios[name] * n + 0.5)) for name, n in zip(names, sizes)]


def guided_pattern(
  pattern: Mapping[str, float],
  sizes: Mapping[str, int],
  stage_of: Callable[[str], str],
) -> dict[str, float]:
  """Liu et al.'s guided form: every layer gets its stage's keep ratio.

  A stage's ratio is its kept weights over its weights (``sum r_l n_l /
  sum n_l`` over its layers, as ``analysis.architecture.stage_weight_ratios``
  reads a pruned run), so the guided pattern keeps as many weights per stage
  as the pattern it averages (up to rounding).
  """
  kept: dict[str, list[float]] = {}
  for layer, r in load_pattern(dict(pattern)).items():
    if layer not in sizes:
      raise ValueError(
        f"pruning.pattern names unknown layer {layer!r}; allowed: {list(sizes)}"
      )
    k = kept.setdefault(stage_of(layer), [0.0, 0])
    k[0] += r * sizes[layer]
    k[1] += sizes[layer]
  return {
    layer: kept[stage_of(layer)][0] / kept[stage_of(layer)][1] for layer in pattern
  }


@register("pattern")
def _pattern(sel, sparsity, *, names, pattern=None, **_):
  keeps = pattern_keep_counts(names, _sizes(sel), pattern)
  return [topk_mask(x, k) for x, k in zip(sel, keeps)]
