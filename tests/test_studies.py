"""Analysis studies (`jaxprune.results.studies`): Dynamical Isometry Fig. 1
reads the pretrained networks behind the table3 rows, wherever they are."""

from __future__ import annotations

import os
import shutil

from jaxprune.results import studies, sweeps

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MINI_DI = os.path.join(ROOT, "configs", "mini", "wang2021_di.py")


def test_fig1_rows_survive_a_restore_that_has_rows_but_no_caches(tiny_fmnist, tmp_path):
  data_dir, manual_dir, _ = tiny_fmnist
  module = sweeps.load_sweep_module(MINI_DI)
  data = {"data.data_dir": data_dir, "data.manual_dir": manual_dir}
  table3_config = sweeps.apply_overrides(module.get_config("table3,smoke"), data)
  point = module.get_sweep("table3,smoke")[0]
  assert point.get("protocol", table3_config.protocol) == "prune_retrain"
  paper_dir = tmp_path / "wd" / "wang2021_di"
  sweeps.run_sweep(table3_config, [point], str(paper_dir / "table3"))
  jsv_config = sweeps.apply_overrides(module.get_config("jsv,smoke"), data)
  with jsv_config.unlocked():
    jsv_config.analysis.jsv_num_examples = 32

  first = studies.isometry(jsv_config, str(paper_dir))
  fig1 = [r for r in first if "pruning.ratio" in r["overrides"]]
  assert len(fig1) == 2 * len(studies.FIG1_RATIOS)  # Each ratio, OrthP off/on.
  assert {r["seed"] for r in first} == {point["seed"]}

  # A fresh machine after `record restore`: the rows, no cache, no run files.
  # The pretraining is retrained from the row's config, bit for bit (CPU).
  shutil.rmtree(paper_dir / "table3" / "cache")
  shutil.rmtree(paper_dir / "table3" / "runs")
  assert studies.isometry(jsv_config, str(paper_dir)) == first
