"""`validate(config)`: the checks of every field the train loop reads.

The loop owns these fields (epochs, batch sizes, checkpointing, model, data,
optimizer, training schedule), so their checks live here, beside it; a
protocol's own sections are checked by `jaxprune.protocols.validate`, which
calls this first. Each check raises ValueError naming the field and what is
allowed, before any run writes to its workdir.
"""

from __future__ import annotations

import ml_collections

from jaxprune import checks, models, schedules
from jaxprune.data import datasets, pipeline
from jaxprune.train import optim, precision

_POSITIVE = (
  "num_epochs",
  "batch_size",
  "eval_batch_size",
  "eval_every_epochs",
  "checkpoint_every_epochs",
  "keep_checkpoints",
)


def _positive(config: ml_collections.ConfigDict, field: str) -> None:
  value = config[field]
  if not isinstance(value, int) or value <= 0:
    raise ValueError(f"{field} must be a positive integer, got {value!r}")


def validate(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError naming the first invalid field the loop reads."""
  for field in _POSITIVE:
    _positive(config, field)
  checks.field_choice(config, "model.name", models.names())
  # A model section built from scratch (a custom model's) may lack it: auto.
  checks.choice(
    config.model.get("conv_impl", "auto"), "model.conv_impl", models.CONV_IMPLS
  )
  precision.check(config)
  datasets.get_spec(config.data.name)
  checks.field_choice(config, "data.augment", pipeline.AUGMENTATIONS)
  if not 0.0 <= config.data.validation_fraction < 1.0:
    raise ValueError(
      f"data.validation_fraction must be in [0, 1), got {config.data.validation_fraction}"
    )
  for field in ("train_limit", "test_limit"):
    if config.data[field] < 0:
      raise ValueError(f"data.{field} must be >= 0 (0 = all), got {config.data[field]}")
  # Building the optimizer validates its fields (name, weight decay, momentum).
  optim.create(config.optimizer, 0.0)
  # Building the schedule validates its fields (names, specs, milestones). A
  # retraining schedule (a protocol's phase) needs its pruning stats and the
  # real steps per epoch; train_and_evaluate builds (and so checks) it anyway.
  if not schedules.is_retraining(config.schedule):
    schedules.create(config.schedule, steps_per_epoch=1)
