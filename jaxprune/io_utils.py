"""Atomic file writes and JSONL helpers for results that must never be half-written.

A kill at any moment leaves either the old file or the new one: content goes to
a temporary file in the same directory, is fsynced, then `os.replace`d.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
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


def atomic_write_figure(fig: Any, path: str, *, dpi: int = 130) -> str:
  """Saves a matplotlib figure atomically in the format of `path`'s extension
  (png, pdf, svg; png without one); returns `path`."""
  buffer = io.BytesIO()
  fig.savefig(buffer, format=os.path.splitext(path)[1][1:] or "png", dpi=dpi)
  atomic_write_bytes(path, buffer.getvalue())
  return path


def atomic_write_json(path: str, obj: Any) -> None:
  text = json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n"
  atomic_write_bytes(path, text.encode())


def read_json(path: str) -> Any:
  with open(path) as f:
    return json.load(f)


def append_jsonl(path: str, row: dict[str, Any]) -> None:
  """Appends one row as a single write (a partial last line is dropped on read)."""
  line = json.dumps(row, sort_keys=True, default=_json_default) + "\n"
  with open(path, "a") as f:
    f.write(line)
    f.flush()
    os.fsync(f.fileno())


def read_jsonl(path: str) -> list[dict[str, Any]]:
  """Rows of a JSONL file; a truncated last line (killed writer) is skipped."""
  if not os.path.exists(path):
    return []
  rows = []
  with open(path) as f:
    for line in f:
      try:
        rows.append(json.loads(line))
      except json.JSONDecodeError:
        continue
  return rows


def rewrite_jsonl(path: str, rows: list[dict[str, Any]]) -> None:
  text = "".join(
    json.dumps(r, sort_keys=True, default=_json_default) + "\n" for r in rows
  )
  atomic_write_bytes(path, text.encode())


def _json_default(obj: Any) -> Any:
  if hasattr(obj, "tolist"):
    return obj.tolist()
  if hasattr(obj, "to_dict"):
    return obj.to_dict()
  raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
