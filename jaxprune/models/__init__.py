"""Model registry: build any jaxprune model by name, with every width configurable.

Usage::

  model = models.create("resnet56", num_classes=10, shortcut="A_avgpool_append")
  variables = model.init(rng, jnp.zeros((1, 32, 32, 3)), train=False)
  logits, updates = model.apply(variables, x, train=True, mutable=["batch_stats"])

Every model is a Flax linen module called as ``apply(variables, x, train)`` on
NHWC float32 inputs. Models with BatchNorm keep statistics in the
``batch_stats`` collection; the others have only ``params``.

Structured pruning shrinks layers; :func:`read_widths` reads the widths of a
(compact) params tree in the exact form the ``widths`` override takes, so
``create(name, widths=read_widths(name, params))`` rebuilds a small-dense model
with matching shapes. Widths per family:

* ``mlp7_*``: tuple of the 6 hidden widths, default ``(100,) * 6``.
* ``lenet5_*``: ``(conv0, conv1, conv2, fc0)``, default ``(6, 16, 120, 84)``.
* ``resnet{20,32,44,56,110}`` and ``resnet50_cifar`` (n = 8, 1x1-conv
  shortcuts by default): :class:`ResNetWidths` ``(stages, blocks)``, e.g.
  ``ResNetWidths((16, 32, 64), ((16,) * n, (32,) * n, (64,) * n))``; a dict
  ``{"stages": ..., "blocks": ...}`` with lists is accepted too.
* ``vgg11/16/19`` (CIFAR) and ``vgg11_bn/vgg16_bn`` (ImageNet): flat tuple,
  one width per conv then per hidden dense layer (``vgg.VGG16_CFGS`` has
  VGG-16-A/B/C).
* ``resnet18/34`` (ImageNet), ``resnet18_cifar``, ``preresnet*`` with
  ``block="basic"``: :class:`ResNetWidths` (the stem shares stage 0's width).
* ``resnet50``, ``preresnet56/110/164`` (bottleneck), ``wrn28_10``,
  ``wrn40_2``: ``ResidualWidths(stem, stages, blocks)``; bottleneck blocks are
  ``(conv1, conv2)`` pairs, WRN blocks a single inner width.
* ``densenet40``, ``densenet_bc100``: ``DenseNetWidths(stem, blocks,
  transitions)``; ``blocks[i][j]`` is the growth (BC: ``(inner, growth)``).

Every dict/list form of these is accepted; ``default_widths(name)`` shows the
structure. :func:`channel_groups` describes which layers share channels (see
:mod:`jaxprune.models.graph`) and :func:`with_widths` writes pruned group
sizes back into a widths structure.

``width_multiplier`` (every family; default 1.0) scales the registered default
widths, each rounded and at least 1 (``validation.scale_widths``): smoke runs
build the papers' nets at 1/8 width. It never touches an explicit ``widths``
override, which is absolute (e.g. the widths read back after surgery).

Overrides (keyword arguments of :func:`create`): ``widths``, ``init``
(``"default"`` or ``"orthogonal"``) for all models, ``activation``
(``"relu"``/``"linear"``) for MLP/LeNet, ``shortcut`` for CIFAR ResNets,
``classifier`` (``slimming``/``l1``/``gap``) and ``dropout`` for VGG,
``block`` and ``bn_init`` for PreResNets, ``bn_init`` for DenseNets,
``dropout`` and ``depth`` (6n + 4: ``wrn40_2`` with ``depth=16`` is
WRN-16-2) for WRNs, ``dropout`` for ImageNet VGG, ``conv_impl`` (``"auto"``/``"xla"``/
``"matmul"``, :mod:`jaxprune.models.conv_impl`: which kernel runs the convs,
the params are the same) for all. :func:`input_shape` gives the
per-example input each model is used at (32x32x1 MNIST, 32x32x3 CIFAR,
224x224x3 ImageNet).

:func:`register` adds a model built outside the zoo (any Flax module from a
factory); it trains and takes unstructured pruning, not structured.
"""

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxprune.models import (
  conv_impl as conv_impls,
)
from jaxprune.models import (
  densenet,
  graph,
  initializers,
  mnist_nets,
  preresnet,
  resnet_cifar,
  resnet_imagenet,
  validation,
  vgg,
  wide_resnet,
)
from jaxprune.models.conv_impl import CONV_IMPLS
from jaxprune.models.graph import ChannelGroup, Consumer
from jaxprune.models.resnet_cifar import ResNetWidths

