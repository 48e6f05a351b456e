"""DenseNet-40 (growth 12) and DenseNet-BC-100 for CIFAR.

Definition of rethinking's ``cifar/weight-level/models/cifar/densenet.py``
(bearpaw) and ``cifar/network-slimming/models/densenet.py``: stem conv3x3
(3 -> 2 * growth); three dense blocks separated by transitions
BN-ReLU-conv1x1-avgpool2; final BN -> ReLU -> global average pool -> ``head``.
Every dense layer reads the concatenation ``[block input, layer 0 output,
layer 1 output, ...]`` (oldest first) and appends its own output:

* DenseNet-40 (``densenet40``): ``(40 - 4) / 3 = 12`` layers per block of
  bn1-ReLU-conv1(3x3, growth); transitions keep the width (compression 1).
* DenseNet-BC-100 (``densenet_bc100``): 16 bottleneck layers per block of
  bn1-ReLU-conv1(1x1, 4 * growth)-bn2-ReLU-conv2(3x3, growth); transitions
  halve the width (compression 2, ``floor(c / 2)``).

Convs are bias-free, He fan-out normal; BN gamma starts at ``bn_init`` (0.5
in network slimming, the default for ``densenet40``; 1 for ``densenet_bc100``).
Slimming's ``channel_selection`` is not modelled.

Widths: :class:`DenseNetWidths` ``(stem, blocks, transitions)``:
``blocks[i][j]`` is layer j's output width (the growth; for BC a pair
``(bottleneck width, growth)``), ``transitions[i]`` the i-th transition's
output width. In the graph, layer outputs are consumed at offsets of later
concatenations (:attr:`~jaxprune.models.graph.Consumer.offset`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxprune.models import graph, initializers, validation

_RELU_GAIN = math.sqrt(2.0)


class DenseNetWidths(NamedTuple):
  stem: int
  blocks: tuple[tuple[Any, ...], ...]
  transitions: tuple[int, ...]


def default_widths(depth: int, bottleneck: bool, growth: int = 12) -> DenseNetWidths:
  n = (depth - 4) // 6 if bottleneck else (depth - 4) // 3
  layer = (4 * growth, growth) if bottleneck else growth
  width = 2 * growth
  transitions = []
  for _ in range(2):
    width += n * growth
    width = width // 2 if bottleneck else width
    transitions.append(width)
  return DenseNetWidths(2 * growth, ((layer,) * n,) * 3, tuple(transitions))


def _conv(features, kernel, in_features, init_scheme, name, conv_impl="auto"):
  return initializers.conv(
    features,
    kernel,
    in_features,
    padding=kernel // 2,
    use_bias=False,
    init=init_scheme,
    conv_impl=conv_impl,
    default_kernel=initializers.he_fan_out_normal(),
    gain=_RELU_GAIN,
    name=name,
  )


class DenseNet(nn.Module):
  """CIFAR DenseNet; bottleneck layers iff ``blocks`` entries are pairs."""

  widths: DenseNetWidths = default_widths(40, False)
  num_classes: int = 10
  bn_init: float = 0.5
  init_scheme: str = "default"
  conv_impl: str = "auto"  # See jaxprune.models.conv_impl.

  def _bn(self, train, name):
    return initializers.batch_norm(train, name, scale=self.bn_init)

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    x = _conv(
      self.widths.stem, 3, x.shape[-1], self.init_scheme, "stem_conv", self.conv_impl
    )(x)
    for i, layers in enumerate(self.widths.blocks):
      for j, layer in enumerate(layers):
        sizes = layer if isinstance(layer, tuple) else (layer,)
        kernels = (1, 3) if len(sizes) == 2 else (3,)
        y = x
        for k, (features, kernel) in enumerate(zip(sizes, kernels)):
          y = nn.relu(self._bn(train, f"block{i}_layer{j}_bn{k + 1}")(y))
          name = f"block{i}_layer{j}_conv{k + 1}"
          y = _conv(
            features, kernel, y.shape[-1], self.init_scheme, name, self.conv_impl
          )(y)
        x = jnp.concatenate([x, y], axis=-1)
      if i < len(self.widths.transitions):
        x = nn.relu(self._bn(train, f"transition{i}_bn")(x))
        width = self.widths.transitions[i]
        x = _conv(
          width, 1, x.shape[-1], self.init_scheme, f"transition{i}_conv", self.conv_impl
        )(x)
        x = nn.avg_pool(x, (2, 2), strides=(2, 2))
    x = jnp.mean(nn.relu(self._bn(train, "final_bn")(x)), axis=(1, 2))
    return initializers.dense(
      self.num_classes, x.shape[-1], init=self.init_scheme, gain=_RELU_GAIN, name="head"
    )(x)


def check(fields: dict[str, Any]) -> dict[str, Any]:
  initializers.check_scheme(fields["init"])
  bn_init = fields["bn_init"]
  if isinstance(bn_init, bool) or not isinstance(bn_init, int | float):
    raise ValueError(f"bn_init must be a number, got {bn_init!r}")
  template = default_widths(fields.pop("depth"), fields.pop("bottleneck"))
  fields["widths"] = validation.normalize_widths(fields["widths"] or template, template)
  return fields


def read_widths(params: Mapping[str, Any]) -> DenseNetWidths:
  def out(name: str) -> int:
    return int(params[name]["kernel"].shape[-1])

  blocks = []
  i = 0
  while f"block{i}_layer0_conv1" in params:
    layers = []
    j = 0
    while f"block{i}_layer{j}_conv1" in params:
      first = out(f"block{i}_layer{j}_conv1")
      if f"block{i}_layer{j}_conv2" in params:
        layers.append((first, out(f"block{i}_layer{j}_conv2")))
      else:
        layers.append(first)
      j += 1
    blocks.append(tuple(layers))
    i += 1
  transitions = tuple(out(f"transition{t}_conv") for t in range(len(blocks) - 1))
  return DenseNetWidths(out("stem_conv"), tuple(blocks), transitions)


def groups(fields: dict[str, Any], num_classes: int) -> list[graph.ChannelGroup]:
  w = fields["widths"]
  out = []

  def feature_group(name, size, width_path, producer, i, offset, first_reader):
    """A feature map entering block i's concatenation at ``offset``."""
    consumers, norms, offsets = [], [], []
    layers = w.blocks[i]
    total = offset  # Channels before the reader's input ends.
    widths_in = [w.stem if i == 0 else w.transitions[i - 1]]
    for layer in layers:
      widths_in.append(layer[-1] if isinstance(layer, tuple) else layer)
    for j in range(first_reader, len(layers)):
      total = sum(widths_in[: j + 1])
      consumers.append(
        graph.Consumer((f"block{i}_layer{j}_conv1",), offset=offset, in_channels=total)
      )
      norms.append((f"block{i}_layer{j}_bn1",))
      offsets.append(offset)
    total = sum(widths_in)
    last = i + 1 == len(w.blocks)
    consumers.append(
      graph.Consumer(
        ("head",) if last else (f"transition{i}_conv",),
        offset=offset,
        in_channels=total,
      )
    )
    norms.append(("final_bn",) if last else (f"transition{i}_bn",))
    offsets.append(offset)
    return graph.ChannelGroup(
      name=name,
      size=size,
      width_path=width_path,
      producers=(producer,),
      norms=tuple(norms),
      consumers=tuple(consumers),
      prunable=True,
      norm_offsets=tuple(offsets),
    )

  for i, layers in enumerate(w.blocks):
    if i == 0:
      out.append(feature_group("stem", w.stem, ("stem",), ("stem_conv",), 0, 0, 0))
    else:
      out.append(
        feature_group(
          f"transition{i - 1}",
          w.transitions[i - 1],
          ("transitions", i - 1),
          (f"transition{i - 1}_conv",),
          i,
          0,
          0,
        )
      )
    offset = w.stem if i == 0 else w.transitions[i - 1]
    for j, layer in enumerate(layers):
      blk = f"block{i}_layer{j}"
      if isinstance(layer, tuple):
        inner, growth = layer
        out.append(
          graph.ChannelGroup(
            name=f"{blk}/inner",
            size=inner,
            width_path=("blocks", i, j, 0),
            producers=((f"{blk}_conv1",),),
            norms=((f"{blk}_bn2",),),
            consumers=(graph.Consumer((f"{blk}_conv2",), in_channels=inner),),
            prunable=True,
          )
        )
        producer, path = (f"{blk}_conv2",), ("blocks", i, j, 1)
      else:
        growth, producer, path = layer, (f"{blk}_conv1",), ("blocks", i, j)
      out.append(
        feature_group(f"{blk}/growth", growth, path, producer, i, offset, j + 1)
      )
      offset += growth
  return [*out, graph.head_group(num_classes)]


def entries() -> dict[str, dict[str, Any]]:
  """``densenet40`` and ``densenet_bc100``."""
  out = {}
  for name, depth, bottleneck, bn_init in (
    ("densenet40", 40, False, 0.5),
    ("densenet_bc100", 100, True, 1.0),
  ):
    out[name] = {
      "module_cls": DenseNet,
      "defaults": {"widths": None, "bn_init": bn_init, "init": "default"},
      "module_fields": {"depth": depth, "bottleneck": bottleneck},
      "check": check,
      "read_widths": read_widths,
      "groups": groups,
    }
  return out
