"""`experiments/benchmarks/gpu.py` (`make bench-gpu`) on the CPU.

`--quick` runs every part of the GPU benchmark with tiny shapes on the CPU
into a temporary directory (the committed RESULTS_GPU.md is never touched):
both precisions of the epoch table for jaxprune and PyTorch, the grouped runs
and the mean JSV, which must agree with PyTorch's on the same weights. Without
`--quick` on a machine without a GPU it stops at once with one clear line.
Skipped when PyTorch (a benchmark-only dependency) is not installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "experiments", "benchmarks", "gpu.py")


def test_quick_run_writes_every_part(process_env, tmp_path):
  proc = subprocess.run(
    [sys.executable, SCRIPT, "--quick", f"--out={tmp_path}"],
    env=process_env,
    capture_output=True,
    text=True,
    timeout=900,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  text = (tmp_path / "RESULTS_GPU.md").read_text()
  for part in ("## 1. CIFAR-shape epochs", "## 2. 2 ResNet-20 runs", "## 3. Mean"):
    assert part in text, part
  assert "quick mode" in text and "NOT meaningful" in text
  assert "| resnet20 | float32 |" in text and "| resnet20 | bfloat16 |" in text
  for field in ("jax device:", "jaxlib", "torch CUDA", "flax"):
    assert field in text, field
  results = json.loads((tmp_path / "results_gpu.json").read_text())
  for row in results["epochs"]:
    assert row["jaxprune"]["images_per_s"] > 0 and row["torch"]["images_per_s"] > 0
  assert results["grouped"]["speedup"] > 0
  jsv = results["jsv"]
  assert jsv["jacrev_jsv"] == pytest.approx(jsv["torch_jsv"], rel=1e-4)


def test_without_a_gpu_it_stops_with_one_line(process_env, tmp_path):
  env = {**process_env, "PATH": str(tmp_path)}  # No nvidia-smi on the PATH.
  proc = subprocess.run(
    [sys.executable, SCRIPT, f"--out={tmp_path}"],
    env=env,
    capture_output=True,
    text=True,
    timeout=120,
  )
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines() == [
    "ERROR: no NVIDIA GPU visible (nvidia-smi not found); bench-gpu needs a CUDA GPU"
  ]
  assert not (tmp_path / "RESULTS_GPU.md").exists()
