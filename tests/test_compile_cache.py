"""The launchers' persistent compilation cache (jaxprune/compile_cache.py).

Two fresh processes compile the same small program with one shared cache
directory: the first misses and writes an entry, the second loads it. Hits and
misses are jax's own monitoring events, counted inside each process (no timing).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import COMPILE_CACHE_VARS

from jaxprune import compile_cache

PROGRAM = """
import json, sys
import jax, jax.numpy as jnp
from jax import monitoring
from jaxprune import compile_cache

events = {}
monitoring.register_event_listener(
  lambda name, **kw: events.__setitem__(name, events.get(name, 0) + 1)
)
directory = compile_cache.setup(sys.argv[1] if len(sys.argv) > 1 else None)
f = jax.jit(lambda x: jnp.tanh(x @ x.T).sum())
f(jnp.ones((8, 4))).block_until_ready()
print(json.dumps({
  "dir": directory,
  "hits": events.get("/jax/compilation_cache/cache_hits", 0),
  "misses": events.get("/jax/compilation_cache/cache_misses", 0),
}))
"""


def _run(env: dict[str, str], *args: str) -> dict:
  out = subprocess.run(
    [sys.executable, "-c", PROGRAM, *args],
    env=env,
    capture_output=True,
    text=True,
    check=True,
  )
  return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture
def env(process_env, tmp_path):
  """A subprocess environment without any cache setting (and a private home)."""
  env = {k: v for k, v in process_env.items() if k not in COMPILE_CACHE_VARS}
  env.pop(compile_cache.ENV_VAR)
  env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
  return env


def test_second_process_loads_the_program_from_the_cache(env, tmp_path):
  cache = str(tmp_path / "cache")
  first = _run(env, cache)
  assert first["dir"] == cache
  # Every program is cached, even jnp.ones' tiny one (thresholds at 0).
  assert first["hits"] == 0 and first["misses"] >= 2
  assert len(os.listdir(cache)) >= first["misses"]
  second = _run(env, cache)
  assert (second["hits"], second["misses"]) == (first["misses"], 0)


def test_on_by_default_under_the_user_cache_dir_and_off_by_env(env, tmp_path):
  default = str(tmp_path / "xdg" / "jaxprune" / "xla")
  first = _run(env)
  assert first["dir"] == default and first["hits"] == 0
  assert _run(env)["hits"] == first["misses"]  # The second process loads all.
  off = _run({**env, compile_cache.ENV_VAR: "off"})
  assert off == {"dir": None, "hits": 0, "misses": 0}  # Not even looked up.


def test_resolve_order(monkeypatch, tmp_path):
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
  monkeypatch.delenv(compile_cache.ENV_VAR, raising=False)
  monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
  assert compile_cache.resolve() == str(tmp_path / "jaxprune" / "xla")
  monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", "/elsewhere")
  assert compile_cache.resolve() is None  # jax's own setting is kept.
  monkeypatch.setenv(compile_cache.ENV_VAR, str(tmp_path / "env"))
  assert compile_cache.resolve() == str(tmp_path / "env")
  assert compile_cache.resolve(str(tmp_path / "flag")) == str(tmp_path / "flag")
  assert compile_cache.resolve("OFF") is None
  with pytest.raises(ValueError, match="compile cache is empty"):
    compile_cache.resolve(" ")
