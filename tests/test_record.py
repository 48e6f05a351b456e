"""A sweep's portable record (rows + curves) and the group-size cap.

A long sweep on machines that lose their disks goes on by saving its record
and restoring it on the next machine: the same sweep then runs only the points
without a row, and the report's curve endpoints still come from the restored
per-epoch logs.
"""

from __future__ import annotations

import gzip
import io
import os
import pathlib
import tarfile

import jax
import numpy as np
import pytest

from jaxprune import io_utils
from jaxprune.protocols import grouped
from jaxprune.results import curves, inflight, record, sweeps
from jaxprune.train import checkpointing, train_and_evaluate


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
  assert record.save(str(tmp_path / "machine1"), saved) == {
    "rows": 2,
    "logs": 2,
    "studies": 0,
  }
  assert not os.path.exists(os.path.join(saved, "paper", "exp", "runs", "deadbeef"))
  assert record.save(str(tmp_path / "machine1"), saved)["rows"] == 0  # Merged.

  second = str(tmp_path / "machine2")
  assert record.restore(saved, second) == {"rows": 2, "logs": 2, "studies": 0}
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
  assert record.save(second, saved) == {"rows": 1, "logs": 1, "studies": 0}
  assert (
    len(io_utils.read_jsonl(os.path.join(saved, "paper", "exp", "results.jsonl"))) == 3
  )


def test_a_studys_rows_travel_in_the_record_and_the_newest_copy_wins(tmp_path):
  # An analysis study (no sweep, no results.jsonl) keeps its rows in
  # study.jsonl: the report is rebuilt from the record without checkpoints.
  work = tmp_path / "work" / "paper" / "jsv"
  io_utils.rewrite_jsonl(str(work / record.STUDY_FILE), [{"seed": 0, "metrics": {}}])
  saved = str(tmp_path / "record")
  assert record.save(str(tmp_path / "work"), saved)["studies"] == 1
  assert record.save(str(tmp_path / "work"), saved)["studies"] == 0  # Unchanged.
  io_utils.rewrite_jsonl(str(work / record.STUDY_FILE), [{"seed": 1, "metrics": {}}])
  assert record.save(str(tmp_path / "work"), saved)["studies"] == 1  # Replaced.
  assert io_utils.read_jsonl(os.path.join(saved, "paper", "jsv", "study.jsonl")) == [
    {"seed": 1, "metrics": {}}
  ]
  fresh = tmp_path / "fresh"
  assert record.restore(saved, str(fresh)) == {"rows": 0, "logs": 0, "studies": 1}
  # A workdir's own study rows are never overwritten by a restore.
  io_utils.rewrite_jsonl(str(work / record.STUDY_FILE), [{"seed": 2, "metrics": {}}])
  assert record.restore(saved, str(tmp_path / "work"))["studies"] == 0
  assert io_utils.read_jsonl(str(work / record.STUDY_FILE))[0]["seed"] == 2


def _final_params(workdir):
  with checkpointing.Checkpointer(os.path.join(workdir, "checkpoints")) as ckpt:
    return ckpt.restore("final")[0]["params"]


def test_an_unfinished_run_travels_in_the_record_and_resumes_bit_identically(
  tiny_config, tmp_path, monkeypatch, capsys
):
  # A fresh clone each session: a run longer than a session goes on from its
  # packed newest checkpoint instead of starting over.
  reference = str(tmp_path / "uninterrupted")
  train_and_evaluate(tiny_config, reference)
  run = tmp_path / "machine1" / "paper" / "exp" / "runs" / "abc123"
  original_save = checkpointing.Checkpointer.save

  def save_then_die(self, kind, step, state, meta):
    original_save(self, kind, step, state, meta)
    if kind == "latest":
      raise KeyboardInterrupt("the machine goes after the first checkpoint")

  monkeypatch.setattr(checkpointing.Checkpointer, "save", save_then_die)
  with pytest.raises(KeyboardInterrupt):
    train_and_evaluate(tiny_config, str(run))
  monkeypatch.setattr(checkpointing.Checkpointer, "save", original_save)

  saved = str(tmp_path / "record")
  assert record.save(str(tmp_path / "machine1"), saved)["rows"] == 0
  assert not os.path.exists(os.path.join(saved, "paper", "exp", "inflight"))
  counts = record.save(str(tmp_path / "machine1"), saved, inflight=True)
  assert counts["inflight"] == 1
  pack = os.path.join(saved, "paper", "exp", "inflight", "abc123.tar.gz")
  first = pathlib.Path(pack).read_bytes()
  assert record.save(str(tmp_path / "machine1"), saved, inflight=True)["inflight"] == 0
  assert pathlib.Path(pack).read_bytes() == first  # Deterministic: not rewritten.
  packed = inflight.pack(str(run))
  with tarfile.open(fileobj=io.BytesIO(gzip.decompress(packed))) as tar:
    members = tar.getnames()
  assert "config.json" in members and "metrics.jsonl" in members
  assert not any("tensorboard" in m or m.endswith(".lock") for m in members)
  assert any(m.startswith("checkpoints/latest/") for m in members)

  fresh = tmp_path / "machine2"
  assert record.restore(saved, str(fresh))["inflight"] == 1
  resumed = str(fresh / "paper" / "exp" / "runs" / "abc123")
  rows = io_utils.read_jsonl(os.path.join(resumed, "metrics.jsonl"))
  assert [r["epoch"] for r in rows] == [1]  # It goes on from epoch 1.
  capsys.readouterr()
  assert train_and_evaluate(tiny_config, resumed)["epoch"] == 3
  assert "Resuming from epoch 1" in capsys.readouterr().out  # Not from scratch.
  want, got = _final_params(reference), _final_params(resumed)
  jax.tree_util.tree_map(np.testing.assert_array_equal, want, got)
  assert record.restore(saved, str(fresh)).get("inflight", 0) == 0  # Has its own.

  # Once its row is in the record, the pack goes.
  io_utils.append_jsonl(
    str(fresh / "paper" / "exp" / "results.jsonl"), {"config_hash": "abc123"}
  )
  record.save(str(fresh), saved, inflight=True)
  assert not os.path.exists(pack)

  other = pathlib.Path(pack).with_name("def456.tar.gz")  # A run with no row.
  other.write_bytes(first[:-20])  # Truncated.
  with pytest.raises(ValueError, match=r"corrupt record file .*def456\.tar\.gz"):
    record.restore(saved, str(tmp_path / "machine3"))


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


