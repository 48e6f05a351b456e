"""Training: explicit state, jitted data-parallel steps, `train_and_evaluate`."""

from jaxprune.train.loop import Start, TrainingDivergedError, train_and_evaluate
from jaxprune.train.state import TrainState, create_train_state, state_from_params
from jaxprune.train.steps import Steps, train_step

__all__ = [
  "Start",
  "Steps",
  "TrainState",
  "TrainingDivergedError",
  "create_train_state",
  "state_from_params",
  "train_and_evaluate",
  "train_step",
]
