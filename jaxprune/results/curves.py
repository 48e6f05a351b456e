"""Per-epoch curves of a sweep's runs: mean ± std over seeds, and their ends
as table columns.

Every sweep point trains in `<sweep>/runs/<config hash>/<phase>/` and logs one
`metrics.jsonl` row per evaluated epoch (test accuracy, and `jsv/mean` when
`analysis.jsv_every_epochs` is on). Dynamical Isometry's figures are such
curves (Fig. 2: mean JSV and accuracy during fine-tuning), and its tables are
read at their ends: the JSV right after pruning (and OrthP) is epoch 0 of the
retraining phase, the JSV after retraining its last logged epoch.

  attach_endpoints(rows, sweep_dir, metrics)  adds `<metric>@start` and
      `<metric>@end` to each row's metrics, so the report's `aggregate` / `tables`
      give them mean ± std like any other column;
  load(rows, sweep_dir, metric, keys)  {label: {epoch: [value per seed]}};
  draw(...) / figure(...)  one panel per value of a key (e.g. the retraining
      schedule), one line per value of others (e.g. OrthP on/off; the
      protocol too where a Scratch run shares a panel), std bands, one
      colour per line across panels;
  split_figures(...)  one such figure per value of a key (e.g. per network).

The phase read is the run's last retraining cycle (`cycleN`), else its only
phase (`scratch`, `run`, ...).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from jaxprune import io_utils
from jaxprune.analysis import plots
from jaxprune.results import settings
from jaxprune.results.figures import LABELS

START, END = "@start", "@end"


def phase_dir(sweep_dir: str, row: dict[str, Any]) -> str | None:
  """The directory of the phase whose curve a row's run stands for."""
  run = os.path.join(sweep_dir, "runs", row["config_hash"])
  if not os.path.isdir(run):
    return None
  phases = sorted(
    d for d in os.listdir(run) if os.path.exists(os.path.join(run, d, "metrics.jsonl"))
  )
  cycles = sorted(
    (int(m.group(1)), d) for d in phases if (m := re.fullmatch(r"cycle(\d+)", d))
  )
  if cycles:
    return os.path.join(run, cycles[-1][1])
  return os.path.join(run, phases[0]) if len(phases) == 1 else None


def run_curve(sweep_dir: str, row: dict[str, Any], metric: str) -> dict[int, float]:
  """{epoch: value} of `metric` in the row's phase (empty if never logged)."""
  path = phase_dir(sweep_dir, row)
  if path is None:
    return {}
  out = {}
  for r in io_utils.read_jsonl(os.path.join(path, "metrics.jsonl")):
    if metric in r and "epoch" in r:
      out[int(r["epoch"])] = float(r[metric])
  return out


def attach_endpoints(
  rows: Sequence[dict[str, Any]], sweep_dir: str, metrics: Sequence[str]
) -> list[dict[str, Any]]:
  """Copies of `rows` with `<metric>@start` (first logged epoch, epoch 0 for a
  retraining: the net right after pruning) and `<metric>@end` (last logged
  epoch) in their metrics, for each of `metrics` the run logged."""
  out = []
  for row in rows:
    extra = {}
    for metric in metrics:
      curve = run_curve(sweep_dir, row, metric)
      if curve:
        extra[metric + START] = curve[min(curve)]
        extra[metric + END] = curve[max(curve)]
    out.append({**row, "metrics": {**row.get("metrics", {}), **extra}})
  return out


def _label(row: dict[str, Any], keys: Sequence[str]) -> str:
  values = settings.setting_of(row, keys)
  return ", ".join(f"{k.split('.')[-1]}={values[k]}" for k in keys if k in values)


def load(
  rows: Sequence[dict[str, Any]], sweep_dir: str, metric: str, keys: Sequence[str]
) -> dict[str, dict[int, list[float]]]:
  """{label of the row's `keys` values: {epoch: [one value per seed]}}."""
  curves: dict[str, dict[int, list[float]]] = {}
  for row in rows:
    for epoch, value in run_curve(sweep_dir, row, metric).items():
      label = _label(row, keys)
      curves.setdefault(label, {}).setdefault(epoch, []).append(value)
  return curves


def figure(
  rows: Sequence[dict[str, Any]],
  sweep_dir: str,
  metrics: Sequence[str],
  path: str,
  *,
  panel: str | Sequence[str],
  hue: str | Sequence[str],
  title: str = "",
) -> str | None:
  """Writes `draw(...)` to `path`; returns it, or None when no run logged any
  of `metrics`."""
  fig = draw(rows, sweep_dir, metrics, panel=panel, hue=hue, title=title)
  if fig is None:
    return None
  plots.save_figure(fig, path)
  return path


