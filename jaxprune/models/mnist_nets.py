"""MLP-7 and LeNet-5 of the Dynamical-Isometry / TPP lineage (MNIST-scale nets).

Both models follow ``MingSun-Tse/TPP:model/mlp.py`` and ``model/lenet5.py``:

* ``MLP``: flatten, then ``len(widths)`` hidden Dense layers (``fc0`` ...),
  each followed by the activation, then the classifier ``head``. MLP-7 is the
  6-hidden-layer instance with width 100 reading 32x32 = 1024 inputs (MNIST is
  resized to 32x32 in that lineage); the first Dense infers its input size.
* ``LeNet5``: conv5x5 valid -> act -> maxpool2 (``conv0``), same (``conv1``),
  conv5x5 valid -> act (``conv2``), flatten, Dense -> act (``fc0``), Dense
  (``head``). It needs 32x32 inputs so that ``conv2`` sees a 5x5 map.

Every layer has a bias and the PyTorch default init (or orthogonal init with
the activation gain). Widths are plain tuples of ints, one per prunable layer,
so that a structurally pruned net can be rebuilt small-dense.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxprune import checks
from jaxprune.models import initializers, pooling

ACTIVATIONS = ("relu", "linear")

MLP7_WIDTHS = (100,) * 6
LENET5_WIDTHS = (6, 16, 120, 84)


def _activate(x: jax.Array, activation: str) -> jax.Array:
  return nn.relu(x) if activation == "relu" else x


class MLP(nn.Module):
  """Fully connected net: ``len(widths)`` hidden layers plus a linear head.

  Attributes:
    widths: hidden widths, one per hidden layer (``fc{i}``).
    num_classes: output width of ``head``.
    activation: ``"relu"`` or ``"linear"`` (identity).
    init_scheme: ``"default"`` (PyTorch) or ``"orthogonal"``.
  """

  widths: tuple[int, ...] = MLP7_WIDTHS
  num_classes: int = 10
  activation: str = "relu"
  init_scheme: str = "default"

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    del train  # No BN or dropout: train and eval are the same function.
    gain = initializers.activation_gain(self.activation)
    x = jnp.reshape(x, (x.shape[0], -1))
    for i, width in enumerate(self.widths):
      layer = initializers.dense(
        width, x.shape[-1], init=self.init_scheme, gain=gain, name=f"fc{i}"
      )
      x = _activate(layer(x), self.activation)
    head = initializers.dense(
      self.num_classes, x.shape[-1], init=self.init_scheme, gain=gain, name="head"
    )
    return head(x)


class LeNet5(nn.Module):
  """LeNet-5 with configurable widths ``(conv0, conv1, conv2, fc0)``.

  Attributes:
    widths: output widths of ``conv0``, ``conv1``, ``conv2`` and ``fc0``.
    num_classes: output width of ``head``.
    activation: ``"relu"`` or ``"linear"``.
    init_scheme: ``"default"`` (PyTorch) or ``"orthogonal"``.
  """

  widths: tuple[int, int, int, int] = LENET5_WIDTHS
  num_classes: int = 10
  activation: str = "relu"
  init_scheme: str = "default"
  conv_impl: str = "auto"  # See jaxprune.models.conv_impl.

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    del train
    gain = initializers.activation_gain(self.activation)
    for i, width in enumerate(self.widths[:3]):
      layer = initializers.conv(
        width,
        5,
        x.shape[-1],
        use_bias=True,
        init=self.init_scheme,
        conv_impl=self.conv_impl,
        default_kernel=initializers.torch_default_kernel(),
        gain=gain,
        name=f"conv{i}",
      )
      x = _activate(layer(x), self.activation)
      if i < 2:
        x = pooling.max_pool_2x2(x)
    x = jnp.reshape(x, (x.shape[0], -1))
    fc0 = initializers.dense(
      self.widths[3], x.shape[-1], init=self.init_scheme, gain=gain, name="fc0"
    )
    x = _activate(fc0(x), self.activation)
    head = initializers.dense(
      self.num_classes, x.shape[-1], init=self.init_scheme, gain=gain, name="head"
    )
    return head(x)


def check_widths(widths: Any, expected_len: int, family: str) -> tuple[int, ...]:
  """Validates a flat widths sequence and returns it as a tuple of ints."""
  if isinstance(widths, str | bytes) or not isinstance(widths, Sequence):
    raise ValueError(
      f"widths for {family} must be a sequence of {expected_len} positive ints, "
      f"got {widths!r}"
    )
  if len(widths) != expected_len:
    raise ValueError(
      f"widths for {family} must have {expected_len} entries, got {len(widths)}: "
      f"{widths!r}"
    )
  out = []
  for w in widths:
    # bool is an int subclass; a True width is always a bug.
    if isinstance(w, bool) or not isinstance(w, int) or w < 1:
      raise ValueError(
        f"widths for {family} must be positive ints, got {w!r} in {widths!r}"
      )
    out.append(int(w))
  return tuple(out)


def check_activation(activation: Any) -> str:
  checks.choice(activation, "activation", ACTIVATIONS)
  return activation


def _out_width(params: Mapping[str, Any], layer: str) -> int:
  try:
    return int(params[layer]["kernel"].shape[-1])
  except KeyError as e:
    raise ValueError(f"params have no kernel for layer {layer!r}") from e


def read_mlp_widths(params: Mapping[str, Any]) -> tuple[int, ...]:
  """Hidden widths of an ``MLP`` params tree (``fc0``, ``fc1``, ... in order)."""
  num_hidden = sum(1 for key in params if key.startswith("fc"))
  return tuple(_out_width(params, f"fc{i}") for i in range(num_hidden))


def read_lenet5_widths(params: Mapping[str, Any]) -> tuple[int, int, int, int]:
  """``(conv0, conv1, conv2, fc0)`` output widths of a ``LeNet5`` params tree."""
  layers = ("conv0", "conv1", "conv2", "fc0")
  return tuple(_out_width(params, layer) for layer in layers)  # type: ignore[return-value]
