"""`during`: a pruning-during-training method trained from scratch under an
epoch budget, then (optionally) fine-tuned with fixed masks.

The comparison of Zimmer et al. 2023 (Sec. 3.3, Table 2): every pruning-stable
method gets the same budget T = `num_epochs` to turn a random initialisation
into a sparse net, as BIMP does.

Phases:
  (dense)    only with `during.pretrained`: the dense pretraining of the
             run's recipe (`num_epochs`, schedule, optimizer; the shared
             dense phase prune_retrain and bimp start from, or
             `retrain.dense_workdir`), whose final weights the method starts
             from (Zimmer et al. Sec. 3.3 also run LC and GSM "applied to
             pretrained models", with the larger budget that implies);
  train/     `num_epochs` epochs with the method of `config.during.method`
             (`jaxprune.pruning.during`): its step hooks, its epoch-end hook,
             its initial weights and masks if it trains sparse from the start
             (SET, RigL),
             `pruning/sparsity` (of the masks the method would end with,
             `Method.final`) and `pruning/mask_sparsity` (of the masks the
             step holds) logged at every evaluation;
  (hard pruning) `final(state)`: the weights and masks the run ends with,
             evaluated on the test split (`pruned/test/accuracy`);
  finetune/  only with `during.finetune_epochs > 0`: retraining of the
             hard-pruned net with those masks fixed and a fresh optimizer,
             with the retraining schedule `during.finetune_schedule` ("ft":
             constant at the training schedule's last LR, as Zimmer et al.
             retrain the pruning-stable methods for 30 epochs on CIFAR).

Row: `test/accuracy` is Zimmer et al.'s: the fine-tuned accuracy when it
exceeds the hard-pruned one (their Sec. 3.3), else the hard-pruned one
(`accuracy_source` says which); `train_phase/test/accuracy` is the accuracy of
the method's own forward at the end of training, `sparsity` the achieved
fraction of pruned prunable weights (`common.measure`), `target_sparsity`
`pruning.sparsity` (`exact_target`: whether the method hits it by design),
`images_per_second` of the training phase (epochs after the first, which
compiles), `total_epochs` T plus the fine-tuning epochs (plus the dense
pretraining's epochs when `pretrained`, whose accuracy is `dense/test/accuracy`).
"""

from __future__ import annotations

import functools
import os
from typing import Any

import jax
import ml_collections
import numpy as np

from jaxprune import io_utils, pruning, schedules
from jaxprune.data import pipeline
from jaxprune.protocols import common, gmp, prune_retrain, scoring
from jaxprune.protocols.registry import protocol
from jaxprune.pruning import during as during_lib
from jaxprune.pruning import masks as masks_lib
from jaxprune.schedules import retraining
from jaxprune.train import Start, TrainState


def finetune_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """`config` with `retrain.schedule` = `during.finetune_schedule`, so the
  fine-tuning phase uses the retraining-schedule machinery as it stands."""
  c = common.resolved(config)
  c.retrain.schedule = config.during.finetune_schedule
  return c


def validate(config: ml_collections.ConfigDict) -> None:
  pruning.validate(config.pruning)
  common.choice(config, "pruning.name", ("unstructured", "structured"))
  s = config.pruning.sparsity
  if not 0.0 <= s < 1.0:
    raise ValueError(f"pruning.sparsity must be in [0, 1), got {s}")
  during_lib.validate(config)  # The method's name and its own options.
  ft = config.during.finetune_epochs
  if not isinstance(ft, int) or isinstance(ft, bool) or ft < 0:
    raise ValueError(f"during.finetune_epochs must be an integer >= 0, got {ft!r}")
  common.choice(config, "during.finetune_schedule", prune_retrain.RETRAIN_SCHEDULES)
  if not isinstance(config.during.pretrained, bool):
    raise ValueError(
      f"during.pretrained must be True or False, got {config.during.pretrained!r}"
    )
  if ft:
    sched = prune_retrain.retrain_schedule(finetune_config(config), ft)
    schedules.create(sched, 100, retraining.VALIDATING, path="during.finetune_schedule")


