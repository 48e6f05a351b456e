"""Pruning as architecture search (Liu et al. 2019, Sec. 5, Tables 7, 18-21).

A finished pruning run is read as an architecture: which fraction of each
layer's channels (structured) or weights (unstructured) it kept, averaged per
stage, and the architectures built from those patterns to be trained from
scratch:

* :func:`kept_channel_ratios` / :func:`stage_channel_ratios`: kept width over
  the unpruned width (the registered default unless given) per layer, and per
  stage (Tables 7, 18, 21).
* :func:`kept_weight_ratios` / :func:`stage_weight_ratios`: fraction of each
  layer's kernel entries a mask keeps, and per stage (Tables 19-20).
* :func:`guided_widths`: "Guided Pruning": every layer of a stage gets the
  stage's average kept ratio times its own unpruned width.
* :func:`transferred_widths`: "Transferred Guided Pruning": the per-stage
  ratios of one model applied to another of the same family (the paper goes
  from VGG-16 on CIFAR-10 to VGG-19 on CIFAR-100; ResNet-56 -> ResNet-110
  works the same way).
* :func:`final_phase_dir` and :func:`read_run`: the final params, masks and
  widths of a run's workdir.

Stages are the layers that share a feature-map size: a VGG's convs between two
poolings (``Stage 1`` ... ``Stage 5``; hidden dense layers are ``classifier``),
a CIFAR (Pre)ResNet's blocks (``Stage s``; the width its residual adds share
is its own group ``Stage s residual``, a bottleneck net's stem is ``stem``, so
block convs are averaged among block convs), every hidden layer of an MLP
(``hidden``). A stage's ratio is its kept channels over its unpruned channels
(the mean of the layer ratios when a stage's unpruned widths are equal, as in
all these nets).

Rounding: a guided or transferred width is ``ratio * unpruned width`` rounded
to the nearest integer, ties to even (Python's ``round``, computed exactly with
fractions for guided widths: a stage kept at 11 and 12 of 16 channels gets
12 twice, one kept at 12 and 13 also 12), and at least 1; the ``scratch``
protocol's guided widths were rounded this way before. Results are in the form
``models.create(name, widths=...)`` takes, so the ``scratch`` and ``train``
protocols train them directly.
"""

from __future__ import annotations

import dataclasses
import fractions
import glob
import json
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np

from jaxprune import io_utils, models
from jaxprune.analysis import weights
from jaxprune.models import vgg
from jaxprune.models.resnet_imagenet import ResidualWidths
from jaxprune.pruning import allocation as alloc_lib
from jaxprune.pruning import masks as masks_lib

Ratio = float | fractions.Fraction
_VGG_RE = re.compile(r"^vgg(\d+)$")
# Families whose stages are known (CIFAR layouts with a `layer_widths` naming).
FAMILIES = (
  "mlp7_*",
  "resnet{20,...,110}",
  "resnet50_cifar",
  "preresnet*",
  "vgg11/16/19",
)


def _structure(model_name: str) -> str:
  if model_name.startswith("mlp7"):
    return "mlp"
  if re.fullmatch(r"(pre)?resnet(20|32|44|56|110|164|50_cifar)", model_name):
    return "resnet"
  if _VGG_RE.match(model_name):
    return "vgg"
  raise ValueError(
    f"architecture analysis knows the stages of {', '.join(FAMILIES)}, "
    f"not model {model_name!r}"
  )


def layer_widths(model_name: str, widths: Any) -> dict[str, int]:
  """``{layer: width}`` of the prunable layers: ``weights.layer_widths`` (MLP,
  CIFAR ResNets), plus VGG (``conv{i}``, then the hidden ``fc{j}``) and
  bottleneck PreResNets (``stem``, ``stage{s}/residual``,
  ``stage{s}_block{b}/conv1`` and ``/conv2``)."""
  kind = _structure(model_name)
  if isinstance(widths, ResidualWidths):
    out = {"stem": int(widths.stem)}
    for s, (stage, inner) in enumerate(zip(widths.stages, widths.blocks, strict=True)):
      out[f"stage{s}/residual"] = int(stage)
      for b, convs in enumerate(inner):
        for i, w in enumerate(convs):
          out[f"stage{s}_block{b}/conv{i + 1}"] = int(w)
    return out
  if kind != "vgg":
    return weights.layer_widths(model_name.removeprefix("pre"), widths)
  depth = int(_VGG_RE.match(model_name).group(1))
  convs = sum(len(s) for s in vgg.STAGES[depth])
  names = [f"conv{i}" for i in range(convs)]
  names += [f"fc{j}" for j in range(len(widths) - convs)]
  return {n: int(w) for n, w in zip(names, widths, strict=True)}


