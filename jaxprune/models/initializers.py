"""Weight initialisers that reproduce the seed repositories' PyTorch schemes.

The pruning papers jaxprune re-implements train models initialised by PyTorch,
so the Flax models here must draw from the same distributions:

* ``torch_default``: what ``nn.Linear`` / ``nn.Conv2d`` do out of the box,
  kernel and bias both ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` (PyTorch's
  ``kaiming_uniform_(a=sqrt(5))`` works out to exactly that bound). Used for
  every Dense layer and for the LeNet-5 convolutions.
* ``he_fan_out``: ``N(0, sqrt(2 / (k*k*out)))`` for the CIFAR ResNet
  convolutions, as in rethinking/NPTM's ``models/resnet.py``.
* ``orthogonal``: Dynamical-Isometry style init. Kernels are reshaped to
  ``[kh*kw*in, out]`` matrices, drawn (semi-)orthogonal and multiplied by the
  activation gain (1 for linear nets, sqrt(2) for ReLU nets); biases are zero.

Flax bias initialisers only see the bias shape, not the fan-in, so the PyTorch
bias distribution is provided as a factory taking ``fan_in`` explicitly. The
layer helpers :func:`dense` and :func:`conv` hide that plumbing from the model
definitions: they build a ``nn.Dense`` / ``nn.Conv`` with the right
initialisers for a given scheme.
"""

import math
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxprune import checks
from jaxprune.models import conv_impl as conv_impls
from jaxprune.models import matmul_impl

Initializer = jax.nn.initializers.Initializer

# Schemes accepted by the ``init`` field of every model.
INIT_SCHEMES = ("default", "orthogonal")
# Gains for orthogonal init, keyed by the activation that follows a layer.
ACTIVATION_GAINS = {"linear": 1.0, "relu": math.sqrt(2.0)}


def torch_default_kernel() -> Initializer:
  """Kernel init of PyTorch ``nn.Linear``/``nn.Conv2d``: U(±1/sqrt(fan_in)).

  ``variance_scaling`` with scale 1/3 and a uniform distribution has bound
  sqrt(3 * scale / fan_in) = 1/sqrt(fan_in). Flax computes fan_in of a conv
  kernel ``(kh, kw, in, out)`` as ``kh*kw*in``, matching PyTorch.
  """
  return jax.nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def torch_default_bias(fan_in: int) -> Initializer:
  """Bias init of PyTorch ``nn.Linear``/``nn.Conv2d``: U(±1/sqrt(fan_in))."""
  bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0

  def init(key: jax.Array, shape: Sequence[int], dtype=jnp.float32) -> jax.Array:
    return jax.random.uniform(key, shape, dtype, minval=-bound, maxval=bound)

  return init


def he_fan_out_normal() -> Initializer:
  """N(0, sqrt(2 / fan_out)) with fan_out = kh*kw*out (untruncated normal)."""
  return jax.nn.initializers.variance_scaling(2.0, "fan_out", "normal")


def orthogonal(gain: float) -> Initializer:
  """Orthogonal kernel init on the ``[prod(leading dims), out]`` matrix view.

  ``jax.nn.initializers.orthogonal`` flattens every axis but the last into the
  rows, i.e. a conv kernel ``(kh, kw, in, out)`` becomes ``[kh*kw*in, out]``;
  the result has orthonormal columns when rows >= out and orthonormal rows
  otherwise, times ``gain``.
  """
  return jax.nn.initializers.orthogonal(scale=gain, column_axis=-1)


def activation_gain(activation: str) -> float:
  """Orthogonal-init gain for the activation used by a network."""
  return ACTIVATION_GAINS[activation]


def check_scheme(init: str) -> None:
  """Raises ValueError for an unknown init scheme name."""
  checks.choice(init, "init", INIT_SCHEMES)


