"""Reproduction suites: run every experiment of a suite, then write REPORT.md with verdicts.

A suite is a directory of paper files (`configs/mini/<paper>.py`), each a sweep
config (`get_config(arg)`, `get_sweep(arg)`, arg = "EXPERIMENT" or
"EXPERIMENT,smoke") plus an `EXPERIMENTS` dict describing, per experiment, its
title, the metrics to tabulate, figures `(metric, x override, hue override)`,
an optional analysis study (`jaxprune.results.studies`), optional mean-JSV
curves (`jsv_curves: {"panel": keys, "hue": keys}`, plus `"split": key` for
a figure per value of it), metrics read at the start
and end of the runs' curves (`jsv/mean@start`), the published numbers beside
ours when the file defines `paper_cell(setting)`, and the claims to check
(`jaxprune.results.verdicts`; `get_claims(arg)` when they depend on the arg),
each also checked on the paper's own numbers when the file sets
`PUBLISHED_RUNS` too (`jaxprune.results.paper_check`). `base.py` is the
suite's shared recipe, not a paper.

`run_suite` runs each experiment's sweep resumably in
`<workdir>/<paper>/<experiment>/` (all sharing `<workdir>/cache`, so equal
pretrainings are trained once), aggregates the rows over seeds, evaluates the
claims and writes `<out>/REPORT.md` (tables, figures, one verdict per claim
with the numbers it rests on) and `<out>/verdicts.json`. Nothing in the report
is typed by hand: rerunning regenerates it from the runs.

  python -m jaxprune.reproduce --suite=configs/mini --workdir=workdirs/mini \
      --out=experiments/results/mini [--only=le2021] [--smoke]

A partial (`--only`) or `--smoke` invocation never writes into a committed
results directory (one with files tracked by git, e.g. experiments/results/mini):
without `--out` its report goes to `<workdir>/report_partial/` (printed), and an
`--out` that holds committed results is refused.
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import jax
import ml_collections

from jaxprune import compile_cache, io_utils
from jaxprune.results import (
  curves,
  paper_check,
  record,
  report,
  studies,
  sweeps,
  verdicts,
)
from jaxprune.results.settings import setting_keys, setting_of

SHARED_RECIPE = "base.py"
RESULTS_ROOT = "experiments/results"  # <root>/<suite name>: its committed report.
DEFAULT_OUT = os.path.join(RESULTS_ROOT, "mini")
PARTIAL_OUT = "report_partial"  # Under --workdir: partial / smoke reports.


class SuiteError(ValueError):
  """An invocation that selects nothing to run or report (the CLI's one-line error)."""


def paper_files(suite_dir: str) -> list[str]:
  paths = sorted(glob.glob(os.path.join(suite_dir, "*.py")))
  paths = [
    p for p in paths if os.path.basename(p) not in (SHARED_RECIPE, "__init__.py")
  ]
  if not paths:
    raise ValueError(f"--suite {suite_dir!r} has no paper files (*.py)")
  return paths


def _selected(paper: str, experiment: str, only: Sequence[str]) -> bool:
  return not only or any(o in (paper, f"{paper}:{experiment}") for o in only)


def _claims(module: Any, name: str, arg: str) -> list[dict[str, Any]]:
  if hasattr(module, "get_claims"):
    return module.get_claims(arg)
  return module.EXPERIMENTS[name].get("claims", [])


def _current_rows(
  config: ml_collections.ConfigDict, sweep: list[dict[str, Any]], exp_dir: str
) -> list[dict[str, Any]]:
  """This sweep's rows (results.jsonl may hold rows of an older definition)."""
  wanted = {digest for _, _, digest in sweeps.expand(config, sweep)}
  rows = io_utils.read_jsonl(os.path.join(exp_dir, sweeps.RESULTS_FILE))
  return [r for r in rows if r["config_hash"] in wanted]


def _experiment(
  module: Any,
  name: str,
  workdir: str,
  smoke: bool,
  config_overrides: dict[str, Any] | None,
) -> tuple[str, ml_collections.ConfigDict, list[dict[str, Any]]]:
  """(arg, base config, sweep) of one experiment of a paper file."""
  arg = f"{name},smoke" if smoke else name
  config = sweeps.apply_overrides(module.get_config(arg), config_overrides or {})
  with config.unlocked():
    config.cache_dir = os.path.abspath(os.path.join(workdir, "cache"))
  return arg, config, module.get_sweep(arg)


def has_rows(
  module: Any,
  paper: str,
  name: str,
  workdir: str,
  *,
  smoke: bool = False,
  config_overrides: dict[str, Any] | None = None,
) -> bool:
  """Whether the workdir holds any row of the experiment (sweep or study)."""
  _, config, sweep = _experiment(module, name, workdir, smoke, config_overrides)
  exp_dir = os.path.join(workdir, paper, name)
  if os.path.exists(os.path.join(exp_dir, record.STUDY_FILE)):
    return True
  return bool(sweep) and bool(_current_rows(config, sweep, exp_dir))


def run_experiment(
  module: Any,
  paper: str,
  name: str,
  workdir: str,
  out: str,
  *,
  smoke: bool = False,
  config_overrides: dict[str, Any] | None = None,
  report_only: bool = False,
) -> dict[str, Any]:
  """Runs one experiment's sweep (and study); returns its report section.
  `report_only`: runs nothing, reports the rows the workdir has (a long
  sweep's progress; unfinished settings show as missing, their claims as
  no data)."""

  spec = module.EXPERIMENTS[name]
  arg, config, sweep = _experiment(module, name, workdir, smoke, config_overrides)
  exp_dir = os.path.join(workdir, paper, name)
  start = time.time()
  rows: list[dict[str, Any]] = []
  points = len(sweeps.expand(config, sweep)) if sweep else 0
  if sweep and not report_only:
    # "group_runs" (optional): a cap on a group's size for long experiments,
    # so their rows arrive group by group (`sweeps.run_sweep`).
    sweeps.run_sweep(config, sweep, exp_dir, group_runs=spec.get("group_runs"))
  if sweep:
    rows = _current_rows(config, sweep, exp_dir)
  if spec.get("analysis"):
    rows += _study_rows(spec["analysis"], config, workdir, paper, exp_dir, report_only)
  # Metrics "<m>@start" / "<m>@end" are read from the runs' per-epoch logs.
  ends = sorted({m.split("@")[0] for m in spec["metrics"] if "@" in m})
  if ends:
    rows = curves.attach_endpoints(rows, exp_dir, ends)
  aggregated = report.aggregate(rows)
  theirs = None
  if hasattr(module, "paper_cell"):  # The published numbers beside ours.
    theirs = report.published(aggregated, module.paper_cell)
  markdown, table_csv = report.tables(aggregated, spec["metrics"], theirs)
  stem = f"{paper}_{name}"
  io_utils.atomic_write_bytes(os.path.join(out, f"{stem}.csv"), table_csv.encode())
  figures = []
  # No rows yet (a --report_only of an unstarted experiment): no figures.
  for metric, x, hue in spec.get("figures", []) if rows else []:
    path = os.path.join(out, f"{stem}_{metric.replace('/', '_')}_vs_{x}.png")
    report.figure(aggregated, metric, x, hue, path)
    figures.append(path)
  if spec.get("jsv_curves") and rows:  # {"panel", "hue"[, "split"]}: Fig. 2.
    figures += curves.split_figures(
      rows,
      exp_dir,
      ["jsv/mean", "test/accuracy"],
      os.path.join(out, f"{stem}_jsv_curves"),
      title="retraining",
      **spec["jsv_curves"],
    )
  claims = [{"paper": paper, **c} for c in _claims(module, name, arg)]
  # Every point's setting, so an unfinished sweep's missing groups are no data.
  point_rows = sweeps.point_rows(config, sweep) if sweep else []
  keys = setting_keys(point_rows)
  planned = [setting_of(r, keys) for r in point_rows]
  found = [verdicts.evaluate(c, aggregated, planned) for c in claims]
  found = paper_check.annotate(found, claims, module, point_rows)
  run_seconds = sum(r.get("wall_time_seconds") or 0.0 for r in rows)
  platforms = collections.Counter(r.get("platform", UNRECORDED) for r in rows)
  commits = collections.Counter(r.get("git_commit", UNRECORDED) for r in rows)
  return {
    "paper": paper,
    "experiment": name,
    "title": spec["title"],
    "doc": (module.__doc__ or "").strip(),
    "runs": len(rows),
    "points": points,
    "wall_seconds": time.time() - start,
    "run_seconds": run_seconds,
    "platforms": dict(sorted(platforms.items())),
    "commits": dict(commits),
    "table": markdown,
    "figures": [os.path.relpath(f, out) for f in figures],
    "verdicts": found,
  }


def _study_rows(
  name: str,
  config: ml_collections.ConfigDict,
  workdir: str,
  paper: str,
  exp_dir: str,
  report_only: bool,
) -> list[dict[str, Any]]:
  """Runs the study and keeps its rows in `<exp_dir>/study.jsonl` (saved in a
  record with the sweep's rows), or with `report_only` reads them from there:
  a report regenerates from the record without the checkpoints the study read."""
  path = os.path.join(exp_dir, record.STUDY_FILE)
  if report_only:
    return io_utils.read_jsonl(path)
  commit, where, start = sweeps.git_commit(), sweeps.platform(), time.time()
  rows = studies.get(name)(config, os.path.join(workdir, paper))
  # Stamped like a sweep's rows: the commit (read before the study runs), the
  # platform, and the study's time shared out, so the summed time is its own.
  seconds = (time.time() - start) / max(len(rows), 1)
  rows = [
    {"git_commit": commit, "platform": where, "wall_time_seconds": seconds, **r}
    for r in rows
  ]
  os.makedirs(exp_dir, exist_ok=True)
  io_utils.rewrite_jsonl(path, rows)
  return rows


def _machine() -> str:
  model = "unknown CPU"
  try:
    with open("/proc/cpuinfo") as f:
      model = next(
        (line.split(":", 1)[1].strip() for line in f if line.startswith("model name")),
        model,
      )
  except OSError:
    pass

  return (
    f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}, "
    f"jax {jax.__version__} on {jax.devices()[0].platform}"
  )


