"""Sweeps: a base config plus a list of overrides, run resumably, one row per run.

A sweep config file defines `get_config(arg)` (the base) and `get_sweep(arg)`
(a list of override dicts with dotted keys, usually built with `product` and
`seeds`). `run_sweep` executes every point with `jaxprune.protocols.run` in
`<workdir>/runs/<config_hash>/` and appends one row per finished run to
`<workdir>/results.jsonl` (under a file lock, one write per row, so shards on
several processes or machines sharing a directory do not interleave).

Finished points (their config hash is in results.jsonl) are skipped; an
interrupted point resumes from its own checkpoints. Points are split across
processes with `shard=(i, n)`: process i runs points i, i+n, i+2n, ...

`vmap_seeds=True` (`--vmap_seeds`) runs the points of a shard that differ only
in `seed` as one compiled program vmapped over the seeds where
`jaxprune.protocols.seeds` supports it (plain training; one-shot unstructured
prune -> retrain), and point by point otherwise; the rows and run directories
are the same as without it.

Command line:
  python -m jaxprune.sweeps --config=configs/le2021/table2.py[:ARG] --workdir=DIR \
      [--shard=i/n] [--list] [--vmap_seeds] [--no_cache] [--config.FIELD=VALUE ...]
      [--slurm [--slurm.partition=P --slurm.time=HH:MM:SS --slurm.gpus_per_task=G
                --slurm.tasks=N] [--submit]]   (an sbatch job array; jaxprune.cluster)
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import ml_collections

import jaxprune
from jaxprune import cluster, config_args, config_utils, fingerprint, io_utils

RESULTS_FILE = "results.jsonl"
# Row fields copied from a protocol's summary when present.
SUMMARY_FIELDS = (
  "status",
  "epoch",
  "best_val_accuracy",
  "sparsity",
  "params",
  "nonzero_params",
  "flops",
  "nonzero_flops",
  "speedup",
  "num_params",
  "wall_time_seconds",
  "setup",
  "accuracy_before",
  "phase",  # Of a diverged run: where, and at which LR.
  "cycle",
  "lr",
)


def product(**axes: Sequence[Any]) -> list[dict[str, Any]]:
  """Grid over dotted keys: product(**{"a.b": [1, 2], "c": [3]}) -> 2 points."""
  keys = list(axes)
  return [dict(zip(keys, values)) for values in itertools.product(*axes.values())]


def seeds(
  points: Iterable[dict[str, Any]], values: Sequence[int]
) -> list[dict[str, Any]]:
  """Every point once per seed (`seed` is the innermost axis)."""
  return [{**p, "seed": s} for p in points for s in values]


def apply_overrides(
  base: ml_collections.ConfigDict, overrides: dict[str, Any]
) -> ml_collections.ConfigDict:
  """A copy of `base` with dotted-key overrides; unknown keys raise ValueError."""
  config = ml_collections.ConfigDict(base.to_dict(preserve_field_references=True))
  config.lock()
  for key, value in overrides.items():
    config_utils.check_field(config, key, f"sweep override {key!r}")
    node, *rest = key.rsplit(".", 1)[::-1]
    parent = config
    for part in rest[0].split(".") if rest else ():
      parent = parent[part]
    if isinstance(value, dict):
      value = ml_collections.ConfigDict(value)
    with parent.ignore_type():
      parent[node] = value
  return config


def expand(
  base: ml_collections.ConfigDict, sweep: Sequence[dict[str, Any]]
) -> list[tuple[dict[str, Any], ml_collections.ConfigDict, str]]:
  """(overrides, config, config_hash) per point; duplicate points are refused."""
  points, seen = [], {}
  for index, overrides in enumerate(sweep):
    config = apply_overrides(base, overrides)
    digest = config_utils.config_hash(config)
    if digest in seen:
      raise ValueError(f"sweep points {seen[digest]} and {index} are the same run")
    seen[digest] = index
    points.append((overrides, config, digest))
  return points


def git_commit() -> str:
  try:
    out = subprocess.run(
      ["git", "rev-parse", "--short", "HEAD"],
      cwd=os.path.dirname(os.path.abspath(__file__)),
      capture_output=True,
      text=True,
      timeout=10,
    )
    return out.stdout.strip() or "unknown"
  except (OSError, subprocess.SubprocessError):
    return "unknown"


def make_row(
  overrides: dict[str, Any],
  config: ml_collections.ConfigDict,
  digest: str,
  summary: dict[str, Any],
) -> dict[str, Any]:
  row = {
    "config_hash": digest,
    "overrides": overrides,
    "seed": int(config.seed),
    "metrics": {
      k: v for k, v in summary.items() if "/" in k and not k.startswith("time/")
    },
    "jaxprune_version": jaxprune.__version__,
    "git_commit": git_commit(),
    "code_fingerprint": fingerprint.code("prune"),
    "config": config_utils.to_json_dict(config),
  }
  row.update({k: summary[k] for k in SUMMARY_FIELDS if k in summary})
  return row


def finished_hashes(workdir: str) -> set[str]:
  rows = io_utils.read_jsonl(os.path.join(workdir, RESULTS_FILE))
  return {r["config_hash"] for r in rows}


def _record(
  workdir: str,
  point: tuple[dict[str, Any], ml_collections.ConfigDict, str],
  summary: dict[str, Any],
) -> dict[str, Any] | None:
  """Appends the point's row unless another shard already did; returns it."""
  overrides, config, digest = point
  row = make_row(overrides, config, digest, summary)
  with io_utils.file_lock(os.path.join(workdir, RESULTS_FILE) + ".lock"):
    if digest in finished_hashes(workdir):  # Another shard may have run it.
      return None
    io_utils.append_jsonl(os.path.join(workdir, RESULTS_FILE), row)
  return row