def dense(
  features: int,
  fan_in: int,
  *,
  init: str,
  gain: float,
  name: str,
  default_kernel: Initializer | None = None,
  default_bias: Initializer | None = None,
) -> nn.Dense:
  """A biased Dense layer initialised like PyTorch, or orthogonally.

  Args:
    features: output width.
    fan_in: input width (needed for the PyTorch bias bound).
    init: ``"default"`` (PyTorch default) or ``"orthogonal"``.
    gain: orthogonal-init gain; ignored for ``"default"``.
    name: Flax submodule name (becomes the params key).
    default_kernel: kernel init for ``"default"`` if not PyTorch's.
    default_bias: bias init for ``"default"`` if not PyTorch's.

  Returns:
    An unbound ``nn.Dense``.
  """
  check_scheme(init)
  if init == "orthogonal":
    return nn.Dense(
      features,
      kernel_init=orthogonal(gain),
      bias_init=jax.nn.initializers.zeros,
      name=name,
      dot_general=matmul_impl.dot_general,
    )
  return nn.Dense(
    features,
    kernel_init=default_kernel or torch_default_kernel(),
    bias_init=default_bias or torch_default_bias(fan_in),
    name=name,
    dot_general=matmul_impl.dot_general,  # The CPU's faster kernel gradient.
  )


def conv(
  features: int,
  kernel_size: int,
  in_features: int,
  *,
  strides: int = 1,
  padding: int = 0,
  use_bias: bool,
  init: str,
  default_kernel: Initializer,
  gain: float,
  name: str,
  default_bias: Initializer | None = None,
  conv_impl: str = "auto",
) -> nn.Conv:
  """A square conv with PyTorch-style explicit symmetric padding.

  Explicit ``((p, p), (p, p))`` padding is used instead of ``"SAME"`` because
  for stride 2 on even inputs Flax's SAME pads (0, 1) while PyTorch pads
  (1, 1); weights ported from the seed repos would otherwise be misaligned.

  Args:
    features: output channels.
    kernel_size: square kernel side.
    in_features: input channels (for the PyTorch bias bound).
    strides: square stride.
    padding: zeros added on every spatial side.
    use_bias: whether the conv has a bias.
    init: ``"default"`` or ``"orthogonal"``.
    default_kernel: kernel initialiser used for ``init="default"``.
    gain: orthogonal-init gain.
    name: Flax submodule name.
    default_bias: bias init for ``"default"`` if not PyTorch's (torchvision
      zeroes conv biases).
    conv_impl: which kernel runs the conv (`conv_impl.CONV_IMPLS`); the
      params are the same whichever it is.

  Returns:
    An unbound ``nn.Conv``.
  """
  check_scheme(init)
  if init == "orthogonal":
    kernel_init = orthogonal(gain)
    bias_init = jax.nn.initializers.zeros
  else:
    kernel_init = default_kernel
    bias_init = default_bias or torch_default_bias(
      kernel_size * kernel_size * in_features
    )
  return nn.Conv(
    features,
    (kernel_size, kernel_size),
    strides=(strides, strides),
    padding=((padding, padding), (padding, padding)),
    use_bias=use_bias,
    kernel_init=kernel_init,
    bias_init=bias_init,
    conv_general_dilated=conv_impls.function(conv_impl),
    name=name,
  )


def batch_norm(
  train: bool, name: str, scale: float = 1.0, momentum: float = 0.9
) -> nn.BatchNorm:
  """BatchNorm with PyTorch ``BatchNorm2d`` defaults (gamma=1, beta=0).

  Flax's ``momentum`` weighs the old running value, so PyTorch's momentum 0.1
  becomes 0.9 here. ``scale`` is the initial gamma (network slimming and
  Li et al.'s VGG start from 0.5).
  """
  return nn.BatchNorm(
    use_running_average=not train,
    momentum=momentum,
    epsilon=1e-5,
    scale_init=jax.nn.initializers.constant(scale),
    bias_init=jax.nn.initializers.zeros,
    name=name,
  )
