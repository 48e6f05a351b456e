"""Reliability (issue 13): diverged phases, torn JSONL, workdir locks, checkpoint
checksums, validation before writing, resumed summaries, one-line errors.

Each test reproduces one failure a user met (see the issue) in-process on tiny
runs; `test_faults.py` kills real processes.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import shutil
import subprocess
import sys
import types

import jax
import numpy as np
import pytest
from conftest import write_tiny_fmnist

from jaxprune import config_utils, io_utils, protocols
from jaxprune.data import datasets, fashion_mnist_local, pipeline
from jaxprune.data.fashion_mnist_local import DatasetFileError
from jaxprune.results import report, sweeps
from jaxprune.train import TrainingDivergedError, checkpointing, train_and_evaluate

pytestmark = pytest.mark.usefixtures("fast_compiles")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def retrain_config(prune_config, tmp_path):
  """`prune_config` with a constant retraining LR (`retrain.lr`)."""
  prune_config.retrain.schedule, prune_config.retrain.lr = "constant", 0.01
  prune_config.cache_dir = str(tmp_path / "cache")
  return prune_config


def _strict_lines(path):
  """Every line parsed by a strict JSON parser (bare NaN/Infinity refused)."""

  def refuse(name):
    raise ValueError(f"{path}: bare {name} is not JSON")

  with open(path) as f:
    return [json.loads(line, parse_constant=refuse) for line in f]


# ------------------------------------------------------------------ item 1
def test_a_diverged_retrain_phase_is_a_row_and_the_sweep_goes_on(
  retrain_config, tmp_path
):
  workdir = str(tmp_path / "sweep")
  sweep = [{"retrain.lr": 1e12}, {"retrain.lr": 0.01}]
  rows = sweeps.run_sweep(retrain_config, sweep, workdir)
  # Rows come in the order the grouped points end, which load can change.
  assert sorted(r["status"] for r in rows) == ["completed", "diverged"]
  (bad,) = [r for r in rows if r["status"] == "diverged"]
  assert (bad["phase"], bad["cycle"], bad["epoch"]) == ("cycle1", 1, 1)
  assert bad["lr"] == pytest.approx(1e12)
  run = os.path.join(workdir, "runs", bad["config_hash"])
  summary = io_utils.read_json(os.path.join(run, "summary.json"))
  assert summary["status"] == "diverged" and summary["phase"] == "cycle1"
  # Strict JSON everywhere; the NaN loss is read back as a float.
  for path in (os.path.join(workdir, "results.jsonl"), f"{run}/cycle1/metrics.jsonl"):
    _strict_lines(path)
  with open(os.path.join(run, "summary.json")) as f:
    json.loads(f.read(), parse_constant=lambda name: pytest.fail(name))
  stored = io_utils.read_jsonl(os.path.join(workdir, "results.jsonl"))
  (nan_row,) = [r for r in stored if r["status"] == "diverged"]
  assert nan_row["metrics"]["train/loss"] != nan_row["metrics"]["train/loss"]
  # A rerun has nothing left to do; the report counts, never averages, it.
  assert sweeps.run_sweep(retrain_config, sweep, workdir) == []
  (a, b) = sorted(report.aggregate(stored), key=lambda g: -g["diverged"])
  assert (a["n"], a["diverged"], a["mean"]) == (0, 1, {})
  assert (b["n"], b["diverged"]) == (1, 0)
  markdown, _ = report.tables([a, b], ["test/accuracy"])
  assert "| n | diverged |" in markdown


def test_diverged_grouped_seeds_and_dense_phases_get_run_summaries(
  retrain_config, tmp_path
):
  workdir = str(tmp_path / "sweep")
  sweep = sweeps.seeds([{"retrain.lr": 1e12}], [0, 1])
  rows = sweeps.run_sweep(retrain_config, sweep, workdir, group="seeds")
  assert [(r["status"], r["phase"]) for r in rows] == [("diverged", "cycle1")] * 2

  # The shared dense training diverges: the run says so ("dense").
  retrain_config.schedule.lr = 1e12
  rows = sweeps.run_sweep(retrain_config, [{}], str(tmp_path / "dense"))
  assert [(r["status"], r["phase"], r["epoch"]) for r in rows] == [
    ("diverged", "dense", 1)
  ]
  # A plain training run: the run itself.
  retrain_config.protocol = "train"
  with pytest.raises(TrainingDivergedError):
    protocols.run(retrain_config, str(tmp_path / "train"))
  summary = io_utils.read_json(str(tmp_path / "train" / "summary.json"))
  assert (summary["status"], summary["phase"]) == ("diverged", "run")


def test_nonfinite_numbers_are_strict_json_and_read_back(tmp_path):
  path = str(tmp_path / "s.json")
  io_utils.atomic_write_json(path, {"a": float("nan"), "b": [float("inf"), -1e999]})
  with open(path) as f:
    assert json.loads(f.read()) == {"a": "NaN", "b": ["Infinity", "-Infinity"]}
  back = io_utils.read_json(path)
  assert back["a"] != back["a"] and back["b"] == [float("inf"), float("-inf")]


# ------------------------------------------------------------------ item 3
def test_an_append_after_a_torn_line_is_not_glued_onto_it(tmp_path, capsys):
  path = str(tmp_path / "results.jsonl")
  io_utils.append_jsonl(path, {"config_hash": "a", "overrides": {}, "seed": 0})
  with open(path, "a") as f:
    f.write('{"config_hash": "b", "ov')  # A writer killed mid-line.
  with pytest.warns(io_utils.SkippedLineWarning, match="torn last line"):
    io_utils.append_jsonl(path, {"config_hash": "c", "overrides": {}, "seed": 1})
  assert [r["config_hash"] for r in _strict_lines(path)] == ["a", "c"]

  # A garbled middle line: skipped with its file and line number, and counted.
  with open(path, "a") as f:
    f.write("garbage\n")
  io_utils.append_jsonl(path, {"config_hash": "d", "overrides": {}, "seed": 2})
  with pytest.warns(io_utils.SkippedLineWarning, match=r"results.jsonl:3: skipped"):
    rows, skipped = io_utils.read_jsonl_counted(path)
  assert [r["config_hash"] for r in rows] == ["a", "c", "d"] and skipped == [3]
  with pytest.warns(io_utils.SkippedLineWarning):
    report.main(["--results", path, "--out", str(tmp_path / "report")])
  err = capsys.readouterr().err
  assert "read 3 rows" in err and "skipped 1 unreadable line(s) (lines 3)" in err


# ------------------------------------------------------------------ item 4
def _hold_lock(workdir):
  """A second process holding `workdir`'s lock until it is killed."""
  code = (
    "import sys, time; from jaxprune import io_utils\n"
    "with io_utils.workdir_lock(sys.argv[1]):\n"
    "  print('held', flush=True); time.sleep(600)\n"
  )
  env = {**os.environ, "PYTHONPATH": ROOT}
  proc = subprocess.Popen(
    [sys.executable, "-c", code, workdir], stdout=subprocess.PIPE, text=True, env=env
  )
  assert proc.stdout.readline().strip() == "held"
  return proc


