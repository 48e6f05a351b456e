"""Reports: aggregation equals a direct computation; tables and figures render."""

from __future__ import annotations

import csv
import io
import os
import pathlib

import numpy as np
import pytest

from jaxprune import io_utils
from jaxprune.results import report


def _rows():
  rng = np.random.default_rng(0)
  rows = []
  for schedule in ("ft", "clr"):
    for sparsity in (0.5, 0.9):
      for seed in range(3):
        rows.append(
          {
            "overrides": {
              "schedule.name": schedule,
              "pruning.sparsity": sparsity,
              "seed": seed,
            },
            "seed": seed,
            "status": "completed",
            "metrics": {"test/accuracy": float(rng.uniform(0.8, 0.9)), "time/x": 1.0},
            "sparsity": sparsity,
          }
        )
  rows.append({**rows[0], "seed": 9, "status": "diverged", "metrics": {}})
  return rows


def test_aggregate_matches_direct_computation():
  rows = _rows()
  aggregated = report.aggregate(rows)
  assert len(aggregated) == 4
  for a in aggregated:
    members = [
      r["metrics"]["test/accuracy"]
      for r in rows
      if report.setting_of(r) == a["setting"] and r["status"] == "completed"
    ]
    assert a["n"] == 3 == len(members)
    assert a["mean"]["test/accuracy"] == pytest.approx(np.mean(members), abs=1e-12)
    assert a["std"]["test/accuracy"] == pytest.approx(np.std(members), abs=1e-12)
  first = next(a for a in aggregated if a["setting"] == report.setting_of(rows[0]))
  assert first["diverged"] == 1


def test_tables_and_cli_outputs(tmp_path):
  results = str(tmp_path / "results.jsonl")
  io_utils.rewrite_jsonl(results, _rows())
  out = str(tmp_path / "report")
  assert (
    report.main(
      [
        "--results",
        results,
        "--out",
        out,
        "--x",
        "pruning.sparsity",
        "--hue",
        "schedule.name",
      ]
    )
    == 0
  )
  markdown = pathlib.Path(out, "table.md").read_text()
  assert "± " in markdown and "| pruning.sparsity | schedule.name | n |" in markdown
  table = list(csv.DictReader(io.StringIO(pathlib.Path(out, "table.csv").read_text())))
  aggregated = report.aggregate(_rows())
  for line, a in zip(table, aggregated):
    assert float(line["test/accuracy_mean"]) == pytest.approx(
      a["mean"]["test/accuracy"]
    )
  png = os.path.join(out, "test_accuracy_vs_pruning_sparsity.png")
  assert pathlib.Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_results_is_a_clear_error(tmp_path):
  with pytest.raises(SystemExit):
    report.main(["--results", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path)])


def test_published_numbers_sit_beside_ours():
  rows = [
    {
      "overrides": {"pruning.ratio": r, "retrain.orthp": False, "seed": s},
      "seed": s,
      "metrics": {"test/accuracy": 0.9 + s / 100},
    }
    for r in (0.8, 0.7)
    for s in range(2)
  ]
  aggregated = report.aggregate(rows)

  def paper_cell(setting):
    if setting["pruning.ratio"] != 0.8:
      return None  # The paper has no 0.7 row.
    return {"paper": "wang2021_di", "row_id": "t3_mlp7linear_pr0.8_90ep_lr0.01"}

  theirs = report.published(aggregated, paper_cell)
  assert theirs[0]["mean"] == 91.36 and theirs[1] is None
  markdown, table_csv = report.tables(aggregated, ["test/accuracy"], theirs)
  assert "| 0.8 | False | 2 | 90.50 ± 0.50 | 91.36 ± 0.02 (Table 3) |" in markdown
  assert markdown.splitlines()[-1].endswith("| - |")
  parsed = list(csv.DictReader(io.StringIO(table_csv)))
  assert parsed[0]["published_mean"] == "91.36"
  assert parsed[0]["published_row"] == "t3_mlp7linear_pr0.8_90ep_lr0.01"

  with pytest.raises(ValueError, match="must match exactly one"):
    report.published(aggregated, lambda s: {"paper": "wang2021_di", "table": "Table 3"})


def test_throughput_and_achieved_sparsity_are_aggregated_per_setting():
  # Zimmer et al. Table 2 lists images/s per method and the achieved sparsity
  # with its std over seeds (STR, DST and CS do not hit a target exactly).
  import ml_collections

  from jaxprune.results import sweeps

  config = ml_collections.ConfigDict({"seed": 0})
  rows = []
  for seed, (ips, sparsity) in enumerate(((100.0, 0.91), (140.0, 0.93))):
    summary = {"test/accuracy": 0.9, "sparsity": sparsity, "images_per_second": ips}
    config.seed = seed
    row = sweeps.make_row({"during.method": "str", "seed": seed}, config, "h", summary)
    rows.append({**row, "status": "completed", "config": {}})
  (a,) = report.aggregate(rows)
  assert a["mean"]["images_per_second"] == pytest.approx(120.0)
  assert a["std"]["images_per_second"] == pytest.approx(20.0)
  assert a["mean"]["sparsity"] == pytest.approx(0.92)
  assert a["std"]["sparsity"] == pytest.approx(0.01)


def test_rounding_noise_of_equal_values_prints_as_zero_spread():
  # Three runs at exactly 80 % sparsity: numpy's std of [0.8] * 3 is 1.1e-16,
  # float noise, not a spread (the mini report printed "0.8 ± 1.1e-16").
  xs = np.array([0.8, 0.8, 0.8])
  assert xs.std() > 0
  assert report._format(float(xs.mean()), float(xs.std()), percent=False) == "0.8 ± 0"
  assert report._format(0.8, 0.01, percent=False) == "0.8 ± 0.01"
  assert report._format(0.0, 0.0, percent=False) == "0 ± 0"
