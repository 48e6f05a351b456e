"""Can an experiment tell the settings a claim compares apart at all?

A claim "LRW beats FT" is untestable at a budget where LRW's replayed epochs
all fall in the original schedule's last LR stage: the two retraining runs
then follow the very same learning rates, and any difference between them is
noise. Reporting such a group as "not reproduced" would blame the paper for
the experiment's compression. `untestable_groups` computes, from the
schedules themselves, the groups of a claim whose compared settings retrain
with identical learning rates, in the form `verdicts` reads
(`claim["untestable"]`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import ml_collections
import numpy as np

from jaxprune import schedules
from jaxprune.protocols import prune_retrain
from jaxprune.results import sweeps
from jaxprune.schedules import retraining

# Enough steps per epoch to see every change of a per-step schedule shape.
STEPS_PER_EPOCH = 8


def retraining_lrs(
  config: ml_collections.ConfigDict, steps_per_epoch: int = STEPS_PER_EPOCH
) -> np.ndarray:
  """The learning rate of every retraining step of `config`'s first cycle
  (ALLR's data-dependent start evaluated with placeholder statistics)."""
  epochs = int(config.retrain.num_epochs)
  schedule = schedules.create(
    prune_retrain.retrain_schedule(config, epochs),
    steps_per_epoch,
    retraining.VALIDATING,
    path="retrain.schedule",
  )
  return np.asarray([float(schedule(s)) for s in range(epochs * steps_per_epoch)])


def untestable_groups(
  config: ml_collections.ConfigDict,
  a: Mapping[str, Any],
  b: Mapping[str, Any],
  groups: Sequence[Mapping[str, Any]],
) -> list[dict[str, Any]]:
  """[{"group", "why"}] for each of `groups` (override dicts, e.g. one per
  budget) in which settings `a` and `b` retrain with the same learning rates."""
  out = []
  for group in groups:
    lrs = [
      retraining_lrs(sweeps.apply_overrides(config, {**dict(group), **dict(side)}))
      for side in (a, b)
    ]
    if lrs[0].shape == lrs[1].shape and np.allclose(lrs[0], lrs[1], rtol=1e-6):
      names = " and ".join(
        ", ".join(f"{k}={v}" for k, v in side.items()) for side in (a, b)
      )
      out.append(
        {
          "group": dict(group),
          "why": f"{names} retrain with the same learning rate at every step here",
        }
      )
  return out
