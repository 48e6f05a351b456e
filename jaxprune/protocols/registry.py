"""The protocol registry: name -> `(config, workdir) -> summary` function.

Protocol modules register themselves with `@protocol(name, validate=...)`; the package
(`jaxprune/protocols/__init__.py`) imports every protocol module, and Python
runs it before any of its submodules, so the registry is complete whenever a
caller can reach it. Kept apart from the package so that protocol modules
import the registry, not the package that imports them (no import cycle).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import ml_collections

Protocol = Callable[[ml_collections.ConfigDict, str], dict[str, Any]]
Validator = Callable[[ml_collections.ConfigDict], None]


@dataclasses.dataclass(frozen=True)
class Spec:
  """A registered protocol: its function and its config check."""

  run: Protocol
  validate: Validator | None = None


_REGISTRY: dict[str, Spec] = {}


def protocol(
  name: str, validate: Validator | None = None
) -> Callable[[Protocol], Protocol]:
  """Decorator: registers `fn` as protocol `name` (once), with `validate(config)`
  checking its own config sections (run before the workdir is touched, once
  per run, by `protocols.run`; the protocol body can rely on it)."""

  def decorator(fn: Protocol) -> Protocol:
    if name in _REGISTRY:
      raise ValueError(f"protocol {name!r} is registered twice")
    _REGISTRY[name] = Spec(fn, validate)
    return fn

  return decorator


def unregister(name: str) -> None:
  """Forgets protocol `name` (tests that register temporary ones clean up)."""
  _REGISTRY.pop(name, None)


def names() -> list[str]:
  """The registered protocol names, sorted."""
  return sorted(_REGISTRY)


def spec(name: str) -> Spec:
  """The protocol called `name`; ValueError listing the registered ones."""
  if name not in _REGISTRY:
    raise ValueError(f"protocol must be one of {sorted(_REGISTRY)}, got {name!r}")
  return _REGISTRY[name]


def get(name: str) -> Protocol:
  """The function of the protocol called `name`."""
  return spec(name).run
