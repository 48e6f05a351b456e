"""Transferred Guided Sparsification (Liu et al. 2019, Sec. 5, Fig. 6 right).

The unstructured counterpart of ``architecture.transferred_widths``: the
sparsity pattern a pruning finds on one net (the source, e.g. VGG-16 on
CIFAR-10) is averaged per stage and given to another net (the target, e.g.
VGG-19 on CIFAR-100), whose sparse model is then trained from scratch.

* :func:`stage_ratios`: kept weights over weights per stage ("guided"
  averaging, as ``allocation.guided_pattern``: weighted by layer size).
* :func:`transferred_pattern`: every target layer gets the ratio of its stage;
  a ``pruning.pattern`` for allocation ``pattern`` on the target.
* :func:`transfer_pattern`: both from a source mask (counted by
  ``architecture.kept_counts``).

Stages come from ``architecture.param_stage`` of each model: a VGG's convs
between two poolings are ``Stage 1`` ... ``Stage 5`` (VGG-16 and VGG-19 share
them; VGG-19 has one more conv in stages 3-5, each gets its stage's ratio);
residual nets' ``stage{s}`` blocks are ``Stage s+1``. Every other layer (the
classifier: a VGG's hidden ``fc0`` and ``head``, an MLP's layers) is its own
stage, named after the layer, so it is matched *by name*: the target's
``head`` gets the kept ratio of the source's ``head`` although the two differ
in size (10 vs 100 classes), i.e. the classifier is treated like any other
stage of one layer rather than kept dense or set to the run's sparsity, so the
source's pattern is what defines the whole target, as for the conv stages. A
target stage the source lacks is an error (no silent default); a source stage
the target lacks is not used (Rethinking's VGG-16 with the ``l1`` classifier
has a hidden ``fc0``, the registered VGG-19 with the ``slimming`` one has not).

Rounding is the allocation's: a target layer of ``n`` weights keeps
``round(ratio * n)`` (half up, ``allocation.pattern_keep_counts``); the ratio is
a float, kept / size of the source stage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from jaxprune.analysis import architecture
from jaxprune.pruning import allocation as alloc_lib
from jaxprune.pruning import masks as masks_lib


def prunable_layers(prunable: Any) -> list[str]:
  """Names of the leaves a prunable bool tree allows pruning, in tree order."""
  return [
    alloc_lib.layer_name(path)
    for path, keep in masks_lib.leaves_with_names(prunable)
    if keep
  ]


def stage_ratios(
  counts: Mapping[str, tuple[int, int]], stage_of: Callable[[str], str]
) -> dict[str, float]:
  """Kept weights / weights per stage of ``{layer: (kept, size)}``."""
  totals: dict[str, list[int]] = {}
  for layer, (kept, size) in counts.items():
    t = totals.setdefault(stage_of(layer), [0, 0])
    t[0] += kept
    t[1] += size
  return {stage: k / n for stage, (k, n) in totals.items()}


def transferred_pattern(
  ratios: Mapping[str, float],
  layers: Iterable[str],
  stage_of: Callable[[str], str],
  *,
  source: str = "source",
  target: str = "target",
) -> dict[str, float]:
  """``{layer: ratios[stage_of(layer)]}`` for every target layer.

  ``source`` / ``target`` name the two nets in the error a target stage
  without a source ratio raises.
  """
  layers = list(layers)
  missing = sorted({stage_of(layer) for layer in layers} - set(ratios))
  if missing:
    raise ValueError(
      f"cannot transfer the sparsity pattern of {source} to {target}: "
      f"{target} has stage(s) {missing} that {source} lacks; "
      f"{source}'s stages: {sorted(ratios)}"
    )
  return {layer: float(ratios[stage_of(layer)]) for layer in layers}


def transfer_pattern(
  source_masks: Any,
  source_prunable: Any,
  source_model: str,
  target_layers: Iterable[str],
  target_model: str,
) -> dict[str, float]:
  """The target's ``pruning.pattern``: the source mask's kept ratio per stage
  (stages by ``architecture.param_stage`` of each model) given to every
  prunable ``target_layers`` entry of the same stage (module docstring)."""
  counts = architecture.kept_counts(source_masks, source_prunable)
  ratios = stage_ratios(counts, architecture.param_stage(source_model))
  return transferred_pattern(
    ratios,
    target_layers,
    architecture.param_stage(target_model),
    source=repr(source_model),
    target=repr(target_model),
  )
