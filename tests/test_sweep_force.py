"""`python -m jaxprune.sweeps --force` (issue 23 item 2): finished points run
again, their rows are replaced, and the shared dense / pruned cache entries
they use are recomputed (once per forced sweep) instead of reused."""

from __future__ import annotations

import glob
import os

from jaxprune import io_utils
from jaxprune.protocols import common
from jaxprune.results import sweeps


def _entries(workdir: str, kind: str) -> list[str]:
  return [d for d in glob.glob(f"{workdir}/cache/{kind}/*") if os.path.isdir(d)]


def test_force_reruns_points_and_recomputes_the_caches(
  prune_config, tmp_path, monkeypatch
):
  workdir = str(tmp_path / "sweep")
  first = [{}]
  sweeps.run_sweep(prune_config, first, workdir, group="none")
  (dense,), (pruned,) = _entries(workdir, "train"), _entries(workdir, "pruned")
  run_dir = os.path.join(workdir, "runs", sweeps.expand(prune_config, first)[0][2])
  for d in (dense, pruned, run_dir):  # Gone only if the entry is recomputed.
    open(os.path.join(d, "stale"), "w").close()

  trained = []
  real = common.train_and_evaluate

  def counting(config, phase_dir, **kwargs):
    trained.append(os.path.relpath(phase_dir, workdir))
    return real(config, phase_dir, **kwargs)

  monkeypatch.setattr(common, "train_and_evaluate", counting)
  assert sweeps.run_sweep(prune_config, first, workdir, group="none") == []
  assert trained == []  # Finished: nothing reruns without --force.

  # A second point shares the dense phase and the pruning (only retraining
  # differs): both are recomputed once and shared, not once per point.
  both = [{}, {"retrain.schedule": "lrw"}]
  rows = sweeps.run_sweep(prune_config, both, workdir, group="none", force=True)
  assert len(rows) == 2
  assert [p.split(os.sep)[:2] for p in trained].count(["cache", "train"]) == 1
  for d in (dense, pruned, run_dir):
    assert not os.path.exists(os.path.join(d, "stale")), d
  assert os.path.exists(os.path.join(pruned, "meta.json"))
  assert os.path.exists(os.path.join(dense, "summary.json"))
  saved = io_utils.read_jsonl(os.path.join(workdir, sweeps.RESULTS_FILE))
  assert sorted(r["config_hash"] for r in saved) == sorted(
    r["config_hash"] for r in rows
  )
