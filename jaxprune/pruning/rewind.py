"""Rewinding and re-initialisation of the surviving weights (lottery tickets).

* :func:`rewind`: survivors take their values from a saved point (the initial
  weights for the lottery ticket of Frankle & Carbin, the weights of epoch k
  for weight rewinding of Renda et al.); pruned weights stay zero.
* :func:`reinitialize`: the same mask around fresh random weights drawn by the
  model's own initialisers (``models.create(...).init``): the "random init"
  control of Liu et al. §4.3 / Frankle & Carbin. With ``rescale=True`` every
  masked tensor is multiplied by ``1 / sqrt(kept fraction)`` (Liu et al. §4.3:
  the Gaussian's std rescaled by how many weights remain in the layer, keeping
  the He-init signal scale).

BatchNorm statistics are taken from the same point as the weights.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxprune import models
from jaxprune.pruning import masks as masks_lib


@dataclasses.dataclass
class RewindPoint:
  """Weights saved during training to rewind to (``epoch`` 0 = initial)."""

  params: Any
  batch_stats: Any
  epoch: int = 0


def snapshot(params: Any, batch_stats: Any, epoch: int = 0) -> RewindPoint:
  """A host copy (the train state's buffers are donated by the step)."""
  return RewindPoint(jax.device_get(params), jax.device_get(batch_stats), epoch)


def rewind(masks: Any, point: RewindPoint) -> tuple[Any, Any]:
  """(params, batch_stats) at ``point`` with ``masks`` applied."""
  return masks_lib.apply(point.params, masks), point.batch_stats


def reinitialize(
  model_name: str,
  masks: Any,
  rng: jax.Array,
  *,
  num_classes: int = 10,
  rescale: bool = False,
  input_shape: tuple[int, ...] | None = None,
  **overrides: Any,
) -> tuple[Any, Any]:
  """Fresh (params, batch_stats) from the model's initialisers, masked.

  `input_shape` (one example, NHWC) defaults to the model's registered shape;
  pass the data's (e.g. 1-channel Fashion-MNIST for a ResNet).
  """
  model = models.create(model_name, num_classes, **overrides)
  shape = input_shape or models.input_shape(model_name)
  x = jnp.zeros((1, *shape), jnp.float32)
  variables = model.init(rng, x, train=False)
  params = variables["params"]
  if jax.tree_util.tree_structure(params) != jax.tree_util.tree_structure(masks):
    raise ValueError("masks do not fit the model built from model_name/overrides")

  params = masks_lib.apply(params, masks)
  if rescale:
    params = rescale_to_density(params, masks)
  return params, variables.get("batch_stats", {})


def rescale_to_density(params: Any, masks: Any) -> Any:
  """Every sparse kernel divided by sqrt(its kept fraction) (Liu et al. §4.3),
  so a layer's output keeps the scale its dense init gave it."""

  def fix(names, w, m):
    if names[-1] != "kernel":
      return w
    kept = float(np.count_nonzero(np.asarray(m))) / max(np.size(m), 1)
    return w / np.sqrt(kept) if 0 < kept < 1 else w

  return masks_lib.map_with_names(fix, params, masks)


def kept_fraction(masks: Any) -> dict[str, float]:
  """Kept fraction of every leaf, keyed by ``"a/b/kernel"``."""
  return {
    masks_lib.path_str(n): float(np.count_nonzero(np.asarray(m))) / max(np.size(m), 1)
    for n, m in masks_lib.leaves_with_names(jax.device_get(masks))
  }
