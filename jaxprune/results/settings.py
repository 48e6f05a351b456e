"""A sweep row's *setting*: the values of the keys its sweep varies (minus the
seed), read from the row's config. Reports group rows by it, curves label
runs with it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MISSING = object()  # A key the row neither overrides nor has in its config.


def config_value(row: dict[str, Any], key: str) -> Any:
  """The value of dotted `key` in the row's config, else its override, else missing."""
  node = row.get("config")
  for part in key.split("."):
    if not isinstance(node, dict) or part not in node:
      return row.get("overrides", {}).get(key, MISSING)
    node = node[part]
  return node


def setting_keys(
  rows: Sequence[dict[str, Any]], extra: Sequence[str] = ()
) -> list[str]:
  """The swept keys of any row (overrides minus the seed), plus `extra`."""
  keys = {k for r in rows for k in r.get("overrides", {})} | {k for k in extra if k}
  return sorted(keys - {"seed"})


def setting_of(
  row: dict[str, Any], keys: Sequence[str] | None = None
) -> dict[str, Any]:
  """The row's values of `keys` (default: its overrides minus the seed), read
  from its config, so rows of an extended sweep get the values they ran with."""
  keys = setting_keys([row]) if keys is None else keys
  values = {k: config_value(row, k) for k in keys}
  return {k: v for k, v in values.items() if v is not MISSING}
