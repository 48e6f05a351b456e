r"""Draws retraining LR curves for a base schedule (Le & Hua / Zimmer Fig. 1).

  python -m jaxprune.schedules --config=configs/figures/le2021_fig1.py \
      --steps_per_epoch=782 --out=experiments/figures/le2021_fig1.png

The config file exposes `get_config(arg)` returning a ConfigDict with
`base` (training schedule), `retrain_epochs`, `flavor`, optional `pruning`
(stats for the ALLR variants), `title`, and `variants`: a list of dicts with
`name`, `label` and optional overrides of the retraining fields.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import matplotlib
import ml_collections
import numpy as np
from absl import app, flags
from ml_collections import config_flags

matplotlib.use("Agg")  # headless; before pyplot is imported
import matplotlib.pyplot as plt

from jaxprune import io_utils, schedules

_CONFIG = config_flags.DEFINE_config_file("config", None, "figure config file[:arg]")
_STEPS = flags.DEFINE_integer("steps_per_epoch", None, "optimizer steps per epoch")
_OUT = flags.DEFINE_string("out", None, "PNG file to write")


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


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  for flag in (_CONFIG, _STEPS, _OUT):
    if flag.value is None:
      raise app.UsageError(f"--{flag.name} is required")
  draw(_CONFIG.value, _STEPS.value, _OUT.value)


if __name__ == "__main__":
  app.run(main)
