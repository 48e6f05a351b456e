"""Experiment protocols: config-driven functions over the train loop.

`run(config, workdir) -> summary` dispatches on `config.protocol`. A protocol is
a function `(config, workdir) -> summary dict` registered with
`@registry.protocol(name, validate=...)`; its summary is what a sweep records for the run (final
metrics, sparsity, params, FLOPs, speedup, ...). `train` (plain training,
`train_and_evaluate`) is the default; the pruning protocols register
themselves from their own modules, all imported here.

`validate(config)` checks a whole run config without training: the fields the
train loop reads (`jaxprune.train.validate`), the protocol name, and the
protocol's own sections (the `validate` it registered with). `run` calls it once, before
the workdir is touched.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import ml_collections

from jaxprune import io_utils

# Every protocol module, imported for its registration.
from jaxprune.protocols import (  # noqa: F401
  bimp,
  common,
  during,
  gmp,
  lottery,
  prune_epoch,
  prune_retrain,
  scratch,
  sfp,
  train,
)
from jaxprune.protocols.common import validate
from jaxprune.protocols.registry import Protocol, get, names, protocol
from jaxprune.train import TrainingDivergedError, sharding
from jaxprune.train import loop as train_loop

__all__ = ["Protocol", "get", "names", "protocol", "run", "validate"]


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Runs `config.protocol` (default "train") in `workdir`.

  A completed run of the same config returns its summary at once. Otherwise the
  run holds the workdir's lock (`io_utils.workdir_lock`: a second launch on the
  same workdir fails at once). A phase that diverges ends the run with a
  run-level summary.json (status "diverged", the phase, epoch and LR; see
  `common.record_divergence`) before its `TrainingDivergedError` propagates.
  """
  run_protocol = get(config.get("protocol", "train"))
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
    # The preamble every protocol shares, written once: validated above, the
    # run's config.json written (a workdir of another config is refused).
    train_loop.prepare_workdir(config, workdir)
    try:
      return run_protocol(config, workdir)
    except TrainingDivergedError as e:
      common.record_divergence(config, workdir, e)
      raise
