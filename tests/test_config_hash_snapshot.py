"""Config hashes of every committed sweep point stay put unless a change means them to.

A point's config hash names its run directory and its `results.jsonl` row, so a
change that moves it silently turns finished runs (the committed
mini-reproduction, a user's half-done sweep) back into "todo". This test
recomputes the hash of every point of every sweep config (`configs/mini`
experiments, the per-paper tables and the protocol examples, full and smoke)
and compares it with the snapshot in `tests/data/config_hashes.json`.

A change that is meant to move hashes (a fidelity fix of a schedule, say)
regenerates the snapshot and lists the moved configs in its commit message:

  JAX_PLATFORMS=cpu python tests/test_config_hash_snapshot.py --update
"""

from __future__ import annotations

import glob
import json
import os
import sys

import pytest

from jaxprune.results import sweeps

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SNAPSHOT = os.path.join(ROOT, "tests", "data", "config_hashes.json")
SWEEP_DIRS = (
  "protocols",
  "le2021",
  "liu2019",
  "wang2021_di",
  "wang2023",
  "zimmer2023",
)


def _sweep_hashes(module, arg: str | None) -> list[str]:
  base, sweep = module.get_config(arg), module.get_sweep(arg)
  return [digest for _, _, digest in sweeps.expand(base, sweep)]


def current_hashes() -> dict[str, list[str]]:
  """{"<config path>:<arg>": [hash per point]} for every committed sweep."""
  out: dict[str, list[str]] = {}
  for sub in SWEEP_DIRS:
    for path in sorted(glob.glob(os.path.join(ROOT, "configs", sub, "*.py"))):
      if path.endswith("__init__.py"):
        continue
      try:
        module = sweeps.load_sweep_module(path)
      except ValueError:
        continue  # A single-run example (no get_sweep), not a sweep.
      rel = os.path.relpath(path, ROOT)
      for arg in (None, "smoke"):
        out[f"{rel}:{arg or ''}"] = _sweep_hashes(module, arg)
  for path in sorted(glob.glob(os.path.join(ROOT, "configs", "mini", "*.py"))):
    if path.endswith(("base.py", "__init__.py")):
      continue
    module = sweeps.load_sweep_module(path)
    rel = os.path.relpath(path, ROOT)
    for name in module.EXPERIMENTS:
      for arg in (name, f"{name},smoke"):
        if module.get_sweep(arg):
          out[f"{rel}:{arg}"] = _sweep_hashes(module, arg)
  return out


def test_config_hashes_match_snapshot():
  with open(SNAPSHOT) as f:
    expected = json.load(f)
  current = current_hashes()
  moved = sorted(
    key for key in set(expected) | set(current) if expected.get(key) != current.get(key)
  )
  assert not moved, (
    f"config hashes moved for {moved}; if intended, regenerate with "
    "`python tests/test_config_hash_snapshot.py --update` and name them in the commit"
  )


def test_snapshot_covers_the_mini_suite():
  with open(SNAPSHOT) as f:
    keys = json.load(f)
  assert any(key.startswith("configs/mini/le2021.py:") for key in keys)
  assert sum(len(v) for k, v in keys.items() if k.startswith("configs/mini/")) >= 200


if __name__ == "__main__":
  if sys.argv[1:] != ["--update"]:
    pytest.exit("usage: python tests/test_config_hash_snapshot.py --update")
  os.makedirs(os.path.dirname(SNAPSHOT), exist_ok=True)
  with open(SNAPSHOT, "w") as f:
    json.dump(current_hashes(), f, indent=1, sort_keys=True)
    f.write("\n")
  print(f"wrote {SNAPSHOT}")
