"""Wide ResNets WRN-28-10 and WRN-40-2 for CIFAR, as in Zimmer et al. (BIMP).

Definition of ``ZIB-IOL/BIMP:models/cifar100.py`` (the meliketoy layout):
stem conv3x3 (3 -> 16, with bias); three stages (strides 1/2/2) of
``n = (depth - 4) / 6`` pre-activation blocks bn1-ReLU-conv1(3x3)-dropout-
bn2-ReLU-conv2(3x3, strided); every conv has a bias; the first block of each
stage adds a 1x1 conv (with bias) of its raw input; final BN -> ReLU -> global
average pool -> ``head``. Widths 16k/32k/64k for widen factor k. BIMP builds
the final BN with PyTorch momentum 0.9 (running stats follow the current batch
almost entirely), i.e. Flax momentum 0.1 here; all other BNs use 0.9.

Init: PyTorch defaults everywhere (UNVERIFIED whether BIMP applies the
meliketoy ``conv_init``). ``dropout`` (default 0.3 for WRN-28-10 as BIMP's
CIFAR-100 runs; 0 for WRN-40-2) uses the ``dropout`` rng in training.

Widths: :class:`~jaxprune.models.resnet_imagenet.ResidualWidths`
``(stem, stages, blocks)`` with ``blocks[s][b]`` the inner (conv1) width.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxprune import checks
from jaxprune.models import graph, initializers, validation
from jaxprune.models.preresnet import PreActBlock
from jaxprune.models.resnet_imagenet import ResidualWidths

_RELU_GAIN = math.sqrt(2.0)
PROJECTIONS = (True, True, True)  # 16 -> 16k channels in stage 0 (k > 1).


def default_widths(depth: int, widen: int) -> ResidualWidths:
  n = (depth - 4) // 6
  stages = (16 * widen, 32 * widen, 64 * widen)
  return ResidualWidths(16, stages, tuple((w,) * n for w in stages))


class WideResNet(nn.Module):
  """BIMP's WideResNet; depth and width come from ``widths``."""

  widths: ResidualWidths = default_widths(28, 10)
  num_classes: int = 10
  dropout: float = 0.3
  init_scheme: str = "default"
  conv_impl: str = "auto"  # See jaxprune.models.conv_impl.

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    x = initializers.conv(
      self.widths.stem,
      3,
      x.shape[-1],
      padding=1,
      use_bias=True,
      init=self.init_scheme,
      conv_impl=self.conv_impl,
      default_kernel=initializers.torch_default_kernel(),
      gain=_RELU_GAIN,
      name="stem_conv",
    )(x)
    for s, (width, inner_widths) in enumerate(
      zip(self.widths.stages, self.widths.blocks)
    ):
      for b, inner in enumerate(inner_widths):
        x = PreActBlock(
          (inner,),
          width,
          kernels=(3, 3),
          stride=2 if s > 0 and b == 0 else 1,
          strided=1,
          project=PROJECTIONS[s] and b == 0,
          use_bias=True,
          dropout=self.dropout,
          init_scheme=self.init_scheme,
          conv_impl=self.conv_impl,
          name=f"stage{s}_block{b}",
        )(x, train)
    x = initializers.batch_norm(train, "final_bn", momentum=0.1)(x)
    x = jnp.mean(nn.relu(x), axis=(1, 2))
    return initializers.dense(
      self.num_classes, x.shape[-1], init=self.init_scheme, gain=_RELU_GAIN, name="head"
    )(x)


def check_depth(depth: Any) -> int:
  """A WRN depth 6n + 4 with n >= 1 blocks per stage (the ``depth`` override)."""
  if (
    isinstance(depth, bool)
    or not isinstance(depth, int)
    or depth < 10
    or (depth - 4) % 6
  ):
    raise ValueError(
      f"depth must be an int 6n + 4 >= 10 (10, 16, 22, 28, 40, ...), got {depth!r}"
    )
  return depth


def check(fields: dict[str, Any]) -> dict[str, Any]:
  initializers.check_scheme(fields["init"])
  fields["depth"] = check_depth(fields["depth"])
  fields["dropout"] = checks.rate(fields["dropout"], "dropout")
  template = default_widths(fields.pop("depth"), fields.pop("widen"))
  fields["widths"] = validation.normalize_widths(fields["widths"] or template, template)
  return fields


def read_widths(params: Mapping[str, Any]) -> ResidualWidths:
  def out(path: str, conv: str) -> int:
    return int(params[path][conv]["kernel"].shape[-1])

  stages, blocks = [], []
  s = 0
  while f"stage{s}_block0" in params:
    names = []
    while f"stage{s}_block{len(names)}" in params:
      names.append(f"stage{s}_block{len(names)}")
    stages.append(out(names[0], "conv2"))
    blocks.append(tuple(out(n, "conv1") for n in names))
    s += 1
  stem = int(params["stem_conv"]["kernel"].shape[-1])
  return ResidualWidths(stem, tuple(stages), tuple(blocks))


_SPEC = graph.ResidualSpec(
  inner=(("conv1", "bn2", "conv2"),),
  out_conv="conv2",
  pre_norm="bn1",
  final_norm="final_bn",
)


def groups(fields: dict[str, Any], num_classes: int) -> list[graph.ChannelGroup]:
  w = fields["widths"]
  return graph.residual_groups(
    _SPEC, w.stem, w.stages, w.blocks, PROJECTIONS, num_classes
  )


def entries() -> dict[str, dict[str, Any]]:
  """``wrn28_10`` and ``wrn40_2``; ``depth`` is an override (WRN-16-2 =
  ``wrn40_2`` with ``depth=16``: the same widths, (16 - 4) / 6 = 2 blocks per
  stage), the widen factor is the name's."""
  out = {}
  for depth, widen, dropout in ((28, 10, 0.3), (40, 2, 0.0)):
    out[f"wrn{depth}_{widen}"] = {
      "module_cls": WideResNet,
      "defaults": {
        "widths": None,
        "dropout": dropout,
        "init": "default",
        "depth": depth,
      },
      "module_fields": {"widen": widen},
      "check": check,
      "read_widths": read_widths,
      "groups": groups,
    }
  return out
