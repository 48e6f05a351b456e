"""Command line: `python -m jaxprune.main --config=configs/NAME.py[:smoke] --workdir=DIR`.

Any config field can be overridden with `--config.FIELD=VALUE` (e.g.
`--config.num_epochs=5 --config.optimizer.name=adam`); the config is locked, so
a misspelt field stops with an error naming it. Prints `workdir: <path>` and the
final test accuracy.

Multi-process (one run over the devices of several hosts): start the same
command on every host with `--distributed` (coordinator, process count and id
are auto-detected on SLURM / Open MPI / TPU pods, or given with
`--coordinator_address=HOST:PORT --num_processes=N --process_id=I`).
`batch_size` is then the global batch over all devices; every process reads
the data, only process 0 writes metrics and summaries (see
`jaxprune.train.sharding`).
"""

from __future__ import annotations

import os
import sys

import jax
from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file(
  "config", None, "Experiment config file (get_config(arg)).", lock_config=True
)
_WORKDIR = flags.DEFINE_string(
  "workdir", None, "Directory for checkpoints and metrics."
)
_DISTRIBUTED = flags.DEFINE_bool(
  "distributed", False, "Call jax.distributed.initialize() (multi-process run)."
)
_COORDINATOR = flags.DEFINE_string(
  "coordinator_address", None, "HOST:PORT of process 0 (with --distributed)."
)
_NUM_PROCESSES = flags.DEFINE_integer(
  "num_processes", None, "Number of processes (with --distributed)."
)
_PROCESS_ID = flags.DEFINE_integer(
  "process_id", None, "This process's index (with --distributed)."
)
flags.mark_flags_as_required(["config", "workdir"])


def _initialize_distributed() -> None:
  given = [_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value]
  if not _DISTRIBUTED.value:
    if any(v is not None for v in given):
      raise app.UsageError(
        "--coordinator_address/--num_processes/--process_id need --distributed"
      )
    return
  from jaxprune.train import sharding

  sharding.initialize_distributed(*given)


def main(argv: list[str]) -> int:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  # Orbax logs every save at INFO; keep the console for progress and results.
  logging.set_verbosity(logging.WARNING)
  _initialize_distributed()  # Before anything else touches the devices.
  from jaxprune import protocols
  from jaxprune.train import TrainingDivergedError

  workdir = os.path.abspath(_WORKDIR.value)
  print(f"workdir: {workdir}", flush=True)
  try:
    summary = protocols.run(_CONFIG.value, workdir)
  except TrainingDivergedError as e:
    print(f"DIVERGED: {e}", file=sys.stderr)
    return 3
  except (ValueError, FileNotFoundError) as e:
    print(f"ERROR: {e}", file=sys.stderr)
    return 2
  acc = summary.get("test/accuracy")
  if jax.process_index() != 0:
    return 0
  print(f"workdir: {workdir}")
  if acc is not None:
    print(f"final test accuracy: {acc:.4f} ({100 * acc:.2f}%)")
  return 0


def run() -> None:
  app.run(main)


if __name__ == "__main__":
  run()
