"""Analysis-only experiments whose results are rows like a sweep's.

Some of the papers' results need no training of their own: Dynamical Isometry
Table 1 (Jacobian singular values of orthogonally initialised networks) and
Fig. 1 (mean JSV of a pretrained network after L1 pruning at growing ratios,
and after OrthP). The functions here compute them and return result rows in
the shape `jaxprune.results.report.aggregate` reads (`overrides` without the seed,
`seed`, `metrics`), so the same tables, figures and verdicts apply.

`get(name)` looks a study up by the name an experiment declares
(`"analysis": "isometry"` in `configs/mini/wang2021_di.py`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import jax
import ml_collections

from jaxprune import checks, config_utils, io_utils, models, pruning
from jaxprune.analysis import callbacks, jacobian
from jaxprune.analysis.orthp import orthp as orthogonalize
from jaxprune.data import pipeline
from jaxprune.protocols import common
from jaxprune.results import sweeps

# Table 1's networks (MNIST there, Fashion-MNIST here), all 32x32x1 inputs.
TABLE1_MODELS = ("mlp7_linear", "mlp7_relu", "lenet5_linear", "lenet5_relu")
FIG1_RATIOS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)

Study = Callable[[ml_collections.ConfigDict, str], list[dict[str, Any]]]


def _jsv_metrics(model: Any, params: Any, inputs: jax.Array) -> dict[str, float]:
  apply_fn = jacobian.apply_fn_from(model, params)
  stats = jacobian.jsv_summary(apply_fn, inputs)  # min/max: the SVD path.
  return {f"jsv/{k}": float(v) for k, v in stats.items()}


def _row(overrides: dict[str, Any], seed: int, metrics: dict[str, float]) -> dict:
  return {
    "overrides": overrides,
    "seed": seed,
    "status": "completed",
    "metrics": metrics,
  }


def init_jsv_rows(
  inputs: jax.Array, seeds: Sequence[int], model_names: Sequence[str] = TABLE1_MODELS
) -> list[dict[str, Any]]:
  """Table 1: JSV statistics of each orthogonally initialised model, per seed."""
  rows = []
  for name in model_names:
    model = models.create(name, init="orthogonal")
    for seed in seeds:
      params, _ = models.init_variables(
        model, jax.random.PRNGKey(seed), inputs.shape[1:]
      )
      metrics = _jsv_metrics(model, params, inputs)
      rows.append(_row({"model.name": name}, seed, metrics))
  return rows


def _l1_prune(params: Any, model_name: str, ratio: float) -> Any:
  """L1 neuron pruning of every hidden layer, ceil(n r) pruned, small-dense."""
  cfg = pruning.default_config()
  cfg.name, cfg.criterion, cfg.groups, cfg.ratio = "structured", "l1", "all", ratio
  cfg.rounding = "prune_ceil"
  return pruning.prune(cfg, params, model_name=model_name).params


def jsv_vs_ratio_rows(
  params: Any,
  model_name: str,
  inputs: jax.Array,
  seed: int,
  ratios: Sequence[float] = FIG1_RATIOS,
) -> list[dict[str, Any]]:
  """Fig. 1: mean JSV after L1 pruning at each ratio, without and with OrthP."""
  rows = []
  for ratio in ratios:
    pruned = _l1_prune(params, model_name, ratio) if ratio > 0 else params
    small = models.create(model_name, widths=models.read_widths(model_name, pruned))
    for use_orthp in (False, True):
      p = orthogonalize(pruned, model_name=model_name) if use_orthp else pruned
      rows.append(
        _row(
          {"pruning.ratio": ratio, "orthp": use_orthp},
          seed,
          _jsv_metrics(small, p, inputs),
        )
      )
  return rows


def pretrainings(
  sweep_dir: str, cache_dir: str | None = None
) -> list[tuple[int, common.Phase]]:
  """(seed, finished dense phase) of every distinct pretraining that the
  prune-retrain rows of the sweep in `sweep_dir` started from.

  Each is found from the row's own config, in the shared cache (`cache_dir`,
  the invoking suite's, else the sweep's `cache/`), and trained there if it is
  missing: a record carries rows, not caches, so after a `restore` the study
  retrains what it reads (deterministically on a CPU) instead of silently
  leaving Fig. 1 out.
  """
  found: dict[str, tuple[int, ml_collections.ConfigDict]] = {}
  for row in io_utils.read_jsonl(os.path.join(sweep_dir, sweeps.RESULTS_FILE)):
    run_config = ml_collections.ConfigDict(row["config"])
    if run_config.protocol != "prune_retrain":
      continue  # Scratch points have no pretraining.
    with run_config.unlocked():  # Resume-safe: the hashes stay the same.
      run_config.cache_dir = cache_dir
      run_config.progress = False
    key = config_utils.config_hash(common.training_config(run_config))
    found.setdefault(key, (int(row["seed"]), run_config))
  # `dense_phase` places the cache by the run's workdir: a run of this sweep.
  run_workdir = os.path.join(sweep_dir, "runs", "pretraining")
  return sorted(
    ((seed, common.dense_phase(c, run_workdir)) for seed, c in found.values()),
    key=lambda pair: pair[0],
  )


def isometry(config: ml_collections.ConfigDict, paper_dir: str) -> list[dict[str, Any]]:
  """Dynamical Isometry Table 1 and Fig. 1 rows.

  Args:
    config: the experiment's config (data, model, seeds come from it; its
      `analysis.jsv_num_examples` training images are the JSV inputs).
    paper_dir: the paper's directory of the mini reproduction; Fig. 1 prunes
      the pretrained networks of its `table3` sweep's rows (one row set per
      seed; `pretrainings`: retrained where the cache lacks them).
  """
  data_config = ml_collections.ConfigDict(config.data.to_dict())
  data_config.train_limit = int(config.analysis.jsv_num_examples)
  data = pipeline.load(data_config)
  inputs = callbacks.fixed_inputs(data, int(config.analysis.jsv_num_examples))
  dense = pretrainings(_table3(paper_dir), config.get("cache_dir"))
  rows = init_jsv_rows(inputs, sorted({seed for seed, _ in dense}) or [0])
  for seed, phase in dense:
    rows += jsv_vs_ratio_rows(phase.final().params, config.model.name, inputs, seed)
  return rows


def _table3(paper_dir: str) -> str:
  return os.path.join(paper_dir, "table3")


_STUDIES: dict[str, Study] = {"isometry": isometry}


def get(name: str) -> Study:
  checks.choice(name, "analysis", sorted(_STUDIES))
  return _STUDIES[name]