# Rows written before rows recorded their platform (see the experiment's notes).
UNRECORDED = "not recorded"


def _where_ran(platforms: dict[str, int]) -> str:
  """' (cpu: cpu, jax 0.10.2 40 rows; gpu: NVIDIA H200, jax 0.11.2 5 rows)', or
  '' when no row says where it ran (older reports stay as they were)."""
  if set(platforms) <= {UNRECORDED}:
    return ""
  parts = [f"{name} {n} rows" for name, n in platforms.items()]
  return " (" + "; ".join(parts) + ")"


PARTIAL_MARK = "(PARTIAL"  # In the title of a report of part of a suite.


def _counted(counts: dict[str, int]) -> str:
  """{"ab2dce8": 35, "6b0809b": 45} -> '6b0809b 45 rows, ab2dce8 35 rows'
  (most rows first)."""
  ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
  return ", ".join(f"{name} {n} rows" for name, n in ordered)


# Config overrides that are command-line flags (they change the runs' hashes,
# so regenerating a report from those runs needs them too).
OVERRIDE_FLAGS = {"data.data_dir": "--data_dir", "data.manual_dir": "--manual_dir"}


def suite_commands(
  suite_dir: str,
  workdir: str,
  out: str,
  only: Sequence[str],
  smoke: bool,
  config_overrides: dict[str, Any] | None = None,
) -> tuple[str, str]:
  """(the command that runs what is missing, the one that only regenerates the
  report), from the suite's arguments alone: the report names them whichever
  invocation wrote it, so regenerating it reproduces it byte for byte."""
  run = f"python -m jaxprune.reproduce --suite={suite_dir} --workdir={workdir}"
  run += f" --out={out}" + "".join(f" --only={o}" for o in only)
  run += " --smoke" if smoke else ""
  for key, flag in OVERRIDE_FLAGS.items():
    if (config_overrides or {}).get(key):
      run += f" {flag}={config_overrides[key]}"
  return run, run + " --report_only"


