"""Retraining LR curves of a figure config (Le & Hua / Zimmer Fig. 1).

The library side of `python -m jaxprune.schedules` (see its `__main__`): the
figure config exposes `base` (training schedule), `retrain_epochs`, `flavor`,
optional `pruning` (stats for the ALLR variants), `title`, and `variants`: a
list of dicts with `name`, `label` and optional overrides of the retraining
fields. `draw(config, steps_per_epoch, out)` writes the PNG.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import matplotlib
import ml_collections
import numpy as np

matplotlib.use("Agg")  # headless; before pyplot is imported
import matplotlib.pyplot as plt

from jaxprune import io_utils, schedules


def variant_config(fig: Any, variant: Any) -> ml_collections.ConfigDict:
  """The retraining schedule config of one variant of the figure config."""
  cfg = ml_collections.ConfigDict(
    dict(
      name=variant["name"], base=fig.base.to_dict(), retrain_epochs=fig.retrain_epochs
    )
  )
  cfg.flavor = fig.get("flavor", schedules.DEFAULT_FLAVOR)
  for key, value in dict(variant).items():
    if key not in ("name", "label"):
      cfg[key] = value
  return cfg


def curves(fig: Any, steps_per_epoch: int) -> list[tuple[str, np.ndarray]]:
  """(label, LR per retraining step) for every variant, in order."""
  steps = round(fig.retrain_epochs * steps_per_epoch)
  pruning = fig.get("pruning")
  pruning = pruning.to_dict() if pruning is not None else None
  out = []
  for variant in fig.variants:
    cfg = variant_config(fig, variant)
    sched = schedules.create(
      cfg, steps_per_epoch, pruning, path=f"variants[{variant['name']}]"
    )
    lrs = np.asarray(jax.jit(jax.vmap(sched))(jnp.arange(steps)))
    out.append((variant.get("label", variant["name"]), lrs))
  return out


def draw(fig_cfg: Any, steps_per_epoch: int, out: str) -> None:
  """Renders one panel per variant and writes the PNG atomically."""
  data = curves(fig_cfg, steps_per_epoch)
  cols = min(len(data), fig_cfg.get("columns", 3))
  rows = -(-len(data) // cols)
  fig, axes = plt.subplots(
    rows,
    cols,
    figsize=(3.6 * cols, 2.8 * rows),
    sharex=True,
    sharey=True,
    squeeze=False,
  )
  epochs = np.arange(len(data[0][1])) / steps_per_epoch
  top = max(float(lrs.max()) for _, lrs in data)
  for ax, (label, lrs) in zip(axes.flat, data):
    ax.plot(epochs, lrs, lw=1.6)
    ax.set_title(label, fontsize=10)
    ax.set_ylim(-0.04 * top, 1.08 * top)
    ax.grid(alpha=0.3)
  for ax in axes.flat[len(data) :]:
    ax.axis("off")
  for ax in axes[-1]:
    ax.set_xlabel("retraining epoch")
  for ax in axes[:, 0]:
    ax.set_ylabel("learning rate")
  fig.suptitle(fig_cfg.get("title", ""), fontsize=11)
  fig.tight_layout()
  save_atomic(fig, out)
  plt.close(fig)


def save_atomic(fig: Any, out: str) -> None:
  """No half-written PNGs: see `io_utils.atomic_write_figure`."""
  io_utils.atomic_write_figure(fig, out, dpi=130)
