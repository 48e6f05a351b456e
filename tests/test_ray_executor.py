"""The Ray executor (`--executor=ray`, jaxprune/results/ray_sweeps.py).

A real local Ray cluster of 2 worker CPUs runs a 4-point sweep of the tiny
MLP, and its rows must equal the sequential runner's (hashes, metrics, the
whole config): through the command line; when the worker running a task is
killed mid-task (the task is retried); and when a task is out of retries (its
points are reported, the rest written, and a rerun fills in exactly the
missing rows). Every point gets exactly one row.

Ray's services may listen only on loopback here, so the cluster runs in a
private network namespace: tests/ray_driver.py is started under `unshare
--user --map-root-user --net`, where loopback is the only interface. The
cluster tests are skipped, with the reason, when ray is not installed or the
machine does not allow unprivileged namespaces; the error messages are tested
without Ray.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import types

import pytest
import ray_driver

from jaxprune import io_utils
from jaxprune.results import ray_sweeps, sweep_cli, sweeps

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DRIVER = os.path.join(ROOT, "tests", "ray_driver.py")
NAMESPACE = ["unshare", "--user", "--map-root-user", "--net"]
# Row fields that must not depend on how the point was run.
SAME = ("overrides", "seed", "status", "epoch", "sparsity", "config")
# Metrics agree to float tolerance only: the reference runs in the pytest
# process and Ray's workers in other processes, whose XLA:CPU programs may
# split reductions over threads differently (seen: 1e-7 relative in CI).


def _no_namespace() -> str | None:
  """Why no private network namespace can be made here (None: it can)."""
  if shutil.which("unshare") is None:
    return "no unshare command"
  probe = subprocess.run([*NAMESPACE, "true"], capture_output=True, text=True)
  if probe.returncode:
    return f"unshare --user --net is not allowed here: {probe.stderr.strip()}"
  return None


@pytest.fixture(scope="module")
def data_root(tiny_fmnist) -> str:
  return os.path.dirname(tiny_fmnist[0])  # <root>/tfds and <root>/idx.


@pytest.fixture(scope="module")
def ray_runs(data_root, tmp_path_factory, process_env) -> str:
  """OUT of one ray_driver.py run (its three sweeps) in a network namespace."""
  if importlib.util.find_spec("ray") is None:
    pytest.skip("ray is not installed: pip install 'jaxprune[ray]'")
  if reason := _no_namespace():
    pytest.skip(reason)
  out = str(tmp_path_factory.mktemp("ray_runs"))
  paths = [ROOT, os.environ.get("PYTHONPATH", "")]
  env = {**process_env, "PYTHONPATH": os.pathsep.join(filter(None, paths))}
  env["RAY_USAGE_STATS_ENABLED"] = "0"
  proc = subprocess.run(
    [*NAMESPACE, sys.executable, DRIVER, data_root, out],
    env=env,
    capture_output=True,
    text=True,
    timeout=600,
  )
  assert proc.returncode == 0 and "finished" in proc.stdout, (
    proc.stdout[-3000:] + proc.stderr[-3000:]
  )
  return out


@pytest.fixture(scope="module")
def sequential(data_root, tmp_path_factory) -> dict[str, dict]:
  """The sequential runner's rows of the same sweep, by config hash."""
  workdir = str(tmp_path_factory.mktemp("sequential"))
  base, sweep = ray_driver.get_config(data_root), ray_driver.get_sweep()
  rows = sweeps.run_sweep(base, sweep, workdir)
  assert len(rows) == len(sweep)
  return {r["config_hash"]: r for r in rows}


def assert_same_rows(workdir: str, reference: dict[str, dict]) -> None:
  rows = io_utils.read_jsonl(os.path.join(workdir, sweeps.RESULTS_FILE))
  assert sorted(r["config_hash"] for r in rows) == sorted(reference)  # One each.
  for row in rows:
    expected = reference[row["config_hash"]]
    assert {k: row.get(k) for k in SAME} == {k: expected.get(k) for k in SAME}
    assert row["metrics"] == pytest.approx(expected["metrics"], rel=1e-5, abs=1e-6)


def test_ray_rows_equal_the_sequential_runners(ray_runs, sequential):
  assert_same_rows(os.path.join(ray_runs, "ray"), sequential)


def test_a_killed_worker_is_retried_and_rows_stay_one_per_point(ray_runs, sequential):
  assert os.path.exists(os.path.join(ray_runs, "killed.marker"))  # It died once.
  assert_same_rows(os.path.join(ray_runs, "killed"), sequential)


def test_a_task_out_of_retries_is_reported_and_a_rerun_fills_in(ray_runs, sequential):
  with open(os.path.join(ray_runs, "no_retry", "error.txt")) as f:
    error = f.read()
  # Seeds 0 and 1 form the first group: its task died with no retry left.
  assert error.startswith("1 of 2 Ray tasks failed (points [1, 2] have no row")
  assert_same_rows(os.path.join(ray_runs, "no_retry"), sequential)


def test_bad_ray_options_and_a_missing_ray_give_one_line_errors(
  tmp_path, monkeypatch, capsys
):
  args = [f"--config={DRIVER}:{tmp_path}", f"--workdir={tmp_path}", "--executor=ray"]
  assert sweep_cli.main([*args, "--ray.cpus_per_task=0"]) == 2
  assert capsys.readouterr().err == "ERROR: ray.cpus_per_task must be > 0, got 0.0\n"
  monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails.
  assert sweep_cli.main(args) == 2
  assert capsys.readouterr().err == f"ERROR: {ray_sweeps.INSTALL_HINT}\n"
  for bad in ("--shard=1/2", "--slurm"):
    with pytest.raises(SystemExit):
      sweep_cli.main([*args, bad])
    assert "no --shard or --slurm" in capsys.readouterr().err
  with pytest.raises(SystemExit):
    sweep_cli.main([*args[:2], "--executor=dask"])
  assert "--executor must be one of ('local', 'ray')" in capsys.readouterr().err


def test_slots_count_the_tasks_the_cluster_runs_at_once():
  gpu_tasks = ray_sweeps.RayOptions(cpus_per_task=2, gpus_per_task=0.5)
  assert gpu_tasks.slots({"CPU": 16.0, "GPU": 2.0}) == 4  # GPUs bound it.
  assert gpu_tasks.slots({"CPU": 6.0, "GPU": 2.0}) == 3  # CPUs bound it.
  assert ray_sweeps.RayOptions().slots({"CPU": 2.0}) == 2
  assert ray_sweeps.RayOptions(gpus_per_task=1).slots({"CPU": 8.0}) == 0


def test_an_unreachable_cluster_is_a_one_line_error():
  class Unreachable:  # Ray's API as far as `connected` uses it.
    exceptions = types.SimpleNamespace(RayError=RuntimeError)

    def is_initialized(self):
      return False

    def init(self, address):
      raise ConnectionError(f"Traceback ...\nFailed to connect to Ray at {address}")

  with (
    pytest.raises(ray_sweeps.RayExecutorError) as error,
    ray_sweeps.connected(Unreachable(), "10.0.0.9:6379"),
  ):
    pass
  assert str(error.value) == (
    "ray.address=10.0.0.9:6379: Failed to connect to Ray at 10.0.0.9:6379"
  )
