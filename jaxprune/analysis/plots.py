"""Matplotlib figures for the analysis toolkit, written atomically as PNGs.

Figures are built on ``matplotlib.figure.Figure`` directly, never through
``pyplot``: no global figure registry, no GUI backend needed (saving renders
with Agg), safe in scripts, tests and threads, and a notebook still displays
a returned figure inline. Every helper returns the figure and, given ``path``,
writes it with :func:`save_figure`: a temporary file in the same directory,
then ``os.replace``, so a killed process never leaves a truncated PNG.

* :func:`plot_jsv_vs_ratio`: mean JSV against the pruning ratio (Dynamical
  Isometry Fig. 1).
* :func:`plot_training_curves`: mean JSV (and optionally test accuracy) per
  epoch for several setups (Fig. 2).
* :func:`plot_weight_histograms`: weight distributions (Rethinking Fig. 8) from
  ``weights.weight_histograms``.
* :func:`plot_widths`: original vs pruned per-layer widths (Table 7 as bars).
* :func:`plot_kept_ratios`: kept channel/weight ratio per layer or stage, one
  line per run or prune ratio (Tables 18-21 as lines;
  ``analysis.architecture``).
* :func:`plot_kernel_patterns`: keep probability of each 3x3 kernel position
  per stage (Rethinking Fig. 4; ``weights.kernel_position_keep``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from jaxprune import io_utils


def save_figure(fig: Figure, path: str, *, dpi: int = 130) -> str:
  """Writes ``fig`` as a PNG at ``path`` atomically; returns ``path``."""
  return io_utils.atomic_write_figure(fig, path, dpi=dpi)


def _finish(
  fig: Figure, path: str | None, rect: tuple[float, ...] = (0, 0, 1, 1)
) -> Figure:
  fig.tight_layout(rect=rect)
  if path is not None:
    save_figure(fig, path)
  return fig


def plot_jsv_vs_ratio(
  curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
  path: str | None = None,
  *,
  title: str = "Mean JSV after pruning",
) -> Figure:
  """Mean JSV vs pruning ratio, one line per network (``{label: (ratios, jsv)}``)."""
  fig = Figure(figsize=(4.5, 3.5))
  ax = fig.add_subplot()
  for label, (ratios, values) in curves.items():
    ax.plot(ratios, values, marker="o", label=label)
  ax.set_xlabel("pruning ratio")
  ax.set_ylabel("mean JSV")
  ax.set_title(title)
  ax.grid(alpha=0.3)
  ax.legend()
  return _finish(fig, path)


def plot_training_curves(
  jsv: Mapping[str, tuple[Sequence[float], Sequence[float]]],
  accuracy: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None,
  path: str | None = None,
  *,
  title: str = "",
) -> Figure:
  """Mean JSV (left) and accuracy (right, optional) per epoch, per setup.

  Args:
    jsv: ``{label: (epochs, mean JSV)}``.
    accuracy: ``{label: (epochs, accuracy)}`` with the same labels, or None.
    path: PNG to write, or None.
    title: figure title.
  """
  panels = 2 if accuracy else 1
  fig = Figure(figsize=(4.5 * panels, 3.5))
  axes = [fig.add_subplot(1, panels, i + 1) for i in range(panels)]
  for label, (epochs, values) in jsv.items():
    axes[0].plot(epochs, values, label=label)
  axes[0].set_xlabel("epoch")
  axes[0].set_ylabel("mean JSV")
  if accuracy:
    for label, (epochs, values) in accuracy.items():
      axes[1].plot(epochs, values, label=label)
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("test accuracy")
  for ax in axes:
    ax.grid(alpha=0.3)
  rect = (0.0, 0.0, 1.0, 1.0)
  if len(jsv) <= 4:
    for ax in axes:
      ax.legend(fontsize=8)
  else:  # Many setups: one legend under the panels instead of over the curves.
    handles, labels = axes[0].get_legend_handles_labels()
    height = 3.5 + 0.2 * ((len(labels) + 1) // 2)
    fig.set_size_inches(4.5 * panels, height)
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=7, frameon=False)
    rect = (0.0, (height - 3.3) / height, 1.0, 1.0)
  if title:
    fig.suptitle(title)
  return _finish(fig, path, rect)


def plot_weight_histograms(
  histograms: Mapping[str, Any],
  path: str | None = None,
  *,
  title: str = "Weight distribution",
  log: bool = False,
) -> Figure:
  """Step plots of ``weights.weight_histograms`` output on shared edges."""
  fig = Figure(figsize=(5, 3.5))
  ax = fig.add_subplot()
  edges = np.asarray(histograms["edges"])
  for label, density in histograms["density"].items():
    ax.stairs(density, edges, label=f"{label} ({histograms['num_weights'][label]})")
  ax.set_xlabel("weight value")
  ax.set_ylabel("density")
  if log:
    ax.set_yscale("log")
  ax.set_title(title)
  ax.legend(fontsize=8)
  return _finish(fig, path)


def plot_widths(
  rows: Sequence[Mapping[str, Any]],
  path: str | None = None,
  *,
  title: str = "Layer widths",
) -> Figure:
  """Bars of original vs kept width per layer from ``weights.width_table``."""
  rows = [r for r in rows if r["layer"] != "Total"]
  x = np.arange(len(rows))
  fig = Figure(figsize=(max(4.0, 0.45 * len(rows) + 1.5), 3.5))
  ax = fig.add_subplot()
  ax.bar(x - 0.2, [r["width"] for r in rows], 0.4, label="original")
  ax.bar(
    x + 0.2,
    [r["kept"] for r in rows],
    0.4,
    yerr=[r["kept_std"] for r in rows],
    label="pruned",
  )
  ax.set_xticks(x, [r["layer"] for r in rows], rotation=60, ha="right", fontsize=7)
  ax.set_ylabel("width")
  ax.set_title(title)
  ax.legend()
  return _finish(fig, path)


def plot_kept_ratios(
  series: Mapping[str, Mapping[str, float]],
  path: str | None = None,
  *,
  title: str = "Kept ratio",
  ylabel: str = "kept fraction",
) -> Figure:
  """``{label: {layer or stage: kept ratio}}`` as lines over the (shared,
  first-seen order) layers, e.g. one line per prune ratio."""
  names = list(dict.fromkeys(k for ratios in series.values() for k in ratios))
  x = np.arange(len(names))
  fig = Figure(figsize=(max(4.0, 0.35 * len(names) + 2.0), 3.5))
  ax = fig.add_subplot()
  for label, ratios in series.items():
    y = [ratios.get(n, np.nan) for n in names]
    ax.plot(x, y, marker="o", markersize=3, label=label)
  ax.set_xticks(x, names, rotation=60, ha="right", fontsize=7)
  ax.set_ylim(0, 1.05)
  ax.set_ylabel(ylabel)
  ax.set_title(title)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)
  return _finish(fig, path)


def plot_kernel_patterns(
  patterns: Mapping[str, np.ndarray],
  path: str | None = None,
  *,
  title: str = "Kept 3x3 kernel positions",
) -> Figure:
  """One heatmap per stage of ``{stage: [kh, kw] keep probability}``; darker
  is more often kept (Fig. 4), on a shared 0-1 scale."""
  fig = Figure(figsize=(2.2 * max(1, len(patterns)) + 0.8, 2.6))
  axes = fig.subplots(1, max(1, len(patterns)), squeeze=False)[0]
  image = None
  for ax, (stage, grid) in zip(axes, patterns.items()):
    grid = np.asarray(grid, float)
    image = ax.imshow(grid, cmap="Greys", vmin=0.0, vmax=1.0)
    for (i, j), v in np.ndenumerate(grid):
      ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="tab:red")
    ax.set_title(stage, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
  if image is not None:
    fig.colorbar(image, ax=list(axes), shrink=0.8)
  fig.suptitle(title)
  if path is not None:
    save_figure(fig, path)
  return fig