def stage_of(model_name: str, layer: str) -> str:
  """The stage a layer of ``layer_widths`` belongs to (module docstring)."""
  kind = _structure(model_name)
  if kind == "mlp":
    return "hidden"
  if kind == "resnet":
    suffix = " residual" if layer.endswith("/residual") else ""
    return weights.default_stage(layer) + suffix  # "stem" stays its own.
  if layer.startswith("fc"):
    return "classifier"
  depth = int(_VGG_RE.match(model_name).group(1))
  index, start = int(layer[len("conv") :]), 0
  for s, stage in enumerate(vgg.STAGES[depth]):
    if index < start + len(stage):
      return f"Stage {s + 1}"
    start += len(stage)
  raise ValueError(f"{model_name} has no layer {layer!r}")


def _pair(model_name: str, pruned: Any, overrides: Mapping[str, Any]):
  """(unpruned, kept) ``{layer: width}`` of the ``pruned`` widths."""
  widths = models.default_widths(model_name, **{**overrides, "widths": pruned})
  original = layer_widths(model_name, models.default_widths(model_name, **overrides))
  kept = layer_widths(model_name, widths)
  if kept.keys() != original.keys():
    raise ValueError(f"widths do not fit {model_name}: layers {sorted(kept)}")
  return original, kept


def kept_channel_ratios(
  model_name: str, pruned: Any, **overrides: Any
) -> dict[str, float]:
  """Kept width / unpruned width per layer of a structurally pruned model.

  ``overrides`` are the model overrides the run was built with (e.g. VGG
  ``classifier``, ``width_multiplier``); a ``widths`` among them is the
  unpruned net (default: the registered widths). The same holds for every
  function here that takes ``overrides``.
  """
  original, kept = _pair(model_name, pruned, overrides)
  return {layer: kept[layer] / original[layer] for layer in original}


def _stage_fractions(
  model_name: str, original: Mapping[str, int], kept: Mapping[str, int]
) -> dict[str, Ratio]:
  """Exact kept / default channels per stage (``weights.stage_keep_table``'s
  ratio, as fractions so that guided widths round exactly)."""
  totals: dict[str, list[int]] = {}
  for layer, width in original.items():
    t = totals.setdefault(stage_of(model_name, layer), [0, 0])
    t[0] += int(kept[layer])
    t[1] += int(width)
  return {stage: fractions.Fraction(k, n) for stage, (k, n) in totals.items()}


def stage_channel_ratios(
  model_name: str, pruned: Any, **overrides: Any
) -> dict[str, float]:
  """Kept channels / default channels per stage (Rethinking Tables 18, 21)."""
  original, kept = _pair(model_name, pruned, overrides)
  return {s: float(r) for s, r in _stage_fractions(model_name, original, kept).items()}


def _apply_ratios(
  model_name: str, ratios: Mapping[str, Ratio], overrides: Mapping[str, Any]
) -> Any:
  """Unpruned widths of ``model_name`` scaled per stage (module docstring rounding)."""
  template = models.default_widths(model_name, **overrides)
  original = layer_widths(model_name, template)
  missing = sorted({stage_of(model_name, layer) for layer in original} - set(ratios))
  if missing:
    raise ValueError(
      f"stage ratios have no entry for stage(s) {missing} of {model_name}; "
      f"given {sorted(ratios)}"
    )
  for stage, r in ratios.items():
    if not 0 < r <= 1:
      raise ValueError(f"stage ratio of {stage!r} must be in (0, 1], got {r}")
  new = {
    layer: max(1, round(fractions.Fraction(ratios[stage_of(model_name, layer)]) * w))
    for layer, w in original.items()
  }
  return _rebuild(model_name, template, new, overrides)


