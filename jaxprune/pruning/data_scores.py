"""Data-dependent pruning scores: one jitted pass per batch, summed over N batches.

The magnitude criteria of :mod:`scores` and :mod:`structured` read the weights
only; the criteria here need forward (and backward) passes over training
batches. :func:`batch_statistics` computes one batch's contribution, jitted
once per model; the caller (``jaxprune.protocols.scoring``) sums them over N
batches and passes the result to ``pruning.prune`` (``grads=`` for the
gradient criteria of the weight-only modules, ``channel_scores=`` for the
channel criteria below).

Channel *points*: the modules whose outputs carry a group's channels, read
without editing the model through ``flax.linen.intercept_methods``: the
group's BatchNorms (at their channel offset; a DenseNet channel appears in
several), or its producers when it has none (MLPs). Every point's output is
multiplied by a per-example, per-channel gate ``m`` (all ones, so the forward
pass is unchanged); ``dL/dm[n, c] = sum over positions of activation *
gradient``. Scaling a BN's output by ``m`` scales both gamma and beta, so the
batch sum of that gradient is ``gamma * dL/dgamma + beta * dL/dbeta``; when a
ReLU follows, ``relu(m y) = m relu(y)`` makes it the same quantity on the
post-ReLU activation.

* ``taylor_fo_bn`` (Molchanov et al. 2019, FO on the BN gates): per batch,
  ``(sum_n dL/dm[n, c])^2`` with L the batch-mean loss, summed over batches;
  the gates of a channel's points are summed before squaring (removing the
  channel removes it everywhere). Groups without BN use their producers'
  outputs (the same first-order gate on the layer output).
* ``fisher`` (Theis et al. 2018): ``1/2 sum over examples of (dl_n/dm[n, c])^2``
  with l_n the example's own loss; an optional FLOPs-aware penalty is applied
  by ``pruning.prune`` (``flops_weight``).
* ``hrank`` (Lin et al. 2020): the rank of every channel's H x W map (after
  ReLU, as HRank reads the ReLU outputs), averaged over the examples and the
  channel's points.
* ``saliency`` / ``taylor``: the batch-mean loss gradient of every parameter,
  averaged over the N batches (SNIP's |w * g| and the weight-Taylor filter
  score then use it).

BatchNorm runs in inference mode (running statistics) and dropout is off, so
every example's statistic is its own (the authors compute theirs during
training with batch statistics; see docs/provenance.md).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxprune import blocking_kernels, checks
from jaxprune.models.graph import ChannelGroup

CHANNEL_CRITERIA = ("taylor_fo_bn", "fisher", "hrank")
GRAD_CRITERIA = ("saliency", "taylor")
DATA_CRITERIA = (*GRAD_CRITERIA, *CHANNEL_CRITERIA)
# Batches per score when `pruning.score_batches` is 0 (see docs/provenance.md).
DEFAULT_BATCHES = {
  "saliency": 1,  # SNIP: one mini-batch.
  "taylor": 1,
  "taylor_fo_bn": 10,
  "fisher": 100,
  "hrank": 5,
}

Path = tuple[str, ...]
# group name -> ((module path, channel offset), ...)
Points = dict[str, tuple[tuple[Path, int], ...]]


def num_batches(criterion: str, score_batches: int) -> int:
  """N for `criterion`: `score_batches`, or the paper default when it is 0."""
  checks.choice(criterion, "criterion", DATA_CRITERIA)
  if score_batches < 0:
    raise ValueError(f"pruning.score_batches must be >= 0, got {score_batches}")
  return score_batches or DEFAULT_BATCHES[criterion]


def channel_points(groups: Sequence[ChannelGroup]) -> Points:
  """The points of every prunable group (norms, else producers)."""
  out = {}
  for g in groups:
    if not g.prunable:
      continue
    if g.norms:
      out[g.name] = tuple((tuple(n), g.norm_offset(j)) for j, n in enumerate(g.norms))
    else:
      out[g.name] = tuple((tuple(p), 0) for p in g.producers)
  return out


def _get(tree: Any, path: Sequence[str]) -> Any:
  for key in path:
    tree = tree[key]
  return tree


def point_widths(points: Points, params: Any) -> dict[Path, int]:
  """Output channels of every point module (its scale or kernel's last axis)."""
  widths = {}
  for pts in points.values():
    for path, _ in pts:
      mod = _get(params, path)
      leaf = mod["scale"] if "scale" in mod else mod["kernel"]
      widths[path] = int(np.shape(leaf)[-1])
  return widths


def gated_apply(
  model: nn.Module,
  variables: Any,
  x: jax.Array,
  gates: dict[Path, jax.Array],
) -> tuple[jax.Array, dict[Path, jax.Array]]:
  """Inference-mode logits with every point's output times its [B, C] gate,
  and the points' ungated outputs."""
  captured = {}

  def interceptor(next_fun, args, kwargs, context):
    out = next_fun(*args, **kwargs)
    path = tuple(context.module.path)
    if context.method_name != "__call__" or path not in gates:
      return out
    captured[path] = out
    gate = gates[path]
    return out * gate.reshape(gate.shape[:1] + (1,) * (out.ndim - 2) + gate.shape[1:])

  with nn.intercept_methods(interceptor):
    logits = model.apply(variables, x, train=False)
  return logits, captured


def _per_group(points: Points, sizes: dict[str, int], per_point: dict[Path, Any]):
  """Sums each group's slices of per-point [..., C_point] arrays."""
  out = {}
  for name, pts in points.items():
    size = sizes[name]
    out[name] = sum(per_point[p][..., off : off + size] for p, off in pts)
  return out


def map_ranks(maps: jax.Array) -> jax.Array:
  """[B, ..., C] activations -> [B, C] rank of each channel's map (2-D: 1x1)."""
  if maps.ndim == 2:
    maps = maps[:, None, None, :]
  chw = jnp.moveaxis(maps, -1, 1)  # [B, C, H, W]
  return jnp.linalg.matrix_rank(chw).astype(jnp.float32)


@functools.partial(jax.jit, static_argnames=("model", "criterion", "points", "sizes"))
def _batch(model, variables, x, labels, *, criterion, points, sizes):
  points, sizes = dict(points), dict(sizes)
  params = variables["params"]
  widths = point_widths(points, params)
  batch = x.shape[0]
  gates = {p: jnp.ones((batch, w), x.dtype) for p, w in widths.items()}

  def losses(params, gates):
    logits, captured = gated_apply(model, {**variables, "params": params}, x, gates)
    per_example = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    return per_example.mean(), captured

  if criterion in GRAD_CRITERIA:
    grads, _ = jax.grad(losses, has_aux=True)(params, {})
    return grads
  if criterion == "hrank":
    _, captured = losses(params, gates)
    ranks = {p: map_ranks(jax.nn.relu(a)) for p, a in captured.items()}
    summed = _per_group(points, sizes, ranks)
    return {n: s.sum(0) / len(points[n]) for n, s in summed.items()}
  gate_grads, _ = jax.grad(losses, argnums=1, has_aux=True)(params, gates)
  per_example = _per_group(points, sizes, gate_grads)  # d(mean loss)/dm: [B, C]
  if criterion == "taylor_fo_bn":
    return {n: jnp.square(g.sum(0)) for n, g in per_example.items()}
  # fisher: the example's own loss is batch * the mean's share.
  return {n: 0.5 * jnp.square(batch * g).sum(0) for n, g in per_example.items()}


def batch_statistics(
  criterion: str,
  model: nn.Module,
  variables: Any,
  x: jax.Array,
  labels: jax.Array,
  groups: Sequence[ChannelGroup],
) -> Any:
  """One batch's contribution to `criterion` (sum these over the N batches).

  Gradient criteria: the params-shaped batch-mean gradient (average the sum).
  Channel criteria: {group name: [size] float32} (HRank: ranks summed over the
  batch's examples; divide the sum by the number of examples).
  """
  checks.choice(criterion, "criterion", DATA_CRITERIA)
  points = channel_points(groups)
  sizes = {g.name: g.size for g in groups if g.name in points}
  call = functools.partial(
    _batch,
    model,
    variables,
    x,
    labels,
    criterion=criterion,
    points=tuple(sorted(points.items())),
    sizes=tuple(sorted(sizes.items())),
  )
  # HRank's ranks are batched SVDs: see `blocking_kernels` (grouped runs score
  # in threads).
  return blocking_kernels.run_alone(call) if criterion == "hrank" else call()


def flops_per_channel(groups: Sequence[ChannelGroup], layers: Sequence[Any]) -> dict:
  """FLOPs (2 x MACs per example) one channel of each prunable group costs:
  its share of every producer's output and of every consumer's input.

  `layers`: `jaxprune.pruning.counting.count(...).layers` of the same model.
  """
  by_path = {tuple(layer.path): layer for layer in layers}
  out = {}
  for g in groups:
    if not g.prunable:
      continue
    cost = 0.0
    for p in g.producers:
      layer = by_path[tuple(p)]
      cost += 2.0 * layer.macs / layer.kernel_shape[-1]
    for c in g.consumers:
      layer = by_path[tuple(c.path)]
      cost += 2.0 * layer.macs * c.spatial / layer.kernel_shape[-2]
    out[g.name] = cost
  return out
