"""Sweeps: a base config plus a list of overrides, run resumably, one row per run.

A sweep config file defines `get_config(arg)` (the base) and `get_sweep(arg)`
(a list of override dicts with dotted keys, usually built with `product` and
`seeds`). `run_sweep` executes every point with `jaxprune.protocols.run` in
`<workdir>/runs/<config_hash>/` and appends one row per finished run to
`<workdir>/results.jsonl` (under a file lock, one write per row, so shards on
several processes or machines sharing a directory do not interleave).

Finished points (their config hash is in results.jsonl) are skipped; an
interrupted point resumes from its own checkpoints. `force=True`
(`--force`) reruns finished points and recomputes the shared caches they use. Points are split across
processes with `shard=(i, n)`: process i runs groups i, i+n, i+2n, ... of the
sweep's groups (below; with `group="none"` every point is a group, so points
i, i+n, ...): a group is never split across processes.

`group="auto"` (`--group`, the default) runs a shard's points as groups whose
training phases batch into one compiled program per phase
(`jaxprune.protocols.grouped`); "seeds" groups only points that differ in the
seed, "none" runs them one by one. Rows and run directories are the same.

The command line (`python -m jaxprune.sweeps`) is `jaxprune.results.sweep_cli`;
`jaxprune.results.ray_sweeps` runs the same groups as Ray tasks.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import jax
import ml_collections

import jaxprune
from jaxprune import (
  checks,
  config_args,
  config_utils,
  fingerprint,
  io_utils,
)

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
  "images_per_second",  # Training throughput (the `during` protocol's rows).
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


def point_rows(
  base: ml_collections.ConfigDict, sweep: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
  """Every point as a bare row ({"overrides", "config"}), whose setting
  (`jaxprune.results.settings`) reads as its finished row's will."""
  return [
    {"overrides": o, "config": config_utils.to_json_dict(c)}
    for o, c, _ in expand(base, sweep)
  ]


# What a run's outcome depends on; other tracked files (results, docs) change
# while sweeps run and do not make their rows' code differ from the commit's.
CODE_PATHS = ("jaxprune", "configs")


def describe_commit(repo_dir: str) -> str:
  """The short commit of the repository holding `repo_dir`, with "-dirty" when
  tracked files under CODE_PATHS differ from it; "unknown" outside a checkout."""

  def git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
      ["git", *args], cwd=repo_dir, capture_output=True, text=True, timeout=10
    )

  try:
    commit = git("rev-parse", "--short", "HEAD")
    if commit.returncode or not commit.stdout.strip():
      return "unknown"
    top = git("rev-parse", "--show-toplevel").stdout.strip()
    paths = [os.path.join(top, p) for p in CODE_PATHS]
    # Exit status 1: a difference (staged or not) from HEAD under those paths.
    changed = git("diff", "--quiet", "HEAD", "--", *paths).returncode == 1
    return commit.stdout.strip() + ("-dirty" if changed else "")
  except (OSError, subprocess.SubprocessError):
    return "unknown"


@functools.cache
def git_commit() -> str:
  """jaxprune's commit (`describe_commit`), read once per process (every row
  records it)."""
  return describe_commit(os.path.dirname(os.path.abspath(__file__)))


def platform() -> str:
  """Where this process's runs train, e.g. "gpu: NVIDIA H200, jax 0.11.2" (every
  row records it: a suite's rows may come from several machines)."""
  device = jax.devices()[0]
  return f"{device.platform}: {device.device_kind}, jax {jax.__version__}"


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
    "platform": platform(),
    "config": config_utils.to_json_dict(config),
  }
  row.update({k: summary[k] for k in SUMMARY_FIELDS if k in summary})
  return row


def finished_hashes(workdir: str) -> set[str]:
  rows = io_utils.read_jsonl(os.path.join(workdir, RESULTS_FILE))
  return {r["config_hash"] for r in rows}


def write_row(workdir: str, row: dict[str, Any], replace: bool = False) -> bool:
  """Appends `row` to results.jsonl unless its point already has one (another
  shard or executor task ran it); returns whether it was written. `replace`
  (--force): the row replaces the point's earlier rows instead."""
  path, digest = os.path.join(workdir, RESULTS_FILE), row["config_hash"]
  with io_utils.file_lock(path + ".lock"):
    if replace:
      rows = [r for r in io_utils.read_jsonl(path) if r["config_hash"] != digest]
      io_utils.rewrite_jsonl(path, [*rows, row])  # Atomic.
    elif digest in finished_hashes(workdir):
      return False
    else:
      io_utils.append_jsonl(path, row)
  return True


