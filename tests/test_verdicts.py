"""Verdict logic on synthetic result rows: claims that must pass, fail, or lack data."""

import pytest
from scipy import stats as scipy_stats

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


FT = {2: [0.80, 0.81, 0.82], 8: [0.85, 0.851, 0.849]}
CLR = {2: [0.84, 0.85, 0.86], 8: [0.88, 0.87, 0.89]}


def test_greater_passes_when_it_holds_in_every_group():
  v = verdicts.evaluate(GREATER, schedules(ft=FT, clr=CLR))
  assert v.status == verdicts.REPRODUCED
  assert len(v.evidence) == 2
  # The evidence carries the numbers: CLR at budget 2 is 85.00 ± 0.82 over 3.
  assert "85.00 ± 0.82 (n=3)" in v.evidence[0] and "+4.00" in v.evidence[0]


def test_the_interval_is_welchs_t_interval():
  a, b = [0.84, 0.85, 0.86, 0.9], [0.80, 0.81, 0.83]
  agg = schedules(ft={2: b}, clr={2: a}, budgets=(2,))
  evidence = verdicts.evaluate(GREATER, agg).evidence[0]
  ci = scipy_stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
  assert f"[95% CI {100 * ci.low:+.2f}, {100 * ci.high:+.2f}]" in evidence


def test_greater_fails_when_one_group_breaks_it():
  agg = schedules(ft={**FT, 8: [0.90, 0.91, 0.90]}, clr={**CLR, 8: [0.86, 0.87, 0.86]})
  v = verdicts.evaluate(GREATER, agg)
  assert v.status == verdicts.NOT_REPRODUCED
  assert v.evidence[0].startswith("holds") and v.evidence[1].startswith("fails")


def test_an_interval_spanning_zero_is_inconclusive():
  agg = schedules(ft={**FT, 8: [0.85, 0.88, 0.86]}, clr=CLR)
  v = verdicts.evaluate(GREATER, agg)
  assert v.status == verdicts.INCONCLUSIVE
  assert v.evidence[1].startswith("inconclusive")
  # One seed each and different means: the spread is unknown.
  one = schedules(ft={2: [0.8], 8: [0.8]}, clr={2: [0.9], 8: [0.85, 0.86]})
  assert verdicts.evaluate(GREATER, one).status == verdicts.INCONCLUSIVE


def test_untestable_groups_are_left_out_and_named():
  why = "LRW and FT are the same schedule at this budget"
  claim = {**GREATER, "untestable": [{"group": {"retrain.num_epochs": 2}, "why": why}]}
  agg = schedules(ft={**FT, 2: [0.9, 0.91, 0.9]}, clr=CLR)  # Budget 2 would fail.
  v = verdicts.evaluate(claim, agg)
  assert v.status == verdicts.REPRODUCED
  assert v.evidence[0] == f"not testable [retrain.num_epochs=2] {why}"
  everywhere = {**claim, "untestable": [{"group": {}, "why": why}]}
  assert verdicts.evaluate(everywhere, agg).status == verdicts.NOT_TESTABLE


def test_missing_setting_is_no_data_not_a_pass():
  agg = schedules(ft={2: [0.8]}, clr={2: [0.9]}, budgets=(2,))
  agg = [a for a in agg if a["setting"]["retrain.schedule"] == "clr"]
  assert verdicts.evaluate(GREATER, agg).status == verdicts.NO_DATA
  assert verdicts.evaluate(GREATER, []).status == verdicts.NO_DATA


def test_a_filter_matching_two_settings_is_no_data_and_says_so():
  # DI Table 3's H1 filter {spec, orthp} also matched the Scratch setting
  # (same spec, no OrthP): an ambiguous filter must be named, not look missing.
  agg = rows(
    {
      (("protocol", "prune_retrain"), ("retrain.schedule", "clr")): [0.9, 0.91],
      (("protocol", "scratch"), ("retrain.schedule", "clr")): [0.8, 0.81],
      (("protocol", "prune_retrain"), ("retrain.schedule", "ft")): [0.7, 0.71],
    }
  )
  claim = {**GREATER, "for_each": []}
  found = verdicts.evaluate(claim, agg)
  assert found.status == verdicts.NO_DATA
  assert "a AMBIGUOUS: 2 settings match; b 70.50 ± 0.50 (n=2)" in " ".join(
    found.evidence
  )
  pinned = {**claim, "a": {"retrain.schedule": "clr", "protocol": "prune_retrain"}}
  assert verdicts.evaluate(pinned, agg).status == verdicts.REPRODUCED


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