def test_a_second_writer_of_a_workdir_stops_at_once_naming_the_holder(
  tiny_config, tmp_path
):
  sweep_dir = str(tmp_path / "sweep")
  workdir = os.path.join(sweep_dir, "runs", config_utils.config_hash(tiny_config))
  holder = _hold_lock(workdir)
  try:
    with pytest.raises(io_utils.WorkdirBusyError, match=f"pid {holder.pid} on host"):
      protocols.run(tiny_config, workdir)
    assert os.listdir(workdir) == [io_utils.WORKDIR_LOCK]  # Nothing written.
    # A sweep skips the busy point (its holder records it) and goes on.
    assert sweeps.run_sweep(tiny_config, [{}], sweep_dir) == []
    assert sweeps.finished_hashes(sweep_dir) == set()
  finally:
    holder.kill()
    holder.wait()
  # The dead holder's lock is taken over.
  lock_file = os.path.join(workdir, io_utils.WORKDIR_LOCK)
  with io_utils.workdir_lock(workdir), open(lock_file) as f:
    assert f.read().startswith(f"pid {os.getpid()} on host")


# ------------------------------------------------------------------ item 2
def _largest_data_file(step_dir):
  files = [
    os.path.join(d, f)
    for d, _, names in os.walk(os.path.join(step_dir, "state"))
    for f in names
    if os.sep + "d" + os.sep in os.path.join(d, f) + os.sep
  ]
  return max(files, key=os.path.getsize)


