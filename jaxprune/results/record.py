"""A sweep's portable record: its rows and curves, without checkpoints.

A workdir holds everything a sweep made (checkpoints, caches, logs); only two
kinds of files are needed to skip finished points and to rebuild a report: the
rows (`results.jsonl`, one per finished point) and each finished run's
per-epoch logs (`runs/<hash>/<phase>/metrics.jsonl`, which the report's
`@start` / `@end` metrics and curve figures read), and an analysis study's
rows (`study.jsonl`, which `jaxprune.reproduce` computes from checkpoints the
record does not keep). `save` merges those into a
small directory (logs gzipped) that can be committed or moved to another
machine; `restore` merges them into a workdir there, after which the same
sweep or `jaxprune.reproduce` command runs only the points that have no row
and reports on all of them. A long sweep thus goes on across machines that
do not keep their disks: save its record before the machine goes, restore it
on the next one (`make long-runs` does both).

  python -m jaxprune.results.record save WORKDIR RECORD_DIR
  python -m jaxprune.results.record restore RECORD_DIR WORKDIR

Rows are merged by config hash (`sweeps.write_row`): a point with a row on
both sides keeps the workdir's. Runs without a row (interrupted ones) are not
saved unless `save --inflight` packs their newest checkpoints too
(`jaxprune.results.inflight`), for runs longer than a machine lives.

  python -m jaxprune.results.record save --inflight WORKDIR RECORD_DIR

With `--inflight` the record also carries the shared cache entries (dense
phase, first pruning) those unfinished runs read, so a fresh machine resumes
them without retraining their dense networks (`inflight.save_cache`).
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
from collections.abc import Iterator, Sequence

from jaxprune import io_utils
from jaxprune.results import inflight as inflight_runs
from jaxprune.results import sweeps

METRICS_FILE = "metrics.jsonl"
STUDY_FILE = "study.jsonl"  # Recomputed as a whole: the newest copy wins.


def _sweep_dirs(root: str) -> Iterator[str]:
  """Every directory under `root` with a sweep's or a study's rows, sorted."""
  for here, dirs, files in os.walk(root):
    # A sweep whose runs have no row yet, or a record of its unfinished runs.
    packs = "runs" in dirs or inflight_runs.INFLIGHT_DIR in dirs
    dirs[:] = sorted(d for d in dirs if d not in ("runs", inflight_runs.INFLIGHT_DIR))
    if sweeps.RESULTS_FILE in files or STUDY_FILE in files or packs:
      yield here


def _copy_study(src_dir: str, dest_dir: str, *, overwrite: bool) -> int:
  """Copies a study's rows file if `src_dir` has one; returns 1 if written."""
  src, dest = os.path.join(src_dir, STUDY_FILE), os.path.join(dest_dir, STUDY_FILE)
  if not os.path.exists(src) or (os.path.exists(dest) and not overwrite):
    return 0
  with open(src, "rb") as f:
    return int(io_utils.write_bytes_if_changed(dest, f.read()))


def _run_logs(run_dir: str) -> Iterator[str]:
  """Paths (relative to `run_dir`) of the run's per-epoch logs."""
  for here, dirs, files in os.walk(run_dir):
    dirs.sort()
    if METRICS_FILE in files:
      yield os.path.relpath(os.path.join(here, METRICS_FILE), run_dir)


def save(workdir: str, dest: str, inflight: bool = False) -> dict[str, int]:
  """Merges the record of every sweep under `workdir` into `dest` (same
  relative layout; rows already there are kept, a study's rows replaced);
  returns {"rows": n, "logs": m, "studies": k} written (and "inflight": the
  unfinished runs' packs and "cache": the cache entries they read, with
  `inflight`)."""
  counts = {"rows": 0, "logs": 0, "studies": 0}
  if inflight:
    counts["inflight"] = 0
  unfinished: list[str] = []
  for sweep_dir in _sweep_dirs(workdir):
    rel = os.path.relpath(sweep_dir, workdir)
    out = os.path.join(dest, rel)
    counts["studies"] += _copy_study(sweep_dir, out, overwrite=True)
    rows = io_utils.read_jsonl(os.path.join(sweep_dir, sweeps.RESULTS_FILE))
    if inflight:
      finished = {r["config_hash"] for r in rows}
      counts["inflight"] += inflight_runs.save(sweep_dir, out, finished)
      unfinished += inflight_runs.unfinished_runs(sweep_dir, finished)
    if not rows:
      continue
    os.makedirs(out, exist_ok=True)
    for row in rows:  # Merged: rows already in `dest` stay as they are.
      counts["rows"] += sweeps.write_row(out, row)
    for digest in sorted({r["config_hash"] for r in rows}):
      run_dir = os.path.join(sweep_dir, "runs", digest)
      for log in _run_logs(run_dir):
        target = os.path.join(out, "runs", digest, log + ".gz")
        if os.path.exists(target):  # A finished run's log never changes.
          continue
        with open(os.path.join(run_dir, log), "rb") as f:
          data = gzip.compress(f.read(), compresslevel=9, mtime=0)
        io_utils.atomic_write_bytes(target, data)
        counts["logs"] += 1
  if inflight:
    counts["cache"] = inflight_runs.save_cache(workdir, dest, unfinished)
  return counts


