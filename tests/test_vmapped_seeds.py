"""Seeds of a sweep setting as one vmapped program, and process-0-only writing.

`sweeps.run_sweep(..., vmap_seeds=True)` must write the rows a sequential sweep
writes (same hashes and fields, metrics equal up to float noise, identical
masks), resume a partly finished group without duplicate rows, and fall back to
point-by-point runs for what it does not support.
"""

from __future__ import annotations

import os

import jax
import ml_collections
import numpy as np
import pytest

from jaxprune import io_utils
from jaxprune.protocols import seeds as seeds_lib
from jaxprune.results import sweeps
from jaxprune.train import checkpointing, sharding, train_and_evaluate, vmapped

pytestmark = pytest.mark.usefixtures("fast_compiles")


def _rows(workdir):
  return io_utils.read_jsonl(os.path.join(workdir, "results.jsonl"))


def _masks(run_dir):
  path = os.path.join(run_dir, "cycle1", "checkpoints")
  with checkpointing.Checkpointer(path) as ckpt:
    return jax.device_get(ckpt.restore("final")[0]["masks"])


def _assert_same_rows(seq, vm, tol=1e-4):
  assert [r["config_hash"] for r in seq] == [r["config_hash"] for r in vm]
  for a, b in zip(seq, vm):
    assert set(a) == set(b) and set(a["metrics"]) == set(b["metrics"])
    for key, value in a["metrics"].items():
      assert b["metrics"][key] == pytest.approx(value, abs=tol), key
    for key in ("status", "epoch", "seed", "sparsity", "params", "nonzero_params"):
      assert a.get(key) == b.get(key), key


def test_train_seeds_vmapped_match_sequential(tiny_config, tmp_path):
  tiny_config.num_epochs, tiny_config.schedule.spec = 2, "0:0.05,1:0.005"
  sweep = sweeps.seeds([{}], [0, 1, 2])
  seq = sweeps.run_sweep(tiny_config, sweep, str(tmp_path / "seq"))
  vm = sweeps.run_sweep(tiny_config, sweep, str(tmp_path / "vm"), vmap_seeds=True)
  _assert_same_rows(seq, vm)
  run = str(tmp_path / "vm" / "runs" / vm[0]["config_hash"])
  summary = io_utils.read_json(os.path.join(run, "summary.json"))
  assert summary["vmapped_seeds"] == 3 and summary["status"] == "completed"
  assert [r["epoch"] for r in io_utils.read_jsonl(f"{run}/metrics.jsonl")] == [1, 2]
  # A rerun finds every point done.
  assert (
    sweeps.run_sweep(tiny_config, sweep, str(tmp_path / "vm"), vmap_seeds=True) == []
  )


def test_prune_retrain_seeds_vmapped_match_sequential(prune_config, tmp_path, capsys):
  sweep = sweeps.seeds([{}], [0, 1])
  seq = sweeps.run_sweep(prune_config, sweep, str(tmp_path / "seq"))
  vm = sweeps.run_sweep(prune_config, sweep, str(tmp_path / "vm"), vmap_seeds=True)
  assert "2 seeds as one vmapped program" in capsys.readouterr().out
  _assert_same_rows(seq, vm)
  for row in seq:
    a = _masks(str(tmp_path / "seq" / "runs" / row["config_hash"]))
    b = _masks(str(tmp_path / "vm" / "runs" / row["config_hash"]))
    jax.tree_util.tree_map(np.testing.assert_array_equal, a, b)
  # The dense phases ran vmapped too (in the sweep's shared cache).
  train_dirs = (tmp_path / "vm" / "cache" / "train").glob("*/summary.json")
  assert sorted(io_utils.read_json(p).get("vmapped_seeds") for p in train_dirs) == [
    2,
    2,
  ]


