"""Validation of ``create`` overrides shared by the model families.

Widths of every family are nested tuples/NamedTuples of positive ints.
:func:`normalize_widths` checks a user value against the family's default
widths (same nesting and lengths) and returns it in the canonical form; dicts
keyed by NamedTuple field names and lists are accepted because configs and
JSON produce them. Errors name the offending entry, e.g.
``widths['blocks'][1][0]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def _where(path: str, key: Any) -> str:
  return f"{path}[{key!r}]"


def normalize_widths(value: Any, template: Any, path: str = "widths") -> Any:
  """``value`` in the structure of ``template`` (ints, tuples, NamedTuples).

  Raises:
    ValueError: naming the entry that does not fit.
  """
  if isinstance(template, int):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
      raise ValueError(f"{path} must be a positive int, got {value!r}")
    return int(value)
  fields = getattr(template, "_fields", None)
  if fields is not None and isinstance(value, Mapping):
    if set(value) != set(fields):
      raise ValueError(
        f"{path} must have exactly the keys {sorted(fields)}, got {sorted(value)}"
      )
    value = tuple(value[f] for f in fields)
  if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence):
    raise ValueError(
      f"{path} must be a sequence of {len(template)} entries, got {value!r}"
    )
  if len(value) != len(template):
    raise ValueError(
      f"{path} must have {len(template)} entries, got {len(value)}: {value!r}"
    )
  keys = fields if fields is not None else range(len(template))
  items = [
    normalize_widths(v, t, _where(path, k)) for k, v, t in zip(keys, value, template)
  ]
  return type(template)(*items) if fields is not None else tuple(items)


def scale_widths(widths: Any, multiplier: float) -> Any:
  """Every width of a (nested tuple / NamedTuple) widths structure times
  ``multiplier``, rounded, at least 1: one rule for every family, so layers
  that share a width (a stage and its blocks) still share it."""
  if isinstance(widths, int):
    return max(1, round(widths * multiplier))
  items = [scale_widths(w, multiplier) for w in widths]
  return type(widths)(*items) if hasattr(widths, "_fields") else tuple(items)


def check_multiplier(value: Any) -> float:
  """A positive width multiplier (1.0: the registered widths)."""
  if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
    raise ValueError(f"width_multiplier must be a positive number, got {value!r}")
  return float(value)
