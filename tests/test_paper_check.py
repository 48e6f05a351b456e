"""Claims on the paper's own numbers: the published settings, the second
verdict, and where the report shows it."""

from __future__ import annotations

import json
import os
import types

import pytest

from jaxprune.results import paper_check, reproduce, sweeps, verdicts

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def table3():
  """(module, config, sweep) of the cpu_full DI Table 3 experiment."""
  module = sweeps.load_sweep_module(
    os.path.join(ROOT, "configs", "cpu_full", "wang2021_di.py")
  )
  return module, module.get_config("table3"), module.get_sweep("table3")


def test_published_settings_hold_the_papers_mean_std_and_runs(table3):
  module, config, sweep = table3
  rows = sweeps.point_rows(config, sweep)
  found = paper_check.published_settings(rows, module.paper_cell, 5)
  assert len(found) == len(rows) // 5 == 18  # Every setting, seeds folded.
  (cell,) = [
    e
    for e in found
    if e["setting"]["pruning.ratio"] == 0.8
    and e["setting"]["retrain.num_epochs"] == 90
    and e["setting"]["retrain.spec"].startswith("0:0.01,")
    and not e["setting"]["retrain.orthp"]
    and e["setting"]["protocol"] == "prune_retrain"
  ]
  # Table 3, PR 0.8, 90 epochs, LR 0.01: 91.36 (0.02), as fractions.
  assert cell["n"] == 5
  assert cell["mean"]["test/accuracy"] == pytest.approx(0.9136)
  assert cell["std"]["test/accuracy"] == pytest.approx(0.0002)


def test_cells_without_a_spread_or_of_other_metrics_are_left_out(table3):
  module, config, sweep = table3
  rows = sweeps.point_rows(config, sweep)

  def cell(setting):
    if setting["protocol"] == "scratch":  # Unpruned: printed without a std.
      return {"paper": "wang2021_di", "row_id": "t3_mlp7linear_unpruned"}
    if setting["retrain.num_epochs"] == 900:  # The 'Acc. gain' column.
      return {"paper": "wang2021_di", "row_id": "t3_mlp7linear_pr0.8_900ep_gain"}
    return None if setting["retrain.orthp"] else module.paper_cell(setting)

  found = paper_check.published_settings(rows, cell, 5)
  assert len(found) == 4  # 90 epochs without OrthP: 2 ratios x 2 LRs.
  with pytest.raises(ValueError, match="PUBLISHED_RUNS"):
    paper_check.published_settings(rows, module.paper_cell, 0)
  with pytest.raises(ValueError, match="must match exactly one"):
    paper_check.published_settings(rows, lambda s: {"paper": "wang2021_di"}, 5)


def test_verdicts_carry_the_papers_status_into_report_and_json(table3, tmp_path):
  module, config, sweep = table3
  claims = module.EXPERIMENTS["table3"]["claims"]
  ours = [verdicts.evaluate(c, []) for c in claims]  # No rows: no data.
  rows = sweeps.point_rows(config, sweep)
  found = paper_check.annotate(ours, claims, module, rows)
  assert [v.status for v in found] == [verdicts.NO_DATA] * 4
  assert [v.paper_status for v in found] == [verdicts.REPRODUCED] * 4
  assert "+0.82 [95% CI" in found[0].paper_evidence[0]
  # A paper file without PUBLISHED_RUNS: verdicts unchanged.
  bare = types.SimpleNamespace(paper_cell=module.paper_cell)
  assert paper_check.annotate(ours, claims, bare, rows) == ours

  section = {
    "paper": "wang2021_di",
    "experiment": "table3",
    "title": "T3",
    "doc": "",
    "runs": 0,
    "run_seconds": 0.0,
    "table": "",
    "figures": [],
    "verdicts": found,
  }
  text = reproduce.write_report(
    [section], str(tmp_path), commands=("run", "report"), smoke=False
  )
  assert "| paper | claim | verdict | on the paper's own numbers |" in text
  assert f"| {found[0].text} | no data | reproduced |" in text
  assert "  - on the paper's own numbers: **reproduced**" in text
  with open(tmp_path / "verdicts.json") as f:
    assert json.load(f)[0]["paper_status"] == verdicts.REPRODUCED
  # Without a paper status: no column, no key.
  text = reproduce.write_report(
    [{**section, "verdicts": ours}], str(tmp_path), commands=("r", "o"), smoke=False
  )
  assert "| paper | claim | verdict |\n" in text
  with open(tmp_path / "verdicts.json") as f:
    assert "paper_status" not in json.load(f)[0]
