"""Per-epoch curves of a sweep (`results.curves`) and `report --curves`: the
endpoints and seed means equal a direct computation on the runs' metrics."""

from __future__ import annotations

import csv
import os

import numpy as np
import pytest

from jaxprune import io_utils
from jaxprune.results import curves, report

SPECS = ("0:0.01", "0:0.001")


def _sweep(tmp_path):
  """A fake sweep dir: 2 specs x OrthP on/off x 2 seeds, a retraining phase
  (cycle1, plus an older cycle0 that must be ignored) or a scratch phase."""
  rng = np.random.default_rng(0)
  rows, logged = [], {}
  for spec in SPECS:
    for orthp in (False, True):
      for seed in range(2):
        digest = f"{spec[-4:]}{int(orthp)}{seed}"
        overrides = {"retrain.spec": spec, "retrain.orthp": orthp, "seed": seed}
        rows.append(
          {
            "config_hash": digest,
            "overrides": overrides,
            "seed": seed,
            "status": "completed",
            "metrics": {"test/accuracy": float(rng.uniform(0.8, 0.9))},
          }
        )
        jsv = rng.uniform(0.1, 2.0, size=4)
        logged[digest] = jsv
        run = tmp_path / "runs" / digest
        for phase, values in (("cycle0", jsv + 10), ("cycle1", jsv)):
          io_utils.rewrite_jsonl(
            str(run / phase / "metrics.jsonl"),
            [
              {"epoch": 5 * e, "jsv/mean": float(v), "test/accuracy": 0.5}
              for e, v in enumerate(values)
            ],
          )
  return rows, logged


def test_endpoints_are_the_first_and_last_logged_epochs_of_the_last_cycle(tmp_path):
  rows, logged = _sweep(tmp_path)
  out = curves.attach_endpoints(rows, str(tmp_path), ["jsv/mean", "missing/metric"])
  for row in out:
    jsv = logged[row["config_hash"]]
    assert row["metrics"]["jsv/mean@start"] == pytest.approx(jsv[0])
    assert row["metrics"]["jsv/mean@end"] == pytest.approx(jsv[-1])
    assert "missing/metric@start" not in row["metrics"]
  assert "jsv/mean@start" not in rows[0]["metrics"]  # Inputs stay as they were.


def test_load_groups_seeds_by_setting(tmp_path):
  rows, logged = _sweep(tmp_path)
  got = curves.load(rows, str(tmp_path), "jsv/mean", ["retrain.spec", "retrain.orthp"])
  assert len(got) == 4
  label = "spec=0:0.01, orthp=True"
  want = [logged[f"0.01{1}{s}"][2] for s in range(2)]
  assert sorted(got[label][10]) == pytest.approx(sorted(want))


def test_report_curves_columns_and_figure(tmp_path, capsys):
  rows, logged = _sweep(tmp_path)
  io_utils.rewrite_jsonl(str(tmp_path / "results.jsonl"), rows)
  out = tmp_path / "report"
  report.main(
    [
      f"--results={tmp_path / 'results.jsonl'}",
      f"--out={out}",
      "--metric=test/accuracy",
      "--metric=jsv/mean@start",
      "--metric=jsv/mean@end",
      "--curves=jsv/mean,test/accuracy",
      "--curve_panel=retrain.spec",
      "--curve_hue=retrain.orthp",
    ]
  )
  assert os.path.getsize(out / "curves.png") > 0
  with open(out / "table.csv") as f:
    table = list(csv.DictReader(f))
  cell = next(
    r for r in table if r["retrain.spec"] == "0:0.001" and r["retrain.orthp"] == "False"
  )
  want = np.mean([logged[f".001{0}{s}"][0] for s in range(2)])
  column = next(k for k in cell if k.startswith("jsv/mean@start") and "std" not in k)
  assert float(cell[column]) == pytest.approx(want, rel=1e-4)
  with pytest.raises(SystemExit):
    report.main(
      [
        f"--results={tmp_path / 'results.jsonl'}",
        f"--out={out}",
        "--curves=jsv/mean",
        "--curve_panel=no.such_key",
        "--curve_hue=retrain.orthp",
      ]
    )
  assert "--curve_panel" in capsys.readouterr().err


