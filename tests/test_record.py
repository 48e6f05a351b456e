"""A sweep's portable record (rows + curves) and the group-size cap.

A long sweep on machines that lose their disks goes on by saving its record
and restoring it on the next machine: the same sweep then runs only the points
without a row, and the report's curve endpoints still come from the restored
per-epoch logs.
"""

from __future__ import annotations

import gzip
import os

import pytest

from jaxprune import io_utils
from jaxprune.protocols import grouped
from jaxprune.results import curves, record, sweeps


def _fake_run(ran):
  """A protocol stand-in that logs three epochs of a metric, like a phase does."""

  def run(config, workdir):
    ran.append(int(config.seed))
    log = os.path.join(workdir, "retrain", "metrics.jsonl")
    for epoch in range(3):
      io_utils.append_jsonl(
        log, {"epoch": epoch, "jsv/mean": 1.0 + config.seed + epoch}
      )
    return {"status": "completed", "test/accuracy": 0.5 + 0.1 * config.seed}

  return run


def test_saved_record_restores_rows_and_curves_and_skips_finished_points(
  tiny_config, tmp_path
):
  sweep = sweeps.seeds([{}], [0, 1, 2])
  first = str(tmp_path / "machine1" / "paper" / "exp")
  ran = []
  sweeps.run_sweep(tiny_config, sweep[:2], first, run_fn=_fake_run(ran), group="none")
  assert ran == [0, 1]
  # An interrupted run (no row) is left out of the record.
  os.makedirs(os.path.join(first, "runs", "deadbeef", "retrain"))
  io_utils.append_jsonl(
    os.path.join(first, "runs", "deadbeef", "retrain", "metrics.jsonl"), {"epoch": 0}
  )
  saved = str(tmp_path / "record")
  assert record.save(str(tmp_path / "machine1"), saved) == {"rows": 2, "logs": 2}
  assert not os.path.exists(os.path.join(saved, "paper", "exp", "runs", "deadbeef"))
  assert record.save(str(tmp_path / "machine1"), saved)["rows"] == 0  # Merged.

  second = str(tmp_path / "machine2")
  assert record.restore(saved, second) == {"rows": 2, "logs": 2}
  ran = []
  exp = os.path.join(second, "paper", "exp")
  sweeps.run_sweep(tiny_config, sweep, exp, run_fn=_fake_run(ran), group="none")
  assert ran == [2]  # Only the point without a row ran.
  rows = io_utils.read_jsonl(os.path.join(exp, sweeps.RESULTS_FILE))
  assert sorted(r["seed"] for r in rows) == [0, 1, 2]
  want = io_utils.read_jsonl(os.path.join(first, sweeps.RESULTS_FILE))
  assert rows[:2] == want  # Rows travel unchanged.
  restored = curves.run_curve(exp, rows[1], "jsv/mean")
  assert restored == {0: 2.0, 1: 3.0, 2: 4.0}  # Seed 1's curve, from the record.

  # The second machine's record adds seed 2 to the first's.
  assert record.save(second, saved) == {"rows": 1, "logs": 1}
  assert (
    len(io_utils.read_jsonl(os.path.join(saved, "paper", "exp", "results.jsonl"))) == 3
  )


def test_a_corrupt_record_file_is_named(tmp_path):
  saved = tmp_path / "record" / "exp"
  io_utils.append_jsonl(str(saved / "results.jsonl"), {"config_hash": "abc"})
  log = saved / "runs" / "abc" / "retrain" / "metrics.jsonl.gz"
  os.makedirs(log.parent)
  log.write_bytes(gzip.compress(b'{"epoch": 0}\n')[:-6])  # Truncated.
  with pytest.raises(ValueError, match=r"corrupt record file .*metrics\.jsonl\.gz"):
    record.restore(str(tmp_path / "record"), str(tmp_path / "work"))
  with pytest.raises(FileNotFoundError, match="does not exist"):
    record.restore(str(tmp_path / "missing"), str(tmp_path / "work"))


def test_group_runs_caps_a_group_and_rejects_nonsense(tiny_config):
  points = [(i, {}, tiny_config, str(i)) for i in range(7)]
  sizes = [len(g) for g in grouped.form_groups(points, "auto", max_runs=3)]
  assert sizes == [3, 3, 1]
  assert [len(g) for g in grouped.form_groups(points, "auto")] == [7]
  with pytest.raises(ValueError, match="--group_runs must be a positive integer"):
    grouped.form_groups(points, "auto", max_runs=0)
