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

from jaxprune import compile_cache

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
_COMPILE_CACHE = flags.DEFINE_string("compile_cache", None, compile_cache.HELP)
flags.mark_flags_as_required(["config", "workdir"])


def _initialize_distributed() -> None:
  given = [_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value]
  if not _DISTRIBUTED.value:
    if any(v is not None for v in given):
      raise app.UsageError(
        "--coordinator_address/--num_processes/--process_id need --distributed"
      )
    return
  # Not at the top: only a --distributed run needs it (before any device use).
  from jaxprune.train import sharding

  sharding.initialize_distributed(*given)


def main(argv: list[str]) -> int:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  # Orbax logs every save at INFO; keep the console for progress and results.
  logging.set_verbosity(logging.WARNING)
  _initialize_distributed()  # Before anything else touches the devices.
  try:
    compile_cache.setup(_COMPILE_CACHE.value)  # Before the first compile.
  except ValueError as e:
    raise app.UsageError(f"--compile_cache: {e}") from None
  # Imported after jax.distributed.initialize: they may touch the devices.
  from jaxprune import protocols
  from jaxprune.train import USER_ERRORS, TrainingDivergedError

  workdir = os.path.abspath(_WORKDIR.value)
  print(f"workdir: {workdir}", flush=True)
  try:
    summary = protocols.run(_CONFIG.value, workdir)
  except TrainingDivergedError as e:
    print(f"DIVERGED: {e}", file=sys.stderr)
    return 3
  except USER_ERRORS as e:
    print(f"ERROR: {e}", file=sys.stderr)
    return 2
  acc = summary.get("test/accuracy")
  if jax.process_index() != 0:
    return 0
  print(f"workdir: {workdir}")
  if acc is not None:
    print(f"final test accuracy: {acc:.4f} ({100 * acc:.2f}%)")
  return 0


def _unknown_override(argv: list[str]) -> str | None:
  """The one-line error for the first `--config.FIELD` that the config file
  lacks (ml_collections reports it as a long traceback naming only the leaf)."""
  # Only on a bad flag; jaxprune.main imports nothing before distributed init.
  from jaxprune import config_args, config_utils

  given = [a.split("=", 1)[1] for a in argv if a.startswith("--config=")]
  if not given:
    return None
  config = config_args.load_config(given[-1])
  for a in argv:
    if a.startswith("--config."):
      try:
        config_utils.check_field(config, a[9:].split("=", 1)[0], a)
      except ValueError as e:
        return str(e)
  return None


def _parse_flags(argv: list[str]) -> list[str]:
  try:
    return flags.FLAGS(argv)
  except (AttributeError, KeyError):
    message = _unknown_override(argv)
    if message is None:
      raise
    sys.exit(f"ERROR: {message}")


def run() -> None:
  app.run(main, flags_parser=_parse_flags)


if __name__ == "__main__":
  run()
