"""Per-group prune ratios: uniform, per-stage, skip lists and the papers' presets.

Layer ids follow rethinking's ``res56prune.py`` / ``res110prune.py`` and the
ImageNet ``prune.py``: every 3x3 (non-1x1) conv is numbered in module order
from 1 (the stem is 1), so the first conv of global block ``k`` (1-based) has
id ``2k`` and the second ``2k + 1``. Only even ids (a block's first conv, the
``stage{s}_block{b}/inner`` group) are candidates; skip lists hold ids that
stay dense. The stage of an id is the stage of its block.

Presets (docs/provenance.md F1):

* Li et al. (PFEC) / rethinking: ``resnet56_a``, ``resnet56_b``,
  ``resnet110_a``, ``resnet110_b``, ``vgg16_a``, ``resnet34_a``, ``resnet34_b``;
  NPTM additions ``resnet56_c``/``_d``/``_i``, ``resnet110_c``/``_d``/``_i``,
  ``resnet34_c``/``_d``, ``vgg16_b``/``_c`` (VGG presets are target widths).
* Wang et al.: "the first conv of every residual block" at one uniform ratio is
  ``groups="inner"`` with ``ratio=p`` (no preset needed).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from jaxprune.models import validation, vgg
from jaxprune.models.graph import ChannelGroup

GROUP_SETS = ("inner", "all")

# name -> (skip ids, per-stage ratios)
_RESNET_PRESETS: dict[str, tuple[tuple[int, ...], tuple[float, ...]]] = {
  "resnet56_a": ((16, 20, 38, 54), (0.1, 0.1, 0.1)),
  "resnet56_b": ((16, 18, 20, 34, 38, 54), (0.6, 0.3, 0.1)),
  "resnet56_c": ((16, 18, 20, 34, 38, 54), (0.6, 0.5, 0.4)),
  "resnet56_d": ((16, 18, 20, 34, 38, 54), (0.6, 0.6, 0.6)),
  "resnet56_i": ((), (0.1, 0.15, 0.2)),
  "resnet110_a": ((36,), (0.5, 0.0, 0.0)),
  "resnet110_b": ((36, 38, 74), (0.5, 0.4, 0.3)),
  "resnet110_c": ((36, 38, 74), (0.5, 0.5, 0.5)),
  "resnet110_d": ((36, 38, 74), (0.5, 0.6, 0.7)),
  "resnet110_i": ((), (0.1, 0.15, 0.2)),
  "resnet34_a": ((2, 8, 14, 16, 26, 28, 30, 32), (0.3, 0.3, 0.3, 0.0)),
  "resnet34_b": ((2, 8, 14, 16, 26, 28, 30, 32), (0.5, 0.6, 0.4, 0.0)),
  "resnet34_c": ((2, 8, 14, 16, 26, 32), (0.5, 0.5, 0.5, 0.5)),
  "resnet34_d": ((32,), (0.4, 0.4, 0.5, 0.5)),
}
# name -> target conv widths (rethinking vggprune.py cfg without the 'M's).
_VGG_PRESETS: dict[str, tuple[int, ...]] = {
  "vgg16_a": (32, 64, 128, 128, 256, 256, 256, 256, 256, 256, 256, 256, 256),
  "vgg16_b": (32, 64, 128, 128, 196, 196, 196, 196, 196, 256, 256, 256, 256),
  "vgg16_c": (32, 64, 64, 128, 128, 128, 128, 196, 196, 196, 196, 196, 196),
}
PRESETS = ("", *_RESNET_PRESETS, *_VGG_PRESETS)
# Model each preset was defined for.
PRESET_MODELS = {
  **{k: k.split("_")[0] for k in _RESNET_PRESETS},
  **{k: "vgg16" for k in _VGG_PRESETS},
}

_BLOCK = re.compile(r"^stage(\d+)_block(\d+)/inner1?$")


def block_of(name: str) -> tuple[int, int] | None:
  """(stage, block) of a block's first-conv group, else None."""
  m = _BLOCK.match(name)
  return (int(m.group(1)), int(m.group(2))) if m else None


