"""CIFAR ResNets (depth 6n+2, BasicBlock) with per-layer configurable widths.

Architecture (He et al. 2016, CIFAR variant): stem conv3x3 + BN + ReLU, three
residual stages of BasicBlocks (conv3x3-BN-ReLU-conv3x3-BN, add shortcut,
ReLU) with strides 1/2/2, global average pooling and a Dense ``head``. Convs
are bias-free and use PyTorch's symmetric padding.

Widths (:class:`ResNetWidths`, a NamedTuple, so also a plain nested tuple):

* ``stages[s]``: width of residual group ``s``. The stem (for ``s = 0``), the
  second conv of every block in the stage and the shortcut outputs all share it
  because they are summed by the residual adds.
* ``blocks[s][b]``: inner width of block ``b`` of stage ``s``, i.e. the output
  of its first conv. This is what Li et al. (PFEC) and Wang et al. prune.

``create`` also accepts ``{"stages": [...], "blocks": [[...], ...]}`` and
lists; they are normalised to tuples because Flax module fields must be
hashable. The layout is meant to carry over to other residual nets: bottleneck
or pre-activation blocks would make each ``blocks[s][b]`` a tuple of inner
widths, and ImageNet ResNets just have four stages.

Shortcut variants, differing between the seed repositories:

* ``A_stride_pad`` (default; akamaster, used by ShrinkBench, BIMP and TPP):
  subsample ``x[:, ::2, ::2]`` and zero-pad channels symmetrically,
  ``(out - in) // 2`` before and the rest after. It is the default because
  most seeds (ShrinkBench, BIMP, TPP, akamaster) use it, and because the
  common "ResNet-20 has 0.27M parameters" figure (269,722) is that of option A.
* ``A_avgpool_append`` (rethinking / NPTM): 2x2 average pool with stride 2,
  then zero channels appended after the input channels. Rethinking builds the
  shortcut from ``x.data``, i.e. no gradient flows through it there; here the
  gradient does flow (it is a plain average).
* ``B_conv`` (OpenLTH, TPP ``*_B``): 1x1 conv with the block stride + BN
  whenever the stride is not 1 or the width changes.

Option A with a stride-1 block whose input and output widths differ pads
channels without subsampling. Option A cannot drop channels, so stage widths
must not decrease with it.
"""

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxprune import checks
from jaxprune.models import initializers

SHORTCUTS = ("A_stride_pad", "A_avgpool_append", "B_conv")
DEFAULT_SHORTCUT = "A_stride_pad"
# `resnet50_cifar` is Rethinking's lottery-ticket "ResNet-50" (Table 9): the
# weight-level `resnet(depth=50)` there picks bottlenecks only from depth 54,
# so depth 50 is 6n+2 BasicBlocks (n = 8) with 1x1 conv + BN projections
# (docs/provenance.md F12).
RESNET50_CIFAR_SHORTCUT = "B_conv"
DEFAULT_STAGE_WIDTHS = (16, 32, 64)
# ReLU nets: orthogonal init is scaled by sqrt(2) everywhere.
_RELU_GAIN = math.sqrt(2.0)


class ResNetWidths(NamedTuple):
  """Residual-group widths and per-block inner widths (see module docstring)."""

  stages: tuple[int, ...]
  blocks: tuple[tuple[int, ...], ...]


def default_widths(depth: int) -> ResNetWidths:
  """Standard widths of a CIFAR ResNet of ``depth = 6n + 2``."""
  if depth < 8 or (depth - 2) % 6:
    raise ValueError(f"depth must be 6n+2 with n >= 1, got {depth}")
  n = (depth - 2) // 6
  return ResNetWidths(
    DEFAULT_STAGE_WIDTHS, tuple((w,) * n for w in DEFAULT_STAGE_WIDTHS)
  )