def write_report(
  sections: list[dict[str, Any]],
  out: str,
  *,
  commands: tuple[str, str],
  smoke: bool,
  partial: bool = False,
  mini: bool = True,
) -> str:
  """Writes REPORT.md and verdicts.json. Everything in them comes from the
  rows and the suite's arguments (no date, machine or invocation time, which
  go to the log instead), so a report regenerated from the same rows, with
  `--report_only` or by a resumed run that had nothing left to do, is the same
  file byte for byte."""
  all_verdicts = [v for s in sections for v in s["verdicts"]]
  counts = {
    status: sum(v.status == status for v in all_verdicts)
    for status in verdicts.STATUSES
  }
  partial = partial or any(s.get("points", 0) > s["runs"] for s in sections)
  title = "# Mini-reproduction report" if mini else "# Reproduction report"
  if smoke:
    title += " (SMOKE: not a result)"
  elif partial:
    title += (
      f" {PARTIAL_MARK}: selected or unfinished experiments, not the whole suite)"
    )
  commits: collections.Counter = collections.Counter()
  for s in sections:
    commits.update(s.get("commits", {}))
  lines = [
    title,
    "",
    "Generated by code from the runs; do not edit by hand. Run what is missing "
    "(finished runs are reused) with:",
    "",
    f"    {commands[0]}",
    "",
    "and regenerate this report from the runs alone with:",
    "",
    f"    {commands[1]}",
    "",
    f"- the runs' git commits: {_counted(commits) or 'none'}",
    f"- the runs' own wall time, summed over every row when it ran: "
    f"{sum(x['run_seconds'] for x in sections) / 60:.1f} min",
    "- claims: " + ", ".join(f"{counts[s]} {s}" for s in verdicts.STATUSES),
    "",
    "Accuracies are percentages, mean ± std over seeds (numpy std, ddof=0).",
    "A claim is checked in every group listed under it: each comparison is an",
    "effect size with its 95 % confidence interval over seeds (Welch's t); a",
    "group holds when the interval lies on the claimed side of zero, fails on",
    "the other side, and is inconclusive when it spans zero. Groups whose",
    "settings the experiment cannot tell apart are marked not testable.",
    "",
    "## Verdicts",
    "",
  ]
  # A last column where some claim was also checked on the paper's numbers.
  theirs = any(v.paper_status for v in all_verdicts)
  lines += [
    "| paper | claim | verdict |" + (" on the paper's own numbers |" if theirs else ""),
    "|---|---|---|" + ("---|" if theirs else ""),
  ]
  for v in all_verdicts:
    mark = f" {v.paper_status or '-'} |" if theirs else ""
    lines.append(f"| {v.paper} | {v.text} | {v.status} |{mark}")
  papers_seen = set()
  for s in sections:
    if s["paper"] not in papers_seen:  # The paper file's docstring, once.
      papers_seen.add(s["paper"])
      lines += ["", f"## {s['paper']}", "", "<details><summary>setup</summary>", ""]
      lines += ["```", s["doc"], "```", "", "</details>"]
    lines += [
      "",
      f"### {s['title']}",
      "",
      f"`{s['paper']}:{s['experiment']}` — {s['runs']} rows"
      + (
        f" of {s['points']} points (UNFINISHED: the other settings have no rows yet)"
        if s.get("points", 0) > s["runs"]
        else ""
      )
      + f"; the rows' runs took {s['run_seconds'] / 60:.1f} min when they ran"
      + _where_ran(s.get("platforms", {}))
      + (f"; commits: {_counted(s['commits'])}" if s.get("commits") else "")
      + ".",
      "",
      s["table"],
    ]
    lines += [f"![{f}]({f})" for f in s["figures"]]
    if s["verdicts"]:
      lines += ["", "Verdicts:", "", verdicts.markdown(s["verdicts"])]
  text = "\n".join(lines).rstrip() + "\n"
  io_utils.atomic_write_bytes(os.path.join(out, "REPORT.md"), text.encode())
  io_utils.atomic_write_json(
    os.path.join(out, "verdicts.json"), [v.as_dict() for v in all_verdicts]
  )
  return text