def seed_groups(
  points: Sequence[tuple[int, dict[str, Any], ml_collections.ConfigDict, str]],
) -> list[list[tuple[int, dict[str, Any], ml_collections.ConfigDict, str]]]:
  """`(index, overrides, config, hash)` points grouped by everything but the
  seed, in order of first appearance."""
  from jaxprune.protocols import seeds as seeds_lib

  groups: dict[str, list] = {}
  for point in points:
    groups.setdefault(seeds_lib.group_key(point[2]), []).append(point)
  return list(groups.values())


def run_sweep(
  base: ml_collections.ConfigDict,
  sweep: Sequence[dict[str, Any]],
  workdir: str,
  *,
  shard: tuple[int, int] = (0, 1),
  run_fn: Callable[[ml_collections.ConfigDict, str], dict[str, Any]] | None = None,
  vmap_seeds: bool = False,
  no_cache: bool = False,
) -> list[dict[str, Any]]:
  """Runs this shard's unfinished points; returns the rows it appended.

  `no_cache` (`--no_cache`): every point gets a private cache in its run
  directory, so nothing (dense training, pruned state) is shared or reused.

  `vmap_seeds`: this shard's unfinished points that differ only in `seed` run
  as one vmapped program where `protocols.seeds` supports it (plain training;
  one-shot unstructured prune -> retrain), one by one otherwise (with a note).
  Rows, hashes and run directories are the same either way.
  """
  from jaxprune import protocols
  from jaxprune.protocols import common
  from jaxprune.protocols import seeds as seeds_lib
  from jaxprune.train import TrainingDivergedError

  index, count = shard
  if not 0 <= index < count:
    raise ValueError(f"shard must be i/n with 0 <= i < n, got {index}/{count}")
  if vmap_seeds and run_fn is not None:
    raise ValueError("vmap_seeds runs the protocols itself; leave run_fn unset")
  run_fn = run_fn or protocols.run
  os.makedirs(workdir, exist_ok=True)
  points = expand(base, sweep)
  if no_cache:  # cache_dir is resume-safe: the hashes stay the same.
    for _, config, digest in points:
      with config.unlocked():
        config.cache_dir = os.path.join(workdir, "runs", digest, "cache")
  done = finished_hashes(workdir)
  todo = [
    (i, *point)
    for i, point in enumerate(points)
    if i % count == index and point[2] not in done
  ]
  groups = seed_groups(todo) if vmap_seeds else [[p] for p in todo]
  appended = []
  for group in groups:
    reason = seeds_lib.unsupported(group[0][2]) if len(group) > 1 else "one seed"
    if vmap_seeds and len(group) > 1 and reason:
      print(f"[sweep] {len(group)} seeds run one by one ({reason})", flush=True)
    if vmap_seeds and not reason:
      numbers = ", ".join(str(i + 1) for i, *_ in group)
      print(
        f"[sweep] points {numbers}/{len(points)} {group[0][1]}: "
        f"{len(group)} seeds as one vmapped program",
        flush=True,
      )
      dirs = [os.path.join(workdir, "runs", digest) for *_, digest in group]
      start = time.monotonic()
      try:
        with contextlib.ExitStack() as locks:
          for d in sorted(dirs):  # Sorted: concurrent shards cannot deadlock.
            locks.enter_context(io_utils.workdir_lock(d))
          results = seeds_lib.run_group([p[2] for p in group], dirs)
      except io_utils.WorkdirBusyError as e:  # Another process runs them.
        print(f"[sweep] points {numbers} skipped: {e}", flush=True)
        continue
      # One program ran every seed: each row gets its share of the wall time.
      share = (time.monotonic() - start) / len(group)
      results = [
        {"wall_time_seconds": share, **r} if isinstance(r, dict) else r for r in results
      ]
    else:
      results = [None] * len(group)
    for (i, overrides, config, digest), result in zip(group, results):
      run_dir = os.path.join(workdir, "runs", digest)
      if result is None:
        print(f"[sweep] point {i + 1}/{len(points)} {overrides}", flush=True)
        start = time.monotonic()
        try:
          result = run_fn(config, run_dir)
        except TrainingDivergedError as e:
          result = e
        except io_utils.WorkdirBusyError as e:  # Another process runs it.
          print(f"[sweep] point {i + 1} skipped: {e}", flush=True)
          continue
        if isinstance(result, TrainingDivergedError):
          result = common.record_divergence(config, run_dir, result)
        # Protocols report their phases' times; the row gets the whole point's
        # (of this invocation: a resumed point counts only what it ran now).
        result = {"wall_time_seconds": time.monotonic() - start, **result}
      if isinstance(result, TrainingDivergedError):
        result = common.record_divergence(config, run_dir, result)
      if result.get("status") == "diverged":
        print(
          f"[sweep] point {i + 1} diverged in {result.get('phase', 'run')} at "
          f"epoch {result.get('epoch')} (lr {result.get('lr')}); going on",
          flush=True,
        )
      row = _record(workdir, (overrides, config, digest), result)
      if row is not None:
        appended.append(row)
        print(f"[sweep] point {i + 1}/{len(points)} {result_line(row)}", flush=True)
  return appended


