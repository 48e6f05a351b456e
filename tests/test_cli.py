"""The launcher and the configs: overrides, clear errors, every config builds."""

from __future__ import annotations

import glob
import importlib.util
import os
import subprocess
import sys

import pytest

from jaxprune import config_utils, protocols

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _main(*args: str) -> subprocess.CompletedProcess:
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  return subprocess.run(
    [sys.executable, "-m", "jaxprune.main", *args],
    cwd=ROOT,
    env=env,
    capture_output=True,
    text=True,
    timeout=300,
  )


def _data_flags(tiny_fmnist) -> list[str]:
  data_dir, manual_dir, _ = tiny_fmnist
  return [
    f"--config.data.data_dir={data_dir}",
    f"--config.data.manual_dir={manual_dir}",
  ]


def test_cli_trains_and_prints_workdir_and_accuracy(tiny_fmnist, tmp_path):
  workdir = str(tmp_path / "run")
  proc = _main(
    "--config=configs/mlp7_fashion_mnist.py:smoke",
    f"--workdir={workdir}",
    "--config.model.init=orthogonal",
    "--config.progress=False",
    *_data_flags(tiny_fmnist),
  )
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert f"workdir: {workdir}" in proc.stdout
  assert "final test accuracy:" in proc.stdout
  assert os.path.exists(os.path.join(workdir, "summary.json"))


def test_cli_unknown_field_is_named(tmp_path):
  proc = _main(
    "--config=configs/mlp7_fashion_mnist.py:smoke",
    f"--workdir={tmp_path}",
    "--config.optimizer.momentun=0.9",
  )
  assert proc.returncode != 0
  assert "momentun" in proc.stderr


def test_cli_invalid_value_names_field_and_allowed_values(tiny_fmnist, tmp_path):
  proc = _main(
    "--config=configs/mlp7_fashion_mnist.py:smoke",
    f"--workdir={tmp_path}",
    "--config.model.name=resnet7",
    *_data_flags(tiny_fmnist),
  )
  assert proc.returncode == 2
  assert "model.name must be one of" in proc.stderr and "mlp7_relu" in proc.stderr


@pytest.mark.parametrize(
  "field, value, message",
  [
    ("batch_size", 0, "batch_size must be a positive integer"),
    ("optimizer.name", "rmsprop", "optimizer.name must be one of"),
    ("data.name", "svhn", "data.name must be one of"),
    ("data.augment", "mixup", "data.augment must be one of"),
    ("data.validation_fraction", 1.5, r"data.validation_fraction must be in \[0, 1\)"),
    ("schedule.name", "exotic", "schedule.name must be one of"),
    ("schedule.spec", "0:0.1,90:0.01", "beyond"),
  ],
)
def test_validate_names_the_field(field, value, message):
  config = config_utils.base_config()
  parent, _, leaf = field.rpartition(".")
  node = config[parent] if parent else config
  node[leaf] = value
  with pytest.raises(ValueError, match=message):
    protocols.validate(config)


def _config_modules():
  # Top-level experiment configs; common.py / __init__.py are shared helpers of
  # the paper sweep configs (tested in test_paper_configs.py).
  paths = sorted(glob.glob(os.path.join(ROOT, "configs", "*.py")))
  paths = [p for p in paths if os.path.basename(p) not in ("__init__.py", "common.py")]
  assert paths, "no configs found"
  return paths


@pytest.mark.parametrize("path", _config_modules(), ids=os.path.basename)
def test_every_config_builds_validates_and_has_a_run_command(path):
  spec = importlib.util.spec_from_file_location("cfg", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  assert "python -m jaxprune.main" in module.__doc__ and "Expected" in module.__doc__
  for arg in (None, "smoke"):
    config = module.get_config(arg)
    protocols.validate(config)
  assert module.get_config("smoke").num_epochs <= 2


def test_smoke_rescales_the_schedule():
  assert config_utils._rescale_spec("0:0.1,80:0.01,120:0.001", 160, 2) == "0:0.1,1:0.01"


def test_smoke_keeps_fractional_starts():
  assert config_utils._rescale_spec("0:0.01,1/3:0.001", 30, 2) == "0:0.01,1/3:0.001"


@pytest.mark.parametrize("num_epochs", [1, 2, 5, 10, 30, 90])
def test_default_schedules_accept_any_num_epochs(num_epochs):
  # issue 23.4 / 13.8: `--config.num_epochs=10` alone was refused (milestone 10).
  from configs import mlp7_fashion_mnist

  for config in (config_utils.base_config(), mlp7_fashion_mnist.get_config()):
    config.num_epochs = num_epochs
    protocols.validate(config)


def test_milestone_error_says_which_field_to_change_and_how():
  config = config_utils.base_config()
  config.schedule.spec = "0:0.01,10:0.001,20:0.0001"
  config.num_epochs = 10
  with pytest.raises(ValueError) as e:
    protocols.validate(config)
  assert "--config.schedule.spec=0:0.01,1/3:0.001,2/3:0.0001" in str(e.value)
