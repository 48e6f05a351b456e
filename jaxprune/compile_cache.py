"""The persistent XLA compilation cache of jaxprune's command lines.

Every sweep point, protocol phase and rerun of a run compiles the same few
programs (a `Steps` per model shape and optimizer kind). With jax's persistent
compilation cache a second process with the same shapes loads the compiled
executable from disk instead of running XLA again (ResNet-56's train step:
experiments/benchmarks/RESULTS.md, figure 6).

The cache is process-wide state of jax, so it is a launcher setting, never a
config field (a config hash names what a run computes, not where its programs
are kept). `setup(value)` is called once by `jaxprune.main`, `jaxprune.sweeps`
and `jaxprune.reproduce` before anything compiles; the directory comes from,
first to last:

  1. the launcher flag `--compile_cache=DIR|off`;
  2. the environment variable `JAXPRUNE_COMPILE_CACHE=DIR|off`;
  3. jax's own `JAX_COMPILATION_CACHE_DIR` (then jaxprune changes nothing);
  4. `$XDG_CACHE_HOME/jaxprune/xla`, else `~/.cache/jaxprune/xla`.

Importing jaxprune as a library turns nothing on; the test suite sets
`JAXPRUNE_COMPILE_CACHE=off` (tests/conftest.py) so in-process compile counts
and subprocesses that must compile stay honest.
"""

from __future__ import annotations

import os

import jax

ENV_VAR = "JAXPRUNE_COMPILE_CACHE"
OFF = ("off", "none", "0", "false", "no")
HELP = (
  f"persistent XLA compilation cache: a directory, or 'off' (default: ${ENV_VAR}, "
  "else $JAX_COMPILATION_CACHE_DIR, else $XDG_CACHE_HOME/jaxprune/xla or "
  "~/.cache/jaxprune/xla)"
)


def default_dir() -> str:
  """`$XDG_CACHE_HOME/jaxprune/xla`, else `~/.cache/jaxprune/xla`."""
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
    os.path.expanduser("~"), ".cache"
  )
  return os.path.join(base, "jaxprune", "xla")


def resolve(value: str | None = None) -> str | None:
  """The cache directory `setup(value)` uses; None: off, or left to jax's own
  `JAX_COMPILATION_CACHE_DIR`."""
  if value is None:
    value = os.environ.get(ENV_VAR)
  if value is None:
    if os.environ.get("JAX_COMPILATION_CACHE_DIR"):
      return None  # The user configured jax directly; keep their settings.
    return default_dir()
  value = value.strip()
  if not value:
    raise ValueError(
      f"compile cache is empty; give a directory or one of {', '.join(OFF)}"
    )
  if value.lower() in OFF:
    return None
  return os.path.abspath(os.path.expanduser(value))


def setup(value: str | None = None) -> str | None:
  """Points jax's persistent compilation cache at `resolve(value)` and caches
  every program, however small or quick to compile (jaxprune's tiny MLP
  programs are the ones compiled most often). Returns the directory in use
  (None: no cache from jaxprune). Call before the first compile."""
  directory = resolve(value)
  if directory is None:
    given = value if value is not None else os.environ.get(ENV_VAR)
    if given is not None:  # "off" (resolve rejected anything else).
      jax.config.update("jax_enable_compilation_cache", False)
      return None
    return jax.config.read("jax_compilation_cache_dir") or None
  os.makedirs(directory, exist_ok=True)
  jax.config.update("jax_enable_compilation_cache", True)
  jax.config.update("jax_compilation_cache_dir", directory)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
  return directory