__all__ = [
  "CONV_IMPLS",
  "ChannelGroup",
  "Consumer",
  "ResNetWidths",
  "channel_groups",
  "create",
  "default_widths",
  "has_channel_groups",
  "init_variables",
  "input_shape",
  "names",
  "read_widths",
  "register",
  "unregister",
  "with_widths",
]

Widths = Any  # tuple[int, ...] or ResNetWidths, depending on the family.
_MULTIPLIER = "width_multiplier"  # The override every family takes.
_CONV_IMPL = "conv_impl"  # So does this one (`conv_impl`; MLPs ignore it).


@dataclasses.dataclass(frozen=True)
class _Entry:
  """How to build, validate and read back one registered model."""

  module_cls: type[nn.Module]
  defaults: Mapping[str, Any]
  # Normalises/validates the full field dict (all overrides applied).
  check: Callable[[dict[str, Any]], dict[str, Any]]
  read_widths: Callable[[Mapping[str, Any]], Widths]
  # Channel groups from the checked fields and num_classes (see graph.py).
  groups: Callable[[dict[str, Any], int], list[graph.ChannelGroup]]
  # Module fields set by the registered name that overrides may not change.
  module_fields: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  # One example's NHWC input shape (for counting and benchmarks).
  input_shape: tuple[int, int, int] = (32, 32, 3)


def _check_common(fields: dict[str, Any]) -> None:
  initializers.check_scheme(fields["init"])


def _mlp_check(fields: dict[str, Any]) -> dict[str, Any]:
  _check_common(fields)
  mnist_nets.check_activation(fields["activation"])
  fields["widths"] = mnist_nets.check_widths(fields["widths"], 6, "MLP-7")
  return fields


def _lenet_check(fields: dict[str, Any]) -> dict[str, Any]:
  _check_common(fields)
  mnist_nets.check_activation(fields["activation"])
  fields["widths"] = mnist_nets.check_widths(fields["widths"], 4, "LeNet-5")
  return fields


def _resnet_check(blocks_per_stage: int) -> Callable[[dict[str, Any]], dict[str, Any]]:
  def check(fields: dict[str, Any]) -> dict[str, Any]:
    _check_common(fields)
    resnet_cifar.check_shortcut(fields["shortcut"])
    fields["widths"] = resnet_cifar.check_widths(
      fields["widths"], blocks_per_stage, fields["shortcut"]
    )
    return fields

  return check


# Families that describe their registry entries themselves (``entries()``).
_FAMILIES = (vgg, preresnet, wide_resnet, densenet, resnet_imagenet)


