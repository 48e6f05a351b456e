"""Paper configs against the papers' own definitions (issue 22).

Each test quotes the sentence it pins and reads the protocol off the built
sweep points, so a config that drifts from the paper fails here.
"""

from __future__ import annotations

import glob
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


def points_mentioning(word: str):
  """(config file:arg, overrides, config) of every point of every sweep config
  whose source mentions `word` (expanding all ~3000 points takes half a minute)."""
  out = []
  for path in sorted(
    glob.glob(os.path.join(ROOT, "configs", "**", "*.py"), recursive=True)
  ):
    if os.path.basename(path) in ("__init__.py", "common.py", "base.py"):
      continue
    with open(path) as f:
      if word not in f.read():
        continue
    try:
      module = sweeps.load_sweep_module(path)
    except ValueError:
      continue  # A single-run example: checked by the protocol tests.
    rel = os.path.relpath(path, os.path.join(ROOT, "configs"))
    for arg in sorted(getattr(module, "EXPERIMENTS", None) or [None]):
      base = module.get_config(arg)
      for overrides, config, _ in sweeps.expand(base, module.get_sweep(arg)):
        out.append((f"{rel}:{arg or ''}", overrides, config))
  return out


def test_every_bimp_point_trains_t0_with_a_linear_lr():
  """Zimmer et al. 2023 Sec. 2.2: "given a budget of T epochs, we simply train a
  network for some T0 < T epochs using a linearly decaying learning rate
  schedule and then apply IMP with the proposed schedules on the output for
  the remaining T - T0 epochs"."""
  every_point = points_mentioning('"bimp"')
  bimp = [(name, c) for name, _, c in every_point if c.protocol == "bimp"]
  assert {name.split(":")[0] for name, _ in bimp} >= {
    "zimmer2023/table2.py",
    "mini/zimmer2023.py",
  }
  schedules_seen = {}
  for name, config in bimp:  # One LR curve per distinct T0 schedule.
    schedules_seen[config.schedule.to_json(sort_keys=True)] = (name, config)
  for name, config in schedules_seen.values():
    t0 = config.num_epochs
    lrs = lr_curve(config.schedule, t0 * SPE)
    want = np.linspace(float(lrs[0]), 0.0, t0 * SPE)  # Reaches 0 at the last step.
    np.testing.assert_allclose(lrs, want, rtol=1e-4, atol=1e-7, err_msg=name)


def test_bimp_refuses_a_stepped_t0_unless_asked(tiny_config):
  config = tiny_config
  config.protocol = "bimp"
  config.bimp.budget_epochs = config.num_epochs + 2
  config.pruning.name = "unstructured"
  config.pruning.sparsity = 0.5
  config.schedule.name = "piecewise"
  with pytest.raises(ValueError, match=r"schedule\.name must be 'linear'"):
    retrain.validate_bimp(config)
  config.bimp.allow_nonlinear_t0 = True
  retrain.validate_bimp(config)
