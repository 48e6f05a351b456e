"""SLURM batch scripts: a sweep as a job array, one large run across hosts.

jaxprune schedules nothing itself: a cluster's scheduler already queues,
retries and preempts. This module only writes the scripts it needs.

* A sweep becomes an `sbatch --array` job whose task k runs
  `python -m jaxprune.sweeps ... --shard=k/N`: the sweep's own resumability
  (finished points skipped, interrupted ones resumed from their checkpoints,
  rows appended under a file lock) makes every task safe to requeue, so the
  script asks for `--requeue`. Each task logs to `<workdir>/slurm/<job>_<k>.out`.

      python -m jaxprune.sweeps --config=configs/le2021/table2.py \\
          --workdir=/shared/sweeps/t2 --slurm --slurm.partition=gpu \\
          --slurm.time=08:00:00 --slurm.gpus_per_task=1 [--submit]

* One run over several hosts becomes an `srun` of `jaxprune.main --distributed`
  with one task per node; process 0's host (the first of the job's nodes) is
  the coordinator, and each task's rank comes from `SLURM_PROCID`.

      python -m jaxprune.cluster --config=configs/liu2019/table1_imagenet.py \\
          --workdir=/shared/runs/r50 --nodes=4 --gpus_per_node=8 [--submit]

Without `--submit` the script is only written (and its path printed), so it
can be read or edited before `sbatch <path>`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import subprocess
import sys
from collections.abc import Sequence

from jaxprune import io_utils

COORDINATOR_PORT = 29431  # Any free port on the first node.


@dataclasses.dataclass(frozen=True)
class SlurmOptions:
  """The `#SBATCH` resources of each task (None: the cluster's default)."""

  partition: str | None = None
  time: str | None = None
  gpus_per_task: int = 0
  cpus_per_task: int | None = None
  mem: str | None = None
  account: str | None = None

  def __post_init__(self):
    if self.gpus_per_task < 0:
      raise ValueError(f"slurm.gpus_per_task must be >= 0, got {self.gpus_per_task}")
    if self.cpus_per_task is not None and self.cpus_per_task < 1:
      raise ValueError(f"slurm.cpus_per_task must be >= 1, got {self.cpus_per_task}")

  def directives(self, gpu_flag: str = "--gpus-per-task") -> list[str]:
    lines = []
    for flag, value in (
      ("--partition", self.partition),
      ("--time", self.time),
      ("--cpus-per-task", self.cpus_per_task),
      ("--mem", self.mem),
      ("--account", self.account),
    ):
      if value is not None:
        lines.append(f"#SBATCH {flag}={value}")
    if self.gpus_per_task:
      lines.append(f"#SBATCH {gpu_flag}={self.gpus_per_task}")
    return lines


def _header(name: str, log: str, options: SlurmOptions, gpu_flag: str) -> list[str]:
  return [
    "#!/bin/bash",
    f"#SBATCH --job-name={name}",
    f"#SBATCH --output={log}",
    "#SBATCH --open-mode=append",  # A requeued task appends to its log.
    *options.directives(gpu_flag),
  ]


def _command(
  python: str, module: str, config: str, workdir: str, extra: Sequence[str]
) -> list[str]:
  return [python, "-m", module, f"--config={config}", f"--workdir={workdir}", *extra]


def sweep_array_script(
  config: str,
  workdir: str,
  tasks: int,
  options: SlurmOptions = SlurmOptions(),
  *,
  python: str = "python",
  extra_args: Sequence[str] = (),
) -> str:
  """An sbatch script whose array task k runs shard k/`tasks` of the sweep."""
  if tasks < 1:
    raise ValueError(f"slurm.tasks must be >= 1, got {tasks}")
  workdir = os.path.abspath(workdir)
  log = os.path.join(workdir, "slurm", "%A_%a.out")
  command = _command(python, "jaxprune.sweeps", config, workdir, extra_args)
  lines = [
    *_header("jaxprune-sweep", log, options, "--gpus-per-task"),
    f"#SBATCH --array=0-{tasks - 1}",
    "#SBATCH --requeue",  # Safe: the sweep resumes; finished points are skipped.
    "set -euo pipefail",
    f"cd {shlex.quote(os.getcwd())}",
    " ".join(shlex.quote(c) for c in command)
    + f' --shard="${{SLURM_ARRAY_TASK_ID}}/{tasks}"',
  ]
  return "\n".join(lines) + "\n"


def multihost_script(
  config: str,
  workdir: str,
  nodes: int,
  options: SlurmOptions = SlurmOptions(),
  *,
  python: str = "python",
  port: int = COORDINATOR_PORT,
  extra_args: Sequence[str] = (),
) -> str:
  """An sbatch script running one `jaxprune.main` run over `nodes` hosts."""
  if nodes < 1:
    raise ValueError(f"nodes must be >= 1, got {nodes}")
  workdir = os.path.abspath(workdir)
  command = _command(
    python, "jaxprune.main", config, workdir, ["--distributed", *extra_args]
  )
  # Single quotes: SLURM_PROCID must expand inside each task, not in the script.
  per_task = (
    " ".join(shlex.quote(c) for c in command)
    + ' --coordinator_address="${head}:'
    + str(port)
    + '" --num_processes="${SLURM_NTASKS}" --process_id="${SLURM_PROCID}"'
  )
  lines = [
    *_header(
      "jaxprune-run", os.path.join(workdir, "slurm-%j.out"), options, "--gpus-per-node"
    ),
    f"#SBATCH --nodes={nodes}",
    "#SBATCH --ntasks-per-node=1",
    "set -euo pipefail",
    f"cd {shlex.quote(os.getcwd())}",
    'head="$(scontrol show hostnames "${SLURM_JOB_NODELIST}" | head -n 1)"',
    "export head",
    f"srun bash -c {shlex.quote(per_task)}",
  ]
  return "\n".join(lines) + "\n"


def write_script(script: str, path: str, *, submit: bool = False) -> str:
  """Writes `script` to `path` (atomically); with `submit`, runs `sbatch` on it
  and returns its output (the job id line); else returns `path`."""
  io_utils.atomic_write_bytes(path, script.encode())
  os.chmod(path, 0o755)
  if not submit:
    return path
  try:
    out = subprocess.run(["sbatch", path], capture_output=True, text=True, check=True)
  except FileNotFoundError:
    raise RuntimeError(
      f"sbatch not found: submit {path} on a SLURM login node"
    ) from None
  except subprocess.CalledProcessError as e:
    raise RuntimeError(f"sbatch {path} failed: {e.stderr.strip()}") from None
  return out.stdout.strip()


def add_slurm_flags(parser: argparse.ArgumentParser, *, gpus: str) -> None:
  """The `--slurm.*` resource flags shared by the sweep and multi-host CLIs."""
  parser.add_argument("--slurm.partition", dest="slurm_partition")
  parser.add_argument("--slurm.time", dest="slurm_time", help="e.g. 08:00:00")
  parser.add_argument(f"--slurm.{gpus}", dest="slurm_gpus", type=int, default=0)
  parser.add_argument("--slurm.cpus_per_task", dest="slurm_cpus", type=int)
  parser.add_argument("--slurm.mem", dest="slurm_mem", help="e.g. 32G")
  parser.add_argument("--slurm.account", dest="slurm_account")
  parser.add_argument("--submit", action="store_true", help="run sbatch on it")


def options_from_args(args: argparse.Namespace) -> SlurmOptions:
  return SlurmOptions(
    partition=args.slurm_partition,
    time=args.slurm_time,
    gpus_per_task=args.slurm_gpus,
    cpus_per_task=args.slurm_cpus,
    mem=args.slurm_mem,
    account=args.slurm_account,
  )


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
    prog="python -m jaxprune.cluster",
    description="Write (and --submit) an sbatch script for one multi-host run.",
  )
  parser.add_argument("--config", required=True, help="PATH[:ARG] of a run config")
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--nodes", type=int, required=True)
  parser.add_argument("--port", type=int, default=COORDINATOR_PORT)
  add_slurm_flags(parser, gpus="gpus_per_node")
  args, extra = parser.parse_known_args(argv)
  bad = [a for a in extra if not a.startswith("--config.")]
  if bad:
    parser.error(f"unknown arguments {bad}; only --config.FIELD=VALUE pass through")
  try:
    script = multihost_script(
      args.config,
      args.workdir,
      args.nodes,
      options_from_args(args),
      python=sys.executable,
      port=args.port,
      extra_args=extra,
    )
    path = os.path.join(os.path.abspath(args.workdir), "run.sbatch")
    print(write_script(script, path, submit=args.submit))
  except (ValueError, RuntimeError) as e:
    print(f"ERROR: {e}", file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  sys.exit(main())