def restore(src: str, workdir: str) -> dict[str, int]:
  """Merges the record in `src` into `workdir`; returns {"rows": n, "logs": m,
  "studies": k} added (and "inflight": unfinished runs unpacked, if any). Logs,
  study rows and unfinished runs are written only where the workdir has none
  (a run there is never overwritten)."""
  if not os.path.isdir(src):
    raise FileNotFoundError(f"record directory {src!r} does not exist")
  counts = {"rows": 0, "logs": 0, "studies": 0}
  n = inflight_runs.restore_cache(src, workdir)
  if n:
    counts["cache"] = n
  for record_dir in _sweep_dirs(src):
    rel = os.path.relpath(record_dir, src)
    sweep_dir = os.path.join(workdir, rel)
    os.makedirs(sweep_dir, exist_ok=True)
    counts["studies"] += _copy_study(record_dir, sweep_dir, overwrite=False)
    rows = io_utils.read_jsonl(os.path.join(record_dir, sweeps.RESULTS_FILE))
    for row in rows:
      counts["rows"] += sweeps.write_row(sweep_dir, row)
    finished = {
      r["config_hash"]
      for r in io_utils.read_jsonl(os.path.join(sweep_dir, sweeps.RESULTS_FILE))
    }
    n = inflight_runs.restore(record_dir, sweep_dir, finished)
    if n:
      counts["inflight"] = counts.get("inflight", 0) + n
    runs = os.path.join(record_dir, "runs")
    for here, dirs, files in os.walk(runs):
      dirs.sort()
      for name in sorted(files):
        if not name.endswith(".gz"):
          continue
        log = os.path.relpath(os.path.join(here, name[: -len(".gz")]), runs)
        target = os.path.join(sweep_dir, "runs", log)
        if os.path.exists(target):
          continue
        try:
          with gzip.open(os.path.join(here, name), "rb") as f:
            data = f.read()
        except (OSError, EOFError) as e:
          raise ValueError(
            f"corrupt record file {os.path.join(here, name)}: {e}"
          ) from e
        io_utils.atomic_write_bytes(target, data)
        counts["logs"] += 1
  return counts


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m jaxprune.results.record")
  sub = parser.add_subparsers(dest="command", required=True)
  saving = sub.add_parser("save", help="workdir -> record directory")
  saving.add_argument(
    "--inflight",
    action="store_true",
    help="also pack the unfinished runs' newest checkpoints (resumed after "
    "a restore on another machine)",
  )
  saving.add_argument("workdir")
  saving.add_argument("dest")
  restoring = sub.add_parser("restore", help="record directory -> workdir")
  restoring.add_argument("src")
  restoring.add_argument("workdir")
  args = parser.parse_args(argv)
  try:
    if args.command == "save":
      counts = save(args.workdir, args.dest, inflight=args.inflight)
      where = f"{args.workdir} -> {args.dest}"
    else:
      counts = restore(args.src, args.workdir)
      where = f"{args.src} -> {args.workdir}"
  except (FileNotFoundError, ValueError) as e:
    parser.error(str(e))
  print(
    f"[record] {args.command}: {counts['rows']} rows, {counts['logs']} logs, "
    f"{counts['studies']} studies"
    + (f", {counts['inflight']} unfinished runs" if "inflight" in counts else "")
    + (f", {counts['cache']} cache entries" if "cache" in counts else "")
    + f" ({where})"
  )
  return 0


if __name__ == "__main__":
  sys.exit(main())
