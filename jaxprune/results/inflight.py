"""Unfinished runs in a sweep's record: their newest checkpoints, packed.

A record (`jaxprune.results.record`) keeps finished runs only, which is enough
where a machine keeps its disk between sessions. Where every session starts
from a fresh clone, a run longer than a session (a 900-epoch Dynamical
Isometry point; a GPU lease of minutes) would start over each time. So `record
save --inflight` also packs every run that has no row yet but has a
checkpoint into `<record>/<sweep>/inflight/<hash>.tar.gz`, and `restore`
unpacks it where the workdir has no such run, after which the normal resume
picks it up. The pack holds the run's files except TensorBoard events and
lock files, and of each `checkpoints/<kind>/` only the newest complete step
(orbax's `commit_success.txt`): what a resume reads. It is deterministic (sorted
members, zero times and owners), so an unchanged run is not rewritten, and a
run's pack is deleted from the record once its row is there.

A pack made while its run writes a new checkpoint can miss files of it; the
checkpoint checksum (`jaxprune.train.checkpointing`) then rejects that step on
resume and the run falls back to an older one or starts over: never a wrong
result, at worst lost epochs. A pack whose files vanish while it is read is
skipped (the record keeps the previous one).

The record then holds binary state, a few hundred KB per small run, replaced
on every save: commit it only for runs that cannot finish in one session.
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from collections.abc import Iterator

from jaxprune import io_utils

INFLIGHT_DIR = "inflight"
SUFFIX = ".tar.gz"
SKIPPED_DIRS = ("tensorboard", "corrupt")  # Not needed to resume.
COMMITTED = "commit_success.txt"  # Orbax's mark of a complete step.


def _newest_complete_step(kind_dir: str) -> str | None:
  """The newest step directory with orbax's commit mark, else (an orbax that
  writes none: its atomic rename is the mark) the newest step directory;
  in-progress saves have non-numeric temporary names either way."""
  steps = sorted((d for d in os.listdir(kind_dir) if d.isdigit()), key=int)
  marked = [s for s in steps if os.path.exists(os.path.join(kind_dir, s, COMMITTED))]
  return (marked or steps or [None])[-1]


def _files(run_dir: str) -> Iterator[str]:
  """Paths (relative to `run_dir`, sorted) a resume of the run needs."""
  for here, dirs, files in os.walk(run_dir):
    rel = os.path.relpath(here, run_dir)
    if os.path.basename(os.path.dirname(here)) == "checkpoints":
      newest = _newest_complete_step(here)  # `here` is checkpoints/<kind>.
      dirs[:] = [newest] if newest else []
    else:
      dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
    for name in sorted(files):
      if not name.endswith(".lock"):
        yield os.path.normpath(os.path.join(rel, name))


def has_checkpoint(run_dir: str) -> bool:
  return any(f"checkpoints{os.sep}" in f for f in _files(run_dir))


def pack(run_dir: str) -> bytes | None:
  """The run's resumable files as deterministic tar.gz bytes; None if one of
  them vanished while it was read (the run moved on: pack it next time)."""
  buffer = io.BytesIO()
  with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
    for rel in _files(run_dir):
      try:
        with open(os.path.join(run_dir, rel), "rb") as f:
          data = f.read()
      except FileNotFoundError:
        return None
      info = tarfile.TarInfo(rel.replace(os.sep, "/"))
      info.size, info.mode, info.mtime = len(data), 0o644, 0
      tar.addfile(info, io.BytesIO(data))
  return gzip.compress(buffer.getvalue(), compresslevel=9, mtime=0)


def unpack(path: str, run_dir: str) -> None:
  """Extracts a pack into `run_dir`; a corrupt pack raises ValueError naming it."""
  try:
    with open(path, "rb") as f:
      data = gzip.decompress(f.read())
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
      members = tar.getmembers()
      for m in members:  # Only plain files below the run directory.
        if not m.isfile() or m.name.startswith("/") or ".." in m.name.split("/"):
          raise ValueError(f"unexpected member {m.name!r}")
      for m in members:
        target = os.path.join(run_dir, *m.name.split("/"))
        io_utils.atomic_write_bytes(target, tar.extractfile(m).read())
  except (OSError, EOFError, tarfile.TarError, ValueError) as e:
    raise ValueError(f"corrupt record file {path}: {e}") from e


def save(sweep_dir: str, out: str, finished: set[str]) -> int:
  """Packs the unfinished runs of `sweep_dir` into `<out>/inflight/` and drops
  the packs of runs in `finished`; returns the number of packs written."""
  written = 0
  target_dir = os.path.join(out, INFLIGHT_DIR)
  runs = os.path.join(sweep_dir, "runs")
  for digest in sorted(os.listdir(runs)) if os.path.isdir(runs) else []:
    run_dir = os.path.join(runs, digest)
    if digest in finished or not has_checkpoint(run_dir):
      continue
    data = pack(run_dir)
    target = os.path.join(target_dir, digest + SUFFIX)
    if data is not None:
      written += io_utils.write_bytes_if_changed(target, data)
  for name in sorted(os.listdir(target_dir)) if os.path.isdir(target_dir) else []:
    if name.endswith(SUFFIX) and name[: -len(SUFFIX)] in finished:
      os.remove(os.path.join(target_dir, name))  # Its row is in the record now.
  return written


def restore(record_dir: str, sweep_dir: str, finished: set[str]) -> int:
  """Unpacks each pack of `record_dir` whose run has no row and no checkpoint
  in `sweep_dir`; returns the number unpacked."""
  source = os.path.join(record_dir, INFLIGHT_DIR)
  restored = 0
  for name in sorted(os.listdir(source)) if os.path.isdir(source) else []:
    digest = name[: -len(SUFFIX)]
    run_dir = os.path.join(sweep_dir, "runs", digest)
    if not name.endswith(SUFFIX) or digest in finished:
      continue
    if os.path.isdir(run_dir) and has_checkpoint(run_dir):
      continue  # The workdir's own run is never overwritten.
    unpack(os.path.join(source, name), run_dir)
    restored += 1
  return restored
