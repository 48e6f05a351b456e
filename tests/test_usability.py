"""Frictions of a first-time user (issue 23): reruns, progress, checkpoints, inspect."""

from __future__ import annotations

import os

import pytest

from jaxprune import inspect_model, io_utils, protocols
from jaxprune.protocols import train as train_protocol

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

  monkeypatch.setattr(train_protocol, "train_and_evaluate", must_not_train)
  again = protocols.run(config, workdir)
  assert again == first
  assert f"already completed: {workdir}" in capsys.readouterr().out


def test_inspect_explains_its_counts(capsys):
  inspect_model.main(["--config=configs/protocols/prune_retrain.py:smoke"])
  out = capsys.readouterr().out
  assert "total params minus the weights the masks set to zero" in out
  assert "speedup vs dense" in out and "its MACs / its nonzero MACs" in out


def test_sweep_no_cache_and_one_result_line_per_point(tmp_path, capsys):
  from jaxprune import config_utils
  from jaxprune.results import sweeps

  seen = []

  def fake_run(config, workdir):
    seen.append((config.cache_dir, workdir))
    return {"status": "completed", "test/accuracy": 0.5 + config.seed / 10}

  base = config_utils.base_config()
  rows = sweeps.run_sweep(
    base, sweeps.seeds([{}], [0, 1]), str(tmp_path), run_fn=fake_run, no_cache=True
  )
  assert [c for c, _ in seen] == [os.path.join(w, "cache") for _, w in seen]
  # Grouped (the default): rows come as points finish, in any order.
  first = next(r for r in rows if r["seed"] == 0)
  assert first["config_hash"] == config_utils.config_hash(base)  # Hash unchanged.
  out = capsys.readouterr().out
  assert "point 1/2 completed, test acc 50.00%" in out
  assert "point 2/2 completed, test acc 60.00%" in out


def test_sweeps_take_config_overrides(tmp_path, capsys):
  from jaxprune.results import sweep_cli

  config = "configs/protocols/seeds_sweep.py"
  sweep_cli.main([f"--config={config}", f"--workdir={tmp_path}", "--list"])
  plain = capsys.readouterr().out
  sweep_cli.main(
    [f"--config={config}", f"--workdir={tmp_path}", "--list", "--config.num_epochs=3"]
  )
  assert capsys.readouterr().out != plain  # Other runs: other hashes.
  first = plain.split()[1]  # "   0 <hash> todo {...}"
  rows = [{"config_hash": first, "code_fingerprint": "0ld"}]
  io_utils.rewrite_jsonl(str(tmp_path / "results.jsonl"), rows)
  sweep_cli.main([f"--config={config}", f"--workdir={tmp_path}", "--list"])
  assert f"{first} done* " in capsys.readouterr().out  # Finished by other code.
  with pytest.raises(SystemExit):
    sweep_cli.main([f"--config={config}", f"--workdir={tmp_path}", "--config.nope=1"])
  assert "unknown field 'nope'" in capsys.readouterr().err
