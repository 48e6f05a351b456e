"""VGG with BatchNorm for CIFAR (three classifier flavours) and ImageNet.

Features: ``conv{i}`` 3x3 (padding 1) -> ``bn{i}`` -> ReLU, with 2x2 max
pooling after the last conv of every stage but the last on CIFAR (the cfg lists
of rethinking's l1-norm-pruning and network-slimming ``models/vgg.py`` have no
trailing 'M') and after every stage on ImageNet (torchvision ``make_layers``).

Classifiers (``classifier`` field):

* ``slimming``: global average pool (the 2x2 ``AvgPool2d(2)`` at 32x32) ->
  ``head``. Rethinking network-slimming VGG; BN gamma starts at 0.5.
* ``l1``: pool -> ``fc0`` (512) -> ``fc_bn0`` (BatchNorm1d) -> ReLU ->
  ``head``. Rethinking l1-norm-pruning VGG (Li et al.); BN2d gamma 0.5.
* ``gap``: global average pool -> ``head``. EigenDamage/TPP ``vgg19_C``;
  gamma 1 and He fan-in init. (Same shapes as ``slimming``.)
* ``imagenet``: adaptive average pool to 7x7 -> ``fc0`` (4096) -> ReLU ->
  dropout -> ``fc1`` (4096) -> ReLU -> dropout -> ``head``; convs have
  biases (torchvision ``vgg11_bn``/``vgg16_bn``).

Widths: a flat tuple, one entry per conv in order, then one per hidden dense
layer (``fc0``, ...). E.g. CIFAR VGG-16 with the ``l1`` classifier has 13 + 1
entries; :data:`VGG16_CFGS` holds Li et al.'s VGG-16-A and NPTM's B/C conv
widths (append ``(512,)`` for the ``l1`` classifier).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxprune import checks
from jaxprune.models import graph, initializers, pooling, validation

# Conv widths per stage; pooling follows each stage (not the last on CIFAR).
STAGES = {
  11: ((64,), (128,), (256, 256), (512, 512), (512, 512)),
  16: ((64, 64), (128, 128), (256,) * 3, (512,) * 3, (512,) * 3),
  19: ((64, 64), (128, 128), (256,) * 4, (512,) * 4, (512,) * 4),
}
CLASSIFIERS = ("slimming", "l1", "gap", "imagenet")
HIDDEN = {"slimming": (), "gap": (), "l1": (512,), "imagenet": (4096, 4096)}
# Li et al. VGG-16-A (rethinking vggprune.py) and NPTM's B and C conv widths.
VGG16_CFGS = {
  "A": (32, 64, 128, 128, 256, 256, 256, 256, 256, 256, 256, 256, 256),
  "B": (32, 64, 128, 128, 196, 196, 196, 196, 196, 256, 256, 256, 256),
  "C": (32, 64, 64, 128, 128, 128, 128, 196, 196, 196, 196, 196, 196),
}
_RELU_GAIN = math.sqrt(2.0)


def default_widths(depth: int, classifier: str) -> tuple[int, ...]:
  return tuple(w for stage in STAGES[depth] for w in stage) + HIDDEN[classifier]


def adaptive_avg_pool(x: jax.Array, size: int) -> jax.Array:
  """PyTorch ``AdaptiveAvgPool2d(size)`` on NHWC: bin i spans
  ``[floor(i*H/size), ceil((i+1)*H/size))``."""

  def matrix(n: int) -> np.ndarray:
    m = np.zeros((size, n), np.float32)
    for i in range(size):
      lo, hi = (i * n) // size, -(-((i + 1) * n) // size)
      m[i, lo:hi] = 1.0 / (hi - lo)
    return m

  rows, cols = matrix(x.shape[1]), matrix(x.shape[2])
  return jnp.einsum("ih,jw,nhwc->nijc", rows, cols, x)


class VGG(nn.Module):
  """VGG-BN; see the module docstring. ``depth`` picks the pooling layout."""

  widths: tuple[int, ...] = default_widths(16, "l1")
  depth: int = 16
  num_classes: int = 10
  classifier: str = "l1"
  dropout: float = 0.5
  init_scheme: str = "default"
  conv_impl: str = "auto"  # See jaxprune.models.conv_impl.

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    imagenet = self.classifier == "imagenet"
    gap = self.classifier == "gap"
    if gap:  # He fan-in normal convs (EigenDamage), gamma 1.
      conv_init = jax.nn.initializers.variance_scaling(2.0, "fan_in", "normal")
    else:
      conv_init = initializers.he_fan_out_normal()
    gamma = 1.0 if (imagenet or gap) else 0.5
    stages = STAGES[self.depth]
    i = 0
    for s, stage in enumerate(stages):
      for _ in stage:
        x = initializers.conv(
          self.widths[i],
          3,
          x.shape[-1],
          padding=1,
          use_bias=imagenet,
          init=self.init_scheme,
          conv_impl=self.conv_impl,
          default_kernel=conv_init,
          default_bias=jax.nn.initializers.zeros,
          gain=_RELU_GAIN,
          name=f"conv{i}",
        )(x)
        x = initializers.batch_norm(train, f"bn{i}", scale=gamma)(x)
        x = nn.relu(x)
        i += 1
      if imagenet or s + 1 < len(stages):
        x = pooling.max_pool_2x2(x)
    if imagenet:
      x = adaptive_avg_pool(x, 7).reshape(x.shape[0], -1)
    else:
      x = jnp.mean(x, axis=(1, 2))
    dense_init = None if gap else jax.nn.initializers.normal(0.01)
    for j, width in enumerate(self.widths[i:]):
      x = self._dense(width, x.shape[-1], dense_init, f"fc{j}")(x)
      if not imagenet:
        x = initializers.batch_norm(train, f"fc_bn{j}")(x)
      x = nn.relu(x)
      if imagenet:
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return self._dense(self.num_classes, x.shape[-1], dense_init, "head")(x)

  def _dense(self, features: int, fan_in: int, kernel_init, name: str) -> nn.Dense:
    return initializers.dense(
      features,
      fan_in,
      init=self.init_scheme,
      gain=_RELU_GAIN,
      name=name,
      default_kernel=kernel_init,
      default_bias=None if kernel_init is None else jax.nn.initializers.zeros,
    )


def check(fields: dict[str, Any]) -> dict[str, Any]:
  initializers.check_scheme(fields["init"])
  # "imagenet" is fixed by the vgg*_bn names; CIFAR names take the others.
  checks.choice(fields["classifier"], "classifier", CLASSIFIERS)
  fields["dropout"] = checks.rate(fields["dropout"], "dropout")
  template = default_widths(fields["depth"], fields["classifier"])
  if fields["widths"] is None:  # The default depends on the classifier.
    fields["widths"] = template
  fields["widths"] = validation.normalize_widths(fields["widths"], template)
  return fields


def read_widths(params: Mapping[str, Any]) -> tuple[int, ...]:
  convs = sum(1 for k in params if k.startswith("conv"))
  hidden = sum(1 for k in params if k.startswith("fc") and not k.startswith("fc_bn"))
  names = [f"conv{i}" for i in range(convs)] + [f"fc{j}" for j in range(hidden)]
  return tuple(int(params[n]["kernel"].shape[-1]) for n in names)


def groups(fields: dict[str, Any], num_classes: int) -> list[graph.ChannelGroup]:
  widths = fields["widths"]
  num_convs = sum(len(s) for s in STAGES[fields["depth"]])
  imagenet = fields["classifier"] == "imagenet"
  names = [f"conv{i}" for i in range(num_convs)]
  names += [f"fc{j}" for j in range(len(widths) - num_convs)]
  out = []
  for i, (name, width) in enumerate(zip(names, widths)):
    nxt = names[i + 1] if i + 1 < len(names) else "head"
    # The last conv feeds the first dense through the (7x7 on ImageNet) pool.
    spatial = 49 if imagenet and i == num_convs - 1 else 1
    if i < num_convs:
      norms = ((f"bn{i}",),)
    else:
      norms = () if imagenet else ((f"fc_bn{i - num_convs}",),)
    out.append(
      graph.ChannelGroup(
        name=name,
        size=width,
        width_path=(i,),
        producers=((name,),),
        norms=norms,
        consumers=(graph.Consumer((nxt,), spatial=spatial, in_channels=width),),
        prunable=True,
      )
    )
  return [*out, graph.head_group(num_classes)]


def entries() -> dict[str, dict[str, Any]]:
  """Registry entries: CIFAR ``vgg11/16/19`` and ImageNet ``vgg11_bn/16_bn``."""
  out = {}
  for depth, classifier in ((11, "slimming"), (16, "l1"), (19, "slimming")):
    out[f"vgg{depth}"] = {
      "module_cls": VGG,
      "defaults": {
        "widths": None,
        "classifier": classifier,
        "dropout": 0.5,
        "init": "default",
      },
      "module_fields": {"depth": depth},
    }
  for depth in (11, 16):
    out[f"vgg{depth}_bn"] = {
      "module_cls": VGG,
      "defaults": {
        "widths": None,
        "dropout": 0.5,
        "init": "default",
      },
      "module_fields": {"depth": depth, "classifier": "imagenet"},
      "input_shape": (224, 224, 3),
    }
  for entry in out.values():
    entry.update(check=check, read_widths=read_widths, groups=groups)
  return out
