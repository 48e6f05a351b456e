"""`jaxprune.report` on real sweeps (issue 23.5) and its figures (23.6)."""

from __future__ import annotations

import pathlib
import re

import numpy as np
import pytest

from jaxprune import io_utils
from jaxprune.results import report


def _row(sparsity, seed, acc, schedule=None, extended=False):
  overrides = {"pruning.sparsity": sparsity, "seed": seed}
  if extended:  # The sweep was extended with a new axis later.
    overrides["retrain.schedule"] = schedule
  return {
    "overrides": overrides,
    "seed": seed,
    "status": "completed",
    "config": {
      "pruning": {"sparsity": sparsity},
      "retrain": {"schedule": schedule or "ft"},
      "model": {"name": "mlp7_relu"},
      "seed": seed,
    },
    "metrics": {"test/accuracy": acc, "dense/test/accuracy": 0.9},
  }


def _rows():
  rng = np.random.default_rng(0)
  rows = [
    _row(s, k, float(rng.uniform(0.8, 0.85))) for s in (0.5, 0.9) for k in range(3)
  ]
  rows += [
    _row(s, k, float(rng.uniform(0.8, 0.85)), "clr", extended=True)
    for s in (0.5, 0.9)
    for k in range(3)
  ]
  return rows


def test_extended_sweep_groups_old_rows_by_their_config_values():
  rows = _rows()
  aggregated = report.aggregate(rows)
  assert len(aggregated) == 4 and all(a["n"] == 3 for a in aggregated)
  ft = next(
    a
    for a in aggregated
    if a["setting"] == {"pruning.sparsity": 0.5, "retrain.schedule": "ft"}
  )
  members = [r["metrics"]["test/accuracy"] for r in rows[:3]]
  assert ft["mean"]["test/accuracy"] == pytest.approx(np.mean(members), abs=1e-12)
  assert ft["std"]["test/accuracy"] == pytest.approx(np.std(members), abs=1e-12)


def test_any_config_key_on_either_axis_and_paper_labels(tmp_path, capsys):
  results = tmp_path / "results.jsonl"
  io_utils.rewrite_jsonl(str(results), _rows())
  out = tmp_path / "report"
  argv = ["--results", str(results), "--out", str(out), "--formats", "png,pdf,svg"]
  # FT vs CLR as categories on x; model.name (never swept) as the hue.
  assert report.main([*argv, "--x=retrain.schedule", "--hue=model.name"]) == 0
  stem = out / "test_accuracy_vs_retrain_schedule"
  assert stem.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
  assert stem.with_suffix(".pdf").read_bytes()[:4] == b"%PDF"
  svg = stem.with_suffix(".svg").read_text()
  for text in ("CLR", "FT", "Test accuracy (%)", "std over n=3 seeds", "dense"):
    assert text in svg, text
  assert report.main([*argv, "--x=pruning.sparsity", "--hue=retrain.schedule"]) == 0
  svg = (out / "test_accuracy_vs_pruning_sparsity.svg").read_text()
  assert "Sparsity (%)" in svg and "Retraining schedule" in svg
  ticks = re.findall(r">([0-9.]+)</text>", svg)
  assert {"50", "90"} <= set(ticks)  # Sparsity in %, and so is accuracy:
  assert {"82", "84"} <= set(ticks) and min(float(t) for t in ticks) >= 50


def test_unknown_axis_is_a_one_line_error(tmp_path, capsys):
  results = tmp_path / "results.jsonl"
  io_utils.rewrite_jsonl(str(results), _rows())
  with pytest.raises(SystemExit):
    report.main(
      ["--results", str(results), "--out", str(tmp_path), "--x=prunning.sparsity"]
    )
  err = capsys.readouterr().err.strip().splitlines()[-1]
  assert "'prunning.sparsity' is no config field" in err and "pruning.sparsity" in err


def test_settings_without_the_metric_are_reported_not_silently_dropped(
  tmp_path, capsys
):
  rows = _rows()
  rows.append({**_row(0.7, 0, 0.8), "metrics": {}})
  aggregated = report.aggregate(rows)
  paths = report.figure(
    aggregated, "test/accuracy", "pruning.sparsity", None, str(tmp_path / "f.png")
  )
  assert pathlib.Path(paths[0]).exists()
  assert "1 of 5 settings lack 'test/accuracy'" in capsys.readouterr().err


def test_paper_cell_of_a_setting_without_its_keys_is_blank(capsys):
  # A smoke point drops the swept keys; the report must not crash on it.
  aggregated = report.aggregate([_row(0.5, 0, 0.8)])
  theirs = report.published(aggregated, lambda s: {"paper": s["retrain.spec"]})
  assert theirs == [None]
  assert "lacks 'retrain.spec'" in capsys.readouterr().err