def test_partial_group_runs_only_missing_seeds(tiny_config, tmp_path):
  tiny_config.num_epochs, tiny_config.schedule.spec = 1, "0:0.05"
  sweep = sweeps.seeds([{}], [0, 1, 2])
  workdir = str(tmp_path / "sweep")
  sweeps.run_sweep(tiny_config, sweep[:1], workdir)  # Seed 0 finished alone.
  rows = sweeps.run_sweep(tiny_config, sweep, workdir, vmap_seeds=True)
  assert [r["seed"] for r in rows] == [1, 2]
  all_rows = _rows(workdir)
  assert sorted(r["seed"] for r in all_rows) == [0, 1, 2]
  assert len({r["config_hash"] for r in all_rows}) == 3


def test_unsupported_settings_fall_back_to_sequential(prune_config, tmp_path, capsys):
  prune_config.pruning.schedule, prune_config.pruning.imp_cycles = "imp", 2
  assert "iterative" in seeds_lib.unsupported(prune_config)
  prune_config.pruning.schedule = "one_shot"
  prune_config.protocol = "lottery"
  assert "protocol 'lottery'" in seeds_lib.unsupported(prune_config)
  prune_config.protocol = "train"
  prune_config.analysis.jsv_every_epochs = 1
  assert "analysis" in seeds_lib.unsupported(prune_config)
  prune_config.analysis.jsv_every_epochs = 0
  prune_config.protocol = "prune_retrain"
  # ALLR from the norm change alone: per-seed schedules, retrained one by one.
  prune_config.retrain.schedule = "allr_d1"
  rows = sweeps.run_sweep(
    prune_config, sweeps.seeds([{}], [0, 1]), str(tmp_path / "s"), vmap_seeds=True
  )
  assert "seeds run one by one" in capsys.readouterr().out
  assert [r["status"] for r in rows] == ["completed", "completed"]


def test_group_refuses_configs_differing_in_more_than_seed(tiny_config, tmp_path):
  other = ml_collections.ConfigDict(tiny_config.to_dict())
  other.optimizer.momentum = 0.5
  with pytest.raises(vmapped.NotVmappable, match="momentum"):
    vmapped.train_and_evaluate_seeds(
      [tiny_config, other], [str(tmp_path / "a"), str(tmp_path / "b")]
    )
  assert not os.path.exists(tmp_path / "a")


def test_non_primary_process_writes_no_files(tiny_config, tmp_path, monkeypatch):
  tiny_config.num_epochs, tiny_config.schedule.spec = 1, "0:0.05"
  monkeypatch.setattr(jax, "process_index", lambda *a, **k: 1)
  assert not sharding.is_primary()
  # Orbax reads the process index too; fake it only where jaxprune reads it.
  monkeypatch.undo()
  monkeypatch.setattr(sharding, "is_primary", lambda: False)
  workdir = tmp_path / "run"
  summary = train_and_evaluate(tiny_config, str(workdir))
  assert summary["status"] == "completed" and 0 <= summary["test/accuracy"] <= 1
  written = {p.name for p in workdir.iterdir()}
  assert written == {"checkpoints"}, written


def test_one_process_holds_every_row_of_the_batch():
  mesh = sharding.make_mesh()
  assert sharding.host_rows(mesh, 8) == slice(0, 8)
  batch = (np.arange(24, dtype=np.float32).reshape(8, 3), np.arange(8))
  for got, want in zip(sharding.shard_batch(batch, mesh, 8), batch):
    assert got.sharding == sharding.batch_sharded(mesh)
    np.testing.assert_array_equal(np.asarray(got), want)


def test_process_flags_need_distributed(tmp_path):
  import subprocess
  import sys

  proc = subprocess.run(
    [
      sys.executable,
      "-m",
      "jaxprune.main",
      "--config=configs/mlp7_fashion_mnist.py:smoke",
      f"--workdir={tmp_path}",
      "--num_processes=2",
    ],
    capture_output=True,
    text=True,
    cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    env={**os.environ, "JAX_PLATFORMS": "cpu"},
    timeout=120,
  )
  assert proc.returncode != 0
  assert "need --distributed" in proc.stderr
  assert not os.listdir(tmp_path)
