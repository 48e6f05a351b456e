"""A sweep's portable record: its rows and curves, without checkpoints.

A workdir holds everything a sweep made (checkpoints, caches, logs); only two
kinds of files are needed to skip finished points and to rebuild a report: the
rows (`results.jsonl`, one per finished point) and each finished run's
per-epoch logs (`runs/<hash>/<phase>/metrics.jsonl`, which the report's
`@start` / `@end` metrics and curve figures read). `save` merges those into a
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
saved: their checkpoints would be needed to resume them.
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
from collections.abc import Iterator, Sequence

from jaxprune import io_utils
from jaxprune.results import sweeps

METRICS_FILE = "metrics.jsonl"


def _sweep_dirs(root: str) -> Iterator[str]:
  """Every directory under `root` that holds a results.jsonl, in sorted order."""
  for here, dirs, files in os.walk(root):
    dirs[:] = sorted(d for d in dirs if d != "runs")  # Runs hold no sweeps.
    if sweeps.RESULTS_FILE in files:
      yield here


def _run_logs(run_dir: str) -> Iterator[str]:
  """Paths (relative to `run_dir`) of the run's per-epoch logs."""
  for here, dirs, files in os.walk(run_dir):
    dirs.sort()
    if METRICS_FILE in files:
      yield os.path.relpath(os.path.join(here, METRICS_FILE), run_dir)


def save(workdir: str, dest: str) -> dict[str, int]:
  """Merges the record of every sweep under `workdir` into `dest` (same
  relative layout; rows already there are kept); returns {"rows": n,
  "logs": m} written."""
  counts = {"rows": 0, "logs": 0}
  for sweep_dir in _sweep_dirs(workdir):
    rel = os.path.relpath(sweep_dir, workdir)
    rows = io_utils.read_jsonl(os.path.join(sweep_dir, sweeps.RESULTS_FILE))
    if not rows:
      continue
    out = os.path.join(dest, rel)
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
  return counts


def restore(src: str, workdir: str) -> dict[str, int]:
  """Merges the record in `src` into `workdir`; returns {"rows": n, "logs": m}
  added. Logs are written only where the workdir has none (a run there is
  never overwritten)."""
  if not os.path.isdir(src):
    raise FileNotFoundError(f"record directory {src!r} does not exist")
  counts = {"rows": 0, "logs": 0}
  for record_dir in _sweep_dirs(src):
    rel = os.path.relpath(record_dir, src)
    sweep_dir = os.path.join(workdir, rel)
    os.makedirs(sweep_dir, exist_ok=True)
    rows = io_utils.read_jsonl(os.path.join(record_dir, sweeps.RESULTS_FILE))
    for row in rows:
      counts["rows"] += sweeps.write_row(sweep_dir, row)
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
  saving.add_argument("workdir")
  saving.add_argument("dest")
  restoring = sub.add_parser("restore", help="record directory -> workdir")
  restoring.add_argument("src")
  restoring.add_argument("workdir")
  args = parser.parse_args(argv)
  try:
    if args.command == "save":
      counts = save(args.workdir, args.dest)
      where = f"{args.workdir} -> {args.dest}"
    else:
      counts = restore(args.src, args.workdir)
      where = f"{args.src} -> {args.workdir}"
  except (FileNotFoundError, ValueError) as e:
    parser.error(str(e))
  print(
    f"[record] {args.command}: {counts['rows']} rows, {counts['logs']} logs ({where})"
  )
  return 0


if __name__ == "__main__":
  sys.exit(main())
