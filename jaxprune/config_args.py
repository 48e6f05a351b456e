"""Config files on the command line: `PATH[:ARG]`, the one parser of ARG, the loader.

Every command that takes a config (`jaxprune.main`, `jaxprune.sweeps`,
`jaxprune.inspect_model`, `jaxprune.reproduce`, `jaxprune.report --paper_config`)
loads it through :func:`load_module` / :func:`load_config` / :func:`load_sweep`,
and every config file reads its ARG with :func:`parse_arg`, in the style of
big_vision's `parse_arg`: comma-separated `key=value` pairs and bare `key` flags,
each value converted to the type of the key's default::

  configs/le2021/table2.py:smoke
  configs/wang2021_di/table3.py:smoke,data=fashion_mnist
  configs/mini/le2021.py:experiment=retrain,smoke

The older spellings stay valid and mean the same, mapped here and nowhere else:
a bare `fashion_mnist` is `data=fashion_mnist`, and in configs with an
`experiment` key a bare word that names no flag is the experiment
(`configs/mini/le2021.py:retrain,smoke`).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from typing import Any

import ml_collections

# Bare words that stand for a `key=value` pair (the older spellings).
ALIASES = {"fashion_mnist": ("data", "fashion_mnist")}
# The key a bare word that names no flag fills, where a config has it.
POSITIONAL = "experiment"
_TRUE, _FALSE = ("1", "true", "yes"), ("0", "false", "no")


def _convert(text: str, default: Any, where: str) -> Any:
  """`text` as the type of `default` (bool, int, float or str)."""
  if isinstance(default, bool):
    if text.lower() not in (*_TRUE, *_FALSE):
      raise ValueError(f"{where} must be true or false, got {text!r}")
    return text.lower() in _TRUE
  for kind in (int, float):
    if isinstance(default, kind):
      try:
        return kind(text)
      except ValueError:
        raise ValueError(f"{where} must be {kind.__name__}, got {text!r}") from None
  return text


def _allowed(defaults: dict[str, Any]) -> str:
  return ", ".join(
    k if isinstance(v, bool) else f"{k}={type(v).__name__.upper()}"
    for k, v in defaults.items()
  )


def parse_arg(arg: str | None, **defaults: Any) -> ml_collections.ConfigDict:
  """The config argument `arg` over `defaults`, e.g.
  `parse_arg("smoke,data=fashion_mnist", smoke=False, data="")` ->
  `{smoke: True, data: "fashion_mnist"}`.

  Raises:
    ValueError: an unknown key or a value that does not fit its default's
      type, naming the key and what is allowed.
  """
  out = dict(defaults)
  positional_free = POSITIONAL in defaults
  for token in (arg or "").split(","):
    token = token.strip()
    if not token:
      continue
    key, eq, text = (s.strip() for s in token.partition("="))
    if not eq:
      if isinstance(defaults.get(key), bool):
        text = "true"
      elif key in ALIASES and ALIASES[key][0] in defaults:
        key, text = ALIASES[key]
      elif positional_free:
        key, text, positional_free = POSITIONAL, token, False
    if key not in defaults:
      raise ValueError(
        f"config argument {arg!r}: unknown key {key!r}; allowed (comma-separated): "
        f"{_allowed(defaults)}"
      )
    if not eq and not text:
      raise ValueError(f"config argument {arg!r}: {key!r} needs a value ({key}=...)")
    out[key] = _convert(text, defaults[key], f"config argument {key!r}")
  return ml_collections.ConfigDict(out)


def split(path_and_arg: str) -> tuple[str, str | None]:
  """`"configs/x.py:smoke"` -> `("configs/x.py", "smoke")` (no ARG: None)."""
  path, _, arg = path_and_arg.partition(":")
  return path, arg or None


def load_module(path: str, needs: Sequence[str] = ("get_config", "get_sweep")):
  """The config file at `path` as a module; it must define the functions `needs`.

  Config files import shared code as packages (`from configs import common`),
  so no file needs to put anything on `sys.path`.
  """
  spec = importlib.util.spec_from_file_location("jaxprune_config_file", path)
  if spec is None or spec.loader is None or not os.path.exists(path):
    raise FileNotFoundError(f"config file not found: {path}")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  for fn in needs:
    if not hasattr(module, fn):
      raise ValueError(f"{path} must define {fn}(arg)")
  return module


def load_config(path_and_arg: str) -> ml_collections.ConfigDict:
  """`get_config(ARG)` of the config file `PATH[:ARG]`."""
  path, arg = split(path_and_arg)
  return load_module(path, ("get_config",)).get_config(arg)


def load_sweep(path_and_arg: str) -> tuple[ml_collections.ConfigDict, list]:
  """(`get_config(ARG)`, `get_sweep(ARG)`) of the sweep config `PATH[:ARG]`."""
  path, arg = split(path_and_arg)
  module = load_module(path)
  return module.get_config(arg), module.get_sweep(arg)