def orthp_claim(kind):
  return {
    "id": "orthp",
    "text": "OrthP shrinks the gain of LR 0.01 over 0.001",
    "kind": kind,
    "metric": "test/accuracy",
    "a": {"lr": 0.01},
    "b": {"lr": 0.001},
    "when": {"orthp": True},
    "otherwise": {"orthp": False},
  }


def orthp_rows(no_orthp, with_orthp, noise=(-0.001, 0.0, 0.001)):
  """Settings of LR 0.01 / 0.001 without and with OrthP, seeds around means."""
  return rows(
    {
      (("lr", 0.01), ("orthp", False)): [no_orthp[0] + e for e in noise],
      (("lr", 0.001), ("orthp", False)): [no_orthp[1] + e for e in noise],
      (("lr", 0.01), ("orthp", True)): [with_orthp[0] + e for e in noise],
      (("lr", 0.001), ("orthp", True)): [with_orthp[1] + e for e in noise],
    }
  )


def test_gain_shrinks_with_orthp():
  claim = orthp_claim("gain_shrinks")

  def agg(no_orthp, with_orthp):
    return orthp_rows(no_orthp, with_orthp)

  good = verdicts.evaluate(claim, agg((0.92, 0.90), (0.925, 0.924)))
  assert good.status == verdicts.REPRODUCED
  assert "+2.00 [95% CI" in good.evidence[0] and "without" in good.evidence[0]
  # No gain without OrthP to begin with: the premise fails.
  bad = verdicts.evaluate(claim, agg((0.90, 0.92), (0.925, 0.924)))
  assert bad.status == verdicts.NOT_REPRODUCED


def test_gap_shrinks_from_either_side_and_refuses_an_overshoot():
  # "OrthP removes the gap": |a - b| smaller with OrthP, whichever LR led.
  claim = orthp_claim("gap_shrinks")

  def status(no_orthp, with_orthp, noise=(-0.001, 0.0, 0.001)):
    return verdicts.evaluate(claim, orthp_rows(no_orthp, with_orthp, noise)).status

  # Table 3 at PR 0.8, 900 epochs: -0.90 without OrthP, -0.03 with it ...
  table3 = ((0.9164, 0.9254), (0.9281, 0.9284))
  assert status(*table3) == verdicts.REPRODUCED
  # ... which the signed claim calls a gain that grew.
  signed = verdicts.evaluate(orthp_claim("gain_shrinks"), orthp_rows(*table3))
  assert signed.status == verdicts.NOT_REPRODUCED
  assert status((0.92, 0.90), (0.925, 0.924)) == verdicts.REPRODUCED  # +2 -> +0.1
  assert status((0.92, 0.90), (0.90, 0.93)) == verdicts.NOT_REPRODUCED  # -> -3
  assert status((0.90, 0.92), (0.93, 0.90)) == verdicts.NOT_REPRODUCED  # -> +3
  assert status((0.92, 0.90), (0.93, 0.90)) == verdicts.NOT_REPRODUCED  # grew
  # No gap to close: inconclusive, whatever OrthP does.
  assert status((0.92, 0.92), (0.92, 0.92)) == verdicts.INCONCLUSIVE
  wide = (-0.02, 0.0, 0.02)
  assert status((0.92, 0.90), (0.915, 0.905), wide) == verdicts.INCONCLUSIVE


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
      for m in (0.8, 0.82, 0.81)
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


def test_planned_settings_without_rows_make_their_group_no_data():
  # An unfinished sweep: rows of the 2-epoch budget only. Without the plan the
  # claim would be decided on the groups that happen to have rows.
  agg = schedules(ft={2: [0.80, 0.81]}, clr={2: [0.90, 0.91]}, budgets=(2,))
  assert verdicts.evaluate(GREATER, agg).status == verdicts.REPRODUCED
  planned = [
    {"retrain.schedule": s, "retrain.num_epochs": b}
    for s in ("ft", "clr")
    for b in (2, 8)
  ]
  verdict = verdicts.evaluate(GREATER, agg, planned)
  assert verdict.status == verdicts.NO_DATA
  assert any("retrain.num_epochs=8] missing" in e for e in verdict.evidence)
  # Once the rows are in, the plan changes nothing.
  full = schedules(
    ft={2: [0.80, 0.81], 8: [0.8, 0.81]}, clr={2: [0.9, 0.91], 8: [0.9, 0.91]}
  )
  assert verdicts.evaluate(GREATER, full, planned) == verdicts.evaluate(GREATER, full)
