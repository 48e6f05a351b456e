"""Frictions of a first-time user (issue 23): reruns, progress, checkpoints, inspect."""

from __future__ import annotations

import os

import pytest

from jaxprune import inspect, protocols
from jaxprune.protocols import basic

pytestmark = pytest.mark.usefixtures("fast_compiles")


def test_rerun_of_completed_run_returns_at_once(
  tiny_config, tmp_path, capsys, monkeypatch
):
  config = tiny_config
  with config.unlocked():
    config.num_epochs = 1
    config.schedule.spec = "0:0.05"
    config.progress = True
  workdir = str(tmp_path / "run")
  first = protocols.run(config, workdir)
  err = capsys.readouterr().err
  assert "train loss" in err and "test acc" in err  # A labelled progress line.
  # No validation split: no best checkpoint, and no empty directory for one.
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["final", "latest"]

  def must_not_train(*args, **kwargs):
    raise AssertionError("a completed run must not train again")

  monkeypatch.setattr(basic, "train_and_evaluate", must_not_train)
  again = protocols.run(config, workdir)
  assert again == first
  assert f"already completed: {workdir}" in capsys.readouterr().out


def test_inspect_explains_its_counts(capsys):
  inspect.main(["--config=configs/protocols/prune_retrain.py:smoke"])
  out = capsys.readouterr().out
  assert "total params minus the weights the masks set to zero" in out
  assert "speedup vs dense" in out and "its MACs / its nonzero MACs" in out
