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

A resume also reads the shared cache entries the run started from: its dense
phase (`<cache>/train/<hash>-<code>/`, only its final checkpoint is read) and
its first pruning (`<cache>/pruned/<key>/`). Without them a fresh machine
retrains the dense network before it can resume (25 minutes for five LeNet-5
seeds). So `save` also packs each complete entry an unfinished run of the
workdir reads (`cache_entries`, found from the run's `config.json` the way the
protocols find them; points that have not started have theirs too) into `<record>/inflight_cache/<path in the
workdir>.tar.gz`, for entries inside the workdir, and drops the packs no
unfinished run needs; `restore` unpacks each where the workdir has no such
entry (into a temporary sibling, renamed when complete, so a killed restore
never leaves half an entry that looks complete).

The record then holds binary state, a few hundred KB per small run, replaced
on every save: commit it only for runs that cannot finish in one session.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
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


def _files(run_dir: str, kinds: tuple[str, ...] | None = None) -> Iterator[str]:
  """Paths (relative to `run_dir`, sorted) a resume of the run needs (of the
  checkpoint kinds in `kinds` only, if given)."""
  for here, dirs, files in os.walk(run_dir):
    rel = os.path.relpath(here, run_dir)
    if os.path.basename(os.path.dirname(here)) == "checkpoints":
      newest = _newest_complete_step(here)  # `here` is checkpoints/<kind>.
      wanted = kinds is None or os.path.basename(here) in kinds
      dirs[:] = [newest] if newest and wanted else []
    else:
      dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
    for name in sorted(files):
      if not name.endswith(".lock"):
        yield os.path.normpath(os.path.join(rel, name))


def has_checkpoint(run_dir: str) -> bool:
  return any(f"checkpoints{os.sep}" in f for f in _files(run_dir))


def pack(run_dir: str, kinds: tuple[str, ...] | None = None) -> bytes | None:
  """The run's resumable files (checkpoints of `kinds` only, if given) as
  deterministic tar.gz bytes; None if one of them vanished while it was read
  (the run moved on: pack it next time)."""
  buffer = io.BytesIO()
  with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
    for rel in _files(run_dir, kinds):
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


# ------------------------------------------------------------------ shared cache
CACHE_DIR = "inflight_cache"  # Under the record's root.
DENSE_KINDS = ("final",)  # A finished dense phase is read from its final step.


def cache_entries(run_dir: str) -> list[str]:
  """The complete shared cache entries (directories) a resume of the run in
  `run_dir` reads: its dense phase and, for prune -> retrain, the first
  pruning of it; found from the run's `config.json` as the protocols find them
  (`common.dense_phase`, `prune_retrain.first_prune`). A run of another
  protocol, or whose entries are not there, gets fewer or none."""
  # Imported here: packing runs alone needs none of the protocol machinery.
  import ml_collections

  # The protocols' own functions find the entries as a resume does.
  from jaxprune import config_utils
  from jaxprune.protocols import common, prune_retrain, pruned_cache

  path = os.path.join(run_dir, "config.json")
  if not os.path.exists(path):
    return []
  config = ml_collections.ConfigDict(io_utils.read_json(path))
  if config.get("retrain") is None or config.retrain.get("dense_workdir"):
    return []  # A given dense run is not in the cache.
  train_config = common.training_config(config)
  root = common.cache_root(config, run_dir)
  dense = common.dense_cache_dir(root, train_config)
  if not common.completed(dense, train_config):
    return []
  found = [dense]
  if config.get("protocol") == "prune_retrain":
    digest = pruned_cache.key(
      config,
      config_utils.config_hash(train_config),
      cycle=1,
      cumulative=prune_retrain.cycle_targets(config)[0],
    )
    pruned = os.path.join(root, "pruned", digest)
    if os.path.exists(os.path.join(pruned, "meta.json")):  # Written last.
      found.append(pruned)
  return found


def unfinished_runs(sweep_dir: str, finished: set[str]) -> list[str]:
  """The run directories of `sweep_dir` that have a config.json but no row:
  the points started and, since a sweep writes every planned point's
  config.json before it runs the first (`sweeps.write_planned_configs`), the
  points still waiting."""
  runs = os.path.join(sweep_dir, "runs")
  return [
    os.path.join(runs, d)
    for d in (sorted(os.listdir(runs)) if os.path.isdir(runs) else [])
    if d not in finished and os.path.exists(os.path.join(runs, d, "config.json"))
  ]


def save_cache(workdir: str, dest: str, run_dirs: list[str]) -> int:
  """Packs every cache entry inside `workdir` that one of `run_dirs` reads
  into `<dest>/inflight_cache/` and drops the packs none of them reads;
  returns the number of packs written."""
  root = os.path.abspath(workdir)
  wanted = {}
  for run_dir in run_dirs:
    for entry in cache_entries(run_dir):
      rel = os.path.relpath(os.path.abspath(entry), root)
      if not rel.startswith(os.pardir + os.sep):  # Outside: not carried.
        wanted[rel.replace(os.sep, "/") + SUFFIX] = entry
  target_dir = os.path.join(dest, CACHE_DIR)
  written = 0
  for name, entry in sorted(wanted.items()):
    data = pack(entry, DENSE_KINDS)
    if data is not None:
      target = os.path.join(target_dir, *name.split("/"))
      written += io_utils.write_bytes_if_changed(target, data)
  for here, _, files in os.walk(target_dir):
    for f in files:
      rel = os.path.relpath(os.path.join(here, f), target_dir).replace(os.sep, "/")
      if rel not in wanted:
        os.remove(os.path.join(here, f))  # No unfinished run reads it now.
  return written


def restore_cache(src: str, workdir: str) -> int:
  """Unpacks each cache pack of the record `src` whose entry `workdir` lacks;
  returns the number unpacked."""
  source = os.path.join(src, CACHE_DIR)
  restored = 0
  for here, dirs, files in os.walk(source):
    dirs.sort()
    for name in sorted(files):
      if not name.endswith(SUFFIX):
        continue
      rel = os.path.relpath(os.path.join(here, name), source)[: -len(SUFFIX)]
      entry = os.path.join(workdir, rel)
      if os.path.exists(entry):
        continue  # The workdir's own entry is never overwritten.
      partial = entry + ".restoring"
      shutil.rmtree(partial, ignore_errors=True)  # Of a killed restore.
      unpack(os.path.join(here, name), partial)
      os.replace(partial, entry)
      restored += 1
  return restored
