"""`gmp`: gradual magnitude pruning during training (Zhu & Gupta 2017).

One phase, `train/`: training from scratch for `num_epochs` with any
`schedule`; at the end of the epochs given by `pruning.schedules.events` (every
`pruning.gmp_frequency` epochs from `gmp_start` to `gmp_end`, always ending at
`gmp_end`) the masks are recomputed to the cubic sparsity
`s(t) = s_f (1 - (1 - (t - t0) / (t1 - t0))^3)`, inside the train loop's
`on_epoch_end` hook, so the optimizer state (momentum) carries on.

* `pruning.mode="hard"`: pruned weights stay pruned (masks only grow), params
  are zeroed, gradients masked.
* `pruning.mode="soft"`: the masks are recomputed from the dense weights at
  every event, which keep training (`forward_params=masks_lib.apply`: the forward pass uses
  `params * masks`), so pruned weights may come back; the final masks define
  the sparse model (evaluation and counting use `params * masks`).

Pruning happens after training epochs only (`gmp_start >= 1`); with
`gmp_end == num_epochs` the last pruning is not followed by any training.
Unstructured pruning only (`pruning.name="unstructured"`, any allocation).
"""

from __future__ import annotations

import os
from typing import Any

import jax
import ml_collections

from jaxprune import io_utils, pruning
from jaxprune.protocols import common
from jaxprune.protocols.registry import protocol
from jaxprune.pruning import masks as masks_lib
from jaxprune.pruning import scores
from jaxprune.pruning.data_scores import GRAD_CRITERIA


def events(config: ml_collections.ConfigDict) -> dict[int, float]:
  """{epoch: sparsity after that epoch} of the GMP schedule."""
  return dict(pruning.schedules.events(config.pruning, config.num_epochs))


def validate(config: ml_collections.ConfigDict) -> None:
  pruning.validate(config.pruning)
  common.choice(config, "pruning.name", ("unstructured",))
  common.choice(config, "pruning.schedule", ("gmp",))
  # GMP prunes without gradients: any registered criterion but those.
  scoreable = [c for c in scores.CRITERIA.names() if c not in GRAD_CRITERIA]
  common.choice(config, "pruning.criterion", ("", *scoreable))
  if config.pruning.gmp_start < 1:
    raise ValueError(
      f"pruning.gmp_start must be >= 1 (prune after an epoch), got "
      f"{config.pruning.gmp_start}"
    )
  events(config)  # Checks gmp_end <= num_epochs.


def prunable_tree(config: ml_collections.ConfigDict, params: Any) -> Any:
  pred = pruning.predicate(
    config.pruning,
    config.model.name,
    common.num_classes(config),
    **common.overrides_without_widths(config),
  )
  return masks_lib.prunable_tree(params, pred)


def sparsity_callback(config: ml_collections.ConfigDict):
  """Logs `pruning/sparsity` (of the masks) with every evaluation."""
  cache = {}

  def callback(epoch: int, state) -> dict[str, float]:
    masks = jax.device_get(state.masks)
    if "prunable" not in cache:
      cache["prunable"] = prunable_tree(config, masks)
    return {"pruning/sparsity": common.mask_sparsity(masks, cache["prunable"])}

  return callback


def epoch_end_hook(config: ml_collections.ConfigDict):
  """`on_epoch_end` pruning at the GMP events."""
  plan = events(config)
  soft = config.pruning.mode == "soft"

  def hook(epoch: int, state):
    if epoch not in plan:
      return state
    params = jax.device_get(state.params)
    res = pruning.prune(
      config.pruning,
      params,
      masks=None if soft else jax.device_get(state.masks),
      sparsity=plan[epoch],
      **common.prune_kwargs(config, epoch),
    )
    # Soft: keep the dense weights (they may regrow); hard: zero the pruned.
    return state.replace(params=params if soft else res.params, masks=res.masks)

  return hook


@protocol("gmp", validate=validate)
def gmp(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
  phase = common.run_phase(
    common.phase_config(config, config.num_epochs),
    os.path.join(workdir, "train"),
    forward_params=masks_lib.apply if config.pruning.mode == "soft" else None,
    on_epoch_end=epoch_end_hook(config),
    callbacks=[sparsity_callback(config)],
  )
  final = phase.final()
  params = masks_lib.apply(final.params, final.masks)
  prunable = prunable_tree(config, params)
  plan = events(config)
  logged = io_utils.read_jsonl(os.path.join(phase.workdir, "metrics.jsonl"))
  summary = {
    **common.final_metrics(phase.summary),
    "epoch": phase.summary["epoch"],
    "sparsity": None,  # Set by measure (keeps the row's key order).
    "target_sparsity": config.pruning.sparsity,
    **common.measure(config, params, final.masks, prunable=prunable),
    "total_epochs": phase.summary["epoch"],
    # Mask sparsity logged after each pruning epoch (with eval_every_epochs=1).
    "pruning_events": [
      {
        "epoch": r["epoch"],
        "target": plan[r["epoch"]],
        "sparsity": r["pruning/sparsity"],
      }
      for r in logged
      if r.get("epoch") in plan and "pruning/sparsity" in r
    ],
    "setup": f"GMP {config.pruning.mode} {config.schedule.name}",
  }
  return common.finish(config, workdir, summary)
