"""Fault injection: real processes SIGKILLed at several points, damaged files.

Runs go through `tests/fault_driver.py` in subprocesses that kill themselves
(SIGKILL, no cleanup) during compilation, after a checkpoint, while orbax
writes one, between the final checkpoint and summary.json, and in a sweep after
a row and halfway through one. Every rerun of the same command must end with
params byte-identical to an uninterrupted run, exactly one row per sweep point
and no glued lines; a second launch on a busy workdir, damaged checkpoints and
unknown fields must stop with one named line. Subprocesses share the session's
compilation cache (`process_env`), except the one killed while compiling.
"""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import time

import jax
import pytest
from conftest import COMPILE_CACHE_VARS, write_tiny_fmnist

from jaxprune import io_utils
from jaxprune.data import datasets, fashion_mnist_local
from jaxprune.results import sweeps
from jaxprune.train import checkpointing

HERE = os.path.dirname(os.path.abspath(__file__))
DRIVER = os.path.join(HERE, "fault_driver.py")
sys.path.insert(0, HERE)
import fault_driver  # noqa: E402


@pytest.fixture(scope="module")
def root(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("faults"))
  write_tiny_fmnist(os.path.join(root, "idx"), num_train=256, num_test=128)
  fashion_mnist_local.FashionMnistLocal.strict_counts = False
  datasets.prepare("fashion_mnist_local", os.path.join(root, "tfds"), root + "/idx")
  return root


def _driver(env, mode, root, workdir, fault=""):
  return subprocess.run(
    [sys.executable, DRIVER, mode, root, workdir, fault],
    env=env,
    capture_output=True,
    text=True,
    timeout=300,
  )


def _main(env, root, workdir, *flags):
  cmd = [sys.executable, "-m", "jaxprune.main", f"--config={DRIVER}:{root}"]
  return subprocess.run(
    [*cmd, f"--workdir={workdir}", *flags],
    env=env,
    capture_output=True,
    text=True,
    timeout=300,
  )


def _read(path):
  with open(path) as f:
    return f.read()


def _final_params(workdir):
  with checkpointing.Checkpointer(os.path.join(workdir, "checkpoints")) as ckpt:
    return jax.device_get(ckpt.restore("final")[0]["params"])


def _same_bytes(a, b):
  same = jax.tree_util.tree_map(lambda x, y: x.tobytes() == y.tobytes(), a, b)
  return jax.tree_util.tree_all(same)


def _error_line(proc):
  """The run's one-line error: stderr's only line starting with ERROR, and no
  traceback at all (libraries' late callbacks once split that line in CI)."""
  assert "Traceback" not in proc.stderr, proc.stderr
  errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]
  assert len(errors) == 1, proc.stderr
  return errors[0]


def test_runs_killed_anywhere_resume_to_the_same_params(root, tmp_path, process_env):
  from jaxprune import protocols

  reference = str(tmp_path / "reference")
  protocols.run(fault_driver.get_config(root), reference)
  workdir = str(tmp_path / "run")

  # A second launch while the first holds the workdir stops at once naming it.
  # The first is the compile fault's run, held stopped (SIGSTOP) while the
  # second tries, then let go to kill itself while XLA compiles (no cache).
  compiling = {k: v for k, v in process_env.items() if k not in COMPILE_CACHE_VARS}
  compiling["JAXPRUNE_COMPILE_CACHE"] = "off"
  first = subprocess.Popen(
    [sys.executable, DRIVER, "run", root, workdir, "compile"], env=compiling, text=True
  )
  lock = os.path.join(workdir, io_utils.WORKDIR_LOCK)
  while not (os.path.exists(lock) and f"pid {first.pid} " in _read(lock)):
    assert first.poll() is None
    time.sleep(0.05)
  first.send_signal(signal.SIGSTOP)
  try:
    second = _main(process_env, root, workdir)
  finally:
    first.send_signal(signal.SIGCONT)
  assert second.returncode == 2
  assert f"is in use by pid {first.pid} on host" in _error_line(second)
  assert first.wait(timeout=300) == -signal.SIGKILL

  for fault in ["after_checkpoint", "checkpoint_write", "before_summary"]:
    proc = _driver(process_env, "run", root, workdir, fault)
    assert proc.returncode == -signal.SIGKILL, (fault, proc.stderr[-2000:])
  proc = _driver(process_env, "run", root, workdir)
  assert proc.returncode == 0, proc.stderr[-2000:]

  assert _same_bytes(_final_params(reference), _final_params(workdir))
  rows = io_utils.read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  assert [r["epoch"] for r in rows] == [1, 2, 3]
  want = io_utils.read_json(os.path.join(reference, "summary.json"))
  got = io_utils.read_json(os.path.join(workdir, "summary.json"))
  for key in ("status", "epoch", "train/loss", "train/accuracy", "lr", "test/accuracy"):
    assert got[key] == want[key], key

  # Killed before its summary, with every periodic checkpoint damaged: one line
  # naming the directory (a completed run's rerun would not read checkpoints).
  os.remove(os.path.join(workdir, "summary.json"))
  for manifest in glob.glob(f"{workdir}/checkpoints/latest/*/state/manifest.ocdbt"):
    os.remove(manifest)
  line = _error_line(_main(process_env, root, workdir))
  assert f"{workdir}/checkpoints/latest/" in line and "delete" in line


def test_a_sweep_killed_after_and_inside_a_row_ends_with_one_row_per_point(
  root, tmp_path, process_env
):
  workdir = str(tmp_path / "sweep")
  for fault in ("after_row", "mid_row"):
    proc = _driver(process_env, "sweep", root, workdir, fault)
    assert proc.returncode == -signal.SIGKILL, (fault, proc.stderr[-2000:])
  proc = _driver(process_env, "sweep", root, workdir)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert "dropped a torn last line" in proc.stderr

  path = os.path.join(workdir, sweeps.RESULTS_FILE)
  with open(path) as f:
    lines = f.read().splitlines()
  rows = [json.loads(line) for line in lines]  # No glued or torn lines.
  assert sorted(r["seed"] for r in rows) == [0, 1, 2]
  assert len({r["config_hash"] for r in rows}) == 3
  assert all(r["status"] == "completed" for r in rows)


def test_an_unknown_command_line_field_is_one_line(root, tmp_path, process_env):
  proc = _main(process_env, root, str(tmp_path / "run"), "--config.optimizer.lr=0.1")
  assert proc.returncode != 0
  line = _error_line(proc)
  assert "unknown field 'optimizer.lr'; nearest valid fields: retrain.lr" in line
  assert not os.path.exists(tmp_path / "run")
