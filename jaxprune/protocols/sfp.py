"""`sfp`: Soft Filter Pruning (He et al. 2018) as a protocol.

One phase, `<cache>/train/<hash>/` (shared by the runs that differ only in
the retraining): training from scratch for `num_epochs` with `schedule`.
At the end of every epoch (the train loop's `on_epoch_end`, so the optimizer
state and its momentum carry on) the structured `config.pruning` (criterion
`l2` as He et al., or any weight criterion; per-group `ratio`, `stage_ratios`
or `preset`) picks the lowest-scoring filters of every pruned layer and zeroes
them (`pruning.prune` with `surgery=False`). The state keeps no hard masks, so
the zeroed filters keep training and may regrow; the next epoch's selection
starts from the regrown weights.

Zeroing covers the whole channel (kernel, bias and its BatchNorm scale and
bias, `structured.channel_masks`); He et al. zero the conv filter only, whose
BN then still outputs beta. Zeroing the BN too makes the soft-pruned network
after the last epoch compute exactly what the small-dense network of the
final hard prune computes, so the `train/` phase's final metrics are the
"without fine-tuning" accuracy (Le & Hua Table 1).

Then the final hard prune with surgery (the zeroed filters: their score is 0)
and, with `retrain.num_epochs > 0`, retraining of the small model in
`retrain/` with `retrain.schedule` (FT, CLR, ... as `prune_retrain`).

With `sfp.pretrained=True` the soft pruning starts instead from the dense
model of the normal `num_epochs`/`schedule` training (`common.dense_phase`,
the cache `prune_retrain` shares, or `retrain.dense_workdir`) and runs in
`soft/` for `sfp.num_epochs` with the piecewise LR `sfp.schedule_spec` (He et
al.'s pretrained recipe, Liu et al. 2019 Table 11); the summary also records
`dense/test/accuracy`. The soft pruning itself is the one `epoch_end_hook`.

Summary: the last phase's metrics, `sfp/accuracy` (before retraining),
counts, widths and `soft_events` (per epoch: channels zeroed and channels
that regrew since the previous epoch's zeroing).
"""

from __future__ import annotations

import os
from typing import Any

import jax
import ml_collections
import numpy as np

from jaxprune import config_utils, io_utils, models, pruning, schedules
from jaxprune.protocols import common, prune_retrain
from jaxprune.protocols.registry import protocol
from jaxprune.pruning import structured
from jaxprune.pruning.data_scores import CHANNEL_CRITERIA
from jaxprune.train import Start


def validate(config: ml_collections.ConfigDict) -> None:
  pruning.validate(config.pruning)
  common.choice(config, "pruning.name", ("structured",))
  common.choice(config, "pruning.schedule", ("one_shot",))
  # Every criterion computed from the params (built-in or registered); SFP
  # rescores every epoch, so not the data criteria, which need batches.
  weight = [c for c in structured.CRITERIA.names() if c not in CHANNEL_CRITERIA]
  common.choice(config, "pruning.criterion", ("", *weight))
  common.choice(config, "pruning.group_allocation", ("per_group",))
  common.choice(config, "sfp.pretrained", (False, True))
  if config.sfp.pretrained:
    if not (isinstance(config.sfp.num_epochs, int) and config.sfp.num_epochs > 0):
      raise ValueError(
        f"sfp.num_epochs must be an int > 0 with sfp.pretrained=True, got "
        f"{config.sfp.num_epochs!r}"
      )
    if not config.sfp.schedule_spec:
      raise ValueError(
        "sfp.schedule_spec must be set with sfp.pretrained=True "
        "(piecewise 'epoch:lr,...' over the soft phase), got ''"
      )
    # The soft phase's schedule is built by the schedule factory, so its
    # checks (format, epoch 0 first, increasing starts, fractions of
    # sfp.num_epochs, milestones inside the phase) are the factory's.
    try:
      schedules.validate(_soft_schedule(config), path="sfp.schedule")
    except ValueError as e:
      raise ValueError(
        f"sfp.schedule_spec must be 'epoch:lr,...' starting at epoch 0 (epochs or "
        f"fractions p/q of sfp.num_epochs={config.sfp.num_epochs}), got "
        f"{config.sfp.schedule_spec!r}: {e}"
      ) from None
  if config.retrain.num_epochs < 0:
    raise ValueError(
      f"retrain.num_epochs must be >= 0 (0: no retraining), got "
      f"{config.retrain.num_epochs}"
    )
  if config.retrain.num_epochs:
    prune_retrain.validate_retrain(config, config.retrain.num_epochs)


