"""Code fingerprints: which version of the code produced a cached result.

A cached dense training (`<cache>/train/`) or pruned state (`<cache>/pruned/`)
is reused by every later run whose config asks for the same thing; after the
code that computes it changes (a criterion, a model, the train step) it must
not be reused silently. `code(kind)` hashes jaxprune's version and the source
files that `kind` depends on; the caches put it into their keys, and sweep
rows record it (`code_fingerprint`).

  train  data, models, schedules, the train loop, config handling
  prune  train's files plus pruning, OrthP and the pruning protocols' code

Files outside these sets (reports, verdicts, launchers, docs), and those of
`IO_ONLY` inside them (checkpoint I/O, metric writers, progress bars), never
invalidate a cache. A criterion or allocation registered from a user's own
module is covered by `outside` (the pruned cache's key holds the hash of its
source). `python -m jaxprune.sweeps --force` recomputes the entries a sweep
uses; `--no_cache` gives every point a private cache.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import inspect
import os
from collections.abc import Callable, Iterable

import jaxprune
from jaxprune import checks

PACKAGE = os.path.dirname(os.path.abspath(jaxprune.__file__))
SOURCES = {
  "train": (
    "data",
    "models",
    "schedules",
    "train",
    "config_utils.py",
    "protocols/common.py",
  ),
  "prune": (
    "pruning",
    "analysis/orthp.py",
    "protocols/prune_retrain.py",
    "protocols/pruned_cache.py",
  ),
}
KINDS = {"train": ("train",), "prune": ("train", "prune")}
# Files inside those sets that only store, log or show what was computed: an
# edit there cannot change a number, so it does not re-run cached trainings
# (a checkpoint format it can no longer read fails loudly on restore).
IO_ONLY = (
  "data/__main__.py",
  "train/checkpointing.py",
  "train/metric_writers.py",
  "train/progress.py",
)


def files(kind: str) -> list[str]:
  """The source files (relative to the package) that `kind` depends on."""
  checks.choice(kind, "fingerprint kind", KINDS)
  out = set()
  for group in KINDS[kind]:
    for entry in SOURCES[group]:
      path = os.path.join(PACKAGE, entry)
      # Python and the native kernels' C++ (`models/native/`).
      found = [
        f
        for ext in ("py", "cc")
        for f in glob.glob(os.path.join(path, "**", f"*.{ext}"), recursive=True)
      ]
      out.update(found if os.path.isdir(path) else [path])
  return sorted(
    r for r in (os.path.relpath(p, PACKAGE) for p in out) if r not in IO_ONLY
  )


@functools.cache
def code(kind: str) -> str:
  """Short hash of jaxprune's version and the sources of `kind` (per process)."""
  digest = hashlib.sha256(jaxprune.__version__.encode())
  for rel in files(kind):
    digest.update(rel.encode())
    with open(os.path.join(PACKAGE, rel), "rb") as f:
      digest.update(f.read())
  return digest.hexdigest()[:8]


def outside(functions: Iterable[Callable]) -> str:
  """Short hash of the source of those `functions` defined outside jaxprune
  (criteria or allocations a user registered from their own module, which
  `code` does not cover); "" when all of them are jaxprune's own."""
  digest, found = hashlib.sha256(), False
  for fn in functions:
    fn = getattr(fn, "func", fn)  # functools.partial: the wrapped function.
    module = getattr(fn, "__module__", None) or ""
    if module == "jaxprune" or module.startswith("jaxprune."):
      continue
    found = True
    try:
      digest.update(inspect.getsource(fn).encode())
    except (OSError, TypeError):  # Defined interactively: no source file.
      digest.update(repr(fn).encode())
  return digest.hexdigest()[:8] if found else ""
