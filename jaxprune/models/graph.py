"""Which layers feed which: coupled output channels of every registered model.

Structured pruning removes output channels of a conv/dense layer. Doing that
consistently means also slicing every BatchNorm over those channels and the
input channels of every layer that reads them, and it means treating channels
that are summed by residual adds as one unit. This module describes that
coupling once per family, as a list of :class:`ChannelGroup` s, so that the
pruning code never special-cases an architecture.

Paths are module paths in the ``params`` tree (``variables["params"][*path]``);
BN statistics live at the same path in ``batch_stats``. A conv kernel is
``(kh, kw, in, out)``, a dense kernel ``(in, out)``: producers own the last
axis (and ``bias``), consumers the second-to-last.

A group's channels appear in a consumer's input at
``s * in_channels + offset + c`` for ``s in range(spatial)`` (``spatial`` > 1
only when an NHWC flatten sits between, ``offset`` > 0 only when the input is a
DenseNet concatenation). Norms work the same way with ``norm_offsets`` (a
DenseNet BN normalises a whole concatenation).

Worked examples (``channel_groups`` lives in ``jaxprune.models``):

* ResNet-56, inner width of block 3 of stage 0::

    g = {g.name: g for g in models.channel_groups("resnet56")}["stage0_block3/inner"]
    g.size == 16; g.width_path == ("blocks", 0, 3)
    g.producers == (("stage0_block3", "conv1"),)
    g.norms == (("stage0_block3", "bn1"),)
    g.consumers == (Consumer(("stage0_block3", "conv2"), in_channels=16),)

  Pruning it to 10 channels keeps 10 filters of ``conv1`` (kernel
  ``[..., keep]``), the same 10 entries of ``bn1`` scale/bias/mean/var, and the
  10 matching input slices of ``conv2`` (kernel ``[:, :, keep, :]``); the new
  architecture is ``models.with_widths("resnet56", widths,
  {"stage0_block3/inner": 10})``.
* MLP-7, hidden layer ``fc2``: producer ``("fc2",)`` (kernel columns and bias),
  no norms, consumer ``("fc3",)`` (kernel rows); ``width_path == (2,)``.
* LeNet-5, ``conv2`` feeds ``fc0`` through a flatten: the consumer is
  ``Consumer(("fc0",), spatial=1, in_channels=120)``; conv2's map is 1x1 at
  the 32x32 input LeNet-5 requires, so kernel rows ``c`` of fc0 belong to
  channel ``c`` (with an HxW map it would be rows ``s * 120 + c``).

Groups that must not be pruned by default have ``prunable=False`` and a
``reason``: the classifier output (``"head"``, ``width_path == ()``: it is
``num_classes``, not a width) and residual streams behind option-A shortcuts,
whose zero padding ties channel ``c`` of one stage to channel
``c + pad`` of the next.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

Path = tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Consumer:
  """A layer whose input channels include a group's channels."""

  path: Path
  # Index of the group's first channel among the consumer's input channels.
  offset: int = 0
  # >1 when an NHWC flatten sits between: input index = s*in_channels+offset+c.
  spatial: int = 1
  # Total input channels of the consumer before any flatten.
  in_channels: int | None = None


@dataclasses.dataclass(frozen=True)
class ChannelGroup:
  """Output channels that must be kept or removed together."""

  name: str
  size: int
  # Where this width lives in the model's ``widths``; () if not a width.
  width_path: tuple
  # Conv/dense modules whose output channels are this group (kernel[..., c]).
  producers: tuple[Path, ...]
  # BatchNorm modules over these channels (params scale/bias, stats mean/var).
  norms: tuple[Path, ...]
  consumers: tuple[Consumer, ...]
  prunable: bool
  reason: str = ""
  # Offset of the group's channels inside each norm (same order as ``norms``);
  # empty means all zero. Non-zero only for DenseNet concatenations.
  norm_offsets: tuple[int, ...] = ()

  def norm_offset(self, i: int) -> int:
    """Offset of this group's channels inside ``norms[i]``."""
    return self.norm_offsets[i] if self.norm_offsets else 0


HEAD_REASON = "classifier output: its width is num_classes"
OPTION_A_REASON = (
  "option-A zero-padding shortcut couples this stage's channels with the "
  "neighbouring stages' channels (use shortcut='B_conv' to prune it)"
)


def head_group(num_classes: int, path: Path = ("head",)) -> ChannelGroup:
  """The classifier's output group (never prunable)."""
  return ChannelGroup(
    name="head",
    size=num_classes,
    width_path=(),
    producers=(path,),
    norms=(),
    consumers=(),
    prunable=False,
    reason=HEAD_REASON,
  )