def flip_bit(path):
  """Flips one bit in the middle of `path` (a disk error)."""
  with open(path, "r+b") as f:
    f.seek(os.path.getsize(path) // 2)
    byte = f.read(1)
    f.seek(-1, os.SEEK_CUR)
    f.write(bytes([byte[0] ^ 0x10]))


def _final_params(workdir):
  with checkpointing.Checkpointer(os.path.join(workdir, "checkpoints")) as ckpt:
    return jax.device_get(ckpt.restore("final")[0]["params"])


def test_a_corrupt_checkpoint_is_set_aside_and_the_previous_one_resumed(
  tiny_config, tmp_path
):
  tiny_config.keep_checkpoints = 2
  reference = str(tmp_path / "reference")
  train_and_evaluate(tiny_config, reference)

  def killed_in_epoch_3(epoch, state):
    if epoch == 3:
      raise KeyboardInterrupt("killed")
    return state

  workdir = str(tmp_path / "run")
  with pytest.raises(KeyboardInterrupt):
    train_and_evaluate(tiny_config, workdir, on_epoch_end=killed_in_epoch_3)
  latest = os.path.join(workdir, "checkpoints", "latest")
  newest = os.path.join(latest, str(max(int(s) for s in os.listdir(latest))))
  flip_bit(_largest_data_file(newest))
  with pytest.warns(checkpointing.CorruptCheckpointWarning, match=newest):
    train_and_evaluate(tiny_config, workdir)
  assert os.path.isdir(os.path.join(workdir, "checkpoints", "corrupt"))
  want, got = _final_params(reference), _final_params(workdir)
  assert jax.tree_util.tree_all(
    jax.tree_util.tree_map(lambda a, b: a.tobytes() == b.tobytes(), want, got)
  )


@pytest.mark.parametrize("damage", ["flip", "cut_meta", "empty_state"])
def test_no_good_checkpoint_is_a_one_line_error_naming_it(tmp_path, damage):
  state = {"w": np.arange(4096, dtype=np.float32), "step": np.int32(3)}
  directory = str(tmp_path / "checkpoints")
  with checkpointing.Checkpointer(directory) as ckpt:
    ckpt.save("final", 3, state, {"epoch": 1})
  step_dir = os.path.join(directory, "final", "3")
  if damage == "flip":
    flip_bit(_largest_data_file(step_dir))
  elif damage == "cut_meta":
    meta = os.path.join(step_dir, "meta", "metadata")
    with open(meta, "r+b") as f:
      f.truncate(os.path.getsize(meta) // 2)
  else:
    shutil.rmtree(os.path.join(step_dir, "state"))
    os.makedirs(os.path.join(step_dir, "state"))
  with (
    checkpointing.Checkpointer(directory) as ckpt,
    pytest.raises(checkpointing.CheckpointError) as error,
  ):
    ckpt.restore("final")
  message = str(error.value)
  assert "\n" not in message and f"delete {step_dir}" in message


def _unraisable(error_factory):
  """An unraisable-hook argument for the exception `error_factory` raises."""
  try:
    error_factory()
  except RuntimeError as e:
    return types.SimpleNamespace(
      exc_type=type(e),
      exc_value=e,
      exc_traceback=e.__traceback__,
      err_msg=None,
      object=None,
    )


def test_late_reads_of_a_failed_restore_are_dropped_and_nothing_else(monkeypatch):
  # tensorstore reads still in flight when a damaged checkpoint's restore fails
  # complete after orbax closed its event loop; their callbacks' errors used to
  # print tracebacks that buried (and in CI split) the one-line error.
  seen = []
  monkeypatch.setattr(sys, "unraisablehook", lambda u: seen.append(u.exc_value))
  checkpointing._drop_late_read_callbacks()
  checkpointing._drop_late_read_callbacks()  # Installs once.

  def call_soon_threadsafe():
    raise RuntimeError("Event loop is closed")

  def elsewhere():
    raise RuntimeError("Event loop is closed")

  def other():
    raise RuntimeError("something else")

  for factory in (call_soon_threadsafe, elsewhere, other):
    sys.unraisablehook(_unraisable(factory))
  assert [str(e) for e in seen] == ["Event loop is closed", "something else"]


def test_unretrieved_read_errors_of_a_failed_restore_are_dropped(caplog):
  # The failed restore's other reads end in errors nobody awaits; asyncio used
  # to log each with a traceback when the task was collected (seen in CI).
  checkpointing._drop_unretrieved_read_errors()
  checkpointing._drop_unretrieved_read_errors()  # Installs once.
  logger = logging.getLogger("asyncio")
  assert (
    sum(isinstance(f, checkpointing._UnretrievedReadErrors) for f in logger.filters)
    == 1
  )
  with caplog.at_level(logging.ERROR, logger="asyncio"):
    logger.error(
      "Task exception was never retrieved\nfuture: <Task finished name='Task-1' "
      "coro=<async_deserialize() done> exception=ValueError('NOT_FOUND')>"
    )
    logger.error(
      "Future exception was never retrieved\nfuture: <Future finished "
      "exception=ValueError('NOT_FOUND: [tensorstore_spec=...]')>"
    )
    logger.error("Task exception was never retrieved\nfuture: <Task coro=<mine()>>")
    logger.error("Unclosed client session")
  assert [r.getMessage().splitlines()[-1] for r in caplog.records] == [
    "future: <Task coro=<mine()>>",
    "Unclosed client session",
  ]


# ------------------------------------------------------------------ item 6
@pytest.mark.parametrize(
  "field,value", [("optimizer.weight_decay", -1.0), ("optimizer.momentum", 5.0)]
)
def test_bad_fields_are_refused_before_the_workdir_is_touched(
  tiny_config, tmp_path, field, value
):
  section, leaf = field.split(".")
  tiny_config[section][leaf] = value
  for run in (protocols.run, train_and_evaluate):
    with pytest.raises(ValueError, match=field):
      run(tiny_config, str(tmp_path / "run"))
    assert not os.path.exists(tmp_path / "run")


def test_an_unknown_command_line_field_is_named_with_its_nearest_fields(tmp_path):
  # A subprocess: jaxprune.main defines absl flags at import, which other test
  # modules' command-line entry points (e.g. jaxprune.schedules) define too.
  import subprocess
  import sys

  proc = subprocess.run(
    [
      sys.executable,
      "-m",
      "jaxprune.main",
      f"--config={ROOT}/configs/mlp7_fashion_mnist.py",
      f"--workdir={tmp_path / 'run'}",
      "--config.optimizer.lr=0.1",
    ],
    cwd=ROOT,
    env={**os.environ, "JAX_PLATFORMS": "cpu"},
    capture_output=True,
    text=True,
  )
  assert proc.returncode != 0
  errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
  assert len(errors) == 1, proc.stderr
  message = errors[0]
  assert "--config.optimizer.lr=0.1: unknown field 'optimizer.lr'" in message
  assert "nearest valid fields: retrain.lr" in message
  assert not os.path.exists(tmp_path / "run")


# ------------------------------------------------------------------ item 7
def test_a_summary_written_on_resume_keeps_the_training_metrics(tiny_config, tmp_path):
  workdir = str(tmp_path / "run")
  full = train_and_evaluate(tiny_config, workdir)
  os.remove(os.path.join(workdir, "summary.json"))  # Killed before writing it.
  resumed = train_and_evaluate(tiny_config, workdir)
  for key in ("train/loss", "train/accuracy", "lr", "test/accuracy", "epoch"):
    assert resumed[key] == full[key], key
  assert (
    io_utils.read_json(os.path.join(workdir, "summary.json"))["train/loss"]
    == (full["train/loss"])
  )


# ------------------------------------------------------------------ item 5
def test_a_damaged_prepared_shard_is_named_with_the_fix(tiny_fmnist, tmp_path):
  data_dir, manual_dir, _ = tiny_fmnist
  copy = str(tmp_path / "tfds")
  shutil.copytree(data_dir, copy)
  (shard,) = glob.glob(f"{copy}/fashion_mnist_local/*/*-train.array_record-*")
  os.truncate(shard, os.path.getsize(shard) // 3)
  config = config_utils.base_config().data
  config.data_dir, config.manual_dir = copy, manual_dir
  with pytest.raises(DatasetFileError) as error:
    pipeline.load(config)
  message = str(error.value)
  assert "\n" not in message and shard in message
  assert f"python -m jaxprune.data prepare --force --data_dir={copy}" in message
  datasets.prepare("fashion_mnist_local", copy, manual_dir, force=True)
  assert pipeline.load(config).train.num_examples == 512


def test_a_failed_prepare_leaves_no_dataset_directory(tmp_path, monkeypatch):
  monkeypatch.setattr(fashion_mnist_local.FashionMnistLocal, "strict_counts", False)
  data_dir, manual_dir = str(tmp_path / "tfds"), str(tmp_path / "idx")
  with pytest.raises(DatasetFileError, match=r"Dataset file not found: .*idx3"):
    datasets.prepare("fashion_mnist_local", data_dir, manual_dir)
  write_tiny_fmnist(manual_dir, num_train=64, num_test=16)
  labels = os.path.join(manual_dir, "t10k-labels-idx1-ubyte.gz")
  os.truncate(labels, os.path.getsize(labels) // 2)
  with pytest.raises(DatasetFileError, match="truncated or corrupt"):
    datasets.prepare("fashion_mnist_local", data_dir, manual_dir)
  assert not os.path.exists(os.path.join(data_dir, "fashion_mnist_local"))
