"""One-line checks of config and argument values, shared by every layer.

A leaf (it imports nothing of jaxprune), so the models, the pruning engine,
the train loop and the protocols all check a choice the same way: a
ValueError naming the field, the allowed values and the value given.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def choice(value: Any, field: str, allowed: Sequence[Any]) -> Any:
  """`value` if it is one of `allowed`, else ValueError naming `field`.

  A bool is accepted only where `allowed` lists bools (`True in (1, 2)` is
  true in Python, which would let `True` pass for `1`).
  """
  is_bool = isinstance(value, bool)
  if value not in allowed or (is_bool and not any(a is value for a in allowed)):
    raise ValueError(f"{field} must be one of {list(allowed)}, got {value!r}")
  return value


def field_choice(config: Any, dotted: str, allowed: Sequence[Any]) -> Any:
  """`choice` of the dotted field `dotted` of a ConfigDict / dict."""
  value = config
  for part in dotted.split("."):
    value = value[part]
  return choice(value, dotted, allowed)


def rate(value: Any, field: str) -> float:
  """A probability in [0, 1) as a float, else ValueError naming `field`."""
  if (
    isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1
  ):
    raise ValueError(f"{field} must be a float in [0, 1), got {value!r}")
  return float(value)


def number(value: Any, field: str, minimum: float | None = None) -> float:
  """A finite real (>= `minimum` if given) as a float, else ValueError naming
  `field` (bools are refused: `True` is not a number here)."""
  if isinstance(value, bool) or not isinstance(value, int | float):
    raise ValueError(f"{field} must be a number, got {value!r}")
  if not math.isfinite(value):
    raise ValueError(f"{field} must be a finite number, got {value!r}")
  if minimum is not None and value < minimum:
    raise ValueError(f"{field} must be >= {minimum}, got {value!r}")
  return float(value)


def nonneg_int(value: Any, name: str) -> int:
  """`value` as an int; ValueError naming `name` unless a whole number >= 0."""
  if isinstance(value, bool) or int(value) != value or value < 0:
    raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
  return int(value)
