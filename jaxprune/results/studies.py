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

import glob
import os
from collections.abc import Callable, Sequence
from typing import Any

import jax
import ml_collections

from jaxprune import checks, io_utils, models, pruning
from jaxprune.analysis import callbacks, jacobian
from jaxprune.analysis.orthp import orthp as orthogonalize
from jaxprune.data import pipeline
from jaxprune.train import checkpointing

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


def pretrained_runs(sweep_dir: str) -> list[tuple[int, str]]:
  """(seed, dense workdir) of every distinct pretraining a sweep's runs used."""
  found = {}
  for path in sorted(glob.glob(os.path.join(sweep_dir, "runs", "*", "summary.json"))):
    summary = io_utils.read_json(path)
    config = io_utils.read_json(os.path.join(os.path.dirname(path), "config.json"))
    if summary.get("dense_workdir"):
      found.setdefault(summary["dense_workdir"], int(config["seed"]))
  return sorted((seed, workdir) for workdir, seed in found.items())


def isometry(config: ml_collections.ConfigDict, paper_dir: str) -> list[dict[str, Any]]:
  """Dynamical Isometry Table 1 and Fig. 1 rows.

  Args:
    config: the experiment's config (data, model, seeds come from it; its
      `analysis.jsv_num_examples` training images are the JSV inputs).
    paper_dir: the paper's directory of the mini reproduction; Fig. 1 prunes
      the pretrained networks of its `table3` sweep (one row set per seed).
  """
  data_config = ml_collections.ConfigDict(config.data.to_dict())
  data_config.train_limit = int(config.analysis.jsv_num_examples)
  data = pipeline.load(data_config)
  inputs = callbacks.fixed_inputs(data, int(config.analysis.jsv_num_examples))
  seeds = sorted({seed for seed, _ in pretrained_runs(_table3(paper_dir))}) or [0]
  rows = init_jsv_rows(inputs, seeds)
  for seed, dense_workdir in pretrained_runs(_table3(paper_dir)):
    with checkpointing.Checkpointer(os.path.join(dense_workdir, "checkpoints")) as ck:
      params = ck.restore("final")[0]["params"]
    rows += jsv_vs_ratio_rows(params, config.model.name, inputs, seed)
  return rows


def _table3(paper_dir: str) -> str:
  return os.path.join(paper_dir, "table3")


_STUDIES: dict[str, Study] = {"isometry": isometry}


def get(name: str) -> Study:
  checks.choice(name, "analysis", sorted(_STUDIES))
  return _STUDIES[name]