def pad_shortcut(x: jax.Array, out_width: int, stride: int, variant: str) -> jax.Array:
  """Parameter-free option-A shortcut of an NHWC tensor.

  Args:
    x: block input, NHWC.
    out_width: channels the block outputs.
    stride: spatial stride of the block (1 or 2).
    variant: ``"A_stride_pad"`` or ``"A_avgpool_append"``.

  Returns:
    ``x`` subsampled (stride > 1) and zero-padded to ``out_width`` channels.
  """
  in_width = x.shape[-1]
  if out_width < in_width:
    raise ValueError(
      f"option-A shortcut cannot reduce channels ({in_width} -> {out_width}); "
      "use shortcut='B_conv'"
    )
  if variant == "A_stride_pad":
    if stride > 1:
      x = x[:, ::stride, ::stride, :]
    before = (out_width - in_width) // 2
  elif variant == "A_avgpool_append":
    if stride > 1:
      x = nn.avg_pool(x, (stride, stride), strides=(stride, stride))
    before = 0
  else:
    raise ValueError(f"not an option-A shortcut: {variant!r}")
  after = out_width - in_width - before
  if before or after:
    x = jnp.pad(x, ((0, 0), (0, 0), (0, 0), (before, after)))
  return x


def _conv(
  features: int,
  kernel: int,
  in_features: int,
  stride: int,
  init: str,
  name: str,
  conv_impl: str = "auto",
) -> nn.Conv:
  """Bias-free conv with PyTorch padding k // 2 and He fan-out default init."""
  return initializers.conv(
    features,
    kernel,
    in_features,
    strides=stride,
    padding=kernel // 2,
    use_bias=False,
    init=init,
    conv_impl=conv_impl,
    default_kernel=initializers.he_fan_out_normal(),
    gain=_RELU_GAIN,
    name=name,
  )


class BasicBlock(nn.Module):
  """conv3x3(inner, stride)-BN-ReLU-conv3x3(out)-BN, add shortcut, ReLU."""

  inner: int
  out: int
  stride: int = 1
  shortcut: str = DEFAULT_SHORTCUT
  init_scheme: str = "default"
  conv_impl: str = "auto"  # See jaxprune.models.conv_impl.

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    in_width = x.shape[-1]
    y = _conv(
      self.inner, 3, in_width, self.stride, self.init_scheme, "conv1", self.conv_impl
    )(x)
    y = nn.relu(initializers.batch_norm(train, "bn1")(y))
    y = _conv(self.out, 3, self.inner, 1, self.init_scheme, "conv2", self.conv_impl)(y)
    y = initializers.batch_norm(train, "bn2")(y)
    if self.shortcut == "B_conv":
      if self.stride != 1 or in_width != self.out:
        sc = _conv(
          self.out,
          1,
          in_width,
          self.stride,
          self.init_scheme,
          "shortcut_conv",
          self.conv_impl,
        )(x)
        sc = initializers.batch_norm(train, "shortcut_bn")(sc)
      else:
        sc = x
    else:
      sc = pad_shortcut(x, self.out, self.stride, self.shortcut)
    return nn.relu(y + sc)


class CifarResNet(nn.Module):
  """CIFAR ResNet; depth is implied by the number of blocks in ``widths``.

  Attributes:
    widths: a :class:`ResNetWidths` (use ``jaxprune.models.create`` to build
      from dicts or lists).
    num_classes: output width of ``head``.
    shortcut: one of :data:`SHORTCUTS`.
    init_scheme: ``"default"`` (He fan-out convs, PyTorch-default head) or
      ``"orthogonal"``.
  """

  widths: ResNetWidths = default_widths(20)
  num_classes: int = 10
  shortcut: str = DEFAULT_SHORTCUT
  init_scheme: str = "default"
  conv_impl: str = "auto"  # See jaxprune.models.conv_impl.

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    stages, blocks = self.widths
    x = _conv(
      stages[0], 3, x.shape[-1], 1, self.init_scheme, "stem_conv", self.conv_impl
    )(x)
    x = nn.relu(initializers.batch_norm(train, "stem_bn")(x))
    for s, (stage_width, inner_widths) in enumerate(zip(stages, blocks)):
      for b, inner in enumerate(inner_widths):
        stride = 2 if s > 0 and b == 0 else 1
        block = BasicBlock(
          inner,
          stage_width,
          stride,
          self.shortcut,
          self.init_scheme,
          self.conv_impl,
          name=f"stage{s}_block{b}",
        )
        x = block(x, train)
    x = jnp.mean(x, axis=(1, 2))
    head = initializers.dense(
      self.num_classes, x.shape[-1], init=self.init_scheme, gain=_RELU_GAIN, name="head"
    )
    return head(x)


