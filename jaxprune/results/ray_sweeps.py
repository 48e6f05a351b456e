"""Sweeps on a Ray cluster (`python -m jaxprune.sweeps ... --executor=ray`).

jaxprune schedules nothing itself: Ray places the tasks, restarts them when a
worker or node dies, and reports back. The sweep is planned exactly as the
sequential runner plans it (`sweeps.plan_groups`), and each group becomes one
Ray task with its resource request (`--ray.cpus_per_task`,
`--ray.gpus_per_task`). A task runs its group with the sequential runner's own
function (`sweeps.run_group`) and returns the group's rows instead of writing
them; the driver (this process) writes each row to `<workdir>/results.jsonl`
as its task finishes. So no file lock between workers is needed, and a point
gets exactly one row: a row whose point is already in results.jsonl is not
written again, and a rerun skips finished points as the sequential runner
does.

A task whose worker dies (killed, out of memory, node lost) is run again up to
`--ray.max_retries` times; the retry resumes its points from their
checkpoints. An exception raised by a point is not retried (rerunning the
same code gives the same error): the driver writes every other task's rows,
then reports the failed points.

Run directories, checkpoints and caches are written by the workers under the
workdir, as in a sequential run: workers on one machine share it, and on
several nodes the workdir must be on a filesystem every node mounts (with
jaxprune installed at the same commit on every node).

`--ray.address`: "local" (default) starts a Ray instance on this machine for
the sweep (no dashboard, usage stats off unless RAY_USAGE_STATS_ENABLED is
set, node address 127.0.0.1: Ray may still listen on other interfaces, see
README "Running on a cluster"); "auto" joins the cluster `ray start` made on
this machine; HOST:PORT joins that cluster. A caller that already called
`ray.init` keeps its connection. Ray is an optional extra:
`pip install 'jaxprune[ray]'`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import ml_collections

from jaxprune.results import sweeps

INSTALL_HINT = "--executor=ray needs ray: pip install 'jaxprune[ray]'"


class RayExecutorError(RuntimeError):
  """Ray is missing, or some of the sweep's tasks failed."""