def test_a_pack_takes_the_newest_committed_step_of_each_kind(tmp_path):
  kind = tmp_path / "checkpoints" / "latest"
  for step, marked in (("10", True), ("20", True), ("30", False)):
    (kind / step).mkdir(parents=True)
    (kind / step / "state").write_bytes(step.encode())
    if marked:
      (kind / step / inflight.COMMITTED).write_text("")
  (kind / "40.orbax-checkpoint-tmp-1").mkdir()  # A save in progress.
  files = list(inflight._files(str(tmp_path)))
  assert files == [
    f"checkpoints/latest/20/{inflight.COMMITTED}",
    "checkpoints/latest/20/state",
  ]
  for step in ("10", "20"):  # An orbax that writes no marks: the newest step.
    (kind / step / inflight.COMMITTED).unlink()
  assert list(inflight._files(str(tmp_path))) == ["checkpoints/latest/30/state"]


def test_an_unfinished_prune_retrain_run_resumes_without_retraining_its_dense_phase(
  prune_config, tmp_path, monkeypatch, capsys
):
  # The record carries the shared cache entries (dense phase, first pruning)
  # an unfinished run reads, so a fresh machine resumes it at once.
  from jaxprune import protocols
  from jaxprune.protocols import common, prune_retrain

  config = prune_config.copy_and_resolve_references()
  with config.unlocked():
    config.retrain.num_epochs = 2
  reference = protocols.run(config, str(tmp_path / "reference" / "runs" / "r"))
  sweep = tmp_path / "machine1" / "paper" / "exp"
  original_save = checkpointing.Checkpointer.save

  def save_then_die(self, kind, step, state, meta):
    original_save(self, kind, step, state, meta)
    if kind == "latest" and f"{os.sep}cycle1{os.sep}" in self.directory:
      raise KeyboardInterrupt("the machine goes in the retraining")

  monkeypatch.setattr(checkpointing.Checkpointer, "save", save_then_die)
  with pytest.raises(KeyboardInterrupt):
    protocols.run(config, str(sweep / "runs" / "abc123"))
  monkeypatch.setattr(checkpointing.Checkpointer, "save", original_save)

  saved = str(tmp_path / "record")
  counts = record.save(str(tmp_path / "machine1"), saved, inflight=True)
  assert (counts["inflight"], counts["cache"]) == (1, 2)
  packs = sorted(
    os.path.relpath(os.path.join(d, f), saved)
    for d, _, fs in os.walk(os.path.join(saved, inflight.CACHE_DIR))
    for f in fs
  )
  assert [p.split(os.sep)[:4] for p in packs] == [
    [inflight.CACHE_DIR, "paper", "exp", "cache"]
  ] * 2
  dense_pack = next(p for p in packs if f"{os.sep}train{os.sep}" in p)
  data = gzip.decompress(pathlib.Path(saved, dense_pack).read_bytes())
  with tarfile.open(fileobj=io.BytesIO(data)) as tar:
    names = tar.getnames()
  assert "summary.json" in names and any(
    n.startswith("checkpoints/final/") for n in names
  )
  assert not any(n.startswith("checkpoints/latest/") for n in names)  # Not read.

  fresh = tmp_path / "machine2"
  assert record.restore(saved, str(fresh))["cache"] == 2
  trained = []
  original_train = common.train_and_evaluate

  def recording_train(cfg, workdir, **kwargs):
    trained.append(workdir)
    return original_train(cfg, workdir, **kwargs)

  def no_pruning(*args, **kwargs):
    raise AssertionError("the pruning should come from the restored cache")

  monkeypatch.setattr(common, "train_and_evaluate", recording_train)
  monkeypatch.setattr(prune_retrain, "prune_once", no_pruning)
  capsys.readouterr()
  resumed = protocols.run(config, str(fresh / "paper" / "exp" / "runs" / "abc123"))
  assert [os.path.basename(w) for w in trained] == ["cycle1"]  # No dense phase.
  assert "Resuming from epoch 1" in capsys.readouterr().out
  assert resumed["test/accuracy"] == reference["test/accuracy"]
  assert record.restore(saved, str(fresh)).get("cache", 0) == 0  # Has its own.

  # Once the run has its row, no unfinished run reads the entries: packs go.
  io_utils.append_jsonl(
    str(fresh / "paper" / "exp" / "results.jsonl"), {"config_hash": "abc123"}
  )
  assert record.save(str(fresh), saved, inflight=True)["cache"] == 0
  assert not any(fs for _, _, fs in os.walk(os.path.join(saved, inflight.CACHE_DIR)))
