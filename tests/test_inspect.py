"""Tests for ``python -m jaxprune.inspect_model``."""

import json
import os
import subprocess
import sys

import pytest

from jaxprune import inspect_model as jp_inspect


def test_main_json_line_resnet20(capsys):
  assert jp_inspect.main(["--model=resnet20", "--num_classes=100", "--json"]) == 0
  out = capsys.readouterr().out.strip().splitlines()
  summary = json.loads(out[-1])
  # 269,722 params with 10 classes; the head gains 90 * (64 + 1).
  assert summary["params"] == 269_722 + 90 * 65
  # Stem, then per stage 6 3x3 convs (the first reads the previous width),
  # at 32/16/8 pixels; the 100-way head is 64 * 100 MACs.
  convs = 9 * 3 * 16 * 32**2 + 6 * 9 * 16 * 16 * 32**2
  convs += (9 * 16 * 32 + 5 * 9 * 32 * 32) * 16**2
  convs += (9 * 32 * 64 + 5 * 9 * 64 * 64) * 8**2
  assert summary["macs"] == convs + 6400 == 40_556_800
  assert summary["flops"] == 2 * summary["macs"]
  assert summary["input_shape"] == [32, 32, 3]
  table = "\n".join(out[:-1])
  assert "stage2_block2/conv2" in table and "3x3x64x64" in table


def test_input_shape_flag_and_errors(capsys):
  jp_inspect.main(["--model=mlp7_linear", "--input_shape=28,28,1", "--json"])
  summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  assert summary["macs"] == 784 * 100 + 5 * 100 * 100 + 100 * 10
  with pytest.raises(SystemExit):
    jp_inspect.main(["--model=mlp7_linear", "--input_shape=28,28"])
  with pytest.raises(SystemExit):
    jp_inspect.main(["--model=no_such_net"])


def test_module_entry_point_subprocess():
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  proc = subprocess.run(
    [sys.executable, "-m", "jaxprune.inspect_model", "--model=lenet5_relu", "--json"],
    capture_output=True,
    text=True,
    check=True,
    env=env,
    cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
  )
  summary = json.loads(proc.stdout.strip().splitlines()[-1])
  assert summary["params"] == 61_706
  assert summary["flops"] == 2 * 416_520


def test_config_mode_applies_the_configs_pruning(capsys):
  """--config: global magnitude 90% of MLP-7's kernels, counted independently."""
  assert jp_inspect.main(["--config=configs/protocols/prune_retrain.py", "--json"]) == 0
  summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
  kernels = 1024 * 100 + 5 * 100 * 100 + 100 * 10  # 153,400 prunable weights.
  biases = 6 * 100 + 10
  assert summary["params"] == kernels + biases == 154_010
  # Unstructured: the sparsity of the prunable weights, as the result rows.
  assert summary["sparsity"] == pytest.approx(0.9)
  assert summary["nonzero_params"] == kernels // 10 + biases
  assert summary["flops"] == 2 * kernels and summary["speedup"] == pytest.approx(10.0)
