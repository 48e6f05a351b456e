"""Data parallelism: 8 fake CPU devices and 1 device give the same training."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
from conftest import write_tiny_fmnist

HERE = os.path.dirname(__file__)


def _run(root: str, devices: int) -> dict:
  out = os.path.join(root, f"params{devices}.npz")
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
  proc = subprocess.run(
    [sys.executable, os.path.join(HERE, "multidevice_run.py"), root, out],
    env=env,
    capture_output=True,
    text=True,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  return dict(np.load(out))


def test_eight_devices_match_one_device(tmp_path):
  root = str(tmp_path)
  write_tiny_fmnist(os.path.join(root, "idx"))
  one, eight = _run(root, 1), _run(root, 8)

  # One epoch of the default experiment (8 steps, then evaluation).
  mlp_keys = [k for k in one if k.startswith("mlp")]
  assert len(mlp_keys) > 10
  for key in mlp_keys:
    np.testing.assert_allclose(eight[key], one[key], atol=1e-4, rtol=0, err_msg=key)

  # A BatchNorm network: an 8-device step uses global-batch statistics, so its
  # loss, updated params and running stats match the 1-device step.
  resnet_keys = [k[len("resnet_one/") :] for k in eight if k.startswith("resnet_one/")]
  assert any(k.startswith("stats") for k in resnet_keys)
  for key in resnet_keys:
    np.testing.assert_allclose(
      eight[f"resnet_eight/{key}"], eight[f"resnet_one/{key}"], atol=1e-4, err_msg=key
    )
