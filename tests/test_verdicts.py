"""Verdict logic on synthetic result rows: claims that must pass, fail, or lack data."""

import pytest

from jaxprune.results import report, verdicts


def rows(table):
  """Result rows from {(overrides as tuple of pairs): [accuracy per seed]}."""
  out = []
  for setting, accs in table.items():
    for seed, acc in enumerate(accs):
      out.append(
        {
          "overrides": {**dict(setting), "seed": seed},
          "seed": seed,
          "status": "completed",
          "metrics": {"test/accuracy": acc},
        }
      )
  return report.aggregate(out)


def schedules(ft, clr, budgets=(2, 8)):
  table = {}
  for b in budgets:
    table[(("retrain.schedule", "ft"), ("retrain.num_epochs", b))] = ft[b]
    table[(("retrain.schedule", "clr"), ("retrain.num_epochs", b))] = clr[b]
  return rows(table)


GREATER = {
  "id": "clr_beats_ft",
  "text": "CLR beats FT at every budget",
  "kind": "greater",
  "metric": "test/accuracy",
  "a": {"retrain.schedule": "clr"},
  "b": {"retrain.schedule": "ft"},
  "for_each": ["retrain.num_epochs"],
}


def test_greater_passes_when_it_holds_in_every_group():
  agg = schedules(
    ft={2: [0.80, 0.82], 8: [0.85, 0.85]}, clr={2: [0.84, 0.86], 8: [0.88, 0.86]}
  )
  v = verdicts.evaluate(GREATER, agg)
  assert v.status == verdicts.REPRODUCED
  assert len(v.evidence) == 2
  # The evidence carries the numbers: CLR at budget 2 is 85.00 ± 1.00.
  assert "85.00 ± 1.00" in v.evidence[0] and "+4.00" in v.evidence[0]


def test_greater_fails_when_one_group_breaks_it():
  agg = schedules(
    ft={2: [0.80, 0.82], 8: [0.90, 0.90]}, clr={2: [0.84, 0.86], 8: [0.88, 0.86]}
  )
  v = verdicts.evaluate(GREATER, agg)
  assert v.status == verdicts.NOT_REPRODUCED
  assert v.evidence[0].startswith("holds") and v.evidence[1].startswith("fails")


def test_missing_setting_is_no_data_not_a_pass():
  agg = schedules(ft={2: [0.8]}, clr={2: [0.9]}, budgets=(2,))
  agg = [a for a in agg if a["setting"]["retrain.schedule"] == "clr"]
  assert verdicts.evaluate(GREATER, agg).status == verdicts.NO_DATA
  assert verdicts.evaluate(GREATER, []).status == verdicts.NO_DATA


BEST = {
  "id": "allr_best",
  "text": "ALLR is best or within one std",
  "kind": "best_within_std",
  "metric": "test/accuracy",
  "a": {"retrain.schedule": "allr"},
  "among": {},
  "name_by": "retrain.schedule",
}


def test_best_within_std_uses_the_best_settings_std():
  def agg(allr):
    return rows(
      {
        (("retrain.schedule", "allr"),): allr,
        (("retrain.schedule", "clr"),): [0.88, 0.90],  # mean 0.89, std 0.01
        (("retrain.schedule", "ft"),): [0.70, 0.70],
      }
    )

  assert verdicts.evaluate(BEST, agg([0.885, 0.885])).status == verdicts.REPRODUCED
  assert verdicts.evaluate(BEST, agg([0.95, 0.95])).status == verdicts.REPRODUCED
  failed = verdicts.evaluate(BEST, agg([0.87, 0.87]))  # 2 points below, std 1.
  assert failed.status == verdicts.NOT_REPRODUCED
  assert "gap 2.00" in failed.evidence[0] and "clr" in failed.evidence[0]


