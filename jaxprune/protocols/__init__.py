"""Experiment protocols: config-driven functions over the train loop.

`run(config, workdir) -> summary` dispatches on `config.protocol`. A protocol is
a function `(config, workdir) -> summary dict` registered with `@register`; its
summary is what a sweep records for the run (final metrics, sparsity, params,
FLOPs, speedup, ...). `train` (plain training, `train_and_evaluate`) is the
default; the pruning protocols register themselves from their own modules.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import ml_collections

Protocol = Callable[[ml_collections.ConfigDict, str], dict[str, Any]]
_REGISTRY: dict[str, Protocol] = {}


def register(name: str) -> Callable[[Protocol], Protocol]:
  def decorator(fn: Protocol) -> Protocol:
    if name in _REGISTRY:
      raise ValueError(f"protocol {name!r} is registered twice")
    _REGISTRY[name] = fn
    return fn

  return decorator


def names() -> list[str]:
  _load_all()
  return sorted(_REGISTRY)


def get(name: str) -> Protocol:
  _load_all()
  if name not in _REGISTRY:
    raise ValueError(f"protocol must be one of {sorted(_REGISTRY)}, got {name!r}")
  return _REGISTRY[name]


def run(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  """Runs `config.protocol` (default "train") in `workdir`.

  A completed run of the same config returns its summary at once. Otherwise the
  run holds the workdir's lock (`io_utils.workdir_lock`: a second launch on the
  same workdir fails at once). A phase that diverges ends the run with a
  run-level summary.json (status "diverged", the phase, epoch and LR; see
  `common.record_divergence`) before its `TrainingDivergedError` propagates.
  """
  from jaxprune import io_utils
  from jaxprune.protocols import common
  from jaxprune.train import TrainingDivergedError, sharding

  protocol = get(config.get("protocol", "train"))
  common.validate(config)  # Before the workdir is touched.
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


def _load_all() -> None:
  # Protocol modules register on import; importing here keeps `run` the only
  # entry point callers need.
  from jaxprune.protocols import (  # noqa: F401
    basic,
    bimp,
    gradual,
    lottery,
    prune_epoch,
    retrain,
    scratch,
  )