def result_line(row: dict[str, Any]) -> str:
  """One line per finished point: status, accuracy, sparsity, time, overrides."""
  parts = [row.get("status", "completed")]
  acc = row["metrics"].get("test/accuracy")
  if acc is not None:
    parts.append(f"test acc {100 * acc:.2f}%")
  if row.get("sparsity") is not None:
    parts.append(f"sparsity {row['sparsity']:.3f}")
  if row.get("wall_time_seconds") is not None:
    parts.append(f"{row['wall_time_seconds']:.0f}s")
  return ", ".join(parts) + f" {row['overrides']}"


# The one config-file loader (kept under this name for callers of sweeps).
load_sweep_module = config_args.load_module


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m jaxprune.sweeps")
  parser.add_argument("--config", required=True, help="PATH[:ARG] of a sweep config")
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--shard", default="0/1", help="i/n: run points i, i+n, ...")
  parser.add_argument("--list", action="store_true", help="only list the points")
  parser.add_argument(
    "--vmap_seeds",
    action="store_true",
    help="run the seeds of a setting as one vmapped program where supported",
  )
  parser.add_argument(
    "--no_cache",
    action="store_true",
    help="do not share or reuse cached dense / pruned phases between points",
  )
  parser.add_argument(
    "--slurm",
    action="store_true",
    help="write <workdir>/slurm/sweep.sbatch, a job array of shards (see "
    "jaxprune.cluster), instead of running",
  )
  parser.add_argument(
    "--slurm.tasks", dest="slurm_tasks", type=int, help="array size (default: points)"
  )
  cluster.add_slurm_flags(parser, gpus="gpus_per_task")
  args, extra = parser.parse_known_args(argv)
  base, sweep = config_args.load_sweep(args.config)
  try:  # --config.FIELD=VALUE overrides of the base, as in jaxprune.main.
    base = apply_overrides(base, config_utils.parse_overrides(extra, base))
  except ValueError as e:
    parser.error(str(e))
  try:
    index, count = (int(x) for x in args.shard.split("/"))
  except ValueError:
    parser.error(f"--shard must look like i/n, got {args.shard!r}")
  if args.slurm:
    tasks = args.slurm_tasks or len(sweep)
    script = cluster.sweep_array_script(
      args.config,
      args.workdir,
      tasks,
      cluster.options_from_args(args),
      python=sys.executable,
      extra_args=[
        *(["--vmap_seeds"] if args.vmap_seeds else []),
        *(["--no_cache"] if args.no_cache else []),
        *extra,  # --config.FIELD=VALUE overrides.
      ],
    )
    target = os.path.join(os.path.abspath(args.workdir), "slurm", "sweep.sbatch")
    print(cluster.write_script(script, target, submit=args.submit))
    return 0
  if args.list:
    # "done*": finished by other code than this (see jaxprune.fingerprint).
    code = fingerprint.code("prune")
    rows = io_utils.read_jsonl(os.path.join(args.workdir, RESULTS_FILE))
    done = {r["config_hash"]: r.get("code_fingerprint", code) == code for r in rows}
    for i, (overrides, _, digest) in enumerate(expand(base, sweep)):
      state = "todo" if digest not in done else "done" if done[digest] else "done*"
      print(f"{i:4d} {digest} {state} {overrides}")
    return 0
  from jaxprune import checkpointing
  from jaxprune.data import fashion_mnist_local

  try:
    rows = run_sweep(
      base,
      sweep,
      args.workdir,
      shard=(index, count),
      vmap_seeds=args.vmap_seeds,
      no_cache=args.no_cache,
    )
  except (
    ValueError,
    FileNotFoundError,
    checkpointing.CheckpointError,
    fashion_mnist_local.DatasetFileError,
  ) as e:
    print(f"ERROR: {e}", file=sys.stderr)
    return 2
  print(f"[sweep] {len(rows)} runs finished; results: {args.workdir}/{RESULTS_FILE}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
