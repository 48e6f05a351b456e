"""Training: explicit state, jitted data-parallel steps, one loop for one run or
a group of runs (`train_runs`), and `train_and_evaluate`.

Also `validate(config)` (the fields the loop reads), `checkpointing` (the one
orbax wrapper) and `metric_writers` (`metrics.jsonl` + TensorBoard).
"""

from jaxprune.train.loop import Run, Start, train_and_evaluate, train_runs
from jaxprune.train.member import TrainingDivergedError
from jaxprune.train.state import TrainState, create_train_state, state_from_params
from jaxprune.train.steps import Steps, train_step
from jaxprune.train.validation import validate

__all__ = [
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
