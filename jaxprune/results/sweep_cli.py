"""The sweep command line: `python -m jaxprune.sweeps` (`jaxprune/sweeps.py`).

  python -m jaxprune.sweeps --config=configs/le2021/table2.py[:ARG] --workdir=DIR \
      [--shard=i/n] [--list] [--group=auto|seeds|none] [--group_runs=N] [--no_cache] [--force] [--config.FIELD=VALUE ...]
      [--slurm [--slurm.partition=P --slurm.time=HH:MM:SS --slurm.gpus_per_task=G
                --slurm.tasks=N] [--submit]]   (an sbatch job array; jaxprune.cluster)
      [--executor=ray [--ray.address=local|auto|HOST:PORT --ray.cpus_per_task=N
                --ray.gpus_per_task=G --ray.max_retries=K --ray.tasks=T]]
                                   (Ray tasks; jaxprune.results.ray_sweeps)

What runs is `jaxprune.results.sweeps.run_sweep` (the default executor,
"local": this process) or `ray_sweeps.run_sweep_ray`; `--slurm` only writes a
job script, `--list` only lists the points.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from jaxprune import (
  cluster,
  compile_cache,
  config_args,
  config_utils,
  fingerprint,
  io_utils,
)
from jaxprune.results import ray_sweeps
from jaxprune.results.sweeps import (
  DEFAULT_GROUP_MEMORY_GB,
  RESULTS_FILE,
  apply_overrides,
  expand,
  run_sweep,
)

EXECUTORS = ("local", "ray")


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m jaxprune.sweeps")
  parser.add_argument("--config", required=True, help="PATH[:ARG] of a sweep config")
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--shard", default="0/1", help="i/n: run points i, i+n, ...")
  parser.add_argument("--list", action="store_true", help="only list the points")
  parser.add_argument(
    "--group",
    default="auto",
    help="run points as groups whose training phases batch into one program: "
    "auto (any points, bounded by --group_memory_gb), seeds (points that differ "
    "only in the seed), none (one by one)",
  )
  parser.add_argument(
    "--group_memory_gb",
    type=float,
    default=DEFAULT_GROUP_MEMORY_GB,
    help="memory budget that bounds a group's size",
  )
  parser.add_argument(
    "--group_runs",
    type=int,
    help="at most this many runs per group (default: as many as "
    "--group_memory_gb allows, up to 64); smaller groups end, and write their "
    "rows, sooner",
  )
  parser.add_argument(
    "--group_mode",
    default="auto",
    help="how a group's phases train: vmap (one program over a run axis), "
    "serial (one after another through one compiled program), auto (vmap on "
    "GPU/TPU, serial on CPU)",
  )
  parser.add_argument(
    "--vmap_seeds",
    action="store_const",
    const="seeds",
    dest="group",
    help="the same as --group=seeds (kept for old command lines)",
  )
  parser.add_argument(
    "--no_cache",
    action="store_true",
    help="do not share or reuse cached dense / pruned phases between points",
  )
  parser.add_argument(
    "--force",
    action="store_true",
    help="rerun the points even if finished (replacing their rows) and "
    "recompute / overwrite the cached dense and pruned phases they use",
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
  parser.add_argument("--compile_cache", help=compile_cache.HELP)
  cluster.add_slurm_flags(parser, gpus="gpus_per_task")
  parser.add_argument(
    "--executor",
    default="local",
    help="local (this process) or ray (one Ray task per group; see --ray.*)",
  )
  ray_sweeps.add_ray_flags(parser)
  args, extra = parser.parse_known_args(argv)
  if args.executor not in EXECUTORS:
    parser.error(f"--executor must be one of {EXECUTORS}, got {args.executor!r}")
  base, sweep = config_args.load_sweep(args.config)
  try:  # --config.FIELD=VALUE overrides of the base, as in jaxprune.main.
    base = apply_overrides(base, config_utils.parse_overrides(extra, base))
  except ValueError as e:
    parser.error(str(e))
  try:
    index, count = (int(x) for x in args.shard.split("/"))
  except ValueError:
    parser.error(f"--shard must look like i/n, got {args.shard!r}")
  if args.executor == "ray" and (count != 1 or args.slurm):
    parser.error("--executor=ray schedules every group itself: no --shard or --slurm")
  if args.slurm:
    tasks = args.slurm_tasks or len(sweep)
    script = cluster.sweep_array_script(
      args.config,
      args.workdir,
      tasks,
      cluster.options_from_args(args),
      python=sys.executable,
      extra_args=[
        f"--group={args.group}",
        *(["--no_cache"] if args.no_cache else []),
        *(["--force"] if args.force else []),
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
  try:
    cache_dir = compile_cache.setup(args.compile_cache)  # Before any compile.
  except ValueError as e:
    parser.error(f"--compile_cache: {e}")
  # Only a real run needs the training stack; `--list` / `--slurm` stay light.
  from jaxprune.train import USER_ERRORS

  common = dict(
    group=args.group,
    group_memory_gb=args.group_memory_gb,
    group_mode=args.group_mode,
    group_runs=args.group_runs,
    no_cache=args.no_cache,
    force=args.force,
  )
  try:
    if args.executor == "ray":
      options = ray_sweeps.options_from_args(args)
      rows = ray_sweeps.run_sweep_ray(
        base, sweep, args.workdir, options, compile_cache_dir=cache_dir, **common
      )
    else:
      rows = run_sweep(base, sweep, args.workdir, shard=(index, count), **common)
  except (*USER_ERRORS, ray_sweeps.RayExecutorError) as e:
    print(f"ERROR: {e}", file=sys.stderr)
    return 2
  print(f"[sweep] {len(rows)} runs finished; results: {args.workdir}/{RESULTS_FILE}")
  return 0