def run_suite(
  suite_dir: str,
  workdir: str,
  out: str,
  *,
  smoke: bool = False,
  only: Sequence[str] = (),
  config_overrides: dict[str, Any] | None = None,
  report_only: bool = False,
) -> list[dict[str, Any]]:
  """Runs the selected experiments in file order; writes the report."""
  start = time.time()
  selected = []
  for path in paper_files(suite_dir):
    paper = os.path.splitext(os.path.basename(path))[0]
    module = sweeps.load_sweep_module(path)
    selected += [
      (module, paper, n) for n in module.EXPERIMENTS if _selected(paper, n, only)
    ]
  if not selected:
    raise SuiteError(f"--only {list(only)} selects no experiment of {suite_dir}")
  flags = {"smoke": smoke, "config_overrides": config_overrides}
  if report_only and not any(has_rows(*e, workdir, **flags) for e in selected):
    # An empty report (and tables) would replace committed ones: checked
    # before anything is written.
    raise SuiteError(
      f"--report_only: {workdir} has no rows of {suite_dir}; restore its record "
      f"first: python -m jaxprune.results.record restore "
      f"{default_out(suite_dir)}/record {workdir}"
    )
  os.makedirs(out, exist_ok=True)
  sections = []
  for module, paper, name in selected:
    print(f"[reproduce] {paper}:{name}", flush=True)
    sections.append(
      run_experiment(
        module, paper, name, workdir, out, report_only=report_only, **flags
      )
    )
  write_report(
    sections,
    out,
    commands=suite_commands(suite_dir, workdir, out, only, smoke, config_overrides),
    smoke=smoke,
    partial=bool(only),
    mini=os.path.basename(os.path.normpath(suite_dir)) == "mini",
  )
  for s in sections:
    print(
      f"[reproduce] {s['paper']}:{s['experiment']}: {s['runs']} rows, "
      f"{s['wall_seconds'] / 60:.1f} min in this invocation",
      flush=True,
    )
  print(
    f"[reproduce] {(time.time() - start) / 60:.1f} min in all, at commit "
    f"{sweeps.git_commit()} on {_machine()}",
    flush=True,
  )
  return sections


