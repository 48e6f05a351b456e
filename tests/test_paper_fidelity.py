"""Paper configs against the papers' own definitions (issue 22).

Each test quotes the sentence it pins and reads the protocol off the built
sweep points, so a config that drifts from the paper fails here.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxprune import schedules, sweeps
from jaxprune.protocols import retrain

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPE = 4  # Steps per epoch: enough to see per-step schedules, cheap to evaluate.


def points(rel: str, arg=None):
  """(overrides, config) of every point of configs/<rel>."""
  module = sweeps.load_sweep_module(os.path.join(ROOT, "configs", rel))
  base = module.get_config(arg)
  return [(o, c) for o, c, _ in sweeps.expand(base, module.get_sweep(arg))]


def lr_curve(sched_cfg, steps: int) -> np.ndarray:
  schedule = schedules.create(sched_cfg, SPE, None)
  return np.asarray(jax.jit(jax.vmap(schedule))(jnp.arange(steps)))


@pytest.mark.parametrize("rel", ["wang2023/table6.py", "wang2023/table7.py"])
def test_wang2023_finetuning_arms_end_at_the_stated_minimum_lr(rel):
  """Wang et al. 2023 App. C: "For finetuning, the initial LR is 0.01 or 0.001,
  the minimum LR 0.0001, total epochs 120." and "When we switch from Step LR
  schedule to Cosine, the initial LR and minimum LR are kept the same"."""
  seen = set()
  for overrides, config in points(rel):
    if config.protocol != "prune_retrain" or overrides.get("seed"):
      continue
    epochs = config.retrain.num_epochs
    assert epochs == 120
    lrs = lr_curve(retrain.retrain_schedule(config, epochs), epochs * SPE)
    first = float(lrs[0])
    assert first in (pytest.approx(0.01), pytest.approx(0.001)), overrides
    assert lrs[-1] == pytest.approx(1e-4, rel=1e-3), overrides
    assert lrs.min() == pytest.approx(1e-4, rel=1e-3), overrides
    seen.add((config.retrain.schedule, round(first, 6)))
  assert len(seen) == 4  # step / cosine x 0.01 / 0.001
