"""`experiments/shards.sh`: one sweep as side-by-side `jaxprune.sweeps --shard`
processes (what `make long-runs-shards` and `make long-runs-gpu` run)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from jaxprune import io_utils
from jaxprune.results import sweeps

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CONFIG = """
from jaxprune import config_utils

def get_config(arg=None):
  config = config_utils.base_config()
  config.data.image_size = (32, 32)
  config.num_epochs = 1
  config.batch_size = 64
  config.eval_batch_size = 64
  config.model.init = "orthogonal"
  return config

def get_sweep(arg=None):
  return [{"optimizer.momentum": m, "seed": s} for m in (0.9, 0.5)
          for s in (0, 1)]
"""

# Stands in for python: records where each shard ran, then runs it.
SPY = """#!{python}
import json, os, sys
with open(os.path.join({out!r}, "shard%d.json" % os.getpid()), "w") as f:
  json.dump({{"cores": sorted(os.sched_getaffinity(0)),
             "xla_flags": os.environ.get("XLA_FLAGS", ""),
             "platforms": os.environ.get("JAX_PLATFORMS", ""),
             "argv": sys.argv[1:]}}, f)
os.execv({python!r}, [{python!r}] + sys.argv[1:])
"""


def test_pinned_shards_run_every_point_once_each_on_its_own_core(
  tiny_fmnist, tmp_path, process_env
):
  data_dir, manual_dir, _ = tiny_fmnist
  config_path = tmp_path / "tiny_sweep.py"
  config_path.write_text(textwrap.dedent(CONFIG))
  spies = tmp_path / "spies"
  spies.mkdir()
  spy = tmp_path / "python"
  spy.write_text(SPY.format(python=sys.executable, out=str(spies)))
  spy.chmod(0o755)
  workdir = str(tmp_path / "sweep")

  proc = subprocess.run(
    [
      "bash",
      os.path.join(ROOT, "experiments", "shards.sh"),
      str(config_path),
      workdir,
      "2",
      "--group=none",
      f"--config.data.data_dir={data_dir}",
      f"--config.data.manual_dir={manual_dir}",
    ],
    cwd=ROOT,
    env={
      **process_env,
      "PY": str(spy),
      "PIN": "1",
      "XLA_FLAGS": "--xla_force_host_platform_device_count=1",
    },
    capture_output=True,
    text=True,
    timeout=600,
  )
  logs = "".join(
    (tmp_path / "sweep" / f"shard{i}.log").read_text()
    for i in range(2)
    if (tmp_path / "sweep" / f"shard{i}.log").exists()
  )
  assert proc.returncode == 0, proc.stdout + proc.stderr + logs[-3000:]
  assert "[shards] 4 rows" in proc.stdout

  rows = io_utils.read_jsonl(os.path.join(workdir, sweeps.RESULTS_FILE))
  hashes = sorted(r["config_hash"] for r in rows)
  assert len(set(hashes)) == 4  # Every point once: the shards split them.

  seen = [json.loads((spies / name).read_text()) for name in sorted(os.listdir(spies))]
  seen = [s for s in seen if any(a.startswith("--shard=") for a in s["argv"])]
  shard_flags = sorted(
    next(a for a in s["argv"] if a.startswith("--shard=")) for s in seen
  )
  assert shard_flags == ["--shard=0/2", "--shard=1/2"]
  allowed = sorted(os.sched_getaffinity(0))
  for s in seen:
    index = int(next(a for a in s["argv"] if a.startswith("--shard="))[8])
    assert s["cores"] == [allowed[index % len(allowed)]]  # Pinned: one core each.
    assert s["platforms"] == "cpu"
    # The caller's flags are kept; Eigen's thread pool is turned off.
    assert s["xla_flags"].split() == [
      "--xla_force_host_platform_device_count=1",
      "--xla_cpu_multi_thread_eigen=false",
    ]
