"""Command line: `python -m jaxprune.main --config=configs/NAME.py[:smoke] --workdir=DIR`.

Any config field can be overridden with `--config.FIELD=VALUE` (e.g.
`--config.num_epochs=5 --config.optimizer.name=adam`); the config is locked, so
a misspelt field stops with an error naming it. Prints `workdir: <path>` and the
final test accuracy.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file(
  "config", None, "Experiment config file (get_config(arg)).", lock_config=True
)
_WORKDIR = flags.DEFINE_string(
  "workdir", None, "Directory for checkpoints and metrics."
)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv: list[str]) -> int:
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  # Orbax logs every save at INFO; keep the console for progress and results.
  logging.set_verbosity(logging.WARNING)
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
  print(f"workdir: {workdir}")
  if acc is not None:
    print(f"final test accuracy: {acc:.4f} ({100 * acc:.2f}%)")
  return 0


def run() -> None:
  app.run(main)


if __name__ == "__main__":
  run()
