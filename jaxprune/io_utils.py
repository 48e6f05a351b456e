"""Atomic file writes, JSONL helpers and file locks for results that must
never be half-written or written by two processes at once.

A kill at any moment leaves either the old file or the new one: content goes to
a temporary file in the same directory, is fsynced, then `os.replace`d. JSON is
strict (NaN and infinities are written as "NaN" / "Infinity" strings and read
back as floats). JSONL appends hold a lock on the file and first drop a torn
last line; readers skip unreadable lines with a warning naming file and line.
`file_lock` serialises producers (blocking); `workdir_lock` makes a second
writer of one workdir fail at once, naming the holder.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import math
import os
import socket
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any


def _read_umask() -> int:
  # os.umask can only be read by setting it; done once at import, before any
  # writer threads (orbax) exist, because the umask is process-wide.
  umask = os.umask(0o022)
  os.umask(umask)
  return umask


_UMASK = _read_umask()


def atomic_write_bytes(path: str, data: bytes) -> None:
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(
    dir=directory, prefix=".tmp-", suffix=os.path.basename(path)
  )
  try:
    # mkstemp creates 0600 files; give results the mode a plain open() would.
    os.chmod(tmp, 0o666 & ~_UMASK)
    with os.fdopen(fd, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.unlink(tmp)
    raise


def write_bytes_if_changed(path: str, data: bytes) -> bool:
  """Atomically writes `data` to `path` unless the file already holds exactly
  that; returns whether it wrote (committed records then show no churn)."""
  if os.path.exists(path):
    with open(path, "rb") as f:
      if f.read() == data:
        return False
  atomic_write_bytes(path, data)
  return True


def atomic_write_figure(fig: Any, path: str, *, dpi: int = 130) -> str:
  """Saves a matplotlib figure atomically in the format of `path`'s extension
  (png, pdf, svg; png without one); returns `path`."""
  buffer = io.BytesIO()
  fig.savefig(buffer, format=os.path.splitext(path)[1][1:] or "png", dpi=dpi)
  atomic_write_bytes(path, buffer.getvalue())
  return path


def atomic_write_json(path: str, obj: Any) -> None:
  text = _dumps(obj, indent=2) + "\n"
  atomic_write_bytes(path, text.encode())


def read_json(path: str) -> Any:
  """The JSON value in `path`; ValueError naming the file if it is not JSON."""
  with open(path) as f:
    text = f.read()
  try:
    return _decode(json.loads(text))
  except json.JSONDecodeError as e:
    raise ValueError(
      f"{path} is not valid JSON ({e.msg} at line {e.lineno}); it was cut or "
      "garbled: delete it (a rerun writes it again) or restore it from a backup"
    ) from None


# ------------------------------------------------------------------ locks
@contextlib.contextmanager
def file_lock(path: str) -> Iterator[None]:
  """Exclusive advisory lock on `path` (created if missing), across processes.

  Blocks until the lock is free. fcntl locks are released by the kernel when
  their holder dies, so a killed process never leaves a stale lock behind.
  """
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  with open(path, "a") as f:
    try:
      fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      with _wait_hook()():
        fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)


_thread_hooks = threading.local()


def set_wait_hook(hook: Callable[[], contextlib.AbstractContextManager]) -> None:
  """`hook()` wraps this thread's blocking waits on a `file_lock` (a group of
  runs in threads, `jaxprune.train.group`, must know who is waiting)."""
  _thread_hooks.wait = hook


def _wait_hook() -> Callable[[], contextlib.AbstractContextManager]:
  return getattr(_thread_hooks, "wait", contextlib.nullcontext)


class WorkdirBusyError(RuntimeError):
  """Another live process holds the workdir's lock."""


WORKDIR_LOCK = ".jaxprune.lock"
_HELD: dict[str, Any] = {}  # Workdir locks this process holds (re-entrant).


@contextlib.contextmanager
def workdir_lock(workdir: str) -> Iterator[None]:
  """One writer per workdir: holds `<workdir>/.jaxprune.lock` (pid and host).

  Fails at once with `WorkdirBusyError` naming the holder when another live
  process has it. A dead holder's lock is free again (the kernel drops fcntl
  locks with their process), so a killed run's rerun simply takes it over.
  Re-entrant within a process (a protocol's run and its phases).
  """
  workdir = os.path.abspath(workdir)
  if workdir in _HELD:
    yield
    return
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, WORKDIR_LOCK)
  with open(path, "a+") as f:
    try:
      fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      f.seek(0)
      holder = f.read().strip() or "another process"
      raise WorkdirBusyError(
        f"workdir {workdir} is in use by {holder}; wait for that run to finish "
        "(or stop it) before starting it again, or use another workdir"
      ) from None
    f.seek(0)
    f.truncate()
    f.write(f"pid {os.getpid()} on host {socket.gethostname()}\n")
    f.flush()
    _HELD[workdir] = f
    try:
      yield
    finally:
      del _HELD[workdir]
      fcntl.flock(f, fcntl.LOCK_UN)


