"""ResNet-18/34/50 in the torchvision layout, and ResNet-18 for CIFAR.

torchvision (``resnet18/34/50``, v1.5): stem conv7x7/2 + BN + ReLU + maxpool
3x3/2 (padding 1); four stages with strides 1/2/2/2 of BasicBlocks
(conv3x3-BN-ReLU-conv3x3-BN) or Bottlenecks (conv1x1-BN-ReLU-conv3x3(stride)-
BN-ReLU-conv1x1(4x)-BN); option-B downsampling (1x1 conv + BN) on the first
block of a stage when the stride or width changes; add, ReLU; global average
pool; ``head``. Convs are bias-free, He fan-out normal; BN gamma 1 (no
zero-init of the last BN); the head has PyTorch's default init.

``resnet18_cifar`` (Zimmer et al./BIMP, the kuangliu CIFAR layout): stem
conv3x3/1 + BN + ReLU without max pooling, same BasicBlock stages, 1x1
conv + BN projections, PyTorch default init throughout.

Which first blocks project is fixed by the architecture (stage 0 only in
Bottleneck nets, where 64 -> 256 channels; stages 1-3 always), not by the
widths, so pruned widths never add or drop a projection.

Widths:

* BasicBlock nets: :class:`~jaxprune.models.resnet_cifar.ResNetWidths`
  ``(stages, blocks)``: ``stages[s]`` is the residual width of stage s (the
  stem shares stage 0's), ``blocks[s][b]`` the block's inner width (conv1's
  output), the layout rethinking's ImageNet ResNet-34 ``cfg`` prunes.
* Bottleneck nets: :class:`ResidualWidths` ``(stem, stages, blocks)`` with
  ``blocks[s][b] = (conv1 width, conv2 width)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxprune.models import graph, initializers, validation
from jaxprune.models.resnet_cifar import ResNetWidths

LAYOUTS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3)}
PLANES = (64, 128, 256, 512)
_RELU_GAIN = math.sqrt(2.0)


class ResidualWidths(NamedTuple):
  """Stem width, residual width per stage, inner widths per block."""

  stem: int
  stages: tuple[int, ...]
  blocks: tuple[tuple[Any, ...], ...]


def default_widths(depth: int) -> ResNetWidths | ResidualWidths:
  layout = LAYOUTS[depth]
  if depth >= 50:
    blocks = tuple(((p, p),) * n for p, n in zip(PLANES, layout))
    return ResidualWidths(64, tuple(4 * p for p in PLANES), blocks)
  return ResNetWidths(PLANES, tuple((p,) * n for p, n in zip(PLANES, layout)))


def projections(bottleneck: bool) -> tuple[bool, ...]:
  return (bottleneck, True, True, True)


def _conv(
  features, kernel, in_features, stride, init_scheme, torch_init, name, conv_impl
):
  """Bias-free conv, padding k // 2; He fan-out (torchvision) or PyTorch init."""
  kernel_init = (
    initializers.torch_default_kernel()
    if torch_init
    else initializers.he_fan_out_normal()
  )
  return initializers.conv(
    features,
    kernel,
    in_features,
    strides=stride,
    padding=kernel // 2,
    use_bias=False,
    init=init_scheme,
    conv_impl=conv_impl,
    default_kernel=kernel_init,
    gain=_RELU_GAIN,
    name=name,
  )


class Block(nn.Module):
  """BasicBlock (``inner`` = (w,)) or Bottleneck (``inner`` = (w1, w2))."""

  inner: tuple[int, ...]
  out: int
  stride: int
  project: bool
  init_scheme: str = "default"
  torch_init: bool = False
  conv_impl: str = "auto"  # See jaxprune.models.conv_impl.

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    if len(self.inner) == 2:  # 1x1, 3x3 (strided, as torchvision v1.5), 1x1.
      specs = ((self.inner[0], 1, 1), (self.inner[1], 3, self.stride), (self.out, 1, 1))
    else:
      specs = ((self.inner[0], 3, self.stride), (self.out, 3, 1))
    y = x
    for k, (features, kernel, stride) in enumerate(specs):
      conv = _conv(
        features,
        kernel,
        y.shape[-1],
        stride,
        self.init_scheme,
        self.torch_init,
        f"conv{k + 1}",
        self.conv_impl,
      )
      y = initializers.batch_norm(train, f"bn{k + 1}")(conv(y))
      if k + 1 < len(specs):
        y = nn.relu(y)
    if self.project:
      x = _conv(
        self.out,
        1,
        x.shape[-1],
        self.stride,
        self.init_scheme,
        self.torch_init,
        "shortcut_conv",
        self.conv_impl,
      )(x)
      x = initializers.batch_norm(train, "shortcut_bn")(x)
    return nn.relu(y + x)


