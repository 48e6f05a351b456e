"""Training: explicit state, jitted data-parallel steps, `train_and_evaluate`.

Also `validate(config)` (the fields the loop reads), `checkpointing` (the one
orbax wrapper) and `metric_writers` (`metrics.jsonl` + TensorBoard).
"""

from jaxprune.train.loop import Start, TrainingDivergedError, train_and_evaluate
from jaxprune.train.state import TrainState, create_train_state, state_from_params
from jaxprune.train.steps import Steps, train_step
from jaxprune.train.validation import validate

__all__ = [
  "Start",
  "Steps",
  "TrainState",
  "TrainingDivergedError",
  "create_train_state",
  "state_from_params",
  "train_and_evaluate",
  "train_step",
  "validate",
]