def _record(
  workdir: str,
  point: tuple[dict[str, Any], ml_collections.ConfigDict, str],
  summary: dict[str, Any],
  replace: bool = False,
) -> dict[str, Any] | None:
  """Writes the point's row (`write_row`); returns it, or None if another
  shard already had."""
  row = make_row(*point, summary)
  return row if write_row(workdir, row, replace) else None


DEFAULT_GROUP_MEMORY_GB = 4.0  # Bounds a group's size (`grouped.max_group_size`).


def run_sweep(
  base: ml_collections.ConfigDict,
  sweep: Sequence[dict[str, Any]],
  workdir: str,
  *,
  shard: tuple[int, int] = (0, 1),
  run_fn: Callable[[ml_collections.ConfigDict, str], dict[str, Any]] | None = None,
  group: str = "auto",
  group_memory_gb: float = DEFAULT_GROUP_MEMORY_GB,
  group_mode: str = "auto",
  no_cache: bool = False,
  force: bool = False,
  group_runs: int | None = None,
) -> list[dict[str, Any]]:
  """Runs this shard's unfinished points; returns the rows it appended.

  `group` (`--group`): "auto" runs the shard's points as groups whose training
  phases batch into one program each (`jaxprune.protocols.grouped`), up to as
  many runs as `group_memory_gb` allows (`group_mode`: how a group's phase
  trains, `jaxprune.train.loop.group_mode`: "vmap", "serial", or "auto" =
  vmap on accelerators, serial on CPU); "seeds" groups only points that
  differ in the seed; "none" runs them one by one. Rows, hashes and run
  directories are the same either way; rows are appended as each point ends.
  `group_runs` (`--group_runs`) caps a group's size (`grouped.form_groups`).

  `no_cache` (`--no_cache`): every point gets a private cache in its run
  directory, so nothing (dense training, pruned state) is shared or reused.

  `force` (`--force`): runs the shard's points even if finished, from
  scratch (their run directories are removed first), replaces their rows, and
  recomputes and overwrites every shared dense / pruned cache entry they use
  that was written before this call (entries written during it are shared as
  usual).
  """
  # Rows record the commit of the code this process loaded: read it now, not
  # when the first row lands (hours later the checkout may be at another).
  git_commit()
  # Not at the top: config files import this module for `product` / `seeds`,
  # and loading a config must not pull in the protocols (TFDS, orbax, jax).
  import jax

  from jaxprune.protocols import common  # (isort keeps these apart; same reason)

  if group != "none" and jax.process_count() > 1:
    # Every process must run the same programs in the same order; a group's
    # phases meet in whatever order its threads arrive.
    print("[sweep] multi-process run: points run one by one", flush=True)
    group = "none"
  total, groups = plan_groups(
    base,
    sweep,
    workdir,
    shard=shard,
    group=group,
    group_memory_gb=group_memory_gb,
    no_cache=no_cache,
    force=force,
    group_mode=group_mode,
    group_runs=group_runs,
  )
  write_planned_configs(workdir, groups)
  record = functools.partial(_record, workdir, replace=force)
  appended: list[dict[str, Any]] = []
  refresh = common.refreshing_caches() if force else contextlib.nullcontext()
  with refresh:
    for members in groups:
      appended += run_group(
        workdir, total, members, record, run_fn=run_fn, mode=group_mode, force=force
      )
  return appended


# One point of a planned sweep: (index, overrides, config, config_hash).
Member = tuple[int, dict[str, Any], ml_collections.ConfigDict, str]


def plan_groups(
  base: ml_collections.ConfigDict,
  sweep: Sequence[dict[str, Any]],
  workdir: str,
  *,
  shard: tuple[int, int] = (0, 1),
  group: str = "auto",
  group_memory_gb: float = DEFAULT_GROUP_MEMORY_GB,
  no_cache: bool = False,
  force: bool = False,
  group_mode: str = "auto",
  min_groups: int | None = None,
  group_runs: int | None = None,
) -> tuple[int, list[list[Member]]]:
  """(number of points, this shard's groups of unfinished points): what
  `run_sweep` runs, one `run_group` call per group. Groups are formed over
  the whole sweep, at least `min_groups` (default: one per shard) when there
  are enough points, and dealt to shards whole, so every shard (and every
  rerun) sees the same groups; finished points are left out (not with
  `force`), and so are groups left empty. `group_mode` is only checked here,
  so that a bad value fails before any point runs."""
  from jaxprune.protocols import grouped  # Not at the top: see run_sweep.
  from jaxprune.train import loop

  checks.choice(group_mode, "--group_mode", loop.GROUP_MODES)
  index, count = shard
  if not 0 <= index < count:
    raise ValueError(f"shard must be i/n with 0 <= i < n, got {index}/{count}")
  os.makedirs(workdir, exist_ok=True)
  points = expand(base, sweep)
  if no_cache:  # cache_dir is resume-safe: the hashes stay the same.
    for _, config, digest in points:
      with config.unlocked():
        config.cache_dir = os.path.join(workdir, "runs", digest, "cache")
  budget = int(group_memory_gb * (1 << 30))
  numbered = [(i, *point) for i, point in enumerate(points)]
  done = set() if force else finished_hashes(workdir)
  formed = grouped.form_groups(
    numbered, group, budget, min_groups=min_groups or count, max_runs=group_runs
  )
  groups = [
    [p for p in g if p[3] not in done]
    for k, g in enumerate(formed)
    if k % count == index
  ]
  return len(points), [g for g in groups if g]


