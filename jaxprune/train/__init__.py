"""Training: explicit state, jitted data-parallel steps, one loop for one run or
a group of runs (`train_runs`), and `train_and_evaluate`.

Also `validate(config)` (the fields the loop reads), `checkpointing` (the one
orbax wrapper) and `metric_writers` (`metrics.jsonl` + TensorBoard).
"""

from jaxprune import io_utils
from jaxprune.data import fashion_mnist_local
from jaxprune.train import checkpointing
from jaxprune.train.loop import Run, Start, train_and_evaluate, train_runs
from jaxprune.train.member import TrainingDivergedError
from jaxprune.train.state import TrainState, create_train_state, state_from_params
from jaxprune.train.steps import Steps, train_step
from jaxprune.train.validation import validate

# What the launchers report as one `ERROR: ...` line (exit code 2) instead of
# a traceback: bad input, missing or unreadable files, a workdir in use.
USER_ERRORS = (
  ValueError,
  FileNotFoundError,
  io_utils.WorkdirBusyError,
  checkpointing.CheckpointError,
  fashion_mnist_local.DatasetFileError,
)

__all__ = [
  "USER_ERRORS",
  "Run",
  "Start",
  "Steps",
  "TrainState",
  "TrainingDivergedError",
  "create_train_state",
  "state_from_params",
  "train_and_evaluate",
  "train_runs",
  "train_step",
  "validate",
]
