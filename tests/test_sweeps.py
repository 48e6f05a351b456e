"""Sweeps: grid expansion, resumable execution, results rows."""

from __future__ import annotations

import os
import subprocess

import pytest

from jaxprune import config_utils, io_utils, protocols
from jaxprune.results import inflight, sweeps


def test_product_and_seeds_expand_in_order():
  points = sweeps.seeds(sweeps.product(**{"a": [1, 2], "b.c": ["x"]}), [0, 1])
  assert points == [
    {"a": 1, "b.c": "x", "seed": 0},
    {"a": 1, "b.c": "x", "seed": 1},
    {"a": 2, "b.c": "x", "seed": 0},
    {"a": 2, "b.c": "x", "seed": 1},
  ]


def test_overrides_apply_and_unknown_fields_are_named():
  base = config_utils.base_config()
  config = sweeps.apply_overrides(base, {"optimizer.momentum": 0.5, "num_epochs": 7})
  assert config.optimizer.momentum == 0.5 and base.optimizer.momentum == 0.9
  assert config.schedule.epochs == 7  # The field reference to num_epochs survives.
  with pytest.raises(
    ValueError,
    match=r"unknown field 'optimizer\.momentun'; nearest valid fields: optimizer\.mom",
  ):
    sweeps.apply_overrides(base, {"optimizer.momentun": 0.5})
  with pytest.raises(ValueError, match="are the same run"):
    sweeps.expand(base, [{"seed": 1}, {"seed": 1}])


def _strip_timing(rows):
  return [{k: v for k, v in r.items() if k != "wall_time_seconds"} for r in rows]


def test_interrupted_sweep_resumes_without_recomputing(tiny_config, tmp_path):
  tiny_config.num_epochs = 1
  tiny_config.schedule.spec = "0:0.05"
  sweep = [*sweeps.seeds([{}], [0, 1]), {"optimizer.momentum": 0.5}]  # 3 runs.

  # One by one (group="none"), so rows compare exactly (a group's vmapped
  # sums differ from a lone run's by float noise; tests/test_grouped_runs.py).
  reference = str(tmp_path / "uninterrupted")
  sweeps.run_sweep(tiny_config, sweep, reference, group="none")

  calls = []

  def dies_on_third_run(config, workdir):
    calls.append(workdir)
    if len(calls) == 2:
      raise KeyboardInterrupt("killed")
    return protocols.run(config, workdir)

  interrupted = str(tmp_path / "interrupted")
  with pytest.raises(KeyboardInterrupt):  # One by one: the kill stops the sweep.
    sweeps.run_sweep(
      tiny_config, sweep, interrupted, run_fn=dies_on_third_run, group="none"
    )
  assert len(io_utils.read_jsonl(os.path.join(interrupted, "results.jsonl"))) == 1

  resumed = []

  def counting(config, workdir):
    resumed.append(workdir)
    return protocols.run(config, workdir)

  sweeps.run_sweep(tiny_config, sweep, interrupted, run_fn=counting, group="none")
  assert len(resumed) == 2  # Only the two unfinished points ran.
  want = io_utils.read_jsonl(os.path.join(reference, "results.jsonl"))
  got = io_utils.read_jsonl(os.path.join(interrupted, "results.jsonl"))
  assert _strip_timing(got) == _strip_timing(want)
  assert [r["seed"] for r in got] == [0, 1, 0]
  assert all(0.0 <= r["metrics"]["test/accuracy"] <= 1.0 for r in got)
  assert all(r["wall_time_seconds"] > 0 for r in got)  # Each point timed.


def test_shards_partition_the_points(tiny_config, tmp_path):
  ran = {0: [], 1: []}
  sweep = sweeps.seeds([{}], [0, 1, 2])

  for shard in (0, 1):

    def fake(config, workdir, shard=shard):
      ran[shard].append(int(config.seed))
      return {"status": "completed", "test/accuracy": 0.5}

    sweeps.run_sweep(
      tiny_config, sweep, str(tmp_path), shard=(shard, 2), run_fn=fake, group="none"
    )
  assert ran == {0: [0, 2], 1: [1]}
  # Grouped (the default): whole groups are dealt out, at least one per shard.
  ran = {0: [], 1: []}
  for shard in (0, 1):

    def fake(config, workdir, shard=shard):
      ran[shard].append(int(config.seed))
      return {"status": "completed", "test/accuracy": 0.5}

    sweeps.run_sweep(
      tiny_config, sweep, str(tmp_path / "g"), shard=(shard, 2), run_fn=fake
    )
  assert {k: sorted(v) for k, v in ran.items()} == {0: [0, 1], 1: [2]}
  with pytest.raises(ValueError, match="shard must be"):
    sweeps.run_sweep(tiny_config, sweep, str(tmp_path), shard=(2, 2))