@dataclasses.dataclass(frozen=True)
class RayOptions:
  """Where the tasks run and what each one asks for (`--ray.*`)."""

  address: str = "local"
  cpus_per_task: float = 1.0
  gpus_per_task: float = 0.0
  max_retries: int = 3
  tasks: int | None = None  # Groups to form; None: what the cluster runs at once.

  def __post_init__(self):
    if self.cpus_per_task <= 0:
      raise ValueError(f"ray.cpus_per_task must be > 0, got {self.cpus_per_task}")
    if self.gpus_per_task < 0:
      raise ValueError(f"ray.gpus_per_task must be >= 0, got {self.gpus_per_task}")
    if self.max_retries < 0:
      raise ValueError(f"ray.max_retries must be >= 0, got {self.max_retries}")
    if self.tasks is not None and self.tasks < 1:
      raise ValueError(f"ray.tasks must be >= 1, got {self.tasks}")

  def slots(self, resources: dict[str, float]) -> int:
    """How many tasks of this size the cluster's `resources` run at once."""
    fits = int(resources.get("CPU", 0) // self.cpus_per_task)
    if self.gpus_per_task:
      fits = min(fits, int(resources.get("GPU", 0) // self.gpus_per_task))
    return fits


def add_ray_flags(parser: argparse.ArgumentParser) -> None:
  """The `--ray.*` flags of the sweep CLI."""
  parser.add_argument(
    "--ray.address",
    dest="ray_address",
    default="local",
    help="local (start Ray on this machine), auto (the cluster `ray start` "
    "made here) or HOST:PORT",
  )
  parser.add_argument(
    "--ray.cpus_per_task", dest="ray_cpus_per_task", type=float, default=1
  )
  parser.add_argument(
    "--ray.gpus_per_task", dest="ray_gpus_per_task", type=float, default=0
  )
  parser.add_argument("--ray.max_retries", dest="ray_max_retries", type=int, default=3)
  parser.add_argument(
    "--ray.tasks", dest="ray_tasks", type=int, help="groups to form (default: slots)"
  )


def options_from_args(args: argparse.Namespace) -> RayOptions:
  """The `--ray.FIELD` flags (argparse dest `ray_FIELD`) as options."""
  fields = dataclasses.fields(RayOptions)
  return RayOptions(**{f.name: getattr(args, f"ray_{f.name}") for f in fields})


def import_ray() -> Any:
  """The `ray` module, or RayExecutorError saying how to install it."""
  try:
    import ray
  except ImportError:
    raise RayExecutorError(INSTALL_HINT) from None
  return ray


@contextlib.contextmanager
def connected(ray: Any, address: str) -> Iterator[None]:
  """Ray initialised for the sweep (and shut down after, if this started it)."""
  if ray.is_initialized():
    yield
    return
  if address == "local":
    # Nothing to report home to, and a sweep's local instance serves only
    # this machine: loopback and no dashboard (also the fastest start).
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(address="local", include_dashboard=False, _node_ip_address="127.0.0.1")
  else:
    try:
      ray.init(address=address)
    except (ConnectionError, ray.exceptions.RayError) as e:
      raise RayExecutorError(f"ray.address={address}: {_last_line(e)}") from None
  try:
    yield
  finally:
    ray.shutdown()


def _run_task(
  workdir: str,
  total: int,
  members: list[sweeps.Member],
  run_fn: Callable | None,
  mode: str,
  force: bool,
  stale_before: float,
  cache_dir: str | None,
) -> list[dict[str, Any]]:
  """One Ray task: the group run as the sequential runner runs it; its rows
  are returned, not written (the driver writes them)."""
  from jaxprune import compile_cache  # In the worker, not the driver.
  from jaxprune.protocols import common

  if cache_dir:  # The driver's persistent compilation cache, if any.
    compile_cache.setup(cache_dir)

  def row(point, summary):
    return sweeps.make_row(*point, summary)

  refresh = (
    common.refreshing_caches(stale_before) if force else contextlib.nullcontext()
  )
  with refresh:
    return sweeps.run_group(
      workdir, total, members, row, run_fn=run_fn, mode=mode, force=force
    )


def run_sweep_ray(
  base: ml_collections.ConfigDict,
  sweep: Sequence[dict[str, Any]],
  workdir: str,
  options: RayOptions = RayOptions(),
  *,
  run_fn: Callable[[ml_collections.ConfigDict, str], dict[str, Any]] | None = None,
  group: str = "auto",
  group_memory_gb: float = sweeps.DEFAULT_GROUP_MEMORY_GB,
  group_mode: str = "auto",
  no_cache: bool = False,
  force: bool = False,
  compile_cache_dir: str | None = None,
  group_runs: int | None = None,
) -> list[dict[str, Any]]:
  """`sweeps.run_sweep` with one Ray task per group; returns the rows written.
  Raises RayExecutorError after writing the other rows if tasks failed.
  `compile_cache_dir`: the workers' persistent XLA compilation cache (a
  directory on each node; None: each worker's own environment decides)."""
  ray = import_ray()
  workdir = os.path.abspath(workdir)  # The workers' working directory differs.
  stale_before = time.time()
  with connected(ray, options.address):
    slots = options.slots(ray.cluster_resources())
    if not slots:
      print(
        f"[sweep] the Ray cluster has no room for one task yet "
        f"({options.cpus_per_task} CPUs, {options.gpus_per_task} GPUs): waiting",
        flush=True,
      )
    total, groups = sweeps.plan_groups(
      base,
      sweep,
      workdir,
      group=group,
      group_memory_gb=group_memory_gb,
      no_cache=no_cache,
      force=force,
      group_mode=group_mode,
      min_groups=options.tasks or max(slots, 1),
      group_runs=group_runs,
    )
    sweeps.write_planned_configs(workdir, groups)
    task = ray.remote(_run_task).options(
      num_cpus=options.cpus_per_task,
      num_gpus=options.gpus_per_task,
      max_retries=options.max_retries,
      retry_exceptions=False,
    )
    args = (run_fn, group_mode, force, stale_before, compile_cache_dir)
    pending = {task.remote(workdir, total, g, *args): g for g in groups}
    print(f"[sweep] {len(groups)} Ray tasks for {total} points", flush=True)
    written, failed = [], []
    while pending:
      (done,), _ = ray.wait(list(pending), num_returns=1)
      members = pending.pop(done)
      try:
        rows = ray.get(done)
      except ray.exceptions.RayError as e:
        failed.append((members, e))
        continue
      for row in rows:
        if sweeps.write_row(workdir, row, replace=force):
          written.append(row)
          print(f"[sweep] {sweeps.result_line(row)}", flush=True)
  if failed:
    numbers = sorted(i + 1 for members, _ in failed for i, *_ in members)
    raise RayExecutorError(
      f"{len(failed)} of {len(groups)} Ray tasks failed (points {numbers} have "
      f"no row; rerun to retry them): {_last_line(failed[0][1])}"
    )
  return written


def _last_line(error: BaseException) -> str:
  """The gist of Ray's multi-line errors (a remote traceback ends with it)."""
  lines = str(error).strip().splitlines()
  return lines[-1] if lines else type(error).__name__
