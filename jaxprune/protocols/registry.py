"""The protocol registry: name -> `(config, workdir) -> summary` function.

Protocol modules register themselves with `@register(name)`; the package
(`jaxprune/protocols/__init__.py`) imports every protocol module, and Python
runs it before any of its submodules, so the registry is complete whenever a
caller can reach it. Kept apart from the package so that protocol modules
import the registry, not the package that imports them (no import cycle).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ml_collections

Protocol = Callable[[ml_collections.ConfigDict, str], dict[str, Any]]
_REGISTRY: dict[str, Protocol] = {}


def register(name: str) -> Callable[[Protocol], Protocol]:
  """Decorator: registers `fn` as protocol `name` (once)."""

  def decorator(fn: Protocol) -> Protocol:
    if name in _REGISTRY:
      raise ValueError(f"protocol {name!r} is registered twice")
    _REGISTRY[name] = fn
    return fn

  return decorator


def names() -> list[str]:
  """The registered protocol names, sorted."""
  return sorted(_REGISTRY)


def get(name: str) -> Protocol:
  """The protocol called `name`; ValueError listing the registered ones."""
  if name not in _REGISTRY:
    raise ValueError(f"protocol must be one of {sorted(_REGISTRY)}, got {name!r}")
  return _REGISTRY[name]