def test_rows_record_the_commit_read_before_any_point_runs(tiny_config, tmp_path):
  # A long sweep's rows name the code it loaded, not the commit the checkout
  # has moved to by the time the first row lands.
  sweeps.git_commit.cache_clear()
  seen = []

  def run(config, workdir):
    seen.append(sweeps.git_commit.cache_info().currsize)
    return {"status": "completed", "test/accuracy": 0.5}

  rows = sweeps.run_sweep(
    tiny_config, [{"seed": 0}], str(tmp_path), run_fn=run, group="none"
  )
  assert seen == [1]  # Already read when the point started.
  assert rows[0]["git_commit"] == sweeps.git_commit()


def test_commit_says_dirty_when_code_or_configs_differ_from_it(tmp_path):
  # A row from an uncommitted edit of the code must not pass for the commit's:
  # the session-9 DI rerun's first rows named 8498911 but ran its fix's tree.
  def git(*args):
    subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

  git("init", "-q")
  git("config", "user.email", "t@example.com")
  git("config", "user.name", "t")
  for name in ("jaxprune/a.py", "configs/b.py", "experiments/results/r.jsonl"):
    (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / name).write_text("x = 1\n")
  git("add", ".")
  git("commit", "-q", "-m", "init")
  clean = sweeps.describe_commit(str(tmp_path))
  assert len(clean) >= 7 and "dirty" not in clean
  # Results written while a sweep runs are not code: still clean.
  (tmp_path / "experiments/results/r.jsonl").write_text("x = 2\n")
  assert sweeps.describe_commit(str(tmp_path)) == clean
  (tmp_path / "configs/b.py").write_text("x = 2\n")
  assert sweeps.describe_commit(str(tmp_path)) == clean + "-dirty"
  git("checkout", "configs/b.py")
  (tmp_path / "jaxprune/a.py").write_text("x = 3\n")
  assert sweeps.describe_commit(str(tmp_path)) == clean + "-dirty"
  assert sweeps.describe_commit(str(tmp_path / "nowhere")) == "unknown"


def test_every_planned_point_has_its_config_before_the_first_point_runs(
  tiny_config, tmp_path
):
  # `record save --inflight` finds the cache entries a point will read from its
  # run directory's config.json: a point that has not started needs one too,
  # or a fresh clone retrains its dense phase.
  workdir = str(tmp_path)
  runs = os.path.join(workdir, "runs")
  seen = []

  def run(config, run_dir):
    seen.append(
      sorted(
        d
        for d in os.listdir(runs)
        if os.path.exists(os.path.join(runs, d, "config.json"))
      )
    )
    return {"status": "completed", "test/accuracy": 0.5}

  sweep = sweeps.seeds([{}], [0, 1, 2])
  rows = sweeps.run_sweep(
    tiny_config, sweep, workdir, shard=(0, 2), run_fn=run, group="none"
  )
  assert [r["seed"] for r in rows] == [0, 2]  # This shard's points only.
  assert seen[0] == sorted(r["config_hash"] for r in rows)
  assert inflight.unfinished_runs(workdir, set()) == [
    os.path.join(runs, d) for d in seen[0]
  ]


def test_a_bad_point_stops_the_sweep_before_any_point_runs(tiny_config, tmp_path):
  ran = []

  def run(config, run_dir):
    ran.append(run_dir)
    return {"status": "completed", "test/accuracy": 0.5}

  sweep = [{"seed": 0}, {"seed": 1, "protocol": "no_such_protocol"}]
  with pytest.raises(ValueError, match="no_such_protocol"):
    sweeps.run_sweep(tiny_config, sweep, str(tmp_path), run_fn=run, group="none")
  assert ran == []
