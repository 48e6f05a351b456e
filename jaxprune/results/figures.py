"""Paper-style figures of aggregated sweep results (`jaxprune.results.report`).

`figure` plots a metric's mean ± std over seeds against one setting key, one
line per value of another: sized for one column of a two-column paper, axis
and legend names from `LABELS` (`CLR`, `Sparsity (%)`; a caller's `labels` add
to them), accuracies and sparsities in percent, the dense baseline
(`dense/<metric>`, recorded by the pruning protocols) as a dashed line, what the
error bars are in the subtitle, and PNG / PDF / SVG output.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxprune import checks, io_utils


def _is_number(value: Any) -> bool:
  return isinstance(value, int | float) and not isinstance(value, bool)


# Axis and legend names of figures (`labels` adds to / overrides them).
LABELS = {
  "test/accuracy": "Test accuracy (%)",
  "val/accuracy": "Validation accuracy (%)",
  "best_val_accuracy": "Best validation accuracy (%)",
  "accuracy_before": "Accuracy before retraining (%)",
  "pruning.sparsity": "Sparsity (%)",
  "sparsity": "Sparsity (%)",
  "pruning.ratio": "Pruning ratio (%)",
  "retrain.num_epochs": "Retraining epochs",
  "retrain.schedule": "Retraining schedule",
  "schedule.name": "Schedule",
  "pruning.criterion": "Criterion",
  "pruning.allocation": "Allocation",
  "model.name": "Model",
  "jsv/mean": "Mean JSV",
  "speedup": "Speedup (x)",
  "summary:params": "Parameters",
  "summary:nonzero_params": "Remaining parameters",
  "summary:nonzero_flops": "Remaining FLOPs",
  **{name: name.upper() for name in ("ft", "lrw", "slr", "clr", "llr", "allr")},
  "acc_allr": "AccALLR",
}
PERCENT_KEYS = ("pruning.sparsity", "sparsity", "pruning.ratio")
FORMATS = ("png", "pdf", "svg")


def _percent(key: str) -> bool:
  return key in PERCENT_KEYS or key.endswith("accuracy")


def _name(value: Any, labels: dict[str, str]) -> str:
  return labels.get(value, str(value)) if isinstance(value, str) else str(value)


def _is_numeric_axis(values: Sequence[Any]) -> bool:
  return all(_is_number(v) for v in values)


def _short(key: str, names: dict[str, str]) -> str:
  return names.get(key, key.split(".")[-1])


def other_keys(
  usable: Sequence[dict[str, Any]], shown: Sequence[str | None]
) -> list[str]:
  """The setting keys besides `shown` (the x axis and the hue) that tell the
  settings apart: each combination of their values gets its own panel, so two
  settings at one x (say L1 and magnitude pruning) are never joined into one
  line that zigzags between them. Keys that only follow others (a pruning
  method's own sparsity, CLR's cyclic momentum) are left out of the names."""

  def combinations(keys: Sequence[str]) -> int:
    """Distinct settings told apart by the shown keys and `keys`."""
    return len(
      {
        json.dumps(
          [a["setting"].get(k) for k in (*shown, *keys)], sort_keys=True, default=str
        )
        for a in usable
      }
    )

  keys = sorted({k for a in usable for k in a["setting"]} - set(shown))
  chosen: list[str] = []
  for key in keys:
    if combinations(chosen) == combinations(keys):
      break
    if combinations([*chosen, key]) > combinations(chosen):
      chosen.append(key)
  return chosen


def figure(
  aggregated: Sequence[dict[str, Any]],
  metric: str,
  x: str,
  hue: str | None,
  out: str,
  *,
  formats: Sequence[str] = ("png",),
  labels: dict[str, str] | None = None,
) -> list[str]:
  """`metric` (mean ± std over seeds) vs setting key `x`, one line per `hue`
  (one colour per value throughout), one panel per combination of the other
  keys that tell settings apart (`other_keys`).

  Sized for one paper column; names from `LABELS` (+ `labels`); accuracies
  and sparsities in %; the dense model's `dense/<metric>` as a dashed line;
  a numeric `x` gives lines, a categorical one points at its categories. Writes
  `out` (its extension replaced by each of `formats`) atomically; returns the
  paths. Settings without the metric are left out with a warning on stderr.
  """
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  names = {**LABELS, **(labels or {})}
  for fmt in formats:
    checks.choice(fmt, "figure format", FORMATS)
  usable = [a for a in aggregated if x in a["setting"] and metric in a["mean"]]
  if not usable:
    raise ValueError(f"no setting has both {x!r} and metric {metric!r}")
  if len(usable) < len(aggregated):
    print(
      f"[report] warning: {len(aggregated) - len(usable)} of {len(aggregated)} "
      f"settings lack {metric!r} or {x!r}; left out of the figure",
      file=sys.stderr,
    )
  scale_y = 100.0 if _percent(metric) else 1.0
  xs_all = [a["setting"][x] for a in usable]
  numeric = _is_numeric_axis(xs_all)
  categories = sorted({json.dumps(v, sort_keys=True) for v in xs_all})
  rest = other_keys(usable, (x, hue))
  # One panel per combination of the other varying keys, one line (colour) per
  # hue value in it; a hue value has the same colour in every panel.
  panels: dict[str, dict[str, list[tuple[Any, float, float]]]] = {}
  dense_of: dict[str, list[float]] = {}
  for a in usable:
    label = (
      _name(a["setting"].get(hue, ""), names) if hue else names.get(metric, metric)
    )
    group = ", ".join(
      f"{_short(k, names)}={_name(a['setting'].get(k), names)}" for k in rest
    )
    value = a["setting"][x]
    pos = (
      value * (100.0 if _percent(x) else 1.0)
      if numeric
      else (categories.index(json.dumps(value, sort_keys=True)))
    )
    panels.setdefault(group, {}).setdefault(label, []).append(
      (pos, a["mean"][metric] * scale_y, a["std"][metric] * scale_y)
    )
    if f"dense/{metric}" in a["mean"]:
      dense_of.setdefault(group, []).append(a["mean"][f"dense/{metric}"])
  groups = sorted(panels)
  hues = sorted({label for lines in panels.values() for label in lines})
  seeds = sorted({a["n"] for a in usable})
  n_text = f"{seeds[0]}" if len(seeds) == 1 else f"{seeds[0]}-{seeds[-1]}"
  # svg.fonttype none: SVG text stays text (editable, searchable).
  style = {"font.size": 8, "legend.fontsize": 7, "svg.fonttype": "none"}
  with plt.rc_context(style):
    fig, axes = plt.subplots(
      1,
      len(groups),
      figsize=(3.4 * len(groups), 2.9),
      sharey=True,
      squeeze=False,
      layout="constrained",
    )
    offset = 0.08 if not numeric and len(hues) > 1 else 0.0
    handles: dict[str, Any] = {}
    for ax, group in zip(axes[0], groups):
      for label, points in sorted(panels[group].items()):
        k = hues.index(label)
        points.sort()
        px, ys, es = zip(*points)
        if offset:
          px = [p + offset * (k - (len(hues) - 1) / 2) for p in px]
        handles.setdefault(
          label,
          ax.errorbar(
            px,
            ys,
            yerr=es,
            marker="o",
            ms=3,
            capsize=2,
            lw=1,
            ls="-" if numeric else "none",
            color=f"C{k % 10}",
            label=label,
          ),
        )
      if group in dense_of:
        line = ax.axhline(
          np.mean(dense_of[group]) * scale_y, ls="--", lw=1, color="0.4", label="dense"
        )
        handles.setdefault("dense", line)
      if not numeric:
        ax.set_xticks(
          range(len(categories)), [_name(json.loads(c), names) for c in categories]
        )
      ax.set_xlabel(names.get(x, x))
      if group:
        ax.set_title(group, fontsize=7)
      ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(names.get(metric, metric))
    caption = f"error bars: std over n={n_text} seeds"
    if groups == [""]:
      axes[0][0].set_title(caption, fontsize=7)
    else:
      fig.suptitle(caption, fontsize=7)
    if hue or dense_of:
      order = [h for h in hues if h in handles] + (["dense"] if dense_of else [])
      fig.legend(  # Below the axes: it never hides a line.
        [handles[h] for h in order],
        order,
        title=names.get(hue, hue) if hue else None,
        loc="outside lower center",
        ncol=min(len(order), 5),
        frameon=False,
        columnspacing=1.0,
        handlelength=1.5,
      )
    stem = os.path.splitext(out)[0]
    paths = [io_utils.atomic_write_figure(fig, f"{stem}.{f}", dpi=200) for f in formats]
    plt.close(fig)
  return paths
