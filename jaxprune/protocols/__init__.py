"""Experiment protocols: config-driven functions over the train loop.

`run(config, workdir) -> summary` dispatches on `config.protocol`. A protocol is
a function `(config, workdir) -> summary dict` registered with `@register`; its
summary is what a sweep records for the run (final metrics, sparsity, params,
FLOPs, speedup, ...). `train` (plain training, `train_and_evaluate`) is the
default; the pruning protocols register themselves from their own modules.
"""

from __future__ import annotations

from collections.abc import Callable
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
  """Runs `config.protocol` (default "train") in `workdir`."""
  return get(config.get("protocol", "train"))(config, workdir)


def _load_all() -> None:
  # Protocol modules register on import; importing here keeps `run` the only
  # entry point callers need.
  from jaxprune.protocols import (  # noqa: F401
    basic,
    gradual,
    lottery,
    prune_epoch,
    retrain,
    scratch,
    soft_filter,
  )