def stage_of(name: str) -> int | None:
  m = re.match(r"^stage(\d+)", name)
  return int(m.group(1)) if m else None


def layer_ids(groups: Sequence[ChannelGroup]) -> dict[str, int]:
  """Li et al. layer id (``2k`` for global block k) of every block-first group."""
  blocks = sorted({b for g in groups if (b := block_of(g.name)) is not None})
  return {
    g.name: 2 * (blocks.index(block_of(g.name)) + 1)
    for g in groups
    if block_of(g.name) is not None
  }


def select_groups(groups: Sequence[ChannelGroup], which: str) -> list[str]:
  """Names of the prunable groups in set ``which`` ("inner" or "all")."""
  if which == "all":
    return [g.name for g in groups if g.prunable]
  if which == "inner":
    names = [g.name for g in groups if g.prunable and block_of(g.name) is not None]
    if not names:  # Plain nets: every hidden layer is a "first conv".
      names = [g.name for g in groups if g.prunable]
    return names
  raise ValueError(f"groups must be one of {list(GROUP_SETS)}, got {which!r}")


def ratios(
  groups: Sequence[ChannelGroup],
  *,
  which: str = "inner",
  ratio: float = 0.0,
  stage_ratios: Sequence[float] = (),
  skip: Sequence[Any] = (),
) -> dict[str, float]:
  """Per-group ratios: ``ratio`` everywhere, or ``stage_ratios[stage]``.

  ``skip`` holds group names or Li et al. layer ids (ints) left dense.
  """
  names = select_groups(groups, which)
  ids = layer_ids(groups)
  skip_names = {s for s in skip if isinstance(s, str)}
  skip_ids = {int(s) for s in skip if not isinstance(s, str)}
  known = {g.name for g in groups}
  for s in skip_names - known:
    raise ValueError(f"skip names unknown channel group {s!r}")
  out = {}
  for n in names:
    if n in skip_names or ids.get(n) in skip_ids:
      continue
    if stage_ratios:
      s = stage_of(n)
      if s is None or s >= len(stage_ratios):
        raise ValueError(
          f"stage_ratios has {len(stage_ratios)} entries but group {n!r} "
          f"is in stage {s}"
        )
      r = float(stage_ratios[s])
    else:
      r = float(ratio)
    if r > 0:
      out[n] = r
  return out


def preset(
  name: str, groups: Sequence[ChannelGroup]
) -> tuple[dict[str, float], dict[str, int]]:
  """(ratios, target sizes) of preset ``name`` on ``groups``."""
  if name in _RESNET_PRESETS:
    skip, stage_ratios = _RESNET_PRESETS[name]
    if len({stage_of(g.name) for g in groups if stage_of(g.name) is not None}) != len(
      stage_ratios
    ):
      raise ValueError(f"preset {name!r} does not fit this model's stages")
    return ratios(groups, which="inner", stage_ratios=stage_ratios, skip=skip), {}
  if name in _VGG_PRESETS:
    by_name = {g.name: g for g in groups}
    full = vgg.default_widths(16, "slimming")  # VGG-16's conv widths.
    sizes = {}
    for i, width in enumerate(_VGG_PRESETS[name]):
      g = by_name.get(f"conv{i}")
      if g is None:
        raise ValueError(f"preset {name!r} needs a VGG-16 (no group conv{i})")
      # The targets are VGG-16's widths; a net built at a width multiplier
      # (smoke runs) keeps the same fraction of each layer.
      width = validation.scale_widths(width, g.size / full[i])
      if width < g.size:
        sizes[g.name] = width
    return {}, sizes
  raise ValueError(f"preset must be one of {list(PRESETS)}, got {name!r}")


# NPTM's "I" presets are per-cycle ratios applied again at every IMP cycle
# (docs/provenance.md F1: the iterative variants), not final targets.
REPEATED = ("resnet56_i", "resnet110_i")


def check_stage_ratios(values: Mapping[str, float]) -> None:
  for k, v in values.items():
    if not 0.0 <= v < 1.0:
      raise ValueError(f"ratio of group {k!r} must be in [0, 1), got {v}")