def get_width(widths: Any, path: Sequence[Any]) -> Any:
  """Reads ``widths`` at ``path`` (field names for NamedTuples/dicts)."""
  for key in path:
    if isinstance(key, str) and hasattr(widths, "_fields"):
      widths = getattr(widths, key)
    else:
      widths = widths[key]
  return widths


def set_width(widths: Any, path: Sequence[Any], value: Any) -> Any:
  """Returns a copy of ``widths`` with the entry at ``path`` replaced."""
  if not path:
    return value
  key, rest = path[0], path[1:]
  if isinstance(key, str) and hasattr(widths, "_fields"):
    return widths._replace(**{key: set_width(getattr(widths, key), rest, value)})
  if isinstance(widths, Mapping):
    return {**widths, key: set_width(widths[key], rest, value)}
  items = list(widths)
  items[key] = set_width(items[key], rest, value)
  return type(widths)(items) if not hasattr(widths, "_fields") else type(widths)(*items)


def apply_sizes(
  groups: Sequence[ChannelGroup], widths: Any, sizes: Mapping[str, int]
) -> Any:
  """Writes ``{group_name: new_size}`` into ``widths`` via the groups' paths."""
  by_name = {g.name: g for g in groups}
  for name, size in sizes.items():
    if name not in by_name:
      raise ValueError(f"unknown channel group {name!r}; groups are {list(by_name)}")
    group = by_name[name]
    if not group.width_path:
      raise ValueError(f"channel group {name!r} has no width to set ({group.reason})")
    widths = set_width(widths, group.width_path, int(size))
  return widths


# --- Builders for the first-wave families --------------------------------------


def mlp_groups(widths: Sequence[int], num_classes: int) -> list[ChannelGroup]:
  """MLP: ``fc{i}`` feeds ``fc{i+1}`` (the last hidden layer feeds ``head``)."""
  groups = []
  for i, width in enumerate(widths):
    nxt = f"fc{i + 1}" if i + 1 < len(widths) else "head"
    groups.append(
      ChannelGroup(
        name=f"fc{i}",
        size=width,
        width_path=(i,),
        producers=((f"fc{i}",),),
        norms=(),
        consumers=(Consumer((nxt,), in_channels=width),),
        prunable=True,
      )
    )
  return [*groups, head_group(num_classes)]


def lenet5_groups(widths: Sequence[int], num_classes: int) -> list[ChannelGroup]:
  """LeNet-5: conv0 -> conv1 -> conv2 -> flatten (1x1 map) -> fc0 -> head."""
  names = ("conv0", "conv1", "conv2", "fc0")
  groups = []
  for i, (name, width) in enumerate(zip(names, widths)):
    nxt = names[i + 1] if i + 1 < len(names) else "head"
    groups.append(
      ChannelGroup(
        name=name,
        size=width,
        width_path=(i,),
        producers=((name,),),
        norms=(),
        # conv2's output is 1x1 at 32x32 input, so the flatten is spatial=1.
        consumers=(Consumer((nxt,), in_channels=width),),
        prunable=True,
      )
    )
  return [*groups, head_group(num_classes)]


def cifar_resnet_groups(
  widths: Any, shortcut: str, num_classes: int
) -> list[ChannelGroup]:
  """CIFAR ResNet (BasicBlock): inner groups per block, one residual per stage."""
  stages, blocks = widths
  groups = []
  for s, inner_widths in enumerate(blocks):
    for b, inner in enumerate(inner_widths):
      blk = f"stage{s}_block{b}"
      groups.append(
        ChannelGroup(
          name=f"{blk}/inner",
          size=inner,
          width_path=("blocks", s, b),
          producers=((blk, "conv1"),),
          norms=((blk, "bn1"),),
          consumers=(Consumer((blk, "conv2"), in_channels=inner),),
          prunable=True,
        )
      )
  option_b = shortcut == "B_conv"
  for s, width in enumerate(stages):
    n = len(blocks[s])
    producers = [(f"stage{s}_block{b}", "conv2") for b in range(n)]
    norms = [(f"stage{s}_block{b}", "bn2") for b in range(n)]
    # Stage 0's first block has an identity shortcut, so the stem joins it.
    first_consumer = 1
    if s == 0:
      producers.insert(0, ("stem_conv",))
      norms.insert(0, ("stem_bn",))
      first_consumer = 0
    elif option_b:
      producers.append((f"stage{s}_block0", "shortcut_conv"))
      norms.append((f"stage{s}_block0", "shortcut_bn"))
    consumers = [
      Consumer((f"stage{s}_block{b}", "conv1"), in_channels=width)
      for b in range(first_consumer, n)
    ]
    if s + 1 < len(stages):
      nxt = f"stage{s + 1}_block0"
      consumers.append(Consumer((nxt, "conv1"), in_channels=width))
      if option_b:
        consumers.append(Consumer((nxt, "shortcut_conv"), in_channels=width))
    else:
      consumers.append(Consumer(("head",), in_channels=width))
    groups.append(
      ChannelGroup(
        name=f"stage{s}/residual",
        size=width,
        width_path=("stages", s),
        producers=tuple(producers),
        norms=tuple(norms),
        consumers=tuple(consumers),
        prunable=option_b,
        reason="" if option_b else OPTION_A_REASON,
      )
    )
  return [*groups, head_group(num_classes)]


