"""A paper's claims checked on its own published numbers, beside our verdicts.

An "inconclusive" of ours reads differently when the paper's own table is
inconclusive too (Dynamical Isometry Table 7: its LeNet-5 gains are within
their seeds' spread), and a claim the paper's own numbers fail is a claim
written wrong (H4 once compared signed gains that the paper reports as a gap
closing). So where a paper config defines `paper_cell(setting)` (the published
cell of each setting, `jaxprune.results.report.published`) and
`PUBLISHED_RUNS` (the runs behind each published mean ± std), every claim is
evaluated a second time, by the same `verdicts.evaluate`, on settings whose
means and stds are the paper's, over that many runs. The report shows both.

Published numbers enter as they are printed: a percentage becomes our fraction
(``unit == "%"``), and only metrics named in `METRICS` are read.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from jaxprune.results import paper_results, verdicts
from jaxprune.results.settings import setting_keys, setting_of

# Published metric name -> the runs' metric it reproduces.
METRICS = {"test_accuracy": "test/accuracy"}


def published_settings(
  point_rows: Sequence[Mapping[str, Any]],
  paper_cell: Callable[[dict[str, Any]], Mapping[str, Any] | None],
  runs: int,
) -> list[dict[str, Any]]:
  """Aggregated entries ({"setting", "n", "mean", "std"}, as
  `report.aggregate` makes them) holding the paper's numbers for the settings
  of `point_rows` (rows or bare {"overrides", "config"} of the sweep points);
  settings without a published cell (or its std) are left out."""
  if runs < 1:
    raise ValueError(f"PUBLISHED_RUNS must be a positive int, got {runs!r}")
  keys = setting_keys(point_rows)
  settings = {
    json.dumps(s, sort_keys=True): s for s in (setting_of(r, keys) for r in point_rows)
  }
  tables: dict[str, list[dict[str, Any]]] = {}  # Each CSV read once.
  out = []
  for setting in settings.values():
    try:
      criteria = paper_cell(dict(setting))
    except KeyError:  # A smoke point, which drops the swept keys.
      continue
    if not criteria:
      continue
    cell = paper_results.cell(criteria, tables)
    # A mean printed without its spread cannot enter a confidence interval.
    if cell["metric"] not in METRICS or cell["mean"] is None or cell["std"] is None:
      continue
    scale = 0.01 if cell["unit"] == "%" else 1.0
    metric = METRICS[cell["metric"]]
    out.append(
      {
        "setting": setting,
        "n": runs,
        "mean": {metric: cell["mean"] * scale},
        "std": {metric: cell["std"] * scale},
      }
    )
  return out


def annotate(
  found: Sequence[verdicts.Verdict],
  claims: Sequence[Mapping[str, Any]],
  module: Any,
  point_rows: Sequence[Mapping[str, Any]],
) -> list[verdicts.Verdict]:
  """`found` (our verdicts of `claims`), each with its verdict on the
  paper's numbers when `module` defines `paper_cell` and `PUBLISHED_RUNS`;
  `point_rows`: the sweep's points (`sweeps.point_rows`)."""
  runs = getattr(module, "PUBLISHED_RUNS", None)
  if not (point_rows and claims and runs and hasattr(module, "paper_cell")):
    return list(found)
  theirs = published_settings(point_rows, module.paper_cell, runs)
  out = []
  for ours, claim in zip(found, claims, strict=True):
    paper = verdicts.evaluate(claim, theirs)
    out.append(
      dataclasses.replace(
        ours, paper_status=paper.status, paper_evidence=paper.evidence
      )
    )
  return out
