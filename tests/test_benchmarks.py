"""`experiments/benchmarks/run_all.py --quick` writes every figure of RESULTS.md.

Runs the benchmark runner in its tiniest mode (stand-in models, tiny sizes,
unoptimised XLA) in a subprocess on the tiny dataset, into a temporary
directory, and checks both output files: every figure section present, none
failed, and each table row carries its goal and a met/missed verdict. Skipped
when PyTorch (a benchmark-only dependency) is not installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNNER = os.path.join(ROOT, "experiments", "benchmarks", "run_all.py")
SECTIONS = (
  "## 1. Train-step throughput",
  "## 2. Masked vs dense",
  "## 3. One epoch",
  "## 4. Sweeps as groups",
  "## 5. Mean Jacobian singular values",
  "## 6. Compile time and recompiles",
  "## 7. Wall time outside compiled steps",
  "## 8. Epoch drivers",
  "## 9. GPU",
)


def test_quick_run_writes_every_figure(tiny_fmnist, tmp_path):
  data_dir, manual_dir, _ = tiny_fmnist
  env = {**os.environ, "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")}
  cmd = [
    sys.executable,
    RUNNER,
    "--quick",
    f"--out={tmp_path}",
    f"--data_dir={data_dir}",
    f"--manual_dir={manual_dir}",
  ]
  proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]

  text = (tmp_path / "RESULTS.md").read_text()
  for section in SECTIONS:
    assert section in text, section
  assert "**Failed**" not in text, text
  assert "quick mode" in text and "NOT meaningful" in text
  for field in ("CPU:", "jaxlib", "flax", "optax", "torch", "git commit", "GFLOP/s"):
    assert field in text, field
  assert text.count("Command: `") == 8
  assert "no GPU was lent to this run" in text or "ran on the GPU" in text

  results = json.loads((tmp_path / "results.json").read_text())
  assert results["mode"] == "quick"
  assert set(results["figures"]) == {
    "train_step",
    "masked",
    "epoch",
    "grouped_runs",
    "jsv",
    "compile",
    "overhead",
    "drivers",
  }
  for key, fig in results["figures"].items():
    assert fig["rows"], key
    for row in fig["rows"]:
      assert isinstance(row["met"], bool) and row["goal"], (key, row)
  # Grouped and sequential sweeps wrote the same rows (accuracy, sparsity).
  assert results["figures"]["grouped_runs"]["data"]["di_table3"]["rows_match"]
  # Recompile guard inside the runner: one train-epoch compile across a prune.
  assert results["figures"]["compile"]["data"]["train_epoch_compiles"] == 1


def _load_runner():
  import importlib.util

  spec = importlib.util.spec_from_file_location("bench_run_all", RUNNER)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_repeats_flag_is_recorded_in_the_figure_command_and_checked(tmp_path):
  import argparse

  runner = _load_runner()
  flags = dict(quick=False, data_dir=None, manual_dir=None, driver_models=None)
  args = argparse.Namespace(**flags, grouped_cases=None, repeats=7)
  command = runner.command_for(args, "train_step")
  assert command.endswith("--only=train_step --repeats=7"), command
  args.repeats = None
  assert "--repeats" not in runner.command_for(args, "train_step")
  with pytest.raises(SystemExit):
    runner.main(["--only=train_step", "--repeats=0", f"--out={tmp_path}"])
