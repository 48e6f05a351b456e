"""Pre-activation ResNets for CIFAR (PreResNet-56/110/164), and the block WRNs use.

Definition of rethinking's ``cifar/network-slimming/models/preresnet.py`` and
``cifar/weight-level/models/cifar/preresnet.py`` (bearpaw layout): stem
conv3x3 (3 -> 16, no BN); three stages (strides 1/2/2) of pre-activation
blocks; final BN -> ReLU -> global average pool -> ``head``. A block computes
``conv_k(ReLU(bn_k(...)))`` and adds its input, projected by a bias-free 1x1
conv (no BN) on the raw input when the stride or width changes.

* ``block="bottleneck"`` (default, as both rethinking files build these
  depths): ``n = (depth - 2) // 9`` blocks per stage of bn1-ReLU-conv1(1x1)-
  bn2-ReLU-conv2(3x3, strided)-bn3-ReLU-conv3(1x1, 4x planes). So the
  "PreResNet-56/110" of rethinking's weight-level experiments are bottleneck
  nets with 6/12 blocks per stage, and PreResNet-164 (network slimming) has 18.
* ``block="basic"``: He et al.'s ``n = (depth - 2) // 6`` blocks of
  bn1-ReLU-conv1(3x3, strided)-bn2-ReLU-conv2(3x3).

Convs are He fan-out normal; BN gamma starts at ``bn_init`` (0.5 in network
slimming, the default for ``preresnet164``; 1 in the weight-level code, the
default for 56/110). Slimming's ``channel_selection`` layers are not modelled
(masking a pre-activation BN's gamma and beta selects the same channels).

Widths: bottleneck nets use :class:`ResidualWidths` ``(stem, stages, blocks)``
with ``blocks[s][b] = (conv1 width, conv2 width)`` and ``stages[s]`` the
residual width (64/128/256); basic nets use ``ResNetWidths(stages, blocks)``
(the stem shares stage 0's width: stage 0 starts with an identity shortcut).
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxprune import checks
from jaxprune.models import graph, initializers, resnet_imagenet, validation
from jaxprune.models.resnet_cifar import ResNetWidths
from jaxprune.models.resnet_imagenet import ResidualWidths

BLOCKS = ("bottleneck", "basic")
PLANES = (16, 32, 64)
_RELU_GAIN = math.sqrt(2.0)


class PreActBlock(nn.Module):
  """``len(inner) + 1`` pre-activated convs and a residual add.

  Attributes:
    inner: widths of all convs but the last.
    out: width of the last conv (the residual stream).
    kernels: kernel size of each conv.
    stride: applied by conv number ``strided`` (0-based).
    project: 1x1 projection shortcut on the raw input.
    use_bias: conv biases (WRN in BIMP).
    dropout: rate between the first conv and ``bn2`` (WRN), 0 for none.
    bn_init: initial BN gamma.
  """

  inner: tuple[int, ...]
  out: int
  kernels: tuple[int, ...]
  stride: int
  strided: int
  project: bool
  use_bias: bool = False
  dropout: float = 0.0
  bn_init: float = 1.0
  init_scheme: str = "default"
  conv_impl: str = "auto"  # See jaxprune.models.conv_impl.

  def _conv(self, features, kernel, in_features, stride, name):
    if self.use_bias:  # BIMP's WRN: PyTorch default init, biases included.
      kernel_init = initializers.torch_default_kernel()
    else:
      kernel_init = initializers.he_fan_out_normal()
    return initializers.conv(
      features,
      kernel,
      in_features,
      strides=stride,
      padding=kernel // 2,
      use_bias=self.use_bias,
      init=self.init_scheme,
      conv_impl=self.conv_impl,
      default_kernel=kernel_init,
      gain=_RELU_GAIN,
      name=name,
    )

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    y = x
    for k, (features, kernel) in enumerate(zip((*self.inner, self.out), self.kernels)):
      if k == 1 and self.dropout > 0:  # WRN: conv1 -> dropout -> bn2.
        y = nn.Dropout(self.dropout, deterministic=not train)(y)
      y = initializers.batch_norm(train, f"bn{k + 1}", scale=self.bn_init)(y)
      y = nn.relu(y)
      stride = self.stride if k == self.strided else 1
      y = self._conv(features, kernel, y.shape[-1], stride, f"conv{k + 1}")(y)
    if self.project:
      x = self._conv(self.out, 1, x.shape[-1], self.stride, "shortcut_conv")(x)
    return y + x


class PreResNet(nn.Module):
  """CIFAR PreResNet; bottleneck iff ``widths`` has a ``stem``."""

  widths: Any = None
  num_classes: int = 10
  bn_init: float = 1.0
  init_scheme: str = "default"
  conv_impl: str = "auto"  # See jaxprune.models.conv_impl.

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    bottleneck = isinstance(self.widths, ResidualWidths)
    stages, blocks = self.widths.stages, self.widths.blocks
    stem = self.widths.stem if bottleneck else stages[0]
    x = initializers.conv(
      stem,
      3,
      x.shape[-1],
      padding=1,
      use_bias=False,
      init=self.init_scheme,
      conv_impl=self.conv_impl,
      default_kernel=initializers.he_fan_out_normal(),
      gain=_RELU_GAIN,
      name="stem_conv",
    )(x)
    proj = projections(bottleneck)
    for s, (width, inner_widths) in enumerate(zip(stages, blocks)):
      for b, inner in enumerate(inner_widths):
        x = PreActBlock(
          inner if bottleneck else (inner,),
          width,
          kernels=(1, 3, 1) if bottleneck else (3, 3),
          stride=2 if s > 0 and b == 0 else 1,
          strided=1 if bottleneck else 0,
          project=proj[s] and b == 0,
          bn_init=self.bn_init,
          init_scheme=self.init_scheme,
          conv_impl=self.conv_impl,
          name=f"stage{s}_block{b}",
        )(x, train)
    x = initializers.batch_norm(train, "final_bn", scale=self.bn_init)(x)
    x = jnp.mean(nn.relu(x), axis=(1, 2))
    return initializers.dense(
      self.num_classes, x.shape[-1], init=self.init_scheme, gain=_RELU_GAIN, name="head"
    )(x)


def projections(bottleneck: bool) -> tuple[bool, ...]:
  # Bottleneck stage 0 goes 16 -> 64 channels; basic stage 0 keeps 16.
  return (bottleneck, True, True)


def default_widths(depth: int, block: str) -> ResNetWidths | ResidualWidths:
  if block == "bottleneck":
    n = (depth - 2) // 9
    blocks = tuple(((p, p),) * n for p in PLANES)
    return ResidualWidths(16, tuple(4 * p for p in PLANES), blocks)
  n = (depth - 2) // 6
  return ResNetWidths(PLANES, tuple((p,) * n for p in PLANES))


def check(fields: dict[str, Any]) -> dict[str, Any]:
  initializers.check_scheme(fields["init"])
  checks.choice(fields["block"], "block", BLOCKS)
  bn_init = fields["bn_init"]
  if isinstance(bn_init, bool) or not isinstance(bn_init, int | float):
    raise ValueError(f"bn_init must be a number, got {bn_init!r}")
  template = default_widths(fields["depth"], fields["block"])
  if fields["widths"] is None:
    fields["widths"] = template
  fields["widths"] = validation.normalize_widths(fields["widths"], template)
  # Both are implied by the widths' structure.
  fields.pop("block")
  fields.pop("depth")
  return fields


# Same param naming as the ImageNet ResNets (stage{s}_block{b}/conv1..3).
read_widths = resnet_imagenet.read_widths


PREACT_BASIC = graph.ResidualSpec(
  inner=(("conv1", "bn2", "conv2"),),
  out_conv="conv2",
  pre_norm="bn1",
  final_norm="final_bn",
)
PREACT_BOTTLENECK = graph.ResidualSpec(
  inner=(("conv1", "bn2", "conv2"), ("conv2", "bn3", "conv3")),
  out_conv="conv3",
  pre_norm="bn1",
  final_norm="final_bn",
)


def groups(fields: dict[str, Any], num_classes: int) -> list[graph.ChannelGroup]:
  w = fields["widths"]
  bottleneck = isinstance(w, ResidualWidths)
  return graph.residual_groups(
    PREACT_BOTTLENECK if bottleneck else PREACT_BASIC,
    w.stem if bottleneck else w.stages[0],
    w.stages,
    w.blocks,
    projections(bottleneck),
    num_classes,
  )


def entries() -> dict[str, dict[str, Any]]:
  """``preresnet56/110/164``."""
  out = {}
  for depth, bn_init in ((56, 1.0), (110, 1.0), (164, 0.5)):
    out[f"preresnet{depth}"] = {
      "module_cls": PreResNet,
      "defaults": {
        "widths": None,
        "block": "bottleneck",
        "bn_init": bn_init,
        "init": "default",
      },
      "module_fields": {"depth": depth},
      "check": check,
      "read_widths": read_widths,
      "groups": groups,
    }
  return out
