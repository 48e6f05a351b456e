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


def _arch_rows():
  """Rethinking Fig. 6-style rows: two nets x two sources x two sparsities x
  two seeds; parameter counts per architecture, one seed's count off by 2 for
  (vgg19, guided, 0.9) so the mean is visible."""
  rows = []
  for net, base in (("vgg16", 1000), ("vgg19", 2000)):
    for source, extra in (("guided", 0), ("uniform", 10)):
      for sparsity in (0.5, 0.9):
        for seed in range(2):
          params = round(base * (1 - sparsity)) + extra
          if (net, source, sparsity, seed) == ("vgg19", "guided", 0.9, 1):
            params += 2
          overrides = {"pruning.sparsity": sparsity, "scratch.source": source}
          if net == "vgg19":  # The base config's net has no model key.
            overrides["model.name"] = net
          rows.append(
            {
              "overrides": {**overrides, "seed": seed},
              "seed": seed,
              "status": "completed",
              "config": {
                "model": {"name": net},
                "pruning": {"sparsity": sparsity},
                "scratch": {"source": source},
              },
              "metrics": {"test/accuracy": 0.7 + 0.01 * seed + 0.1 * sparsity},
              "nonzero_params": params,
              "params": base,
            }
          )
  return rows


def test_summary_field_on_x_and_where_filters_rows(tmp_path):
  results = tmp_path / "results.jsonl"
  io_utils.rewrite_jsonl(str(results), _arch_rows())
  out = tmp_path / "report"
  argv = ["--results", str(results), "--out", str(out), "--formats", "png,svg"]
  assert (
    report.main(
      [
        *argv,
        "--x=summary:nonzero_params",
        "--hue=scratch.source",
        "--where=model.name=vgg19",
      ]
    )
    == 0
  )
  aggregated = io_utils.read_json(str(out / "aggregated.json"))
  # Only VGG-19 (the filter reads the config, so it also finds VGG-16 rows
  # that never override model.name): 2 sources x 2 sparsities.
  assert len(aggregated) == 4 and all(a["n"] == 2 for a in aggregated)
  x = {
    (a["setting"]["scratch.source"], a["setting"]["pruning.sparsity"]): a["setting"][
      "summary:nonzero_params"
    ]
    for a in aggregated
  }
  # 2000 * 0.5 = 1000, 2000 * 0.1 = 200 (+ 10 uniform; guided 0.9
  # seeds 200 and 202 -> mean 201).
  assert x == {
    ("guided", 0.5): 1000,
    ("guided", 0.9): 201.0,
    ("uniform", 0.5): 1010,
    ("uniform", 0.9): 210,
  }
  markdown = (out / "table.md").read_text()
  assert "summary:nonzero_params" in markdown and "| 1010 |" in markdown
  svg = (out / "test_accuracy_vs_summary_nonzero_params.svg").read_text()
  assert "Remaining parameters" in svg
  ticks = {float(t) for t in re.findall(r">([0-9.]+)</text>", svg)}
  assert max(ticks) >= 1000  # Parameter counts, not sparsities, on x.
  # Two filters must both hold; a number is read as a number.
  out2 = tmp_path / "report2"
  assert (
    report.main(
      [
        "--results",
        str(results),
        "--out",
        str(out2),
        "--where=model.name=vgg16",
        "--where=pruning.sparsity=0.9",
      ]
    )
    == 0
  )
  settings = [a["setting"] for a in io_utils.read_json(str(out2 / "aggregated.json"))]
  assert sorted(s["scratch.source"] for s in settings) == ["guided", "uniform"]
  assert {s["pruning.sparsity"] for s in settings} == {0.9}
  assert all(s.get("model.name", "vgg16") == "vgg16" for s in settings)


@pytest.mark.parametrize(
  "flags, message",
  [
    (["--x=summary:nonzero_parms"], "no row records a number 'nonzero_parms'"),
    (["--x=summary:nonzero_parms"], "nonzero_params, params"),
    (["--where=model.nme=vgg19"], "--where 'model.nme' is no config field"),
    (["--where=model.name=vgg99"], "matches no row; its values: ['\"vgg16\"'"),
    (["--where=model.name"], "--where wants KEY=VALUE"),
    (["--x=pruning.sparsity", "--hue=summary:params"], "only --x reads summary"),
  ],
)
def test_summary_axis_and_where_errors_name_the_flag(tmp_path, capsys, flags, message):
  results = tmp_path / "results.jsonl"
  io_utils.rewrite_jsonl(str(results), _arch_rows())
  with pytest.raises(SystemExit):
    report.main(["--results", str(results), "--out", str(tmp_path / "o"), *flags])
  err = capsys.readouterr().err.strip().splitlines()[-1]
  assert message in err, err


def test_settings_that_differ_off_the_axes_get_their_own_lines(tmp_path, monkeypatch):
  # Le & Hua's budget figure (x: retraining epochs, hue: schedule) once joined
  # the L1 and the magnitude points of a schedule into one zigzag line.
  from jaxprune.results import figures

  drawn = []

  def keep(fig, path, dpi):
    # One errorbar container per line; one panel per pruning method.
    drawn.append(
      [
        (ax.get_title(), c.get_label(), c.lines[0].get_color(), c.lines[0].get_xydata())
        for ax in fig.axes
        for c in ax.containers
      ]
    )
    return path

  monkeypatch.setattr(figures.io_utils, "atomic_write_figure", keep)

  def setting(method, schedule, epochs, acc):
    return {
      "setting": {
        "pruning.method": method,
        "retrain.schedule": schedule,
        "retrain.num_epochs": epochs,
      },
      "mean": {"test/accuracy": acc},
      "std": {"test/accuracy": 0.0},
      "n": 5,
    }

  aggregated = [
    setting(m, s, e, acc)
    for m, offset in (("l1", 0.0), ("magnitude", 0.1))
    for s in ("ft", "clr")
    for e, acc in ((40, 0.5 + offset), (80, 0.6 + offset))
  ]
  assert figures.other_keys(aggregated, ("retrain.num_epochs", "retrain.schedule")) == [
    "pruning.method"
  ]
  figures.figure(
    aggregated,
    "test/accuracy",
    "retrain.num_epochs",
    "retrain.schedule",
    str(tmp_path / "f.png"),
  )
  (lines,) = drawn
  assert len(lines) == 4  # 2 schedules x 2 pruning methods.
  assert {(title, label) for title, label, *_ in lines} == {
    (f"method={m}", s) for m in ("l1", "magnitude") for s in ("FT", "CLR")
  }
  for title, _, _, xy in lines:  # One point per budget, this method's.
    offset = 0.1 if title == "method=magnitude" else 0.0
    want = [[40, 50 + 100 * offset], [80, 60 + 100 * offset]]
    np.testing.assert_allclose(xy, want)
  colours = {
    label: {c for _, lb, c, _ in lines if lb == label} for label in ("FT", "CLR")
  }
  assert all(len(c) == 1 for c in colours.values())  # One colour per schedule.
  assert colours["FT"] != colours["CLR"]
  # A key that only follows another (the sparsity of each method; CLR's
  # cyclic momentum follows the hue) does not name the panels.
  for a in aggregated:
    a["setting"]["pruning.sparsity"] = (
      0.9 if a["setting"]["pruning.method"] == "l1" else 0.5
    )
    a["setting"]["retrain.cycle_momentum"] = a["setting"]["retrain.schedule"] == "clr"
  assert figures.other_keys(aggregated, ("retrain.num_epochs", "retrain.schedule")) == [
    "pruning.method"
  ]
