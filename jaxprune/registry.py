"""Name -> object registries: the extension points of jaxprune.

Pruning criteria (`pruning.register_criterion`), allocations
(`pruning.allocation.register`), learning-rate schedules
(`schedules.register`) and models (`models.register`) each keep one
`Registry`; validation and dispatch both read it, so a name registered from
a user's own module is accepted by a config exactly like a built-in one (see
docs/extending.md). Protocols have their own decorator
(`protocols.registry.protocol`), which also records a config validator.

A leaf like `checks`: it imports nothing else of jaxprune, so every layer can
hold a registry without an import cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from jaxprune import checks

T = TypeVar("T")


class Registry(Generic[T]):
  """An ordered name -> entry map; names are unique unless `replace=True`."""

  def __init__(self, what: str):
    self.what = what  # Names the field in errors, e.g. "criterion".
    self._entries: dict[str, T] = {}

  def add(self, name: str, entry: T, *, replace: bool = False) -> T:
    """Registers `entry` as `name`; ValueError if taken (unless `replace`)."""
    if not isinstance(name, str) or not name:
      raise ValueError(f"{self.what} name must be a non-empty str, got {name!r}")
    if name in self._entries and not replace:
      raise ValueError(
        f"{self.what} {name!r} is registered already (pass replace=True to replace it)"
      )
    self._entries[name] = entry
    return entry

  def decorator(self, name: str, *, replace: bool = False) -> Callable[[T], T]:
    """`@registry.decorator(name)`: registers the decorated object."""

    def register(entry: T) -> T:
      return self.add(name, entry, replace=replace)

    return register

  def remove(self, name: str) -> None:
    """Forgets `name` (tests that register temporary entries clean up)."""
    self._entries.pop(name, None)

  def names(self) -> tuple[str, ...]:
    """The registered names, in registration order."""
    return tuple(self._entries)

  def __contains__(self, name: object) -> bool:
    return name in self._entries

  def __iter__(self):
    """Iterates over the names (so a registry serves where a tuple of names did)."""
    return iter(self.names())

  def get(self, name: str, field: str | None = None) -> T:
    """The entry of `name`; else ValueError "FIELD must be one of [...], got X"."""
    checks.choice(name, field or self.what, self.names())
    return self._entries[name]
