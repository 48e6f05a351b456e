"""Weight distributions and sparsity patterns of pruned networks (as data).

Rethinking the Value of Network Pruning (Liu et al. 2019) looks at pruned
models as architectures:

* Fig. 8 (App. F): histograms of the conv weights of the unpruned, fine-tuned
  and scratch-trained pruned models; fine-tuned and scratch models have far
  fewer near-zero weights. :func:`weight_histograms` bins several params trees
  on shared edges (pruned, exactly-zero weights of masked models excluded).
* Table 7: per-layer widths of the original and pruned networks (mean +- std
  over runs). :func:`layer_widths` turns ``models.read_widths`` output into
  ``{layer: width}``; :func:`width_table` builds the rows.
* Tables 18 and 21: per-stage fraction of channels kept, one column per
  pruning ratio; :func:`stage_keep_table`.
* Tables 19-20 and Fig. 4: for unstructured masks, the kept fraction of every
  layer (:func:`kept_fractions`) and the average keep probability of each 3x3
  kernel position per stage (:func:`kernel_position_keep`).

Everything here returns numpy arrays, dicts or markdown strings; figures are in
``jaxprune.analysis.plots``. Layer names are the params paths joined by "/"
without the trailing ``kernel`` (e.g. ``fc0``, ``stage1_block0/conv1``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np

from jaxprune import models

_STAGE_RE = re.compile(r"^stage(\d+)")


def _key_name(key: Any) -> str:
  return str(getattr(key, "key", getattr(key, "name", key)))


def kernels(params: Any, *, kind: str = "all") -> dict[str, np.ndarray]:
  """``{layer: kernel}`` of every Dense/Conv kernel, in params order.

  Args:
    params: a params collection (or a masks tree of the same structure).
    kind: ``"conv"`` (rank-4 kernels), ``"dense"`` (rank 2) or ``"all"``.
  """
  ranks = {"conv": (4,), "dense": (2,), "all": (2, 4)}
  if kind not in ranks:
    raise ValueError(f"kind must be one of {list(ranks)}, got {kind!r}")
  out = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
    if path and _key_name(path[-1]) == "kernel" and np.ndim(leaf) in ranks[kind]:
      out["/".join(_key_name(k) for k in path[:-1])] = np.asarray(leaf)
  return out


def weight_values(
  params: Any, *, kind: str = "conv", exclude_zeros: bool = True
) -> np.ndarray:
  """All kernel weights of ``kind`` as one float64 vector.

  ``exclude_zeros`` drops exact zeros, i.e. weights removed by a mask (trained
  weights are never exactly 0 otherwise), as Rethinking Fig. 8 shows only the
  surviving weights.
  """
  parts = [w.ravel() for w in kernels(params, kind=kind).values()]
  if not parts:
    raise ValueError(f"params have no {kind} kernels")
  values = np.concatenate(parts).astype(np.float64)
  return values[values != 0] if exclude_zeros else values


def weight_histograms(
  trees: Mapping[str, Any],
  *,
  kind: str = "conv",
  bins: int = 100,
  value_range: tuple[float, float] | None = None,
  exclude_zeros: bool = True,
) -> dict[str, Any]:
  """Histograms of several models' weights on shared bin edges (Fig. 8).

  Args:
    trees: ``{label: params}``, e.g. ``{"unpruned": p0, "fine-tuned": p1,
      "scratch": p2}``.
    kind: which kernels (``"conv"``, ``"dense"``, ``"all"``).
    bins: number of bins.
    value_range: ``(lo, hi)``; default symmetric, +- the largest magnitude.
    exclude_zeros: drop masked (exactly zero) weights.

  Returns:
    ``{"edges": [bins + 1], "counts": {label: [bins] int}, "density": {label:
    [bins] float, integrating to 1}, "num_weights": {label: int}}``.
  """
  values = {
    label: weight_values(p, kind=kind, exclude_zeros=exclude_zeros)
    for label, p in trees.items()
  }
  if value_range is None:
    top = max((float(np.abs(v).max()) for v in values.values() if v.size), default=1.0)
    value_range = (-top, top)
  edges = np.linspace(value_range[0], value_range[1], bins + 1)
  counts, density = {}, {}
  for label, v in values.items():
    counts[label] = np.histogram(v, edges)[0]
    total = counts[label].sum()
    density[label] = (
      counts[label] / (total * np.diff(edges)) if total else counts[label] * 0.0
    )
  return {
    "edges": edges,
    "counts": counts,
    "density": density,
    "num_weights": {label: int(v.size) for label, v in values.items()},
  }


def near_zero_fraction(params: Any, threshold: float, *, kind: str = "conv") -> float:
  """Fraction of (unmasked) weights with ``|w| < threshold``: Fig. 8's contrast."""
  values = weight_values(params, kind=kind)
  return float(np.mean(np.abs(values) < threshold)) if values.size else 0.0