def test_decreasing_needs_strictly_falling_means():
  claim = {
    "id": "jsv",
    "text": "mean JSV falls with the pruning ratio",
    "kind": "decreasing",
    "metric": "jsv/mean",
    "x": "pruning.ratio",
  }

  def agg(values):
    out = []
    for ratio, value in values.items():
      out.append(
        {"overrides": {"pruning.ratio": ratio}, "metrics": {"jsv/mean": value}}
      )
    return report.aggregate(out)

  assert (
    verdicts.evaluate(claim, agg({0.0: 1.0, 0.5: 0.6, 0.9: 0.2})).status
    == verdicts.REPRODUCED
  )
  # Input order does not matter; one rise breaks the claim.
  assert (
    verdicts.evaluate(claim, agg({0.9: 0.2, 0.0: 1.0, 0.5: 0.1})).status
    == verdicts.NOT_REPRODUCED
  )


def test_gain_shrinks_with_orthp():
  claim = {
    "id": "orthp",
    "text": "OrthP shrinks the gain of LR 0.01 over 0.001",
    "kind": "gain_shrinks",
    "metric": "test/accuracy",
    "a": {"lr": 0.01},
    "b": {"lr": 0.001},
    "when": {"orthp": True},
    "otherwise": {"orthp": False},
  }

  def agg(no_orthp, with_orthp):
    return rows(
      {
        (("lr", 0.01), ("orthp", False)): [no_orthp[0]],
        (("lr", 0.001), ("orthp", False)): [no_orthp[1]],
        (("lr", 0.01), ("orthp", True)): [with_orthp[0]],
        (("lr", 0.001), ("orthp", True)): [with_orthp[1]],
      }
    )

  good = verdicts.evaluate(claim, agg((0.92, 0.90), (0.925, 0.924)))
  assert good.status == verdicts.REPRODUCED
  assert "+2.00 without" in good.evidence[0]
  # No gain without OrthP to begin with: the premise fails.
  bad = verdicts.evaluate(claim, agg((0.90, 0.92), (0.925, 0.924)))
  assert bad.status == verdicts.NOT_REPRODUCED


def test_bad_claims_are_refused_with_the_field_named():
  with pytest.raises(ValueError, match="kind must be one of"):
    verdicts.evaluate({**GREATER, "kind": "better"}, [])
  with pytest.raises(ValueError, match="lacks 'b'"):
    verdicts.evaluate({k: v for k, v in GREATER.items() if k != "b"}, [])


def test_markdown_lists_status_and_evidence():
  agg = schedules(ft={2: [0.8], 8: [0.8]}, clr={2: [0.9], 8: [0.9]})
  text = verdicts.markdown([verdicts.evaluate(GREATER, agg)])
  assert text.startswith("- **reproduced** — CLR beats FT")
  assert text.count("  - holds") == 2


def test_metric_b_compares_two_metrics_of_one_run():
  claim = {
    "id": "ticket",
    "text": "ticket beats random init",
    "kind": "greater",
    "metric": "test/accuracy",
    "metric_b": "random/test/accuracy",
    "a": {},
    "b": {},
  }
  agg = report.aggregate(
    [
      {"overrides": {}, "metrics": {"test/accuracy": 0.9, "random/test/accuracy": m}}
      for m in (0.8, 0.82)
    ]
  )
  assert verdicts.evaluate(claim, agg).status == verdicts.REPRODUCED
  agg[0]["mean"]["random/test/accuracy"] = 0.95
  assert verdicts.evaluate(claim, agg).status == verdicts.NOT_REPRODUCED


def test_close_and_increasing():
  agg = report.aggregate(
    [
      {"overrides": {"epochs": e}, "metrics": {"jsv/mean": v}}
      for e, v in ((1, 0.9995), (2, 1.2), (3, 1.5))
    ]
  )
  close = {
    "id": "c",
    "text": "isometric",
    "kind": "close",
    "metric": "jsv/mean",
    "a": {"epochs": 1},
    "value": 1.0,
    "tol": 1e-3,
  }
  assert verdicts.evaluate(close, agg).status == verdicts.REPRODUCED
  assert verdicts.evaluate({**close, "a": {"epochs": 2}}, agg).status == (
    verdicts.NOT_REPRODUCED
  )
  rising = {"id": "r", "text": "rises", "kind": "increasing", "metric": "jsv/mean"}
  assert verdicts.evaluate({**rising, "x": "epochs"}, agg).status == (
    verdicts.REPRODUCED
  )
  falling = {**rising, "kind": "decreasing", "x": "epochs"}
  assert verdicts.evaluate(falling, agg).status == verdicts.NOT_REPRODUCED
