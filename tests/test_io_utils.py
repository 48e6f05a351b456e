"""Atomic writes: all-or-nothing, readable permissions, truncated JSONL lines skipped."""

from __future__ import annotations

import os
import stat

import pytest

from jaxprune import io_utils


def test_atomic_write_replaces_and_uses_umask_permissions(tmp_path):
  path = str(tmp_path / "summary.json")
  io_utils.atomic_write_json(path, {"a": 1})
  io_utils.atomic_write_json(path, {"a": 2})
  assert io_utils.read_json(path) == {"a": 2}
  umask = os.umask(0)
  os.umask(umask)
  assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask
  assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_failed_write_leaves_old_file_and_no_temporary(tmp_path):
  path = str(tmp_path / "summary.json")
  io_utils.atomic_write_json(path, {"a": 1})
  with pytest.raises(TypeError):
    io_utils.atomic_write_json(path, {"a": object()})
  assert io_utils.read_json(path) == {"a": 1}
  assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]


def test_write_bytes_if_changed_leaves_an_identical_file_alone(tmp_path):
  path = str(tmp_path / "sub" / "pack.tar.gz")
  assert io_utils.write_bytes_if_changed(path, b"abc")  # New file (and folder).
  os.utime(path, (0, 0))
  assert not io_utils.write_bytes_if_changed(path, b"abc")
  assert os.stat(path).st_mtime == 0  # Not rewritten.
  assert io_utils.write_bytes_if_changed(path, b"abd")
  with open(path, "rb") as f:
    assert f.read() == b"abd"


def test_read_jsonl_skips_a_truncated_last_line(tmp_path):
  path = str(tmp_path / "metrics.jsonl")
  io_utils.append_jsonl(path, {"epoch": 1})
  with open(path, "a") as f:
    f.write('{"epoch": 2, "tr')  # A writer killed mid-line.
  assert io_utils.read_jsonl(path) == [{"epoch": 1}]