def holds_committed_files(path: str) -> bool:
  """True if `path` is a directory with files tracked by git (committed results)."""
  path = os.path.abspath(path)
  if not os.path.isdir(path):
    return False
  try:
    out = subprocess.run(
      ["git", "ls-files", "--", "."],
      cwd=path,
      capture_output=True,
      text=True,
      timeout=30,
    )
  except (OSError, subprocess.SubprocessError):
    return False
  return out.returncode == 0 and bool(out.stdout.strip())


def is_partial_report(path: str) -> bool:
  """True if `path` holds a REPORT.md of part of a suite (`PARTIAL_MARK`)."""
  try:
    with open(os.path.join(path, "REPORT.md")) as f:
      return PARTIAL_MARK in f.readline()
  except OSError:
    return False


def default_out(suite_dir: str) -> str:
  """The committed report of a suite: configs/cpu_full -> experiments/results/cpu_full."""
  return os.path.join(RESULTS_ROOT, os.path.basename(os.path.normpath(suite_dir)))


def output_dir(
  out: str | None, workdir: str, *, partial: bool, suite_dir: str = "configs/mini"
) -> str:
  """Where the report goes: a partial run never overwrites committed results
  (a committed partial report, e.g. a long run's progress, it may replace)."""
  if out is None:
    return os.path.join(workdir, PARTIAL_OUT) if partial else default_out(suite_dir)
  if partial and holds_committed_files(out) and not is_partial_report(out):
    raise ValueError(
      f"--out={out} holds committed results; a partial (--only) or --smoke run "
      f"must write elsewhere (omit --out for {os.path.join(workdir, PARTIAL_OUT)})"
    )
  return out


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m jaxprune.reproduce")
  parser.add_argument("--suite", default="configs/mini")
  parser.add_argument("--workdir", default="workdirs/mini")
  parser.add_argument(
    "--out",
    help=f"report directory (default: {RESULTS_ROOT}/<suite name> for a full "
    "run, e.g. experiments/results/mini; "
    f"<workdir>/{PARTIAL_OUT} with --only or --smoke)",
  )
  parser.add_argument("--only", action="append", default=[], help="PAPER[:EXP]")
  parser.add_argument("--smoke", action="store_true", help="seconds-long runs")
  parser.add_argument(
    "--report_only",
    action="store_true",
    help="run nothing: write the report from the rows the workdir has (a long "
    "run's progress, or a committed report regenerated from its restored record)",
  )
  parser.add_argument("--data_dir", help="TFDS data dir (default: TFDS's)")
  parser.add_argument("--manual_dir", help="IDX files of fashion_mnist_local")
  parser.add_argument("--compile_cache", help=compile_cache.HELP)
  args = parser.parse_args(argv)
  try:
    compile_cache.setup(args.compile_cache)  # Before the first compile.
    partial = bool(args.only or args.smoke)
    out = output_dir(args.out, args.workdir, partial=partial, suite_dir=args.suite)
  except ValueError as e:
    parser.error(str(e))
  if args.out is None and partial:
    print(
      f"[reproduce] partial run: report goes to {out} (not {default_out(args.suite)})"
    )
  overrides = {
    key: getattr(args, flag[2:])
    for key, flag in OVERRIDE_FLAGS.items()
    if getattr(args, flag[2:])
  }
  try:
    sections = run_suite(
      args.suite,
      args.workdir,
      out,
      smoke=args.smoke,
      only=args.only,
      config_overrides=overrides,
      report_only=args.report_only,
    )
  except SuiteError as e:
    parser.error(str(e))
  found = [v for s in sections for v in s["verdicts"]]
  for v in found:
    print(f"[reproduce] {v.status:15s} {v.claim_id}")
  print(f"[reproduce] report: {os.path.join(out, 'REPORT.md')}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