def _soft_schedule(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The piecewise LR of the pretrained soft phase (sfp.schedule_spec)."""
  return ml_collections.ConfigDict(
    dict(name="piecewise", spec=config.sfp.schedule_spec, epochs=config.sfp.num_epochs)
  )


def _prune(config: ml_collections.ConfigDict, params, batch_stats, epoch, surgery):
  p = common.resolved(config.pruning)
  p.surgery = surgery
  return pruning.prune(p, params, batch_stats, **common.prune_kwargs(config, epoch))


def _alive(groups, params) -> dict[str, np.ndarray]:
  """Bool per channel: some producer weight of it is non-zero."""
  kept = structured.keep_from_masks(groups, params)
  return {
    g.name: np.isin(np.arange(g.size), kept[g.name]) for g in groups if g.prunable
  }


def epoch_end_hook(config: ml_collections.ConfigDict, events: list[dict[str, int]]):
  """`on_epoch_end` soft pruning; appends {epoch, zeroed, regrown} to `events`
  (`regrown`: channels zeroed at the previous event that are non-zero again)."""
  groups = models.channel_groups(
    config.model.name,
    common.num_classes(config),
    **config_utils.model_overrides(config),
  )
  last: dict[str, np.ndarray] = {}

  def hook(epoch: int, state):
    params = jax.device_get(state.params)
    alive = _alive(groups, params)
    regrown = sum(int(np.sum(alive[n] & ~last[n])) for n in last)
    res = _prune(config, params, jax.device_get(state.batch_stats), epoch, False)
    after = _alive(groups, res.params)
    last.clear()
    last.update({n: after[n] for n in res.keep})
    zeroed = sum(int(np.sum(~a)) for n, a in after.items() if n in res.keep)
    events.append({"epoch": epoch, "zeroed": zeroed, "regrown": regrown})
    return state.replace(params=res.params)

  return hook


def events_callback(events: list[dict[str, int]]):
  """Logs the epoch's event as `sfp/zeroed` and `sfp/regrown`."""

  def callback(epoch: int, state) -> dict[str, float]:
    if events and events[-1]["epoch"] == epoch:
      return {"sfp/zeroed": events[-1]["zeroed"], "sfp/regrown": events[-1]["regrown"]}
    return {}

  return callback


def _size(tree: Any) -> int:
  return int(sum(np.size(x) for x in jax.tree_util.tree_leaves(tree)))


@protocol("sfp", validate=validate)
def sfp(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  events: list[dict[str, int]] = []
  dense = None
  if config.sfp.pretrained:
    # The normal dense training (shared with prune_retrain's cache), then the
    # soft phase from its weights with its own length and LR schedule.
    dense = common.dense_phase(config, workdir)
    start = dense.final()
    soft_epochs = int(config.sfp.num_epochs)
    sched = _soft_schedule(config).to_dict()
    train = common.run_phase(
      common.phase_config(config, soft_epochs, sched),
      os.path.join(workdir, "soft"),
      start=Start(start.params, start.batch_stats, None),
      on_epoch_end=epoch_end_hook(config, events),
      callbacks=[events_callback(events)],
    )
    train_epochs = int(dense.summary.get("epoch", config.num_epochs)) + soft_epochs
  else:
    # Shared (keyed by the training fields and the whole pruning section) by
    # every run that only differs in what follows the soft pruning.
    keep = tuple(config.pruning.keys())
    train = common.cached_phase(
      common.training_config(config, keep_pruning=keep),
      workdir,
      config,
      on_epoch_end=epoch_end_hook(config, events),
      callbacks=[events_callback(events)],
    )
    train_epochs = int(config.num_epochs)
  final = train.final()
  res = _prune(config, final.params, final.batch_stats, train_epochs, True)
  phase, current = train, Start(res.params, res.batch_stats, res.masks)
  epochs = int(config.retrain.num_epochs)
  if epochs:
    pruned = prune_retrain.Pruned(
      current,
      res.widths,
      None,
      0.0,
      1.0 - _size(res.params) / _size(final.params),
      common.relative_norm_change(final.params, res.params),
    )
    sched = prune_retrain.retrain_schedule(config, epochs)
    phase = common.run_phase(
      common.phase_config(config, epochs, sched),
      os.path.join(workdir, "retrain"),
      **prune_retrain.retrain_kwargs(pruned, res.widths),
    )
    current = phase.final()
  counts = common.measure(config, current.params, None, res.widths)
  summary = {
    **common.final_metrics(phase.summary),
    "epoch": phase.summary["epoch"],
    "sfp/accuracy": train.summary.get("test/accuracy"),
    "sparsity": 1.0 - counts["params"] / counts["dense_params"],
    "target_sparsity": config.pruning.ratio,
    **counts,
    "widths": common.widths_json(res.widths),
    "total_epochs": train_epochs + epochs,
    "train_workdir": train.workdir,
    # Logged with every evaluation (eval_every_epochs=1 logs every epoch).
    "soft_events": [
      {"epoch": r["epoch"], "zeroed": r["sfp/zeroed"], "regrown": r["sfp/regrown"]}
      for r in io_utils.read_jsonl(os.path.join(train.workdir, "metrics.jsonl"))
      if "sfp/zeroed" in r
    ],
    "setup": f"SFP {config.retrain.schedule if epochs else 'no retraining'}",
  }
  if dense is not None:
    summary["dense/test/accuracy"] = dense.summary.get("test/accuracy")
    summary["dense_workdir"] = dense.workdir
    summary["setup"] = "SFP pretrained " + summary["setup"].removeprefix("SFP ")
  return common.finish(config, workdir, summary)
