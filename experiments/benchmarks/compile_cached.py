"""Train-step compile time in a fresh process, with a persistent compilation cache.

  .venv/bin/python experiments/benchmarks/compile_cached.py --cache=DIR \
      [--model=resnet56] [--batch=128] [--quick]

Prints one JSON line: the AOT `lower` and `compile` seconds of `Steps.train_batch`
(CIFAR shapes and augmentation) and jax's cache hit/miss events. Run it twice
with the same empty `--cache`: the first process compiles with XLA and writes
the entry, the second loads it (figure 6 of run_all.py does exactly that).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import monitoring

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)  # train_step, when run as a script.

import train_step  # noqa: E402

from jaxprune import compile_cache  # noqa: E402


def measure(model: str, batch: int) -> dict:
  events: dict[str, int] = {}
  monitoring.register_event_listener(
    lambda name, **kw: events.__setitem__(name, events.get(name, 0) + 1)
  )
  steps, state, hyper = train_step._jax_steps(model, (32, 32, 3), "cifar", batch)
  rng = np.random.default_rng(0)
  images = jnp.asarray(rng.integers(0, 256, (batch, 32, 32, 3), dtype=np.uint8))
  labels = jnp.asarray(rng.integers(0, 10, batch), jnp.int32)
  before = dict(events)
  t0 = time.perf_counter()
  lowered = steps.train_batch.lower(state, hyper, images, labels)
  t1 = time.perf_counter()
  lowered.compile()
  t2 = time.perf_counter()

  def count(name):
    key = f"/jax/compilation_cache/{name}"
    return events.get(key, 0) - before.get(key, 0)

  return {
    "lower_s": t1 - t0,
    "compile_s": t2 - t1,
    "cache_hits": count("cache_hits"),
    "cache_misses": count("cache_misses"),
  }


def run_twice(model: str, batch: int, cache: str, quick: bool) -> list[dict]:
  """Two fresh processes measuring the same step with one shared `cache`."""
  command = [sys.executable, os.path.abspath(__file__), f"--cache={cache}"]
  command += [f"--model={model}", f"--batch={batch}"] + ["--quick"] * quick
  env = {**os.environ, "PYTHONPATH": ROOT}
  out = []
  for _ in range(2):
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    out.append(json.loads(done.stdout.strip().splitlines()[-1]))
  return out


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--cache", required=True, help="compilation cache directory")
  parser.add_argument("--model", default="resnet56")
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--quick", action="store_true", help="unoptimised XLA")
  args = parser.parse_args()
  if args.quick:
    jax.config.update("jax_disable_most_optimizations", True)
  compile_cache.setup(args.cache)
  print(json.dumps(measure(args.model, args.batch)), flush=True)


if __name__ == "__main__":
  main()
