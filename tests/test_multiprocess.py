"""Multi-process data parallelism with real processes on localhost.

`python -m jaxprune.main --distributed` is launched as N processes (one CPU
device each) that meet through `jax.distributed.initialize` on 127.0.0.1 and
all-reduce over JAX's CPU collectives. Checked against one process on one
device: the final params (restored from the run's final checkpoint) agree to
float tolerance; only process 0 writes metrics and the summary (one row per
epoch, not one per process); streamed data, of which each process decodes only
its own rows of every global batch, gives the same run; and a run whose
processes are killed after a checkpoint resumes when all are relaunched.

Every run is short (EPOCHS epochs, a checkpoint after each); the one- and
two-process runs are module fixtures shared by the tests, and the killed run is
compared with the shared two-process run (same command, never interrupted).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from conftest import write_tiny_fmnist

from jaxprune import io_utils
from jaxprune.train import checkpointing

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 240
# Enough epochs that a kill right after the first checkpoint lands mid-run.
EPOCHS = 4


@pytest.fixture(scope="module")
def data(tmp_path_factory, process_env):
  """(data_dir, manual_dir, env) of every launch: a prepared tiny Fashion-MNIST
  look-alike and the session's subprocess environment (compilation cache)."""
  from jaxprune.data import datasets, fashion_mnist_local

  root = tmp_path_factory.mktemp("mp_data")
  manual_dir, data_dir = str(root / "idx"), str(root / "tfds")
  write_tiny_fmnist(manual_dir, num_train=384, num_test=96)
  fashion_mnist_local.FashionMnistLocal.strict_counts = False
  datasets.prepare("fashion_mnist_local", data_dir, manual_dir)
  env = {k: v for k, v in process_env.items() if k != "XLA_FLAGS"}  # 1 device.
  return data_dir, manual_dir, env


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _launch(workdir: str, processes: int, data, *overrides: str) -> list:
  """Starts the default experiment as `processes` processes; returns the Popens."""
  data_dir, manual_dir, env = data
  port = _free_port()
  procs = []
  for i in range(processes):
    dist = []
    if processes > 1:
      dist = [
        "--distributed",
        f"--coordinator_address=127.0.0.1:{port}",
        f"--num_processes={processes}",
        f"--process_id={i}",
      ]
    cmd = [
      sys.executable,
      "-m",
      "jaxprune.main",
      "--config=configs/mlp7_fashion_mnist.py",
      f"--workdir={workdir}",
      *dist,
      f"--config.data.data_dir={data_dir}",
      f"--config.data.manual_dir={manual_dir}",
      f"--config.num_epochs={EPOCHS}",
      "--config.checkpoint_every_epochs=1",
      "--config.batch_size=64",
      "--config.eval_batch_size=64",
      "--config.schedule.spec=0:0.05",
      "--config.model.init=orthogonal",
      "--config.progress=False",
      *overrides,
    ]
    with open(f"{workdir}.{i}.log", "w") as log:  # The child keeps its own copy.
      procs.append(
        subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
      )
  return procs


def _wait(procs: list, workdir: str) -> None:
  deadline = time.monotonic() + TIMEOUT
  for i, proc in enumerate(procs):
    try:
      code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
      for p in procs:
        p.kill()
      code = "timeout"
    if code != 0:
      with open(f"{workdir}.{i}.log") as f:
        log = f.read()[-3000:]
      pytest.fail(f"process {i} of {workdir} ended with {code}:\n{log}")


def _run(tmp_path, name: str, processes: int, data, *overrides: str) -> str:
  workdir = str(tmp_path / name)
  _wait(_launch(workdir, processes, data, *overrides), workdir)
  return workdir


def _final_params(workdir: str, like=None) -> dict[str, np.ndarray]:
  """Params of the run's final checkpoint; a multi-process run's checkpoint is
  restored onto this process's one device through the structure `like`."""
  with checkpointing.Checkpointer(os.path.join(workdir, "checkpoints")) as ckpt:
    state = ckpt.restore("final", like and checkpointing.abstract_like(like))[0]
  if like is None:
    return state
  leaves = jax.tree_util.tree_flatten_with_path(jax.device_get(state["params"]))[0]
  return {jax.tree_util.keystr(k): np.asarray(v) for k, v in leaves}


def _assert_same_params(a: str, b: str, like: str | None = None) -> None:
  """Final params of runs `a` and `b` agree; multi-process checkpoints are read
  through the structure of a 1-process run's (`like`, default `a`)."""
  state = _final_params(like or a)
  pa, pb = _final_params(a, state), _final_params(b, state)
  assert pa.keys() == pb.keys() and len(pa) > 10
  for key in pa:
    np.testing.assert_allclose(pa[key], pb[key], atol=1e-5, rtol=0, err_msg=key)


def _metrics_epochs(workdir: str) -> list[int]:
  return [
    r["epoch"] for r in io_utils.read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  ]


@pytest.fixture(scope="module")
def single(tmp_path_factory, data):
  return _run(tmp_path_factory.mktemp("single"), "run", 1, data)


@pytest.fixture(scope="module")
def two(tmp_path_factory, data):
  return _run(tmp_path_factory.mktemp("two"), "run", 2, data)


def test_two_processes_match_one(data, single, two):
  _assert_same_params(single, two)
  assert _metrics_epochs(two) == list(range(1, EPOCHS + 1))  # Process 0 alone.
  summary = io_utils.read_json(os.path.join(two, "summary.json"))
  assert summary["status"] == "completed"
  want = io_utils.read_json(os.path.join(single, "summary.json"))
  assert summary["test/accuracy"] == pytest.approx(want["test/accuracy"], abs=1e-6)
  assert want["test/accuracy"] > 0.5  # The toy task is learnt, not chance.


def test_four_processes_match_one(tmp_path, data, single):
  four = _run(tmp_path, "four", 4, data)
  _assert_same_params(single, four)


def test_streamed_data_each_process_reads_its_rows(tmp_path, data):
  one = _run(tmp_path, "one", 1, data, "--config.data.resident=False")
  two = _run(tmp_path, "two", 2, data, "--config.data.resident=False")
  _assert_same_params(one, two)


def test_killed_processes_resume_when_relaunched(tmp_path, data, single, two):
  # `two` is the same command never interrupted (a checkpoint every epoch).
  workdir = str(tmp_path / "killed")
  procs = _launch(workdir, 2, data)
  latest = os.path.join(workdir, "checkpoints", "latest")
  deadline = time.monotonic() + TIMEOUT
  while not (os.path.isdir(latest) and any(d.isdigit() for d in os.listdir(latest))):
    assert time.monotonic() < deadline, "no checkpoint written in time"
    assert all(p.poll() is None for p in procs), "a process ended early"
    time.sleep(0.02)
  procs[1].send_signal(signal.SIGKILL)  # One host dies ...
  procs[0].kill()  # ... and the scheduler ends the rest of the job.
  for p in procs:
    p.wait()
  assert not os.path.exists(os.path.join(workdir, "summary.json"))
  _wait(_launch(workdir, 2, data), workdir)
  with open(f"{workdir}.0.log") as f:
    assert "Resuming from epoch" in f.read()
  _assert_same_params(two, workdir, like=single)
  assert _metrics_epochs(workdir) == list(range(1, EPOCHS + 1))