def _line_colours(fig):
  colours = {}
  for ax in fig.axes:
    for line in ax.get_lines():
      colours.setdefault(line.get_label(), set()).add(tuple(line.get_color()))
  return colours


def test_a_setting_has_one_colour_in_every_panel_and_the_legend_names_all(tmp_path):
  # A panel without a setting must not shift the other settings' colours: the
  # Table 7 figure's panels hold different models, and per-panel colour order
  # made one colour mean two settings.
  rows, _ = _sweep(tmp_path)
  rows = [
    r
    for r in rows
    if r["overrides"]["retrain.spec"] == "0:0.001" or r["overrides"]["retrain.orthp"]
  ]
  fig = curves.draw(
    rows, str(tmp_path), ["jsv/mean"], panel="retrain.spec", hue="retrain.orthp"
  )
  colours = _line_colours(fig)
  assert sorted(colours) == ["orthp=False", "orthp=True"]
  assert all(len(c) == 1 for c in colours.values())
  assert len({c for cs in colours.values() for c in cs}) == 2  # Told apart.
  (legend,) = fig.legends
  assert [t.get_text() for t in legend.get_texts()] == ["orthp=False", "orthp=True"]


def test_a_scratch_run_is_not_averaged_into_a_retraining_curve(tmp_path):
  rows, logged = _sweep(tmp_path)
  for row in rows:  # Seed 1 of each setting becomes a Scratch run.
    row["config"] = {"protocol": "scratch" if row["seed"] else "prune_retrain"}
  assert curves.hue_keys(rows, ["retrain.spec"], ["retrain.orthp"]) == [
    "retrain.orthp",
    "protocol",
  ]
  fig = curves.draw(
    rows, str(tmp_path), ["jsv/mean"], panel="retrain.spec", hue="retrain.orthp"
  )
  assert len(_line_colours(fig)) == 4  # 2 OrthP settings x 2 protocols.
  (line,) = [
    ln
    for ln in fig.axes[0].get_lines()
    if ln.get_label() == "orthp=True, protocol=scratch"
  ]
  assert fig.axes[0].get_title() == "spec=0:0.001"
  assert list(line.get_ydata()) == pytest.approx(list(logged[".00111"]))  # One seed.
  # One protocol: no protocol key (the figure of a sweep without Scratch).
  assert curves.hue_keys(rows[:1], ["retrain.spec"], ["retrain.orthp"]) == [
    "retrain.orthp"
  ]


def test_split_figures_draw_one_figure_per_value_of_the_key(tmp_path, monkeypatch):
  rows, _ = _sweep(tmp_path)
  for row in rows:
    row["config"] = {"model": {"name": "lenet5/relu" if row["seed"] else "mlp7"}}
  paths = curves.split_figures(
    rows,
    str(tmp_path),
    ["jsv/mean"],
    str(tmp_path / "out" / "t7"),
    panel="retrain.spec",
    hue="retrain.orthp",
    split="model.name",
    title="retraining",
  )
  assert paths == [
    str(tmp_path / "out" / f"t7_{v}.png") for v in ("lenet5_relu", "mlp7")
  ]
  assert all(os.path.getsize(p) > 0 for p in paths)
  drawn = []
  monkeypatch.setattr(
    curves,
    "figure",
    lambda members, *a, title, **k: drawn.append(
      (title, sorted({m["seed"] for m in members}))
    ),
  )
  curves.split_figures(
    rows,
    str(tmp_path),
    ["jsv/mean"],
    "x",
    panel="retrain.spec",
    hue=[],
    split="model.name",
  )
  assert drawn == [("name=lenet5/relu", [1]), ("name=mlp7", [0])]
  drawn.clear()
  curves.split_figures(
    rows, str(tmp_path), ["jsv/mean"], "x", panel="retrain.spec", hue=[]
  )
  assert drawn == [("", [0, 1])]  # No split: one figure of every row.
