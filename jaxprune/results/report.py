"""Reports: aggregate a sweep's results.jsonl into paper-style tables and figures.

A *setting* is a row's overrides without its seed; every setting gets the mean
and standard deviation (numpy's default, ddof=0, over seeds) of each metric,
written as a markdown table (`mean ± std`) and a CSV with separate columns.
Settings take their values from each row's config, so rows of an extended
sweep (that did not override a newer key) group by what they ran with.
Figures plot a metric against any config key (numeric: lines; categorical:
points) with one line per value of another, error bars = std over seeds (said
in the subtitle), the dense baseline as a dashed line, paper labels (`LABELS`)
and accuracies in %, at one column's width, as PNG and PDF (or SVG).

With `--paper_config` (a paper sweep config defining `paper_cell(setting)`),
the table gets a column with the published mean ± std of the cell each
setting reproduces (from `third_party/paper_results/`).

Command line:
  python -m jaxprune.report --results=DIR/results.jsonl --out=DIR/report \
      [--metric=test/accuracy] [--x=pruning.sparsity --hue=retrain.schedule] \
      [--where=model.name=vgg19 ...] [--formats=png,pdf,svg] \
      [--paper_config=configs/le2021/table2.py] \
      [--curves=test/accuracy,jsv/mean --curve_panel=retrain.spec \
       --curve_hue=retrain.orthp]

With `--curves`, each listed per-epoch metric is read from the runs'
metrics.jsonl (`jaxprune.results.curves`): `<metric>@start` (epoch 0 of a
retraining: right after pruning) and `<metric>@end` become table columns
(name them with --metric), and `curves.png` plots them per epoch, one panel
per value of --curve_panel, one line per value of --curve_hue.

`--x=summary:FIELD` puts a run-summary field on the x axis instead of a
config key: a number each row records (`nonzero_params`, `params`,
`nonzero_flops`, ... or a metric), averaged over the seeds of a setting (it
varies with the architecture, not the seed, for one-shot patterns) and shown
as a table column. Rethinking's Figs. 3, 5 and 6 plot accuracy against
parameter counts this way. `--where=KEY=VALUE` (repeatable, all must hold)
keeps the rows whose config has KEY equal to VALUE (read as JSON when it
parses, so `0.5`, `true` and `[1, 2]` are numbers, booleans and lists; else
a string), e.g. one net of a sweep that trains several.
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
from jaxprune.results import curves, paper_results, sweeps
from jaxprune.results.figures import (  # report.figure for callers.
  FORMATS,
  _is_number,
  figure,
)
from jaxprune.results.settings import (
  MISSING as _MISSING,
)
from jaxprune.results.settings import (
  config_value,
  setting_keys,
  setting_of,
)

# Top-level row fields aggregated besides row["metrics"].
EXTRA_FIELDS = (
  "sparsity",
  "speedup",
  "nonzero_params",
  "nonzero_flops",
  "best_val_accuracy",
  "accuracy_before",
  "images_per_second",
)


SUMMARY_AXIS = "summary:"  # `--x=summary:FIELD`: a run-summary field, not config.


def summary_value(row: dict[str, Any], field: str) -> float | None:
  """A row's numeric run-summary `field`: a top-level row field (the
  `sweeps.SUMMARY_FIELDS` a run records, e.g. `nonzero_params`) or a metric."""
  for value in (row.get(field), row.get("metrics", {}).get(field)):
    if _is_number(value):
      return value
  return None


def summary_fields(rows: Sequence[dict[str, Any]]) -> list[str]:
  """The numeric run-summary fields of any row (what `summary:` can name)."""
  skip = {"seed", "config_hash"}
  top = {k for r in rows for k, v in r.items() if _is_number(v) and k not in skip}
  metrics = {k for r in rows for k, v in r.get("metrics", {}).items() if _is_number(v)}
  return sorted(top | metrics)


def parse_where(items: Sequence[str]) -> list[tuple[str, Any]]:
  """`KEY=VALUE` filters as (key, value); VALUE read as JSON when it parses."""
  out = []
  for item in items:
    key, sep, text = item.partition("=")
    if not sep or not key:
      raise ValueError(f"--where wants KEY=VALUE (a config key), got {item!r}")
    try:
      value = json.loads(text)
    except json.JSONDecodeError:
      value = text  # A bare string: `model.name=vgg19`.
    out.append((key, value))
  return out


def where(
  rows: Sequence[dict[str, Any]], filters: Sequence[tuple[str, Any]]
) -> list[dict[str, Any]]:
  """The rows whose config value of every filter key equals its value."""

  def keep(row: dict[str, Any]) -> bool:
    for key, value in filters:
      have = config_value(row, key)
      # Tuples come back from JSON as lists; "0.50" and 0.5 are one value.
      if have is _MISSING or not (have == value or str(have) == str(value)):
        return False
    return True

  return [r for r in rows if keep(r)]


def add_summary_axis(
  aggregated: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]], axis: str
) -> list[dict[str, Any]]:
  """Each setting gets `axis` (`summary:FIELD`) in its setting: the mean over
  its completed rows of FIELD (exact when the seeds agree), if any has it.

  Rows are matched to settings as `aggregate` grouped them (`aggregate` of
  the same rows, without the axis among its keys).
  """
  field = axis.removeprefix(SUMMARY_AXIS)
  keys = setting_keys(rows, [k for a in aggregated for k in a["setting"]])
  values: dict[str, list[float]] = {}
  for row in rows:
    if row.get("status", "completed") != "completed":
      continue
    v = summary_value(row, field)
    if v is not None:
      values.setdefault(json.dumps(setting_of(row, keys), sort_keys=True), []).append(v)
  out = []
  for a in aggregated:
    vs = values.get(json.dumps(a["setting"], sort_keys=True))
    setting = dict(a["setting"])
    if vs:
      setting[axis] = vs[0] if len(set(vs)) == 1 else float(np.mean(vs))
    out.append({**a, "setting": setting})
  return out


def _values(row: dict[str, Any]) -> dict[str, float]:
  values = {k: v for k, v in row.get("metrics", {}).items() if _is_number(v)}
  values.update({k: row[k] for k in EXTRA_FIELDS if _is_number(row.get(k))})
  return values


def aggregate(
  rows: Sequence[dict[str, Any]], extra_keys: Sequence[str] = ()
) -> list[dict[str, Any]]:
  """One entry per setting: {"setting", "n", "status", "mean": {...}, "std": {...}}.

  A setting is the rows' values of every key any row overrides (and of
  `extra_keys`, e.g. a figure's axis), taken from each row's config: rows
  that did not override a key (an older part of an extended sweep) group by
  the value they ran with, not by a blank.
  """
  keys = setting_keys(rows, extra_keys)
  groups: dict[str, list[dict[str, Any]]] = {}
  for row in rows:
    groups.setdefault(json.dumps(setting_of(row, keys), sort_keys=True), []).append(row)
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
  if std is not None and std <= 1e-12 * abs(mean):
    std = 0.0  # Float noise of equal values (std of [0.8] * 3 is 1.1e-16).
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
  `jaxprune.results.paper_results.find` for the cell the setting reproduces, with
  `paper` naming the CSV, or None when the paper has no such cell. A cell
  must match exactly one published row.
  """

  out: list[dict[str, Any] | None] = []
  tables_by_paper: dict[str, list[dict[str, Any]]] = {}  # Each CSV read once.
  for a in aggregated:
    try:
      criteria = paper_cell(dict(a["setting"]))
    except KeyError as e:  # E.g. a smoke point, which drops the swept keys.
      print(
        f"[report] warning: setting {a['setting']} lacks {e} for paper_cell; "
        "no published number beside it",
        file=sys.stderr,
      )
      criteria = None
    out.append(paper_results.cell(criteria, tables_by_paper) if criteria else None)
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


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m jaxprune.report")
  parser.add_argument("--results", required=True, help="a sweep's results.jsonl")
  parser.add_argument("--out", required=True, help="output directory")
  parser.add_argument("--metric", action="append", help="metrics to tabulate")
  parser.add_argument(
    "--x",
    help="config key on the x axis (numeric: lines; else points), or "
    "summary:FIELD, a run-summary field such as summary:nonzero_params",
  )
  parser.add_argument("--hue", help="config key giving one line per value")
  parser.add_argument(
    "--where",
    action="append",
    default=[],
    metavar="KEY=VALUE",
    help="keep the rows whose config KEY equals VALUE (repeatable: all hold)",
  )
  parser.add_argument(
    "--formats", default="png,pdf", help=f"figure formats, any of {','.join(FORMATS)}"
  )
  parser.add_argument(
    "--paper_config",
    help="the sweep config that produced the results; its paper_cell(setting) "
    "puts the published number beside ours",
  )
  parser.add_argument(
    "--curves", help="per-epoch metrics to plot and read at their ends (comma list)"
  )
  parser.add_argument("--curve_panel", help="config key: one panel per value")
  parser.add_argument("--curve_hue", help="config key: one line per value")
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
  try:
    filters = parse_where(args.where)
  except ValueError as e:
    parser.error(str(e))
  for key, value in filters:
    if all(config_value(r, key) is _MISSING for r in rows):
      parser.error(
        f"--where {key!r} is no config field of these rows; swept: "
        f"{', '.join(setting_keys(rows)) or 'nothing'}"
      )
    kept = where(rows, [(key, value)])
    if not kept:
      seen = sorted({json.dumps(config_value(r, key)) for r in rows})
      parser.error(f"--where {key}={value!r} matches no row; its values: {seen}")
    rows = kept
  summary_x = bool(args.x and args.x.startswith(SUMMARY_AXIS))
  if args.hue and args.hue.startswith(SUMMARY_AXIS):
    parser.error("--hue takes a config key; only --x reads summary:FIELD")
  if summary_x:
    field = args.x.removeprefix(SUMMARY_AXIS)
    if all(summary_value(r, field) is None for r in rows):
      parser.error(
        f"--x {args.x!r}: no row records a number {field!r}; run-summary "
        f"fields: {', '.join(summary_fields(rows)) or 'none'}"
      )
  for key in (None if summary_x else args.x, args.hue):
    if key and all(config_value(r, key) is _MISSING for r in rows):
      parser.error(
        f"--x/--hue {key!r} is no config field of these rows; swept: "
        f"{', '.join(setting_keys(rows)) or 'nothing'}"
      )
  curve_metrics = [m for m in (args.curves or "").split(",") if m]
  sweep_dir = os.path.dirname(os.path.abspath(args.results))
  if curve_metrics:
    for flag in ("curve_panel", "curve_hue"):
      key = getattr(args, flag)
      if not key or all(config_value(r, key) is _MISSING for r in rows):
        parser.error(
          f"--curves needs --{flag}, a config field of these rows; swept: "
          f"{', '.join(setting_keys(rows)) or 'nothing'}"
        )
    rows = curves.attach_endpoints(rows, sweep_dir, curve_metrics)
  aggregated = aggregate(rows, extra_keys=(None if summary_x else args.x, args.hue))
  if summary_x:
    aggregated = add_summary_axis(aggregated, rows, args.x)
  metrics = args.metric or ["test/accuracy"]
  theirs = None
  if args.paper_config:
    module = sweeps.load_sweep_module(args.paper_config)
    if not hasattr(module, "paper_cell"):
      parser.error(f"--paper_config {args.paper_config} defines no paper_cell")
    try:
      theirs = published(aggregated, module.paper_cell)
    except ValueError as e:
      parser.error(str(e))
  markdown, table_csv = tables(aggregated, metrics, theirs)
  io_utils.atomic_write_bytes(os.path.join(args.out, "table.md"), markdown.encode())
  io_utils.atomic_write_bytes(os.path.join(args.out, "table.csv"), table_csv.encode())
  io_utils.atomic_write_json(os.path.join(args.out, "aggregated.json"), aggregated)
  if args.x:
    formats = [f for f in args.formats.split(",") if f]
    for metric in metrics:
      axis = args.x.replace(".", "_").replace(":", "_")
      name = metric.replace("/", "_") + f"_vs_{axis}.png"
      path = os.path.join(args.out, name)
      try:
        figure(aggregated, metric, args.x, args.hue, path, formats=formats)
      except ValueError as e:
        parser.error(str(e))
  if curve_metrics:
    path = curves.figure(
      rows,
      sweep_dir,
      curve_metrics,
      os.path.join(args.out, "curves.png"),
      panel=args.curve_panel,
      hue=args.curve_hue,
    )
    print(
      f"curves: {path or 'no run logged ' + ', '.join(curve_metrics)}", file=sys.stderr
    )
  print(markdown)
  return 0


if __name__ == "__main__":
  sys.exit(main())