def _rebuild(
  model_name: str, template: Any, new: Mapping[str, int], overrides: Mapping[str, Any]
) -> Any:
  """Inverse of :func:`layer_widths`: ``{layer: width}`` -> widths override form."""
  if _structure(model_name) == "resnet":
    stages = tuple(new[f"stage{s}/residual"] for s in range(len(template.stages)))
    bottleneck = isinstance(template, ResidualWidths)

    def block(s: int, b: int) -> Any:
      if not bottleneck:
        return new[f"stage{s}_block{b}/conv1"]
      n = len(template.blocks[s][b])
      return tuple(new[f"stage{s}_block{b}/conv{i + 1}"] for i in range(n))

    blocks = tuple(
      tuple(block(s, b) for b in range(len(inner)))
      for s, inner in enumerate(template.blocks)
    )
    widths: Any = (new["stem"], stages, blocks) if bottleneck else (stages, blocks)
  else:
    widths = tuple(new.values())
  return models.default_widths(model_name, **{**overrides, "widths": widths})


def guided_widths(model_name: str, pruned: Any, **overrides: Any) -> Any:
  """Guided Pruning: each layer gets its stage's kept ratio x its unpruned width."""
  original, kept = _pair(model_name, pruned, overrides)
  return _apply_ratios(
    model_name, _stage_fractions(model_name, original, kept), overrides
  )


def transferred_widths(
  source_model: str,
  source_widths: Any,
  target_model: str,
  *,
  source_overrides: Mapping[str, Any] | None = None,
  **target_overrides: Any,
) -> Any:
  """Transferred Guided Pruning: the source's per-stage kept ratios applied to
  ``target_model``'s unpruned widths (same family; stages matched by name)."""
  original, kept = _pair(source_model, source_widths, source_overrides or {})
  ratios = _stage_fractions(source_model, original, kept)
  if _structure(source_model) != _structure(target_model):
    raise ValueError(
      f"cannot transfer stage ratios from {source_model!r} to {target_model!r}: "
      "different families"
    )
  return _apply_ratios(target_model, ratios, target_overrides)


def widths_from_stage_ratios(
  model_name: str, ratios: Mapping[str, float], **overrides: Any
) -> Any:
  """Widths of ``model_name`` with every stage scaled by ``ratios[stage]``."""
  return _apply_ratios(model_name, ratios, overrides)


def kept_weight_ratios(masks: Any, *, kind: str = "all") -> dict[str, float]:
  """Fraction of kernel entries kept per layer (unstructured masks)."""
  return weights.kept_fractions(masks, kind=kind)


def param_stage(model_name: str) -> Callable[[str], str]:
  """Stage of a params-path layer name (``weights.kernels`` keys) of
  ``model_name``: VGG ``conv{i}`` by pooling stage, ``stage{s}...`` of the
  residual nets as ``Stage s+1``; anything else is its own stage. Pass it to
  ``weights.kernel_position_keep(masks, stage_of=...)`` for Fig. 4. DenseNets:
  ``block{b}_...`` as ``Stage b+1`` (transitions and stem on their own)."""
  if model_name.startswith("densenet"):

    def dense_stage(layer: str) -> str:
      match = re.match(r"block(\d+)_", layer)
      return f"Stage {int(match.group(1)) + 1}" if match else layer

    return dense_stage
  if _structure(model_name) != "vgg":
    return weights.default_stage

  def stage(layer: str) -> str:
    if re.fullmatch(r"conv\d+", layer):
      return stage_of(model_name, layer)
    return layer

  return stage


def stage_weight_ratios(
  masks: Any, *, model_name: str | None = None, kind: str = "conv"
) -> dict[str, float]:
  """Kept kernel entries / all kernel entries per stage (Tables 19-20).

  Stages by :func:`param_stage` of ``model_name`` (default: ``stage{s}...``
  layers grouped, the others on their own).
  """
  stage = param_stage(model_name) if model_name else weights.default_stage
  kept: dict[str, list[int]] = {}
  for layer, m in weights.kernels(masks, kind=kind).items():
    k = kept.setdefault(stage(layer), [0, 0])
    k[0] += int(np.count_nonzero(m))
    k[1] += int(np.size(m))
  return {s: k / n for s, (k, n) in kept.items()}


