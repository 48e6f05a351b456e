"""Groups of runs in one program: budgets of different lengths, failed phases.

Found by experiments/benchmarks/grouped_runs.py (a Le & Hua grid of 1- and
2-epoch budgets): runs whose LR tables have different lengths must still stack
into one vmapped group, and a phase that fails with any error must raise that
error in each of its runs' threads (not come back as the run's summary).
"""

from __future__ import annotations

import pytest

from jaxprune.train import group, loop

pytestmark = pytest.mark.usefixtures("fast_compiles")


def _config(tiny_config, seed, epochs):
  c = tiny_config.copy_and_resolve_references()
  c.seed, c.num_epochs = seed, epochs
  c.schedule.spec = "0:0.05"
  return c


def test_runs_of_different_lengths_train_as_one_group(tiny_config, tmp_path):
  configs = [_config(tiny_config, 0, 1), _config(tiny_config, 1, 3)]
  runs = [loop.Run(c, str(tmp_path / f"g{i}")) for i, c in enumerate(configs)]
  grouped = loop.train_runs(runs, mode="vmap")
  alone = [
    loop.train_runs([loop.Run(c, str(tmp_path / f"a{i}"))], mode="serial")[0]
    for i, c in enumerate(configs)
  ]
  for g, a, c in zip(grouped, alone, configs):
    assert g["epoch"] == a["epoch"] == c.num_epochs
    assert g["step"] == a["step"]
    assert abs(g["test/accuracy"] - a["test/accuracy"]) <= 0.003


def test_a_failed_phase_raises_its_error_in_every_run(tiny_config, tmp_path):
  def failing(runs):
    raise ValueError("phase failed")

  def task(i):
    c = _config(tiny_config, i, 1)
    return "returned", loop.train_and_evaluate(c, str(tmp_path / str(i)))

  results = group.Coordinator(failing).run([lambda i=i: task(i) for i in range(2)])
  for result in results:
    assert isinstance(result, ValueError) and str(result) == "phase failed"
