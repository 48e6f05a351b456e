"""Reports: aggregate a sweep's results.jsonl into paper-style tables and figures.

A *setting* is a row's overrides without its seed; every setting gets the mean
and standard deviation (numpy's default, ddof=0, over seeds) of each metric,
written as a markdown table (`mean ± std`) and a CSV with separate columns.
Figures plot a metric against one override (e.g. sparsity, retraining epochs)
with one line per value of another (e.g. the schedule), error bars = std.

With `--paper_config` (a paper sweep config defining `paper_cell(setting)`),
the table gets a column with the published mean ± std of the cell each
setting reproduces (from `third_party/paper_results/`).

Command line:
  python -m jaxprune.report --results=DIR/results.jsonl --out=DIR/report \
      [--metric=test/accuracy] [--x=pruning.sparsity --hue=schedule.name] \
      [--paper_config=configs/le2021/table2.py]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from jaxprune import io_utils

# Top-level row fields aggregated besides row["metrics"].
EXTRA_FIELDS = (
  "sparsity",
  "speedup",
  "nonzero_params",
  "nonzero_flops",
  "best_val_accuracy",
  "accuracy_before",
)


def _values(row: dict[str, Any]) -> dict[str, float]:
  values = {k: v for k, v in row.get("metrics", {}).items() if _is_number(v)}
  values.update({k: row[k] for k in EXTRA_FIELDS if _is_number(row.get(k))})
  return values


def _is_number(value: Any) -> bool:
  return isinstance(value, int | float) and not isinstance(value, bool)


def setting_of(row: dict[str, Any]) -> dict[str, Any]:
  return {k: v for k, v in sorted(row.get("overrides", {}).items()) if k != "seed"}


def aggregate(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
  """One entry per setting: {"setting", "n", "status", "mean": {...}, "std": {...}}."""
  groups: dict[str, list[dict[str, Any]]] = {}
  for row in rows:
    groups.setdefault(json.dumps(setting_of(row), sort_keys=True), []).append(row)
  out = []
  for key, members in groups.items():
    ok = [r for r in members if r.get("status", "completed") == "completed"]
    metrics = sorted({m for r in ok for m in _values(r)})
    mean, std = {}, {}
    for metric in metrics:
      xs = np.asarray([_values(r)[metric] for r in ok if metric in _values(r)], float)
      mean[metric], std[metric] = float(xs.mean()), float(xs.std())
    out.append(
      {
        "setting": json.loads(key),
        "n": len(ok),
        "diverged": len(members) - len(ok),
        "seeds": sorted(r["seed"] for r in members if r.get("seed") is not None),
        "mean": mean,
        "std": std,
      }
    )
  return out


def _format(mean: float | None, std: float | None, percent: bool) -> str:
  if mean is None or math.isnan(mean):
    return "-"
  if not percent:  # JSVs, ratios, counts: significant digits, not 2 decimals.
    return f"{mean:.4g}" if std is None else f"{mean:.4g} ± {std:.2g}"
  if std is None:
    return f"{mean * 100:.2f}"
  return f"{mean * 100:.2f} ± {std * 100:.2f}"


def published(
  aggregated: Sequence[dict[str, Any]],
  paper_cell: Callable[[dict[str, Any]], dict[str, Any] | None],
) -> list[dict[str, Any] | None]:
  """The paper's number for each setting, or None.

  `paper_cell(setting)` (defined by a paper config) returns the criteria of
  `jaxprune.paper_results.find` for the cell the setting reproduces, with
  `paper` naming the CSV, or None when the paper has no such cell. A cell
  must match exactly one published row.
  """
  from jaxprune import paper_results

  out: list[dict[str, Any] | None] = []
  tables_by_paper: dict[str, list[dict[str, Any]]] = {}  # Each CSV read once.
  for a in aggregated:
    criteria = paper_cell(dict(a["setting"]))
    if not criteria:
      out.append(None)
      continue
    criteria = dict(criteria)
    paper = criteria.pop("paper")
    if paper not in tables_by_paper:
      tables_by_paper[paper] = paper_results.load(paper)
    found = paper_results.find(tables_by_paper[paper], **criteria)
    if len(found) != 1:
      raise ValueError(
        f"paper_cell({a['setting']}) -> {criteria} matches {len(found)} published "
        "rows; it must match exactly one"
      )
    out.append(found[0])
  return out


def tables(
  aggregated: Sequence[dict[str, Any]],
  metrics: Sequence[str],
  theirs: Sequence[dict[str, Any] | None] | None = None,
) -> tuple[str, str]:
  """(markdown, csv) with one row per setting; accuracies shown in percent.

  `theirs` (from `published`) adds the paper's mean ± std as a last column.
  """
  keys = sorted({k for a in aggregated for k in a["setting"]})
  # Diverged seeds are counted, never averaged in (the column shows only then).
  counts = ["n", "diverged"] if any(a.get("diverged") for a in aggregated) else ["n"]
  header = [*keys, *counts, *metrics, *(["published"] if theirs else [])]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  buffer = io.StringIO()
  writer = csv.writer(buffer)
  extra = ["published_mean", "published_std", "published_row"] if theirs else []
  stats = [f"{m}_{s}" for m in metrics for s in ("mean", "std")]
  writer.writerow([*keys, *counts, *stats, *extra])
  for i, a in enumerate(aggregated):
    numbers_n = [a.get(c, 0) for c in counts]
    cells = [str(a["setting"].get(k, "")) for k in keys] + [str(n) for n in numbers_n]
    cells += [
      _format(a["mean"].get(m), a["std"].get(m), m.endswith("accuracy"))
      for m in metrics
    ]
    numbers = [v for m in metrics for v in (a["mean"].get(m), a["std"].get(m))]
    if theirs:
      cell = theirs[i]
      if cell is None:
        cells.append("-")
        numbers += [None, None, None]
      else:
        std = "" if cell["std"] is None else f" ± {cell['std']:.2f}"
        cells.append(f"{cell['mean']:.2f}{std} ({cell['table']})")
        numbers += [cell["mean"], cell["std"], cell["row_id"]]
    lines.append("| " + " | ".join(cells) + " |")
    writer.writerow([a["setting"].get(k, "") for k in keys] + [*numbers_n, *numbers])
  return "\n".join(lines) + "\n", buffer.getvalue()


def figure(
  aggregated: Sequence[dict[str, Any]], metric: str, x: str, hue: str | None, out: str
) -> None:
  """Metric vs override `x`, one line per `hue` value; PNG written atomically."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  lines: dict[Any, list[tuple[float, float, float]]] = {}
  for a in aggregated:
    if x not in a["setting"] or metric not in a["mean"]:
      continue
    label = a["setting"].get(hue, "") if hue else metric
    lines.setdefault(label, []).append(
      (float(a["setting"][x]), a["mean"][metric], a["std"][metric])
    )
  if not lines:
    raise ValueError(f"no setting has both override {x!r} and metric {metric!r}")
  fig, ax = plt.subplots(figsize=(6, 4))
  for label, points in sorted(lines.items(), key=lambda kv: str(kv[0])):
    points.sort()
    xs, ys, es = zip(*points)
    ax.errorbar(xs, ys, yerr=es, marker="o", capsize=3, label=str(label))
  ax.set_xlabel(x)
  ax.set_ylabel(metric)
  if hue:
    ax.legend(title=hue)
  ax.grid(alpha=0.3)
  fig.tight_layout()
  io_utils.atomic_write_figure(fig, out, dpi=120)
  plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m jaxprune.report")
  parser.add_argument("--results", required=True, help="a sweep's results.jsonl")
  parser.add_argument("--out", required=True, help="output directory")
  parser.add_argument("--metric", action="append", help="metrics to tabulate")
  parser.add_argument("--x", help="override to plot on the x axis")
  parser.add_argument("--hue", help="override giving one line per value")
  parser.add_argument(
    "--paper_config",
    help="the sweep config that produced the results; its paper_cell(setting) "
    "puts the published number beside ours",
  )
  args = parser.parse_args(argv)
  if not os.path.exists(args.results):
    parser.error(f"--results file not found: {args.results}")
  rows, skipped = io_utils.read_jsonl_counted(args.results)
  lines = f" (lines {', '.join(map(str, skipped))})" if skipped else ""
  print(
    f"read {len(rows)} rows from {args.results}; skipped {len(skipped)} "
    f"unreadable line(s){lines}",
    file=sys.stderr,
  )
  if not rows:
    parser.error(f"--results has no rows: {args.results}")
  aggregated = aggregate(rows)
  metrics = args.metric or ["test/accuracy"]
  theirs = None
  if args.paper_config:
    from jaxprune import sweeps

    module = sweeps.load_sweep_module(args.paper_config)
    if not hasattr(module, "paper_cell"):
      parser.error(f"--paper_config {args.paper_config} defines no paper_cell")
    theirs = published(aggregated, module.paper_cell)
  markdown, table_csv = tables(aggregated, metrics, theirs)
  io_utils.atomic_write_bytes(os.path.join(args.out, "table.md"), markdown.encode())
  io_utils.atomic_write_bytes(os.path.join(args.out, "table.csv"), table_csv.encode())
  io_utils.atomic_write_json(os.path.join(args.out, "aggregated.json"), aggregated)
  if args.x:
    for metric in metrics:
      name = metric.replace("/", "_") + f"_vs_{args.x.replace('.', '_')}.png"
      figure(aggregated, metric, args.x, args.hue, os.path.join(args.out, name))
  print(markdown)
  return 0


if __name__ == "__main__":
  sys.exit(main())