def _positive_ints(values: Any, field: str) -> tuple[int, ...]:
  if isinstance(values, str | bytes) or not isinstance(values, Sequence):
    raise ValueError(f"{field} must be a sequence of positive ints, got {values!r}")
  for v in values:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
      raise ValueError(f"{field} must contain positive ints, got {v!r} in {values!r}")
  return tuple(int(v) for v in values)


def check_widths(widths: Any, blocks_per_stage: int, shortcut: str) -> ResNetWidths:
  """Normalises ``widths`` to :class:`ResNetWidths` and validates it.

  Args:
    widths: ``ResNetWidths``, a ``(stages, blocks)`` pair or a mapping with
      keys ``"stages"`` and ``"blocks"``; lists are accepted.
    blocks_per_stage: required number of blocks in every stage (n of 6n+2).
    shortcut: shortcut variant; option A forbids decreasing stage widths.

  Returns:
    The widths as nested tuples.

  Raises:
    ValueError: naming the offending field.
  """
  if hasattr(widths, "keys") and not isinstance(widths, tuple):
    keys = set(widths.keys())
    if keys != {"stages", "blocks"}:
      raise ValueError(
        f"widths must have exactly the keys ['blocks', 'stages'], got {sorted(keys)}"
      )
    stages, blocks = widths["stages"], widths["blocks"]
  elif (
    isinstance(widths, Sequence) and not isinstance(widths, str) and len(widths) == 2
  ):
    stages, blocks = widths
  else:
    raise ValueError(
      "widths must be {'stages': (...), 'blocks': ((...), ...)} or a "
      f"(stages, blocks) pair, got {widths!r}"
    )
  stages = _positive_ints(stages, "widths['stages']")
  if isinstance(blocks, str | bytes) or not isinstance(blocks, Sequence):
    raise ValueError(
      f"widths['blocks'] must be a sequence of sequences, got {blocks!r}"
    )
  blocks = tuple(
    _positive_ints(b, f"widths['blocks'][{i}]") for i, b in enumerate(blocks)
  )
  if len(stages) != len(DEFAULT_STAGE_WIDTHS) or len(blocks) != len(stages):
    raise ValueError(
      f"widths['stages'] and widths['blocks'] must both have {len(DEFAULT_STAGE_WIDTHS)} "
      f"entries, got {len(stages)} and {len(blocks)}"
    )
  for i, b in enumerate(blocks):
    if len(b) != blocks_per_stage:
      raise ValueError(
        f"widths['blocks'][{i}] must have {blocks_per_stage} entries for this "
        f"depth, got {len(b)}"
      )
  if shortcut != "B_conv" and any(b < a for a, b in itertools.pairwise(stages)):
    raise ValueError(
      f"widths['stages'] must be non-decreasing with shortcut={shortcut!r} "
      f"(zero-padding shortcuts cannot drop channels), got {stages}"
    )
  return ResNetWidths(stages, blocks)


def check_shortcut(shortcut: Any) -> str:
  checks.choice(shortcut, "shortcut", SHORTCUTS)
  return shortcut


def read_widths(params: Mapping[str, Any]) -> ResNetWidths:
  """Reads :class:`ResNetWidths` back from a ``CifarResNet`` params tree."""

  def out_width(block: str, conv: str) -> int:
    return int(params[block][conv]["kernel"].shape[-1])

  stages, blocks = [], []
  s = 0
  while f"stage{s}_block0" in params:
    b = 0
    inner = []
    while f"stage{s}_block{b}" in params:
      inner.append(out_width(f"stage{s}_block{b}", "conv1"))
      b += 1
    stages.append(out_width(f"stage{s}_block0", "conv2"))
    blocks.append(tuple(inner))
    s += 1
  if not stages or "stem_conv" not in params:
    raise ValueError(
      "params do not look like a CifarResNet (no stem_conv/stage0_block0)"
    )
  stem = int(params["stem_conv"]["kernel"].shape[-1])
  if stem != stages[0]:
    raise ValueError(f"stem width {stem} differs from stage-0 width {stages[0]}")
  return ResNetWidths(tuple(stages), tuple(blocks))