# ------------------------------------------------------------------ JSONL
class SkippedLineWarning(UserWarning):
  """A JSONL line that is not a JSON object was skipped."""


def _repair_tail(path: str) -> None:
  """Drops a torn last line (a writer killed mid-write) so the next append
  starts on a line of its own instead of being glued onto the fragment."""
  with open(path, "rb+") as f:
    size = f.seek(0, os.SEEK_END)
    if size == 0:
      return
    f.seek(size - 1)
    if f.read(1) == b"\n":
      return
    cut, end = 0, size
    while end > 0 and not cut:  # Backwards, 64 KiB at a time, to the last newline.
      begin = max(0, end - (1 << 16))
      f.seek(begin)
      chunk = f.read(end - begin)
      cut = begin + chunk.rfind(b"\n") + 1 if b"\n" in chunk else 0
      end = begin
    f.truncate(cut)
    f.flush()
    os.fsync(f.fileno())
  warnings.warn(
    f"{path}: dropped a torn last line ({size - cut} bytes, a killed writer's)",
    SkippedLineWarning,
    stacklevel=3,
  )


def append_jsonl(path: str, row: dict[str, Any]) -> None:
  """Appends one row as a single write, under a lock on the file; a torn last
  line left by a killed writer is dropped first."""
  line = _dumps(row) + "\n"
  with file_lock(path):
    _repair_tail(path)
    with open(path, "a") as f:
      f.write(line)
      f.flush()
      os.fsync(f.fileno())


def read_jsonl_counted(path: str) -> tuple[list[dict[str, Any]], list[int]]:
  """(rows, numbers of the skipped lines) of a JSONL file; every skipped line
  (torn by a killed writer, garbled) is warned about with file and line."""
  if not os.path.exists(path):
    return [], []
  rows, skipped = [], []
  with open(path, errors="replace") as f:
    for number, line in enumerate(f, start=1):
      if not line.strip():
        continue
      try:
        row = json.loads(line)
      except json.JSONDecodeError:
        row = None
      if not isinstance(row, dict):
        skipped.append(number)
        warnings.warn(
          f"{path}:{number}: skipped a line that is not a JSON object: "
          f"{line.strip()[:60]!r}",
          SkippedLineWarning,
          stacklevel=2,
        )
        continue
      rows.append(_decode(row))
  return rows, skipped


def read_jsonl(path: str) -> list[dict[str, Any]]:
  """Rows of a JSONL file; unreadable lines are skipped with a warning."""
  return read_jsonl_counted(path)[0]


def rewrite_jsonl(path: str, rows: list[dict[str, Any]]) -> None:
  text = "".join(_dumps(r) + "\n" for r in rows)
  atomic_write_bytes(path, text.encode())


# ------------------------------------------------------------------ strict JSON
# NaN and infinities are not JSON: they are written as these strings (as
# JavaScript spells them) and read back as floats by `read_json(l)`.
_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _dumps(obj: Any, indent: int | None = None) -> str:
  return json.dumps(_encode(obj), indent=indent, sort_keys=True, allow_nan=False)


def _encode(obj: Any) -> Any:
  if isinstance(obj, float):
    if math.isfinite(obj):
      return obj
    return "NaN" if math.isnan(obj) else ("Infinity" if obj > 0 else "-Infinity")
  if isinstance(obj, dict):
    return {k: _encode(v) for k, v in obj.items()}
  if isinstance(obj, list | tuple):
    return [_encode(v) for v in obj]
  if obj is None or isinstance(obj, str | int | bool):
    return obj
  if hasattr(obj, "tolist"):  # numpy / jax arrays and scalars.
    return _encode(obj.tolist())
  if hasattr(obj, "to_dict"):  # ConfigDict.
    return _encode(obj.to_dict())
  raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _decode(obj: Any) -> Any:
  if isinstance(obj, str):
    return _NONFINITE.get(obj, obj)
  if isinstance(obj, dict):
    return {k: _decode(v) for k, v in obj.items()}
  if isinstance(obj, list):
    return [_decode(v) for v in obj]
  return obj
