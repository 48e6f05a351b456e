"""Experiment protocols: config-driven functions over the train loop.

`run(config, workdir) -> summary` dispatches on `config.protocol`. A protocol is
a function `(config, workdir) -> summary dict` registered with
`@registry.register`; its summary is what a sweep records for the run (final
metrics, sparsity, params, FLOPs, speedup, ...). `train` (plain training,
`train_and_evaluate`) is the default; the pruning protocols register
themselves from their own modules, all imported here.

`validate(config)` checks a whole run config without training: the fields the
train loop reads (`jaxprune.train.validate`), the protocol name, and the
protocol's own sections (its `@common.validator`). `run` calls it once, before
the workdir is touched.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import ml_collections

from jaxprune import io_utils

# Every protocol module, imported for its registration.
from jaxprune.protocols import (  # noqa: F401
  basic,
  bimp,
  common,
  gradual,
  lottery,
  prune_epoch,
  retrain,
  scratch,
  soft_filter,
)
from jaxprune.protocols.common import validate
from jaxprune.protocols.registry import Protocol, get, names, register
from jaxprune.train import TrainingDivergedError, sharding

__all__ = ["Protocol", "get", "names", "register", "run", "validate"]


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Runs `config.protocol` (default "train") in `workdir`.

  A completed run of the same config returns its summary at once. Otherwise the
  run holds the workdir's lock (`io_utils.workdir_lock`: a second launch on the
  same workdir fails at once). A phase that diverges ends the run with a
  run-level summary.json (status "diverged", the phase, epoch and LR; see
  `common.record_divergence`) before its `TrainingDivergedError` propagates.
  """
  protocol = get(config.get("protocol", "train"))
  validate(config)  # Once per run, before the workdir is touched.
  if done := common.completed(workdir, config):
    print(
      f"already completed: {workdir} (its summary.json; use another --workdir "
      "to run again)",
      flush=True,
    )
    return done
  lock = io_utils.workdir_lock(workdir) if sharding.is_primary() else nullcontext()
  with lock:
    try:
      return protocol(config, workdir)
    except TrainingDivergedError as e:
      common.record_divergence(config, workdir, e)
      raise