# --- Generic residual networks (ImageNet ResNets, PreResNets, WRNs) -------------


@dataclasses.dataclass(frozen=True)
class ResidualSpec:
  """Module names of a residual family, for :func:`residual_groups`.

  ``inner`` lists, per inner width of a block, (conv, norm after it, conv that
  reads it). ``out_norm``/``proj_norm``/``stem_norm`` are None in
  pre-activation nets, where instead ``pre_norm`` (the block's first BN, over
  its input) and ``final_norm`` (before the head) normalise the stream.
  """

  inner: tuple[tuple[str, str, str], ...]
  out_conv: str
  out_norm: str | None = None
  proj_conv: str = "shortcut_conv"
  proj_norm: str | None = None
  stem_conv: str = "stem_conv"
  stem_norm: str | None = None
  pre_norm: str | None = None
  final_norm: str | None = None


def residual_groups(
  spec: ResidualSpec,
  stem: int,
  stages: Sequence[int],
  blocks: Sequence[Sequence[Any]],
  projection: Sequence[bool],
  num_classes: int,
  stem_path: tuple = ("stem",),
) -> list[ChannelGroup]:
  """Groups of a residual net; ``projection[s]``: stage s's first block has a
  1x1 projection shortcut (else identity, and stage 0 shares the stem)."""
  groups = []
  multi = len(spec.inner) > 1
  for s, stage_blocks in enumerate(blocks):
    for b, inner in enumerate(stage_blocks):
      blk = f"stage{s}_block{b}"
      sizes = inner if multi else (inner,)
      for k, ((conv, norm, nxt), size) in enumerate(zip(spec.inner, sizes)):
        groups.append(
          ChannelGroup(
            name=f"{blk}/inner{k + 1}" if multi else f"{blk}/inner",
            size=size,
            width_path=("blocks", s, b, k) if multi else ("blocks", s, b),
            producers=((blk, conv),),
            norms=((blk, norm),),
            consumers=(Consumer((blk, nxt), in_channels=size),),
            prunable=True,
          )
        )

  def reader(s: int, b: int, width: int) -> tuple[list, list]:
    """Consumers and pre-activation norms of block (s, b)'s input."""
    blk = f"stage{s}_block{b}"
    consumers = [Consumer((blk, spec.inner[0][0]), in_channels=width)]
    if b == 0 and projection[s]:
      consumers.append(Consumer((blk, spec.proj_conv), in_channels=width))
    norms = [(blk, spec.pre_norm)] if spec.pre_norm else []
    return consumers, norms

  stem_producers = [(spec.stem_conv,)]
  stem_norms = [(spec.stem_norm,)] if spec.stem_norm else []
  if projection[0]:
    consumers, norms = reader(0, 0, stem)
    groups.append(
      ChannelGroup(
        name="stem",
        size=stem,
        width_path=stem_path,
        producers=tuple(stem_producers),
        norms=tuple(stem_norms + norms),
        consumers=tuple(consumers),
        prunable=True,
      )
    )
  for s, width in enumerate(stages):
    n = len(blocks[s])
    producers = [(f"stage{s}_block{b}", spec.out_conv) for b in range(n)]
    norms = []
    if spec.out_norm:
      norms = [(f"stage{s}_block{b}", spec.out_norm) for b in range(n)]
    if projection[s]:
      producers.append((f"stage{s}_block0", spec.proj_conv))
      if spec.proj_norm:
        norms.append((f"stage{s}_block0", spec.proj_norm))
    consumers = []
    if s == 0 and not projection[0]:
      producers = stem_producers + producers
      norms = stem_norms + norms
    readers = [(s, b) for b in range(n) if b > 0 or (s == 0 and not projection[0])]
    if s + 1 < len(stages):
      readers.append((s + 1, 0))
    for rs, rb in readers:
      c, m = reader(rs, rb, width)
      consumers += c
      norms += m
    if s + 1 == len(stages):
      consumers.append(Consumer(("head",), in_channels=width))
      if spec.final_norm:
        norms.append((spec.final_norm,))
    groups.append(
      ChannelGroup(
        name=f"stage{s}/residual",
        size=width,
        width_path=("stages", s),
        producers=tuple(producers),
        norms=tuple(norms),
        consumers=tuple(consumers),
        prunable=True,
      )
    )
  return [*groups, head_group(num_classes)]
