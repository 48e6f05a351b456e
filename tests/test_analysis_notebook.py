"""The dynamical-isometry walkthrough runs end to end (smoke mode, tiny dataset)."""

from __future__ import annotations

import os
import pathlib
import runpy

import pytest

from jaxprune import io_utils

NOTEBOOK = (
  pathlib.Path(__file__).resolve().parents[1]
  / "experiments"
  / "notebooks"
  / "dynamical_isometry.py"
)


def test_notebook_smoke_run(tiny_fmnist, tmp_path, monkeypatch):
  data_dir, manual_dir, _ = tiny_fmnist
  out = tmp_path / "out"
  monkeypatch.setenv("JAXPRUNE_SMOKE", "1")
  monkeypatch.setenv("JAXPRUNE_DATA_DIR", data_dir)
  monkeypatch.setenv("JAXPRUNE_MANUAL_DIR", manual_dir)
  monkeypatch.setenv("JAXPRUNE_OUT", str(out))
  runpy.run_path(str(NOTEBOOK), run_name="__main__")  # As a plain script.

  for name in ("jsv_vs_ratio.png", "retraining.png", "summary.json"):
    assert (out / name).exists(), name
  summary = io_utils.read_json(out / "summary.json")
  assert summary["smoke"] is True
  # Orthogonal init: epoch 0 of the dense run is exactly isometric (Table 1).
  assert summary["dense_jsv"][0] == [0, pytest.approx(1.0, abs=1e-5)]
  assert [e for e, _ in summary["dense_jsv"]] == [0, 1, 2]
  ratios = summary["jsv_vs_ratio"]
  assert ratios["0.9"] < ratios["0.0"]
  assert summary["jsv_pruned"]["mean"] < summary["dense_jsv"][-1][1]
  assert summary["jsv_orthp"]["mean"] == pytest.approx(1.0, abs=1e-5)
  curves = summary["retraining"]
  assert sorted(curves) == ["LR 0.01", "LR 0.01 + OrthP"]  # Smoke: one schedule.
  assert curves["LR 0.01 + OrthP"]["jsv"][0] == pytest.approx(1.0, abs=1e-5)
  for curve in curves.values():
    assert curve["epoch"] == [0, 1, 2] and len(curve["accuracy"]) == 3
  # Smoke schedules have a 1-epoch first stage: T is the epoch-1 accuracy.
  for label, value in summary["trainability_accuracy"].items():
    assert value == pytest.approx(curves[label]["accuracy"][1])
  assert 0.0 <= summary["pruning_stability"] <= 1.0
  assert not [f for f in os.listdir(out) if f.startswith(".tmp")]