def layer_widths(model_name: str, widths_or_params: Any) -> dict[str, int]:
  """``{layer: width}`` of the prunable layers of a registered model.

  Args:
    model_name: e.g. ``"mlp7_linear"``, ``"lenet5_relu"``, ``"resnet56"``.
    widths_or_params: ``models.read_widths`` output (widths override form) or a
      params tree to read them from.

  Returns:
    MLP-7: ``fc0``..``fc5``; LeNet-5: ``conv0``, ``conv1``, ``conv2``, ``fc0``;
    ResNets: ``stage{s}/residual`` (the stage width shared by the stem, the
    second convs and the shortcuts) and ``stage{s}_block{b}/conv1`` (inner
    widths, what L1 filter pruning prunes), grouped by stage.
  """
  widths = widths_or_params
  if isinstance(widths, Mapping):
    widths = models.read_widths(model_name, widths)
  if model_name.startswith("mlp7"):
    return {f"fc{i}": int(w) for i, w in enumerate(widths)}
  if model_name.startswith("lenet5"):
    names = ("conv0", "conv1", "conv2", "fc0")
    return {n: int(w) for n, w in zip(names, widths, strict=True)}
  if model_name.startswith("resnet"):
    stages, blocks = widths
    out = {}
    for s, (stage, inner) in enumerate(zip(stages, blocks, strict=True)):
      out[f"stage{s}/residual"] = int(stage)
      for b, w in enumerate(inner):
        out[f"stage{s}_block{b}/conv1"] = int(w)
    return out
  raise ValueError(f"no layer layout known for model {model_name!r}")


def width_table(
  original: Mapping[str, int],
  pruned: Mapping[str, float] | Sequence[Mapping[str, float]],
) -> list[dict[str, Any]]:
  """Per-layer widths before/after pruning (Rethinking Table 7).

  Args:
    original: ``{layer: width}`` of the unpruned model.
    pruned: ``{layer: width}`` of one pruned model, or a list of them (runs);
      layers missing from a pruned model are taken as unpruned.

  Returns:
    Rows ``{"layer", "width", "kept", "kept_std", "fraction"}`` (kept = mean
    over runs, std with ddof=0), then a ``"Total"`` row summing the widths.
  """
  runs = [pruned] if isinstance(pruned, Mapping) else list(pruned)
  if not runs:
    raise ValueError("width_table needs at least one pruned model")
  rows = []
  kept_totals = np.zeros(len(runs))
  for layer, width in original.items():
    kept = np.array([float(r.get(layer, width)) for r in runs])
    kept_totals += kept
    rows.append(
      {
        "layer": layer,
        "width": int(width),
        "kept": float(kept.mean()),
        "kept_std": float(kept.std()),
        "fraction": float(kept.mean() / width),
      }
    )
  total = sum(int(w) for w in original.values())
  rows.append(
    {
      "layer": "Total",
      "width": total,
      "kept": float(kept_totals.mean()),
      "kept_std": float(kept_totals.std()),
      "fraction": float(kept_totals.mean() / total),
    }
  )
  return rows


def default_stage(layer: str) -> str:
  """Stage of a layer: ``stage{s}...`` -> ``"Stage {s+1}"``; else the layer itself."""
  match = _STAGE_RE.match(layer)
  return f"Stage {int(match.group(1)) + 1}" if match else layer


def stage_keep_table(
  original: Mapping[str, int],
  pruned_by_column: Mapping[str, Mapping[str, float]],
  stage_of: Callable[[str], str] = default_stage,
) -> dict[str, dict[str, float]]:
  """Per-stage fraction of channels kept (Rethinking Tables 18, 21).

  Returns ``{stage: {column: kept / original}}`` where a column is e.g. a
  pruning ratio and kept/original sum the widths of the stage's layers.
  """
  stages: dict[str, list[str]] = {}
  for layer in original:
    stages.setdefault(stage_of(layer), []).append(layer)
  table: dict[str, dict[str, float]] = {}
  for stage, layers in stages.items():
    denom = sum(original[layer] for layer in layers)
    table[stage] = {
      column: sum(float(pruned.get(layer, original[layer])) for layer in layers) / denom
      for column, pruned in pruned_by_column.items()
    }
  return table


def kept_fractions(masks: Any, *, kind: str = "all") -> dict[str, float]:
  """Fraction of kernel entries kept (mask != 0) per layer (unstructured masks)."""
  return {
    layer: float(np.mean(m != 0)) for layer, m in kernels(masks, kind=kind).items()
  }


def kernel_position_keep(
  masks: Any,
  *,
  kernel_size: tuple[int, int] = (3, 3),
  stage_of: Callable[[str], str] = default_stage,
) -> dict[str, np.ndarray]:
  """Average keep probability of each kernel position, per stage (Tables 19-20).

  Averages the masks of all conv kernels of shape ``kernel_size`` in a stage
  over their input and output channels: ``{stage: [kh, kw] in [0, 1]}``.
  """
  sums: dict[str, np.ndarray] = {}
  counts: dict[str, int] = {}
  for layer, m in kernels(masks, kind="conv").items():
    if tuple(m.shape[:2]) != tuple(kernel_size):
      continue
    stage = stage_of(layer)
    kept = (m != 0).reshape(*m.shape[:2], -1)
    sums[stage] = sums.get(stage, 0) + kept.sum(axis=-1)
    counts[stage] = counts.get(stage, 0) + kept.shape[-1]
  return {stage: sums[stage] / counts[stage] for stage in sums}


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
  """A GitHub markdown table; floats printed with 3 decimals."""

  def fmt(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, float) else str(v)

  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
  return "\n".join(lines)


def width_table_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
  """:func:`width_table` rows as markdown (Width, Width* +- std, kept fraction)."""
  body = [
    (
      r["layer"],
      r["width"],
      f"{r['kept']:.1f} ± {r['kept_std']:.1f}" if r["kept_std"] else f"{r['kept']:.1f}",
      r["fraction"],
    )
    for r in rows
  ]
  return markdown_table(("Layer", "Width", "Width*", "Kept"), body)


def stage_table_markdown(table: Mapping[str, Mapping[str, float]]) -> str:
  """:func:`stage_keep_table` output as markdown, one column per pruning ratio."""
  columns = list(next(iter(table.values()))) if table else []
  rows = [(stage, *(values[c] for c in columns)) for stage, values in table.items()]
  return markdown_table(("Stage", *columns), rows)
