"""Verdicts: check a paper's claim against aggregated runs, by code, with its numbers.

A claim is data (a dict, written next to the sweep that tests it):

  {"id": "le2021.clr_beats_ft", "paper": "le2021",
   "text": "CLR beats FT at every retraining budget",
   "kind": "greater", "metric": "test/accuracy",
   "a": {"retrain.schedule": "clr"}, "b": {"retrain.schedule": "ft"},
   "for_each": ["retrain.num_epochs"]}

and `evaluate(claim, aggregated)` turns it into a `Verdict` over the output of
`jaxprune.results.report.aggregate` (one entry per setting: overrides without the
seed, mean and std per metric). Settings are selected by *filters*: dicts of
override values a setting must have (keys it lacks never match;
{"one_of": [...]} admits several values).

Kinds (every comparison is made separately for each combination of the
`for_each` override values; the claim holds only if it holds in every group):

  greater         mean(a) > mean(b) + margin.
  (`metric_b`, when given, is the metric read for b, e.g. a winning ticket's
  "test/accuracy" against the same run's "random/test/accuracy".)
  best_within_std a is the best of the settings matching `among` (a filter)
                  in its group, or below the best by at most the best's std
                  ("best or within one standard deviation", Zimmer et al.).
  decreasing      the means of the settings matching `a`, ordered by the
                  override `x`, strictly decrease (Fig. 1 of Dynamical Isometry);
  increasing      ... strictly increase.
  close           |mean(a) - value| <= tol (a published constant, e.g. the
                  mean JSV 1 of an orthogonally initialised linear MLP).
  gain_shrinks    gain = mean(a) - mean(b) is smaller with `when` (a filter
                  added to a and b) than with `otherwise`; plus the gain
                  `otherwise` must be positive.
  gap_shrinks     the gap |mean(a) - mean(b)| is smaller with `when` than
                  with `otherwise`, whichever of a and b leads: with s the
                  sign of the gain `otherwise` (g0; g1 with `when`), both
                  s * (g0 - g1) > 0 (it moves toward zero) and s * (g0 + g1)
                  > 0 (it does not overshoot past -g0), plus s * g0 > 0 (there
                  is a gap to close). "OrthP removes the gap at 900 epochs",
                  where the gain without OrthP is negative.

Comparisons of means (greater, gain_shrinks, gap_shrinks, decreasing /
increasing) are made on the effect size with its 95 % confidence interval over
seeds (Welch's t-interval from each setting's mean, std and number of seeds): a group
*holds* when the interval lies on the claimed side of zero, *fails* when it
lies on the other side, and is *inconclusive* when it spans zero (or a
setting has fewer than 2 seeds and differs from the other).

A claim may list groups its settings cannot distinguish,
`"untestable": [{"group": {for_each values}, "why": "..."}]` (e.g. LRW and FT
are the same schedule when the budget lies in the last LR stage, which the
config computes from the schedules): those groups are reported as "not
testable" and left out of the decision.

A verdict is "reproduced" (every testable group holds), "not reproduced" (a
group fails), "inconclusive" (none fails, some are inconclusive), "not
testable at these settings" (every group is untestable) or "no data" (a group
had no matching setting, so the run is incomplete, never a silent pass); its
`evidence` lists every number the decision used.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from scipy import stats as scipy_stats

KINDS = (
  "greater",
  "best_within_std",
  "decreasing",
  "increasing",
  "gain_shrinks",
  "gap_shrinks",
  "close",
)
REPRODUCED, NOT_REPRODUCED, NO_DATA = "reproduced", "not reproduced", "no data"
INCONCLUSIVE, NOT_TESTABLE = "inconclusive", "not testable at these settings"
STATUSES = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_TESTABLE, NO_DATA)
CONFIDENCE = 0.95
# Per-group outcomes of a check (None: no data).
HOLDS, FAILS, UNSURE, UNTESTABLE = "holds", "fails", "inconclusive", "not testable"


@dataclasses.dataclass(frozen=True)
class Verdict:
  claim_id: str
  paper: str
  text: str
  status: str  # REPRODUCED | NOT_REPRODUCED | NO_DATA
  evidence: tuple[str, ...]  # One line per group: the numbers and the test.
  # The same claim on the paper's own numbers (`jaxprune.results.paper_check`);
  # empty where the paper config does not say how to read them.
  paper_status: str = ""
  paper_evidence: tuple[str, ...] = ()

  def as_dict(self) -> dict[str, Any]:
    out = dataclasses.asdict(self)
    if not self.paper_status:
      del out["paper_status"], out["paper_evidence"]
    return out


def matches(setting: Mapping[str, Any], where: Mapping[str, Any]) -> bool:
  """True when the setting has every key of `where` with an equal value.

  A value {"one_of": [v1, v2, ...]} matches any of the listed values.
  """
  return all(k in setting and _admits(v, setting[k]) for k, v in where.items())


def _admits(wanted: Any, value: Any) -> bool:
  if isinstance(wanted, Mapping) and set(wanted) == {"one_of"}:
    return any(_same(value, w) for w in wanted["one_of"])
  return _same(value, wanted)


def _same(a: Any, b: Any) -> bool:
  # JSON round trips turn tuples into lists; numbers compare as numbers.
  if isinstance(a, int | float) and isinstance(b, int | float):
    return float(a) == float(b)
  return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _select(
  aggregated: Sequence[Mapping[str, Any]], *filters: Mapping[str, Any]
) -> list[Mapping[str, Any]]:
  where: dict[str, Any] = {}
  for f in filters:
    where.update(f)
  return [a for a in aggregated if matches(a["setting"], where)]


def _groups(
  aggregated: Sequence[Mapping[str, Any]], keys: Sequence[str]
) -> list[dict[str, Any]]:
  """Every combination of the values the settings take for `keys` (sorted)."""
  if not keys:
    return [{}]
  values = []
  for key in keys:
    seen = {json.dumps(a["setting"][key]) for a in aggregated if key in a["setting"]}
    values.append(sorted((json.loads(v) for v in seen), key=_sort_key))
  return [dict(zip(keys, combo)) for combo in itertools.product(*values)]


def _sort_key(value: Any) -> tuple[int, Any]:
  return (0, float(value)) if isinstance(value, int | float) else (1, str(value))


Stat = tuple[float, float, int]  # mean, std (ddof 0, as aggregated), seeds.


def _stat(entry: Mapping[str, Any], metric: str) -> Stat | None:
  if metric not in entry["mean"]:
    return None
  std = float(entry["std"].get(metric, 0.0))
  return float(entry["mean"][metric]), std, int(entry.get("n", 1))


def interval(terms: Sequence[tuple[float, Stat]]) -> tuple[float, float, float]:
  """(estimate, low, high): the 95 % Welch t-interval of sum(sign * mean) over
  independent settings `terms` = [(sign, (mean, std, n)), ...]. Without
  spread (every std 0) the interval is the point; a setting of one seed
  (unknown spread) gives an infinite interval."""
  estimate = sum(sign * st[0] for sign, st in terms)
  if all(st[1] == 0.0 for _, st in terms):
    return estimate, estimate, estimate
  if any(st[2] < 2 for _, st in terms):
    return estimate, -math.inf, math.inf
  # Sample variances (ddof 1) from the aggregated ddof-0 stds.
  parts = [st[1] ** 2 * st[2] / (st[2] - 1) / st[2] for _, st in terms]
  se2 = sum(parts)
  dof = se2**2 / sum(p**2 / (st[2] - 1) for p, (_, st) in zip(parts, terms))
  half = float(scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, dof)) * math.sqrt(se2)
  return estimate, estimate - half, estimate + half


def _side(low: float, high: float) -> str:
  """holds: the interval is above zero; fails: below; else inconclusive."""
  return HOLDS if low > 0 else FAILS if high < 0 else UNSURE


def _ci(est_low_high: tuple[float, float, float], scale: float) -> str:
  est, low, high = (v * scale for v in est_low_high)
  return f"{est:+.2f} [95% CI {low:+.2f}, {high:+.2f}]"


def _one(
  aggregated: Sequence[Mapping[str, Any]], metric: str, *filters: Mapping[str, Any]
) -> Stat | None:
  found = [s for s in (_stat(e, metric) for e in _select(aggregated, *filters)) if s]
  if len(found) != 1:
    return None  # Missing, or the filter is ambiguous: both are "no data".
  return found[0]


def _describe(
  aggregated: Sequence[Mapping[str, Any]],
  metric: str,
  scale: float,
  *filters: Mapping[str, Any],
) -> str:
  """Why `_one` found nothing usable: no setting, or several (a filter that
  does not pin one setting is a config bug to see, not silence)."""
  found = [s for s in (_stat(e, metric) for e in _select(aggregated, *filters)) if s]
  if len(found) == 1:
    return _fmt(found[0], scale)
  return "no setting" if not found else f"AMBIGUOUS: {len(found)} settings match"


def _metric_b(claim: Mapping[str, Any]) -> str:
  return claim.get("metric_b", claim["metric"])


def _fmt(stat: Stat, scale: float) -> str:
  return f"{stat[0] * scale:.2f} ± {stat[1] * scale:.2f} (n={stat[2]})"


def _label(group: Mapping[str, Any]) -> str:
  return ", ".join(f"{k}={v}" for k, v in group.items()) or "all"


def _check_greater(claim, aggregated, group, scale):
  a = _one(aggregated, claim["metric"], claim["a"], group)
  b = _one(aggregated, _metric_b(claim), claim["b"], group)
  if a is None or b is None:
    a_is = _describe(aggregated, claim["metric"], scale, claim["a"], group)
    b_is = _describe(aggregated, _metric_b(claim), scale, claim["b"], group)
    return None, f"[{_label(group)}] missing: a {a_is}; b {b_is}"
  margin = float(claim.get("margin", 0.0))
  est, low, high = interval([(1.0, a), (-1.0, b)])
  line = f"[{_label(group)}] a {_fmt(a, scale)} vs b {_fmt(b, scale)}"
  margin_note = f" (margin {margin * scale:g})" if margin else ""
  outcome = _side(low - margin, high - margin)
  return outcome, line + f" -> a - b = {_ci((est, low, high), scale)}{margin_note}"


def _check_best(claim, aggregated, group, scale):
  metric = claim["metric"]
  a = _one(aggregated, metric, claim["a"], group)
  rivals = [
    (e["setting"], s)
    for e in _select(aggregated, claim["among"], group)
    if (s := _stat(e, metric))
  ]
  if a is None or not rivals:
    return None, f"[{_label(group)}] missing candidate or rivals"
  best_setting, best = max(rivals, key=lambda r: r[1][0])
  gap = best[0] - a[0]
  ok = HOLDS if gap <= best[1] else FAILS
  key = claim.get("name_by")
  name = best_setting.get(key, best_setting) if key else best_setting
  return ok, (
    f"[{_label(group)}] a {_fmt(a, scale)}, best {name} {_fmt(best, scale)} "
    f"-> gap {gap * scale:.2f} vs best's std {best[1] * scale:.2f}"
  )


def _check_monotone(claim, aggregated, group, scale):
  x = claim["x"]
  points = sorted(
    (float(e["setting"][x]), s)
    for e in _select(aggregated, claim.get("a", {}), group)
    if x in e["setting"] and (s := _stat(e, claim["metric"]))
  )
  if len(points) < 2:
    return None, f"[{_label(group)}] fewer than 2 points along {x}"
  sign = -1.0 if claim["kind"] == "decreasing" else 1.0
  steps = [
    interval([(sign, later), (-sign, earlier)])
    for (_, earlier), (_, later) in itertools.pairwise(points)
  ]
  sides = [_side(low, high) for _, low, high in steps]
  ok = FAILS if FAILS in sides else UNSURE if UNSURE in sides else HOLDS
  series = ", ".join(f"{xv:g}: {s[0] * scale:.4g}" for xv, s in points)
  uncertain = sum(side != HOLDS for side in sides)
  note = f" ({uncertain} of {len(sides)} steps not significant)" if uncertain else ""
  return ok, f"[{_label(group)}] {claim['metric']} along {x}: {series}{note}"


def _with_and_without(claim, aggregated, group):
  """{"otherwise": (a, b), "when": (a, b)} stats of a gain/gap claim, or the
  line saying which is missing."""
  stats = {}
  for name in ("otherwise", "when"):
    a = _one(aggregated, claim["metric"], claim["a"], claim[name], group)
    b = _one(aggregated, _metric_b(claim), claim["b"], claim[name], group)
    if a is None or b is None:
      return f"[{_label(group)}] missing a/b with {name} {claim[name]}"
    stats[name] = (a, b)
  return stats


def _check_gain_shrinks(claim, aggregated, group, scale):
  stats = _with_and_without(claim, aggregated, group)
  if isinstance(stats, str):
    return None, stats
  (a0, b0), (a1, b1) = stats["otherwise"], stats["when"]
  gain = interval([(1.0, a0), (-1.0, b0)])
  shrink = interval([(1.0, a0), (-1.0, b0), (-1.0, a1), (1.0, b1)])
  sides = (_side(*gain[1:]), _side(*shrink[1:]))
  ok = FAILS if FAILS in sides else UNSURE if UNSURE in sides else HOLDS
  when = interval([(1.0, a1), (-1.0, b1)])
  return ok, (
    f"[{_label(group)}] gain a - b: {_ci(gain, scale)} without, "
    f"{_ci(when, scale)} with {claim['when']}; shrinks by {_ci(shrink, scale)}"
  )


def _check_gap_shrinks(claim, aggregated, group, scale):
  stats = _with_and_without(claim, aggregated, group)
  if isinstance(stats, str):
    return None, stats
  (a0, b0), (a1, b1) = stats["otherwise"], stats["when"]
  gain, when = interval([(1.0, a0), (-1.0, b0)]), interval([(1.0, a1), (-1.0, b1)])
  s = 1.0 if gain[0] >= 0 else -1.0  # The side of zero the gap starts on.
  gap = interval([(s, a0), (-s, b0)])
  toward = interval([(s, a0), (-s, b0), (-s, a1), (s, b1)])
  short_of_other_side = interval([(s, a0), (-s, b0), (s, a1), (-s, b1)])
  sides = [_side(*t[1:]) for t in (gap, toward, short_of_other_side)]
  ok = FAILS if FAILS in sides else UNSURE if UNSURE in sides else HOLDS
  return ok, (
    f"[{_label(group)}] gain a - b: {_ci(gain, scale)} without, "
    f"{_ci(when, scale)} with {claim['when']}; gap closes by {_ci(toward, scale)}, "
    f"stays short of the other side by {_ci(short_of_other_side, scale)}"
  )


def _check_close(claim, aggregated, group, scale):
  a = _one(aggregated, claim["metric"], claim["a"], group)
  if a is None:
    return None, f"[{_label(group)}] missing a"
  value, tol = float(claim["value"]), float(claim["tol"])
  ok = HOLDS if abs(a[0] - value) <= tol else FAILS
  return ok, (
    f"[{_label(group)}] {claim['metric']} {a[0] * scale:.4f} ± {a[1] * scale:.4f}"
    f" vs {value * scale:.4f} (tolerance {tol * scale:g})"
  )


_CHECKS = {
  "greater": _check_greater,
  "best_within_std": _check_best,
  "decreasing": _check_monotone,
  "increasing": _check_monotone,
  "gain_shrinks": _check_gain_shrinks,
  "gap_shrinks": _check_gap_shrinks,
  "close": _check_close,
}
_REQUIRED = {
  "greater": ("a", "b"),
  "best_within_std": ("a", "among"),
  "decreasing": ("x",),
  "increasing": ("x",),
  "gain_shrinks": ("a", "b", "when", "otherwise"),
  "gap_shrinks": ("a", "b", "when", "otherwise"),
  "close": ("a", "value", "tol"),
}


def validate(claim: Mapping[str, Any]) -> None:
  for field in ("id", "text", "kind", "metric"):
    if field not in claim:
      raise ValueError(f"claim {claim.get('id', '?')!r} lacks field {field!r}")
  if claim["kind"] not in KINDS:
    raise ValueError(
      f"claim {claim['id']!r}: kind must be one of {KINDS}, got {claim['kind']!r}"
    )
  for field in _REQUIRED[claim["kind"]]:
    if field not in claim:
      raise ValueError(f"claim {claim['id']!r} ({claim['kind']}) lacks {field!r}")


def evaluate(
  claim: Mapping[str, Any],
  aggregated: Sequence[Mapping[str, Any]],
  planned: Sequence[Mapping[str, Any]] = (),
) -> Verdict:
  """The verdict of one claim over aggregated settings (see module docstring).

  `planned`: every setting the experiment will have (its sweep's), so that a
  group whose settings have no rows yet is "no data", not silently absent
  from an unfinished sweep's verdict."""
  validate(claim)
  # Accuracies are fractions in the runs and percentages in the papers.
  scale = 100.0 if claim["metric"].endswith("accuracy") else 1.0
  check = _CHECKS[claim["kind"]]
  # Groups come from the settings the claim is about, not from every setting
  # of the experiment (a scratch baseline may not have a retraining budget).
  filters = [claim[f] for f in ("a", "b", "among") if f in claim] or [{}]
  # Planned settings enter without metrics: they add groups, never numbers.
  entries = [*aggregated, *({"setting": p, "mean": {}, "std": {}} for p in planned)]
  relevant = [e for e in entries if any(matches(e["setting"], f) for f in filters)]
  results = [
    _untestable(claim, group) or check(claim, aggregated, group, scale)
    for group in _groups(relevant, claim.get("for_each", ()))
  ]
  outcomes = [ok for ok, _ in results]
  testable = [ok for ok in outcomes if ok != UNTESTABLE]
  if not results or None in outcomes:
    status = NO_DATA
  elif not testable:
    status = NOT_TESTABLE
  elif FAILS in testable:
    status = NOT_REPRODUCED
  elif UNSURE in testable:
    status = INCONCLUSIVE
  else:
    status = REPRODUCED
  evidence = tuple(f"{ok} {line}" if ok else line for ok, line in results)
  return Verdict(claim["id"], claim.get("paper", ""), claim["text"], status, evidence)


def _untestable(claim: Mapping[str, Any], group: Mapping[str, Any]):
  """(UNTESTABLE, why) when the claim lists `group` as one its settings
  cannot distinguish, else None."""
  for entry in claim.get("untestable", ()):
    if all(_same(group.get(k), v) for k, v in entry["group"].items()):
      return UNTESTABLE, f"[{_label(group)}] {entry['why']}"
  return None


def markdown(verdicts: Sequence[Verdict]) -> str:
  """A verdict list for REPORT.md: status, claim, then its evidence lines."""
  lines = []
  for v in verdicts:
    lines.append(f"- **{v.status}** — {v.text} (`{v.claim_id}`)")
    lines += [f"  - {e}" for e in v.evidence]
    if v.paper_status:
      lines.append(f"  - on the paper's own numbers: **{v.paper_status}**")
      lines += [f"    - {e}" for e in v.paper_evidence]
  return "\n".join(lines) + "\n"