def _build_registry() -> dict[str, _Entry]:
  registry = {}
  mnist = (32, 32, 1)  # MNIST resized to 32x32, as in the TPP lineage.
  for act in mnist_nets.ACTIVATIONS:
    registry[f"mlp7_{act}"] = _Entry(
      mnist_nets.MLP,
      {"widths": mnist_nets.MLP7_WIDTHS, "activation": act, "init": "default"},
      _mlp_check,
      mnist_nets.read_mlp_widths,
      lambda f, k: graph.mlp_groups(f["widths"], k),
      input_shape=mnist,
    )
  for act in mnist_nets.ACTIVATIONS:
    registry[f"lenet5_{act}"] = _Entry(
      mnist_nets.LeNet5,
      {"widths": mnist_nets.LENET5_WIDTHS, "activation": act, "init": "default"},
      _lenet_check,
      mnist_nets.read_lenet5_widths,
      lambda f, k: graph.lenet5_groups(f["widths"], k),
      input_shape=mnist,
    )
  cifar_resnets = {
    f"resnet{d}": (d, resnet_cifar.DEFAULT_SHORTCUT) for d in (20, 32, 44, 56, 110)
  }
  # Rethinking's lottery-ticket "ResNet-50" (Table 9): BasicBlocks, 8 per
  # stage, 1x1-conv shortcuts (resnet_cifar.RESNET50_CIFAR_SHORTCUT).
  cifar_resnets["resnet50_cifar"] = (50, resnet_cifar.RESNET50_CIFAR_SHORTCUT)
  for name, (depth, shortcut) in cifar_resnets.items():
    registry[name] = _Entry(
      resnet_cifar.CifarResNet,
      {
        "widths": resnet_cifar.default_widths(depth),
        "shortcut": shortcut,
        "init": "default",
      },
      _resnet_check((depth - 2) // 6),
      resnet_cifar.read_widths,
      lambda f, k: graph.cifar_resnet_groups(f["widths"], f["shortcut"], k),
    )
  for family in _FAMILIES:
    for name, spec in family.entries().items():
      registry[name] = _Entry(**spec)
  return registry


_REGISTRY = _build_registry()


@dataclasses.dataclass(frozen=True)
class _Custom:
  """A model registered from outside the zoo: a factory, no channel graph."""

  factory: Callable[..., nn.Module]
  input_shape: tuple[int, ...]


# Models added with `register`; they have no channel groups or widths, so they
# take unstructured pruning (which needs only the params tree), not structured.
_CUSTOM: dict[str, _Custom] = {}


def register(
  name: str,
  factory: Callable[..., nn.Module],
  *,
  input_shape: tuple[int, ...] = (32, 32, 3),
  replace: bool = False,
) -> None:
  """Makes ``model.name=name`` build ``factory(num_classes, **overrides)``.

  ``factory`` returns a Flax linen module called as ``apply(variables, x,
  train)`` on NHWC inputs of ``input_shape``; ``overrides`` are the config's
  ``model`` fields other than ``name`` (at least ``init``). Training,
  unstructured pruning and the protocols built on it accept the model;
  structured pruning needs a zoo model (it reads the channel graph).
  """
  if name in _REGISTRY:
    raise ValueError(f"model {name!r} is a zoo model; pick another name")
  if name in _CUSTOM and not replace:
    raise ValueError(f"model {name!r} is registered already (replace=True replaces)")
  _CUSTOM[name] = _Custom(factory, tuple(input_shape))


def unregister(name: str) -> None:
  """Forgets a model added with :func:`register` (zoo models stay)."""
  _CUSTOM.pop(name, None)


def has_channel_groups(name: str) -> bool:
  """Whether model ``name`` describes its channel graph (a zoo model)."""
  return name in _REGISTRY


def names() -> list[str]:
  """Registered model names, in registration order (zoo first)."""
  return [*_REGISTRY, *_CUSTOM]


def _entry(name: str) -> _Entry:
  if name in _CUSTOM:
    raise ValueError(
      f"model {name!r} was added with models.register and has no channel "
      "groups: structured pruning and widths need a model of the zoo"
    )
  if name not in _REGISTRY:
    raise ValueError(f"unknown model name {name!r}; must be one of {names()}")
  return _REGISTRY[name]


def input_shape(name: str) -> tuple[int, int, int]:
  """The per-example NHWC input shape model ``name`` is used at."""
  if name in _CUSTOM:
    return _CUSTOM[name].input_shape
  return _entry(name).input_shape


def default_widths(name: str, **overrides: Any) -> Widths:
  """The unpruned widths of model ``name``, in ``widths`` override form.

  ``overrides`` that change the widths' structure (VGG ``classifier``,
  PreResNet ``block``) are taken into account.
  """
  return _checked_fields(name, 10, overrides)["widths"]


def create(name: str, num_classes: int = 10, **overrides: Any) -> nn.Module:
  """Builds the registered model ``name``.

  Args:
    name: one of :func:`names`.
    num_classes: width of the classifier ``head``.
    **overrides: module fields to change from the registered defaults, e.g.
      ``widths``, ``init``, ``activation`` or ``shortcut``.

  Returns:
    An unbound Flax linen module.

  Raises:
    ValueError: unknown name, unknown override key or invalid value; the
      message names the field and the allowed values.
  """
  # Custom models build their own convs: the conv kernel choice is the zoo's.
  conv_impl = conv_impls.check(overrides.pop(_CONV_IMPL, "auto"))
  if name in _CUSTOM:
    return _CUSTOM[name].factory(num_classes, **overrides)
  fields = _checked_fields(name, num_classes, overrides)
  # ``init`` would shadow ``nn.Module.init``, so the module field is renamed.
  fields["init_scheme"] = fields.pop("init")
  module_cls = _entry(name).module_cls
  if _CONV_IMPL in module_cls.__dataclass_fields__:  # Not the MLPs.
    fields[_CONV_IMPL] = conv_impl
  return module_cls(num_classes=num_classes, **fields)


def _checked_fields(
  name: str, num_classes: int, overrides: Mapping[str, Any]
) -> dict[str, Any]:
  """Registered defaults with ``overrides`` applied, validated; the
  ``width_multiplier`` override scales the default widths (not explicit ones)."""
  entry = _entry(name)
  overrides = dict(overrides)
  multiplier = validation.check_multiplier(overrides.pop(_MULTIPLIER, 1.0))
  conv_impls.check(overrides.pop(_CONV_IMPL, "auto"))  # Widths do not depend on it.
  allowed = {*entry.defaults, _MULTIPLIER}
  unknown = sorted(set(overrides) - allowed)
  if unknown:
    raise ValueError(
      f"unknown override(s) {unknown} for model {name!r}; "
      f"allowed overrides are {sorted(allowed)}"
    )
  if (
    isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1
  ):
    raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
  fields = entry.check({**entry.module_fields, **entry.defaults, **overrides})
  if multiplier != 1.0 and "widths" not in overrides:
    # The checked widths are in canonical form whatever the family; checks
    # consume some keys, so the second check starts from the same inputs.
    scaled = validation.scale_widths(fields["widths"], multiplier)
    fields = entry.check(
      {**entry.module_fields, **entry.defaults, **overrides, "widths": scaled}
    )
  return fields


def channel_groups(
  name: str, num_classes: int = 10, **overrides: Any
) -> list[ChannelGroup]:
  """The coupled channel groups of ``create(name, num_classes, **overrides)``.

  See :mod:`jaxprune.models.graph` for the format and worked examples.
  """
  fields = _checked_fields(name, num_classes, overrides)
  return _entry(name).groups(fields, num_classes)


def with_widths(
  name: str, widths: Widths, sizes: Mapping[str, int], **overrides: Any
) -> Widths:
  """Writes ``{group_name: new_size}`` into ``widths`` of model ``name``.

  Args:
    name: registered model name.
    widths: current widths (any form ``create`` accepts).
    sizes: new sizes keyed by :class:`ChannelGroup` name.
    **overrides: other overrides of the model (e.g. ``shortcut``), used to
      compute the groups and to validate the result.

  Returns:
    The new widths, normalised as ``create`` would.

  Raises:
    ValueError: unknown group, a group without a width (the classifier), or
      resulting widths that ``create`` would reject.
  """
  fields = _checked_fields(name, 10, {**overrides, "widths": widths})
  groups = _entry(name).groups(fields, 10)
  new = graph.apply_sizes(groups, fields["widths"], sizes)
  return _checked_fields(name, 10, {**overrides, "widths": new})["widths"]


def read_widths(name: str, params: Mapping[str, Any], **overrides: Any) -> Widths:
  """Reads the layer widths of model ``name`` from its params tree.

  Args:
    name: the registered name the params belong to.
    params: the ``params`` collection, or the full variables dict holding it.
    **overrides: the non-width overrides the params were built with, when
      they change the widths' structure (e.g. VGG's ``classifier``).

  Returns:
    Widths in the form ``create(name, widths=...)`` accepts.

    None for a model added with :func:`register` (it has no widths).

  Raises:
    ValueError: if the params do not fit model ``name``.
  """
  if name in _CUSTOM:
    return None
  entry = _entry(name)
  overrides = {k: v for k, v in overrides.items() if k not in (_MULTIPLIER, _CONV_IMPL)}
  if "params" in params:
    params = params["params"]
  widths = entry.read_widths(params)
  # Validate against this name (e.g. the block count of the depth). The params
  # do not record the shortcut variant, so check with B_conv, the only variant
  # that allows any stage widths.
  fields = {**entry.module_fields, **entry.defaults, **overrides, "widths": widths}
  if "shortcut" in fields and "shortcut" not in overrides:
    fields["shortcut"] = "B_conv"
  return entry.check(fields)["widths"]


def init_variables(
  model: nn.Module, rng: jax.Array, input_shape: tuple[int, ...]
) -> tuple[Any, Any]:
  """Returns (params, batch_stats) of `model` for inputs of `input_shape`."""
  variables = model.init(rng, jnp.zeros((1, *input_shape), jnp.float32), train=False)
  return variables["params"], variables.get("batch_stats", {})
