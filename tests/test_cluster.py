"""SLURM scripts (`jaxprune.cluster`): what they ask for, and that they run.

There is no SLURM here, so the generated scripts are checked three ways: their
`#SBATCH` lines, `bash -n`, and by running them with the variables SLURM would
set. A sweep's array task k must run exactly shard k/N and be safe to requeue;
the multi-host script is run under stand-in `scontrol`/`srun` commands that
start its tasks as local processes, i.e. a real 2-process distributed run.
"""

from __future__ import annotations

import os
import pathlib
import stat
import subprocess

import pytest

from jaxprune import cluster, io_utils
from jaxprune.results import sweep_cli, sweeps

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SWEEP_CONFIG = """
from jaxprune import config_utils
from jaxprune.results import sweeps

def get_config(arg=None):
  c = config_utils.base_config()
  c.data.data_dir = {data_dir!r}
  c.data.manual_dir = {manual_dir!r}
  c.data.image_size = (32, 32)
  c.num_epochs = 1
  c.batch_size = 64
  c.eval_batch_size = 64
  c.progress = False
  c.schedule.spec = "0:0.05"
  return c

def get_sweep(arg=None):
  return sweeps.seeds([{{}}], [0, 1, 2])
"""


@pytest.fixture
def sweep_config(tiny_fmnist, tmp_path):
  data_dir, manual_dir, _ = tiny_fmnist
  path = tmp_path / "tiny_sweep.py"
  path.write_text(SWEEP_CONFIG.format(data_dir=data_dir, manual_dir=manual_dir))
  return str(path)


def _bash(script: str, env: dict[str, str], cwd: str = ROOT):
  return subprocess.run(
    ["bash", script], env={**os.environ, **env}, cwd=cwd, capture_output=True, text=True
  )


def test_sweep_array_script_asks_for_the_resources(sweep_config, tmp_path):
  workdir = str(tmp_path / "sweep")
  args = [f"--config={sweep_config}", f"--workdir={workdir}", "--slurm"]
  args += ["--slurm.partition=gpu", "--slurm.time=02:00:00"]
  args += ["--slurm.gpus_per_task=1", "--slurm.tasks=2", "--group=seeds"]
  assert sweep_cli.main(args) == 0
  path = os.path.join(workdir, "slurm", "sweep.sbatch")
  text = pathlib.Path(path).read_text()
  for line in (
    "#SBATCH --array=0-1",
    "#SBATCH --requeue",
    "#SBATCH --partition=gpu",
    "#SBATCH --time=02:00:00",
    "#SBATCH --gpus-per-task=1",
    f"#SBATCH --output={workdir}/slurm/%A_%a.out",
  ):
    assert line in text.splitlines(), line
  assert '--shard="${SLURM_ARRAY_TASK_ID}/2"' in text and "--group=seeds" in text
  assert subprocess.run(["bash", "-n", path]).returncode == 0
  # Default array size: one task per point.
  assert sweep_cli.main(args[:3]) == 0
  assert "#SBATCH --array=0-2" in pathlib.Path(path).read_text()


def test_array_tasks_run_their_shards_and_requeue_safely(sweep_config, tmp_path):
  workdir = str(tmp_path / "sweep")
  base = [f"--config={sweep_config}", f"--workdir={workdir}", "--slurm"]
  assert sweep_cli.main([*base, "--slurm.tasks=2"]) == 0
  script = os.path.join(workdir, "slurm", "sweep.sbatch")
  results = os.path.join(workdir, sweeps.RESULTS_FILE)

  proc = _bash(script, {"SLURM_ARRAY_TASK_ID": "1", "JAX_PLATFORMS": "cpu"})
  assert proc.returncode == 0, proc.stderr[-2000:]
  # Shard 1/2: the second of the sweep's groups (grouped runs by default).
  assert [r["seed"] for r in io_utils.read_jsonl(results)] == [2]
  proc = _bash(script, {"SLURM_ARRAY_TASK_ID": "0", "JAX_PLATFORMS": "cpu"})
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert sorted(r["seed"] for r in io_utils.read_jsonl(results)) == [0, 1, 2]
  # A requeued task finds its points done and adds nothing.
  assert _bash(script, {"SLURM_ARRAY_TASK_ID": "1"}).returncode == 0
  assert len(io_utils.read_jsonl(results)) == 3


def test_multihost_script_runs_as_a_distributed_job(tiny_fmnist, tmp_path):
  data_dir, manual_dir, _ = tiny_fmnist
  workdir = str(tmp_path / "run")
  overrides = [
    f"--config.data.data_dir={data_dir}",
    f"--config.data.manual_dir={manual_dir}",
    "--config.num_epochs=1",
    "--config.batch_size=64",
    "--config.eval_batch_size=64",
    "--config.schedule.spec=0:0.05",
    "--config.progress=False",
  ]
  code = cluster.main(
    [
      "--config=configs/mlp7_fashion_mnist.py",
      f"--workdir={workdir}",
      "--nodes=2",
      "--slurm.gpus_per_node=8",
      "--port=0",  # Replaced below by a free port.
      *overrides,
    ]
  )
  assert code == 0
  path = os.path.join(workdir, "run.sbatch")
  text = pathlib.Path(path).read_text()
  for line in ("#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=1"):
    assert line in text.splitlines()
  assert "#SBATCH --gpus-per-node=8" in text.splitlines()
  assert subprocess.run(["bash", "-n", path]).returncode == 0

  # Stand-ins: scontrol names this host; srun starts SLURM_NTASKS local tasks.
  import socket

  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
  runnable = tmp_path / "local.sbatch"
  runnable.write_text(text.replace("${head}:0", f"${{head}}:{port}"))
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  (bin_dir / "scontrol").write_text("#!/bin/bash\necho 127.0.0.1\n")
  (bin_dir / "srun").write_text(
    "#!/bin/bash\n"
    'for i in $(seq 0 $((SLURM_NTASKS - 1))); do SLURM_PROCID=$i "$@" & done\n'
    "wait\n"
  )
  for f in bin_dir.iterdir():
    f.chmod(f.stat().st_mode | stat.S_IEXEC)
  env = {
    "PATH": f"{bin_dir}:{os.environ['PATH']}",
    "SLURM_JOB_NODELIST": "node[1-2]",
    "SLURM_NTASKS": "2",
    "JAX_PLATFORMS": "cpu",
    "PYTHONPATH": ROOT,
  }
  proc = _bash(str(runnable), env)
  assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
  summary = io_utils.read_json(os.path.join(workdir, "summary.json"))
  assert summary["status"] == "completed"
  assert len(io_utils.read_jsonl(os.path.join(workdir, "metrics.jsonl"))) == 1


def test_bad_requests_name_the_field(tmp_path, monkeypatch):
  with pytest.raises(ValueError, match=r"slurm\.tasks"):
    cluster.sweep_array_script("c.py", str(tmp_path), 0)
  with pytest.raises(ValueError, match=r"slurm\.gpus_per_task"):
    cluster.SlurmOptions(gpus_per_task=-1)
  script = cluster.sweep_array_script("c.py", str(tmp_path), 1)
  monkeypatch.setenv("PATH", str(tmp_path))  # No sbatch here.
  with pytest.raises(RuntimeError, match="sbatch not found"):
    cluster.write_script(script, str(tmp_path / "s.sbatch"), submit=True)