def kept_counts(masks: Any, prunable: Any) -> dict[str, tuple[int, int]]:
  """``{layer: (kept entries, entries)}`` of every prunable leaf of ``masks``
  (layer names as allocation 'pattern' names them).

  ``prunable`` is the run's bool tree (``PruneResult.prunable``); a layer the
  mask keeps whole is included, an unprunable one is not.
  """
  flags = jax.tree_util.tree_structure(masks).flatten_up_to(prunable)
  out = {}
  for (path, m), keep in zip(masks_lib.leaves_with_names(masks), flags, strict=True):
    if keep:
      m = np.asarray(m)
      out[alloc_lib.layer_name(path)] = (int(np.count_nonzero(m)), int(m.size))
  return out


def sparsity_pattern(
  masks: Any,
  *,
  prunable: Any = None,
  model_name: str | None = None,
  guided: bool = False,
) -> dict[str, float]:
  """``{layer: keep ratio}`` of every kernel an unstructured mask prunes, for
  ``pruning.allocation='pattern'``; ``guided``: each layer gets its stage's
  kept-weight ratio (Liu et al.'s "Guided Sparsification", stages by
  :func:`param_stage`).

  ``prunable`` (the run's bool tree, ``PruneResult.prunable``) names the
  layers: every prunable leaf, a layer the mask keeps whole (ratio 1.0, which
  a global threshold can leave at low sparsity) included, so the pattern fits
  allocation 'pattern' under the same predicate. Without it the masks alone
  cannot tell a whole prunable layer from an unprunable one: kernels kept
  whole are left out.
  """
  if prunable is None:
    ratios = {k: r for k, r in kept_weight_ratios(masks).items() if r < 1.0}
    sizes = {k: int(np.size(m)) for k, m in weights.kernels(masks).items()}
  else:
    counts = kept_counts(masks, prunable)
    ratios = {k: kept / n for k, (kept, n) in counts.items()}
    sizes = {k: n for k, (_, n) in counts.items()}
  if not guided:
    return ratios
  stage = param_stage(model_name) if model_name else weights.default_stage
  return alloc_lib.guided_pattern(ratios, sizes, stage)


def write_pattern(path: str, masks: Any, **kwargs: Any) -> dict[str, float]:
  """Writes :func:`sparsity_pattern` as JSON (a ``pruning.pattern`` file)."""
  pattern = sparsity_pattern(masks, **kwargs)
  with open(path, "w") as f:
    json.dump(pattern, f, indent=1, sort_keys=True)
  return pattern


@dataclasses.dataclass
class RunArchitecture:
  """A finished run's final state as an architecture."""

  model_name: str
  overrides: dict[str, Any]  # the run's model overrides but `widths`
  params: Any
  masks: Any
  widths: Any  # read from the params (the pruned widths after surgery)
  workdir: str


def final_phase_dir(workdir: str) -> str:
  """The directory of a run's last phase: the run itself (``train``), its last
  ``cycle<k>`` (``prune_retrain``, ``slimming``), or ``scratch``/``finetune``."""
  if os.path.isdir(os.path.join(workdir, "checkpoints")):
    return workdir
  cycles = glob.glob(os.path.join(workdir, "cycle*", "checkpoints"))
  if cycles:
    last = max(cycles, key=lambda p: int(re.search(r"cycle(\d+)", p).group(1)))
    return os.path.dirname(last)
  for phase in ("scratch", "finetune", "retrain"):
    if os.path.isdir(os.path.join(workdir, phase, "checkpoints")):
      return os.path.join(workdir, phase)
  raise FileNotFoundError(f"no checkpoints of a finished phase under {workdir}")


def read_run(workdir: str, state: Mapping[str, Any]) -> RunArchitecture:
  """A run's architecture from its config.json and a restored final ``state``.

  Restore the state with the training code (analysis stays below it)::

    phase = architecture.final_phase_dir(workdir)
    with checkpointing.Checkpointer(phase + "/checkpoints") as ckpt:
      state = ckpt.restore("final")[0]
    run = architecture.read_run(workdir, state)
  """
  config = io_utils.read_json(os.path.join(workdir, "config.json"))
  name = config["model"]["name"]
  overrides = {k: v for k, v in config["model"].items() if k not in ("name", "widths")}
  state = jax.device_get(state)
  widths = models.read_widths(name, state["params"], **overrides)
  return RunArchitecture(
    name, overrides, state["params"], state.get("masks"), widths, workdir
  )