def write_planned_configs(workdir: str, groups: Sequence[Sequence[Member]]) -> None:
  """Validates every planned point and writes its run directory's config.json
  before the first point runs. A bad point then stops the sweep before hours
  of other points ran, and `record save --inflight` finds, from these
  config.json files, the cache entries (dense phase, first pruning) that
  points which have not started yet will read, so a fresh clone does not
  retrain them (`jaxprune.results.inflight.cache_entries`)."""
  # Not at the top: see run_sweep.
  from jaxprune import protocols
  from jaxprune.train import loop as train_loop

  for members in groups:
    for _, _, config, digest in members:
      protocols.validate(config)
      train_loop.prepare_workdir(config, os.path.join(workdir, "runs", digest))


# Writes a finished point's row: (point, summary) -> the row, or None if it
# was not written (`_record`; an executor's task only makes the row).
Recorder = Callable[
  [tuple[dict[str, Any], ml_collections.ConfigDict, str], dict[str, Any]],
  dict[str, Any] | None,
]


def run_group(
  workdir: str,
  total: int,
  members: Sequence[Member],
  record: Recorder,
  *,
  run_fn: Callable[[ml_collections.ConfigDict, str], dict[str, Any]] | None = None,
  mode: str = "auto",
  force: bool = False,
) -> list[dict[str, Any]]:
  """Runs one planned group (`plan_groups`) of a sweep of `total` points, its
  training phases batched in `mode` (`jaxprune.train.loop.group_mode`), and
  hands each finished point to `record`; returns the rows `record` gave.
  `run_fn` (default `jaxprune.protocols.run`) runs one point."""
  from jaxprune import protocols  # Not at the top: see run_sweep.
  from jaxprune.protocols import grouped

  rows: list[dict[str, Any]] = []
  point = functools.partial(
    _run_point, workdir, total, run_fn or protocols.run, rows, record, force=force
  )
  if len(members) == 1:
    point(*members[0], 1)
    return rows
  numbers = ", ".join(str(i + 1) for i, *_ in members)
  print(f"[sweep] points {numbers}/{total} as one group", flush=True)
  tasks = [functools.partial(point, *m, len(members)) for m in members]
  for error in grouped.run_tasks(tasks, mode):
    if isinstance(error, BaseException):
      raise error
  return rows


def _run_point(
  workdir: str,
  total: int,
  run_fn: Callable,
  appended: list[dict[str, Any]],
  record: Recorder,
  i: int,
  overrides: dict[str, Any],
  config: ml_collections.ConfigDict,
  digest: str,
  group_size: int,
  *,
  force: bool = False,
) -> None:
  """Runs one point and hands its summary to `record` (in a group: in the
  point's thread); `force`: from scratch."""
  # Not at the top: see run_sweep.
  from jaxprune.protocols import common
  from jaxprune.train import TrainingDivergedError

  run_dir = os.path.join(workdir, "runs", digest)
  if force:
    shutil.rmtree(run_dir, ignore_errors=True)
  print(f"[sweep] point {i + 1}/{total} {overrides}", flush=True)
  start = time.monotonic()
  try:
    result = run_fn(config, run_dir)
  except TrainingDivergedError as e:
    result = common.record_divergence(config, run_dir, e)
  except io_utils.WorkdirBusyError as e:  # Another process runs it.
    print(f"[sweep] point {i + 1} skipped: {e}", flush=True)
    return
  # Protocols report their phases' times; the row gets the whole point's (of
  # this invocation: a resumed point counts only what it ran now). In a group
  # the runs share the machine: each gets its share of the time it took.
  result = {"wall_time_seconds": (time.monotonic() - start) / group_size, **result}
  if result.get("status") == "diverged":
    print(
      f"[sweep] point {i + 1} diverged in {result.get('phase', 'run')} at "
      f"epoch {result.get('epoch')} (lr {result.get('lr')}); going on",
      flush=True,
    )
  row = record((overrides, config, digest), result)
  if row is not None:
    appended.append(row)
    print(f"[sweep] point {i + 1}/{total} {result_line(row)}", flush=True)


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
