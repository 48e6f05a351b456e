"""Reproduction suites: run every experiment of a suite, then write REPORT.md with verdicts.

A suite is a directory of paper files (`configs/mini/<paper>.py`), each a sweep
config (`get_config(arg)`, `get_sweep(arg)`, arg = "EXPERIMENT" or
"EXPERIMENT,smoke") plus an `EXPERIMENTS` dict describing, per experiment, its
title, the metrics to tabulate, figures `(metric, x override, hue override)`,
an optional analysis study (`jaxprune.results.studies`), optional mean-JSV
curves (`jsv_curves: {"panel": keys, "hue": keys}`), metrics read at the start
and end of the runs' curves (`jsv/mean@start`), the published numbers beside
ours when the file defines `paper_cell(setting)`, and the claims to check (`jaxprune.results.verdicts`; `get_claims(arg)` when
they depend on the arg). `base.py` is the suite's shared recipe, not a paper.

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
import datetime
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
from jaxprune.results import curves, report, studies, sweeps, verdicts

SHARED_RECIPE = "base.py"
DEFAULT_OUT = "experiments/results/mini"  # The committed full report.
PARTIAL_OUT = "report_partial"  # Under --workdir: partial / smoke reports.


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
  arg = f"{name},smoke" if smoke else name
  config = sweeps.apply_overrides(module.get_config(arg), config_overrides or {})
  with config.unlocked():
    config.cache_dir = os.path.abspath(os.path.join(workdir, "cache"))
  sweep = module.get_sweep(arg)
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
  if spec.get("analysis") and not report_only:
    rows += studies.get(spec["analysis"])(config, os.path.join(workdir, paper))
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
  for metric, x, hue in spec.get("figures", []):
    path = os.path.join(out, f"{stem}_{metric.replace('/', '_')}_vs_{x}.png")
    report.figure(aggregated, metric, x, hue, path)
    figures.append(path)
  if spec.get("jsv_curves"):  # {"panel": keys, "hue": keys}: Fig. 2 style.
    curve = curves.figure(
      rows,
      exp_dir,
      ["jsv/mean", "test/accuracy"],
      os.path.join(out, f"{stem}_jsv_curves.png"),
      title="retraining",
      **spec["jsv_curves"],
    )
    figures += [curve] if curve else []
  claims = [{"paper": paper, **c} for c in _claims(module, name, arg)]
  found = [verdicts.evaluate(c, aggregated) for c in claims]
  run_seconds = sum(r.get("wall_time_seconds") or 0.0 for r in rows)
  platforms = collections.Counter(r.get("platform", UNRECORDED) for r in rows)
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
    "table": markdown,
    "figures": [os.path.relpath(f, out) for f in figures],
    "verdicts": found,
  }


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


def write_report(
  sections: list[dict[str, Any]],
  out: str,
  *,
  command: str,
  wall: float,
  smoke: bool,
  partial: bool = False,
) -> str:
  all_verdicts = [v for s in sections for v in s["verdicts"]]
  counts = {
    status: sum(v.status == status for v in all_verdicts)
    for status in verdicts.STATUSES
  }
  partial = partial or any(s.get("points", 0) > s["runs"] for s in sections)
  title = "# Mini-reproduction report"
  if smoke:
    title += " (SMOKE: not a result)"
  elif partial:
    title += (
      f" {PARTIAL_MARK}: selected or unfinished experiments, not the whole suite)"
    )
  lines = [
    title,
    "",
    "Generated by code from the runs; do not edit by hand. Regenerate with:",
    "",
    f"    {command}",
    "",
    f"- date: {datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
    f"- git commit: {sweeps.git_commit()}",
    f"- machine: {_machine()}",
    f"- wall time of this invocation: {wall / 60:.1f} min "
    "(finished runs are reused, so a resumed invocation is shorter)",
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
    "| paper | claim | verdict |",
    "|---|---|---|",
  ]
  for v in all_verdicts:
    lines.append(f"| {v.paper} | {v.text} | {v.status} |")
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
      + "; "
      f"{s['wall_seconds'] / 60:.1f} min in this invocation; the rows' runs took "
      f"{s['run_seconds'] / 60:.1f} min when they ran"
      + _where_ran(s.get("platforms", {}))
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
  command: str = "",
  report_only: bool = False,
) -> list[dict[str, Any]]:
  """Runs the selected experiments in file order; writes the report."""
  start = time.time()
  os.makedirs(out, exist_ok=True)
  sections = []
  for path in paper_files(suite_dir):
    paper = os.path.splitext(os.path.basename(path))[0]
    module = sweeps.load_sweep_module(path)
    for name in module.EXPERIMENTS:
      if not _selected(paper, name, only):
        continue
      print(f"[reproduce] {paper}:{name}", flush=True)
      sections.append(
        run_experiment(
          module,
          paper,
          name,
          workdir,
          out,
          smoke=smoke,
          config_overrides=config_overrides,
          report_only=report_only,
        )
      )
  if not sections:
    raise ValueError(f"--only {list(only)} selects no experiment of {suite_dir}")
  write_report(
    sections,
    out,
    command=command,
    wall=time.time() - start,
    smoke=smoke,
    partial=bool(only),
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


def output_dir(out: str | None, workdir: str, *, partial: bool) -> str:
  """Where the report goes: a partial run never overwrites committed results
  (a committed partial report, e.g. a long run's progress, it may replace)."""
  if out is None:
    return os.path.join(workdir, PARTIAL_OUT) if partial else DEFAULT_OUT
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
    help=f"report directory (default: {DEFAULT_OUT} for a full run, "
    f"<workdir>/{PARTIAL_OUT} with --only or --smoke)",
  )
  parser.add_argument("--only", action="append", default=[], help="PAPER[:EXP]")
  parser.add_argument("--smoke", action="store_true", help="seconds-long runs")
  parser.add_argument(
    "--report_only",
    action="store_true",
    help="run nothing: report the rows the workdir has so far (a long run's "
    "progress; counts as partial for --out)",
  )
  parser.add_argument("--data_dir", help="TFDS data dir (default: TFDS's)")
  parser.add_argument("--manual_dir", help="IDX files of fashion_mnist_local")
  parser.add_argument("--compile_cache", help=compile_cache.HELP)
  args = parser.parse_args(argv)
  try:
    compile_cache.setup(args.compile_cache)  # Before the first compile.
    partial = bool(args.only or args.smoke or args.report_only)
    out = output_dir(args.out, args.workdir, partial=partial)
  except ValueError as e:
    parser.error(str(e))
  if args.out is None and partial:
    print(f"[reproduce] partial run: report goes to {out} (not {DEFAULT_OUT})")
  overrides = {}
  if args.data_dir:
    overrides["data.data_dir"] = args.data_dir
  if args.manual_dir:
    overrides["data.manual_dir"] = args.manual_dir
  command = "python -m jaxprune.reproduce " + " ".join(
    sys.argv[1:] if argv is None else argv
  )
  sections = run_suite(
    args.suite,
    args.workdir,
    out,
    smoke=args.smoke,
    only=args.only,
    config_overrides=overrides,
    command=command.strip(),
    report_only=args.report_only,
  )
  found = [v for s in sections for v in s["verdicts"]]
  for v in found:
    print(f"[reproduce] {v.status:15s} {v.claim_id}")
  print(f"[reproduce] report: {os.path.join(out, 'REPORT.md')}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
