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

A verdict is "reproduced", "not reproduced" or "no data" (a group had no
matching setting, so the run is incomplete, never a silent pass); its
`evidence` lists every number the decision used.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Mapping, Sequence
from typing import Any

KINDS = (
  "greater",
  "best_within_std",
  "decreasing",
  "increasing",
  "gain_shrinks",
  "close",
)
REPRODUCED, NOT_REPRODUCED, NO_DATA = "reproduced", "not reproduced", "no data"


@dataclasses.dataclass(frozen=True)
class Verdict:
  claim_id: str
  paper: str
  text: str
  status: str  # REPRODUCED | NOT_REPRODUCED | NO_DATA
  evidence: tuple[str, ...]  # One line per group: the numbers and the test.

  def as_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)


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


def _stat(entry: Mapping[str, Any], metric: str) -> tuple[float, float] | None:
  if metric not in entry["mean"]:
    return None
  return float(entry["mean"][metric]), float(entry["std"].get(metric, 0.0))


def _one(
  aggregated: Sequence[Mapping[str, Any]], metric: str, *filters: Mapping[str, Any]
) -> tuple[float, float] | None:
  found = [s for s in (_stat(e, metric) for e in _select(aggregated, *filters)) if s]
  if len(found) != 1:
    return None  # Missing, or the filter is ambiguous: both are "no data".
  return found[0]


def _metric_b(claim: Mapping[str, Any]) -> str:
  return claim.get("metric_b", claim["metric"])


def _fmt(stat: tuple[float, float], scale: float) -> str:
  return f"{stat[0] * scale:.2f} ± {stat[1] * scale:.2f}"


def _label(group: Mapping[str, Any]) -> str:
  return ", ".join(f"{k}={v}" for k, v in group.items()) or "all"


def _check_greater(claim, aggregated, group, scale):
  a = _one(aggregated, claim["metric"], claim["a"], group)
  b = _one(aggregated, _metric_b(claim), claim["b"], group)
  if a is None or b is None:
    return None, f"[{_label(group)}] missing a={a} b={b}"
  margin = float(claim.get("margin", 0.0))
  ok = a[0] > b[0] + margin
  line = f"[{_label(group)}] a {_fmt(a, scale)} vs b {_fmt(b, scale)}"
  return ok, line + f" -> a - b = {(a[0] - b[0]) * scale:+.2f}"


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
  ok = gap <= best[1]
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
  means = [s[0] for _, s in points]
  sign = -1.0 if claim["kind"] == "decreasing" else 1.0
  ok = all(sign * (later - earlier) > 0 for earlier, later in itertools.pairwise(means))
  series = ", ".join(f"{xv:g}: {s[0] * scale:.4g}" for xv, s in points)
  return ok, f"[{_label(group)}] {claim['metric']} along {x}: {series}"


def _check_gain_shrinks(claim, aggregated, group, scale):
  metric = claim["metric"]
  gains = {}
  for name in ("otherwise", "when"):
    a = _one(aggregated, metric, claim["a"], claim[name], group)
    b = _one(aggregated, _metric_b(claim), claim["b"], claim[name], group)
    if a is None or b is None:
      return None, f"[{_label(group)}] missing a/b with {name} {claim[name]}"
    gains[name] = a[0] - b[0]
  ok = gains["otherwise"] > 0 and gains["when"] < gains["otherwise"]
  return ok, (
    f"[{_label(group)}] gain a - b: {gains['otherwise'] * scale:+.2f} without, "
    f"{gains['when'] * scale:+.2f} with {claim['when']}"
  )


def _check_close(claim, aggregated, group, scale):
  a = _one(aggregated, claim["metric"], claim["a"], group)
  if a is None:
    return None, f"[{_label(group)}] missing a"
  value, tol = float(claim["value"]), float(claim["tol"])
  ok = abs(a[0] - value) <= tol
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
  "close": _check_close,
}
_REQUIRED = {
  "greater": ("a", "b"),
  "best_within_std": ("a", "among"),
  "decreasing": ("x",),
  "increasing": ("x",),
  "gain_shrinks": ("a", "b", "when", "otherwise"),
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
  claim: Mapping[str, Any], aggregated: Sequence[Mapping[str, Any]]
) -> Verdict:
  """The verdict of one claim over aggregated settings (see module docstring)."""
  validate(claim)
  # Accuracies are fractions in the runs and percentages in the papers.
  scale = 100.0 if claim["metric"].endswith("accuracy") else 1.0
  check = _CHECKS[claim["kind"]]
  # Groups come from the settings the claim is about, not from every setting
  # of the experiment (a scratch baseline may not have a retraining budget).
  filters = [claim[f] for f in ("a", "b", "among") if f in claim] or [{}]
  relevant = [e for e in aggregated if any(matches(e["setting"], f) for f in filters)]
  results = [
    check(claim, aggregated, group, scale)
    for group in _groups(relevant, claim.get("for_each", ()))
  ]
  oks = [ok for ok, _ in results]
  if not results or any(ok is None for ok in oks):
    status = NO_DATA
  else:
    status = REPRODUCED if all(oks) else NOT_REPRODUCED
  evidence = tuple(
    ("holds " if ok else "fails " if ok is not None else "") + line
    for ok, line in results
  )
  return Verdict(claim["id"], claim.get("paper", ""), claim["text"], status, evidence)


def markdown(verdicts: Sequence[Verdict]) -> str:
  """A verdict list for REPORT.md: status, claim, then its evidence lines."""
  lines = []
  for v in verdicts:
    lines.append(f"- **{v.status}** — {v.text} (`{v.claim_id}`)")
    lines += [f"  - {e}" for e in v.evidence]
  return "\n".join(lines) + "\n"