def split_figures(
  rows: Sequence[dict[str, Any]],
  sweep_dir: str,
  metrics: Sequence[str],
  stem: str,
  *,
  split: str | None = None,
  title: str = "",
  **layout: str | Sequence[str],
) -> list[str]:
  """`figure` (its `panel` and `hue` in `layout`) at `<stem>.png`, or with
  `split` (a setting key, e.g. the model) one figure per value of it at
  `<stem>_<value>.png`, so that a table of several networks gets a readable
  figure per network; returns the paths written."""
  parts: dict[str, list[dict[str, Any]]] = {}
  for row in rows:
    value = "" if split is None else str(settings.config_value(row, split))
    parts.setdefault(value, []).append(row)
  paths = []
  for value, members in sorted(parts.items()):
    name = f"{stem}_{re.sub(r'[^A-Za-z0-9_.-]', '_', value)}" if split else stem
    named = ", ".join(
      t for t in (title, f"{split.split('.')[-1]}={value}" if split else "") if t
    )
    path = figure(members, sweep_dir, metrics, name + ".png", title=named, **layout)
    paths += [path] if path else []
  return paths


def hue_keys(
  rows: Sequence[dict[str, Any]], panel: Sequence[str], hue: Sequence[str]
) -> list[str]:
  """`hue`, plus "protocol" when the rows ran more than one: a Scratch run and
  a retraining on the same schedule and setting are different curves, and a
  line averaging them would pass for either."""
  ran = {repr(settings.config_value(r, "protocol")) for r in rows}
  if len(ran) > 1 and "protocol" not in (*panel, *hue):
    return [*hue, "protocol"]
  return list(hue)


def draw(
  rows: Sequence[dict[str, Any]],
  sweep_dir: str,
  metrics: Sequence[str],
  *,
  panel: str | Sequence[str],
  hue: str | Sequence[str],
  title: str = "",
) -> Figure | None:
  """Curves of `metrics` (figure rows) per value of the `panel` key(s) (figure
  columns), one line per value of the `hue` key(s) (`hue_keys`), mean over
  seeds with a ±std band; None when no run logged any of them. A setting has
  one colour in every panel, and one legend below the panels names them all."""
  panel = [panel] if isinstance(panel, str) else list(panel)
  hue = hue_keys(rows, panel, [hue] if isinstance(hue, str) else list(hue))
  panels = sorted({_label(r, panel) for r in rows})
  data = {m: {p: {} for p in panels} for m in metrics}
  for p in panels:
    members = [r for r in rows if _label(r, panel) == p]
    for m in metrics:
      data[m][p] = load(members, sweep_dir, m, hue)
  labels = sorted({label for m in data.values() for c in m.values() for label in c})
  if not labels:
    return None
  palette = colormaps["tab10" if len(labels) <= 10 else "tab20"]
  colour = {label: palette(k % palette.N) for k, label in enumerate(labels)}
  # Constrained layout: a row's x labels would overlap the next row's axes.
  fig = Figure(figsize=(3.6 * len(panels), 2.8 * len(metrics)), layout="constrained")
  handles = {}
  for i, m in enumerate(metrics):
    for j, p in enumerate(panels):
      ax = fig.add_subplot(len(metrics), len(panels), i * len(panels) + j + 1)
      for label, by_epoch in sorted(data[m][p].items()):
        epochs = sorted(by_epoch)
        values = [np.asarray(by_epoch[e], float) for e in epochs]
        mean = np.asarray([v.mean() for v in values])
        std = np.asarray([v.std() for v in values])
        scale = 100.0 if "accuracy" in m else 1.0
        (line,) = ax.plot(
          epochs, mean * scale, label=label or "all", lw=1.2, color=colour[label]
        )
        handles.setdefault(label, line)
        ax.fill_between(
          epochs,
          (mean - std) * scale,
          (mean + std) * scale,
          alpha=0.25,
          color=colour[label],
        )
      ax.set_xlabel("epoch")
      ax.set_ylabel(LABELS.get(m, m), fontsize=8)
      if i == 0:
        ax.set_title(p, fontsize=8)
      ax.grid(alpha=0.3)
      if "jsv" in m:
        ax.set_yscale("log")
  fig.legend(
    [handles[label] for label in labels],
    [label or "all" for label in labels],
    loc="outside lower center",
    ncols=min(len(labels), 4),
    fontsize=7,
  )
  if title:
    fig.suptitle(f"{title} (mean ± std over seeds)", fontsize=9)
  return fig