def steps_per_epoch(config: ml_collections.ConfigDict) -> int:
  """Optimizer steps per epoch, as the train loop counts them (the split is
  decoded once per process and cached, so the loop reuses it)."""
  data = pipeline.load(config.data, seed=config.seed)
  return max(data.train.num_examples // config.batch_size, 1)


def build_method(
  config: ml_collections.ConfigDict,
) -> tuple[during_lib.Method, during_lib.Context]:
  """The run's method and the context it was built from."""
  params, _ = common.init_params(config)
  prunable = gmp.prunable_tree(config, params)
  context = during_lib.Context(config, prunable, steps_per_epoch(config))
  return during_lib.build(context), context


def sparse_start(
  config: ml_collections.ConfigDict,
  method: during_lib.Method,
  pretrained: Start | None = None,
) -> Start | None:
  """The start of the training phase: `pretrained` (the dense pretraining's
  final weights, `during.pretrained`) or None (the run's own random init),
  made sparse for a method that trains sparse from the first step
  (`Method.init_sparse`: SET, RigL: its weights and masks drawn with the run's
  pruning key of epoch 0)."""
  if method.init_sparse is None:
    return pretrained
  if pretrained is None:
    params, batch_stats = common.init_params(config)
  else:
    params, batch_stats = pretrained.params, pretrained.batch_stats
  key = common.pruning_rng(config, 0)
  params, masks = jax.device_get(method.init_sparse(params, key))
  return Start(masks_lib.apply(params, masks), batch_stats, masks)


def sparsity_callback(method: during_lib.Method, prunable: Any):
  """Logs `pruning/sparsity` of the masks `method.final` would end with now,
  and `pruning/mask_sparsity` of the masks the step holds (DPF's current
  scheduled level; all ones for methods that mask in `forward` only, DNW)."""

  def callback(epoch: int, state) -> dict[str, float]:
    del epoch
    final = jax.device_get(method.final(state)[1])
    held = jax.device_get(state.masks)
    return {
      "pruning/sparsity": common.mask_sparsity(final, prunable),
      "pruning/mask_sparsity": common.mask_sparsity(held, prunable),
    }

  return callback


def final_state(phase: common.Phase) -> TrainState:
  """The phase's final `TrainState` (host arrays, method variables included;
  no optimizer state)."""
  tree = phase.final_tree()
  return TrainState(
    step=np.asarray(tree["step"]),
    params=tree["params"],
    batch_stats=tree.get("batch_stats") or {},
    opt_state=None,
    masks=tree["masks"],
    rng=np.asarray(tree["rng"]),
    aux=tree.get("aux") or {},
  )


def images_per_second(phase: common.Phase, images_per_epoch: int) -> float:
  """Training throughput: images per second of the epochs after the first
  (whose time includes compilation), or of the only one."""
  rows = io_utils.read_jsonl(os.path.join(phase.workdir, "metrics.jsonl"))
  seconds = [r["time/epoch_seconds"] for r in rows if "time/epoch_seconds" in r]
  timed = seconds[1:] or seconds
  images = images_per_epoch * len(timed)
  return images / sum(timed) if timed and sum(timed) > 0 else float("nan")


def finetune(
  config: ml_collections.ConfigDict,
  workdir: str,
  state: TrainState,
  pruned: Start,
  prunable: Any,
) -> common.Phase:
  """Retrains `pruned` (masks fixed) for `during.finetune_epochs`; the
  schedule's pruning statistics (ALLR reads them) compare the trained dense
  weights with the hard-pruned ones."""
  epochs = config.during.finetune_epochs
  ft = finetune_config(config)
  sched = prune_retrain.retrain_schedule(ft, epochs)
  stats = schedules.PruningStats(
    common.relative_norm_change(state.params, pruned.params),
    max(common.mask_sparsity(pruned.masks, prunable), 1e-12),
  )
  return common.run_phase(
    common.phase_config(ft, epochs, sched),
    os.path.join(workdir, "finetune"),
    start=pruned,
    schedule=functools.partial(prune_retrain.schedule_for, stats=stats),
  )


@protocol("during", validate=validate)
def during(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  method, context = build_method(config)
  prunable = context.prunable
  dense = common.dense_phase(config, workdir) if config.during.pretrained else None
  phase = common.run_phase(
    common.phase_config(config, config.num_epochs),
    os.path.join(workdir, "train"),
    start=sparse_start(config, method, dense.final() if dense else None),
    hooks=method.hooks,
    on_epoch_end=method.on_epoch_end,
    callbacks=[sparsity_callback(method, prunable)],
  )
  state = final_state(phase)
  params, masks = jax.device_get(method.final(state))
  pruned = Start(params, state.batch_stats, masks)
  hard = scoring.evaluate(config, pruned, "test")
  chosen = {"test/accuracy": hard["accuracy"], "test/loss": hard["loss"]}
  source, ft_epochs, ft_acc = "pruned", 0, None
  if config.during.finetune_epochs:
    ft_phase = finetune(config, workdir, state, pruned, prunable)
    ft_acc = ft_phase.summary.get("test/accuracy")
    ft_epochs = int(ft_phase.summary["epoch"])
    if ft_acc is not None and ft_acc >= hard["accuracy"]:
      chosen, source = common.final_metrics(ft_phase.summary), "finetune"
      current = ft_phase.final()
      params, masks = current.params, current.masks
  params = masks_lib.apply(params, masks)
  dense_epochs = int(dense.summary.get("epoch", 0)) if dense else 0
  summary = {
    **chosen,
    "epoch": int(phase.summary["epoch"]) + ft_epochs,
    "sparsity": None,  # Set by measure (keeps the row's key order).
    "target_sparsity": config.pruning.sparsity,
    "exact_target": method.exact_sparsity,
    **common.measure(config, params, masks, prunable=prunable),
    "method": config.during.method,
    "accuracy_source": source,
    "train_phase/test/accuracy": phase.summary.get("test/accuracy"),
    "pruned/test/accuracy": hard["accuracy"],
    "finetune/test/accuracy": ft_acc,
    "images_per_second": images_per_second(
      phase, context.steps_per_epoch * config.batch_size
    ),
    "total_epochs": int(phase.summary["epoch"]) + ft_epochs + dense_epochs,
    "setup": f"{config.during.method} during training, T={config.num_epochs}"
    + (f" from a {dense_epochs}-epoch dense net" if dense else "")
    + (f" + {ft_epochs} FT" if ft_epochs else ""),
  }
  if dense:
    summary["dense/test/accuracy"] = dense.summary.get("test/accuracy")
  return common.finish(config, workdir, summary)