class ResNet(nn.Module):
  """torchvision-layout ResNet; Bottleneck iff ``widths`` has a ``stem``."""

  widths: Any = default_widths(18)
  num_classes: int = 1000
  cifar_stem: bool = False
  init_scheme: str = "default"
  conv_impl: str = "auto"  # See jaxprune.models.conv_impl.

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    bottleneck = isinstance(self.widths, ResidualWidths)
    stages, blocks = self.widths.stages, self.widths.blocks
    stem = self.widths.stem if bottleneck else stages[0]
    kernel, stride = (3, 1) if self.cifar_stem else (7, 2)
    x = _conv(
      stem,
      kernel,
      x.shape[-1],
      stride,
      self.init_scheme,
      self.cifar_stem,
      "stem_conv",
      self.conv_impl,
    )(x)
    x = nn.relu(initializers.batch_norm(train, "stem_bn")(x))
    if not self.cifar_stem:
      x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
    proj = projections(bottleneck)
    for s, (width, inner_widths) in enumerate(zip(stages, blocks)):
      for b, inner in enumerate(inner_widths):
        x = Block(
          inner if bottleneck else (inner,),
          width,
          stride=2 if s > 0 and b == 0 else 1,
          project=proj[s] and b == 0,
          init_scheme=self.init_scheme,
          torch_init=self.cifar_stem,
          conv_impl=self.conv_impl,
          name=f"stage{s}_block{b}",
        )(x, train)
    x = jnp.mean(x, axis=(1, 2))
    return initializers.dense(
      self.num_classes, x.shape[-1], init=self.init_scheme, gain=_RELU_GAIN, name="head"
    )(x)


def check(fields: dict[str, Any], depth: int) -> dict[str, Any]:
  initializers.check_scheme(fields["init"])
  template = default_widths(depth)
  fields["widths"] = validation.normalize_widths(fields["widths"], template)
  return fields


def read_widths(params: Mapping[str, Any]) -> ResNetWidths | ResidualWidths:
  def out(path: str, conv: str) -> int:
    return int(params[path][conv]["kernel"].shape[-1])

  stages, blocks = [], []
  s = 0
  while f"stage{s}_block0" in params:
    names = []
    while f"stage{s}_block{len(names)}" in params:
      names.append(f"stage{s}_block{len(names)}")
    bottleneck = "conv3" in params[names[0]]
    last = "conv3" if bottleneck else "conv2"
    stages.append(out(names[0], last))
    if bottleneck:
      blocks.append(tuple((out(n, "conv1"), out(n, "conv2")) for n in names))
    else:
      blocks.append(tuple(out(n, "conv1") for n in names))
    s += 1
  if "conv3" in params["stage0_block0"]:
    stem = int(params["stem_conv"]["kernel"].shape[-1])
    return ResidualWidths(stem, tuple(stages), tuple(blocks))
  return ResNetWidths(tuple(stages), tuple(blocks))


_BASIC = graph.ResidualSpec(
  inner=(("conv1", "bn1", "conv2"),),
  out_conv="conv2",
  out_norm="bn2",
  proj_norm="shortcut_bn",
  stem_norm="stem_bn",
)
_BOTTLENECK = graph.ResidualSpec(
  inner=(("conv1", "bn1", "conv2"), ("conv2", "bn2", "conv3")),
  out_conv="conv3",
  out_norm="bn3",
  proj_norm="shortcut_bn",
  stem_norm="stem_bn",
)


def groups(fields: dict[str, Any], num_classes: int) -> list[graph.ChannelGroup]:
  w = fields["widths"]
  bottleneck = isinstance(w, ResidualWidths)
  return graph.residual_groups(
    _BOTTLENECK if bottleneck else _BASIC,
    w.stem if bottleneck else w.stages[0],
    w.stages,
    w.blocks,
    projections(bottleneck),
    num_classes,
  )


def entries() -> dict[str, dict[str, Any]]:
  """``resnet18/34/50`` (ImageNet) and ``resnet18_cifar``."""
  out = {}
  for depth in (18, 34, 50):
    out[f"resnet{depth}"] = {
      "defaults": {"widths": default_widths(depth), "init": "default"},
      "input_shape": (224, 224, 3),
      "check": lambda f, d=depth: check(f, d),
    }
  out["resnet18_cifar"] = {
    "defaults": {"widths": default_widths(18), "init": "default"},
    "check": lambda f: check(f, 18),
    "module_fields": {"cifar_stem": True},
  }
  for entry in out.values():
    entry.update(module_cls=ResNet, read_widths=read_widths, groups=groups)
  return out
