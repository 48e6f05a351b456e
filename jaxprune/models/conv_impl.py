"""Which convolution kernel a model's convs run on: XLA's, slices + one matmul, or native.

Every conv of the zoo is an ``nn.Conv`` built by `initializers.conv`, which
hands it the ``conv_general_dilated`` callable chosen here (`function`), so the
params tree (names, shapes, HWIO layout) is the same whichever path runs, and
masks, surgery, counting, JSV and checkpoints do not see the difference.

* ``"xla"``: ``lax.conv_general_dilated``.
* ``"matmul"``: `matmul_conv`, an im2col built from ``kh*kw`` static strided
  slices of the padded input, concatenated on the channel axis, times the
  ``(kh*kw*Cin, Cout)`` kernel in one ``dot_general``. Autodiff turns the
  slices into pads/adds (input gradient) and the filter gradient into one
  matmul contracting N*H*W, which XLA:CPU runs without the ``[C, H, W, N]``
  transposes it inserts in front of its own filter-gradient convolutions
  (`experiments/benchmarks/profile.md`).
* ``"native"``: `native_conv.conv` (register-blocked AVX2 C++ kernels
  through the XLA FFI, built on first use) for every conv it supports (stride
  1, float32, pads below the kernel size) whatever its size; the others, and all of them
  inside `native_conv.xla_only()`, as ``auto``. A ValueError when the kernels
  cannot run here (the reason is named).
* ``"auto"`` (the default of ``config.model.conv_impl``): xla on GPU/TPU; on
  CPU, per layer, `prefer_native` when the native kernels are built (see
  `native_conv`; inside `native_conv.xla_only()` never), else `prefer_matmul`
  (rules read off the measured tables in `experiments/benchmarks/`), and the
  input of every conv left on XLA's kernel `materialized` (below).

Why `materialized`: XLA:CPU's filter-gradient convolution wants the layer's
input as [C, H, W, N], so the backward pass transposes every conv input. Its
fusion pass treats the BatchNorm/ReLU/residual-add chain that produced that
input as free to recompute and copies the whole chain into the transpose,
where every read is strided: in a ResNet-56 step these transposes took 70 %
of the op time (`experiments/benchmarks/profile.md`). XLA never duplicates an
op it rates expensive (a float division), so dividing the input by a
runtime 1 makes it be computed once, stored, and transposed as a plain copy.

The choice is made at trace time from static shapes, so it adds no recompiles.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from jaxprune import checks
from jaxprune.models import matmul_impl, native_conv

CONV_IMPLS = ("auto", "xla", "matmul", "native")
_NHWC = ("NHWC", "HWIO", "NHWC")


def check(conv_impl: str) -> str:
  """ValueError naming ``model.conv_impl`` unless it is one of `CONV_IMPLS`."""
  checks.choice(conv_impl, "model.conv_impl", CONV_IMPLS)
  return conv_impl


def _explicit_pads(padding, spatial: Sequence[int], kernel: Sequence[int], strides):
  """``padding`` (a lax string or pairs) as ``[(lo, hi), (lo, hi)]``."""
  if isinstance(padding, str):
    return lax.padtype_to_pads(tuple(spatial), tuple(kernel), tuple(strides), padding)
  return [tuple(int(v) for v in pair) for pair in padding]


def _unsupported(lhs, rhs, dimension_numbers, lhs_dilation, rhs_dilation, groups):
  """Why `matmul_conv` cannot run this conv ("" when it can)."""
  if lhs.ndim != 4:
    return f"only 2-D convolutions (got a {lhs.ndim - 2}-D one)"
  if dimension_numbers is not None:
    want = lax.conv_dimension_numbers(lhs.shape, rhs.shape, _NHWC)
    got = lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
    if got != want:
      return f"only NHWC/HWIO layouts (got {dimension_numbers})"
  if any(d != 1 for d in (*(lhs_dilation or ()), *(rhs_dilation or ()))):
    return "no dilation"
  if groups != 1:
    return f"only feature_group_count=1 (got {groups})"
  return ""


def matmul_conv(
  lhs: jax.Array,
  rhs: jax.Array,
  window_strides: Sequence[int],
  padding,
  lhs_dilation: Sequence[int] | None = None,
  rhs_dilation: Sequence[int] | None = None,
  dimension_numbers=None,
  feature_group_count: int = 1,
  batch_group_count: int = 1,
  precision=None,
  preferred_element_type=None,
) -> jax.Array:
  """``lax.conv_general_dilated`` for NHWC/HWIO 2-D convs as slices + a matmul.

  Same signature as ``lax.conv_general_dilated`` (what ``nn.Conv`` calls);
  raises ValueError for what it does not implement (dilation, groups, other
  layouts), which no zoo model uses.
  """
  why = _unsupported(
    lhs, rhs, dimension_numbers, lhs_dilation, rhs_dilation, feature_group_count
  )
  if why or batch_group_count != 1:
    raise ValueError(f"model.conv_impl='matmul' supports {why or 'no batch groups'}")
  n, h, w, c = lhs.shape
  kh, kw, _, out = rhs.shape
  sh, sw = window_strides
  (ph0, ph1), (pw0, pw1) = _explicit_pads(padding, (h, w), (kh, kw), (sh, sw))
  x = jnp.pad(lhs, ((0, 0), (ph0, ph1), (pw0, pw1), (0, 0)))
  oh = (h + ph0 + ph1 - kh) // sh + 1
  ow = (w + pw0 + pw1 - kw) // sw + 1
  # Patch (i, j) holds input pixel (i + sh*y, j + sw*x) for output (y, x); the
  # channel order (i, j, c) is the row order of the kernel reshaped to 2-D.
  cols = [
    lax.slice(
      x,
      (0, i, j, 0),
      (n, i + (oh - 1) * sh + 1, j + (ow - 1) * sw + 1, c),
      (1, sh, sw, 1),
    )
    for i in range(kh)
    for j in range(kw)
  ]
  patches = cols[0] if len(cols) == 1 else jnp.concatenate(cols, axis=-1)
  # 2-D operands: the filter gradient is then one plain matmul over N*H*W.
  # (`matmul_impl`: a filter gradient in XLA:CPU's faster layout where it is.)
  y = matmul_impl.dot_general(
    patches.reshape(n * oh * ow, kh * kw * c),
    rhs.reshape(kh * kw * c, out),
    (((1,), (0,)), ((), ())),
    precision=precision,
    preferred_element_type=preferred_element_type,
  )
  return y.reshape(n, oh, ow, out)


@jax.custom_jvp
def materialized(x: jax.Array) -> jax.Array:
  """``x``, computed once: XLA:CPU never recomputes it into a consumer (see
  the module docstring); its derivative is the identity.

  The divisor is 1 wherever ``x`` is a number, so the value is ``x`` bit for
  bit, infinities and signed zeros included (subnormals flush to zero, as in
  every arithmetic op on XLA:CPU), and ``x`` itself where it is NaN. The
  divisor depends on ``x`` elementwise because XLA turns a division by a
  broadcast scalar into a multiplication, which it would then recompute.
  """
  return x / jnp.where(jnp.isnan(x), x, jnp.ones_like(x))


@materialized.defjvp
def _materialized_jvp(primals, tangents):
  return materialized(primals[0]), tangents[0]


def prefer_matmul(
  lhs_shape: Sequence[int], rhs_shape: Sequence[int], strides: Sequence[int], padding
) -> bool:
  """The ``auto`` rule on CPU: whether slices + matmul beat XLA for this conv.

  Read off `experiments/benchmarks/conv_shapes.md` (forward + both gradients
  of every distinct conv of LeNet-5, ResNet-20/56 and VGG-16 at batch 128,
  the two impls timed interleaved; re-measured on jax 0.10.2). Matmul won by
  1.2-25x on three kinds of conv and lost or tied (0.7-1.15x) on the rest:

  * few input channels (``cin <= 3``: the first layer; its im2col is narrow
    while XLA's filter gradient transposes the whole batch): 2.0-2.9x. Not
    LeNet-5's conv1 (6 channels): 1.3x alone, but its whole epoch took 31.8 s
    instead of 16.4 s with it as a matmul (RESULTS.md figure 3);
  * at most 4 output pixels (LeNet-5's conv2, VGG-16's 2x2 stage), where a
    conv is a dense layer: 5.7-25x;
  * 64+ input channels on 128+ output pixels (VGG-16's conv1-conv3: XLA's
    filter gradient of the 32x32x64 conv alone takes seconds): 1.8-3.8x.
  """
  _, h, w, cin = lhs_shape
  kh, kw = rhs_shape[:2]
  (ph0, ph1), (pw0, pw1) = _explicit_pads(padding, (h, w), (kh, kw), strides)
  pixels = ((h + ph0 + ph1 - kh) // strides[0] + 1) * (
    (w + pw0 + pw1 - kw) // strides[1] + 1
  )
  return cin <= 3 or pixels <= 4 or (cin >= 64 and pixels >= 128)


def prefer_native(
  lhs_shape: Sequence[int], rhs_shape: Sequence[int], strides: Sequence[int], padding
) -> bool:
  """The ``auto`` rule for the native kernels (when they are built): every
  conv they support with at least 8 output pixels per row and 64 in all.
  Their forward tile is 6 pixels of a row, so narrower maps waste lanes, and
  the matmul path wins there anyway (`prefer_matmul`: at most 4 pixels)."""
  _, h, w, _ = lhs_shape
  kh, kw = rhs_shape[:2]
  (top, bottom), (left, right) = _explicit_pads(padding, (h, w), (kh, kw), strides)
  oh, ow = h + top + bottom - kh + 1, w + left + right - kw + 1
  pads = ((top, bottom), (left, right))
  return (
    ow >= 8
    and oh * ow >= 64
    and native_conv.supports(lhs_shape, rhs_shape, strides, pads, jnp.float32)
  )


def _plain_2d(lhs, rhs, kwargs) -> bool:
  """Whether a ``conv_general_dilated`` call (its keyword arguments) is a
  plain NHWC/HWIO 2-D conv: what the matmul and native paths compute."""
  unsupported = _unsupported(
    lhs,
    rhs,
    kwargs.get("dimension_numbers"),
    kwargs.get("lhs_dilation"),
    kwargs.get("rhs_dilation"),
    kwargs.get("feature_group_count", 1),
  )
  return not unsupported and kwargs.get("batch_group_count", 1) == 1


def _native_pads(lhs, rhs, window_strides, padding, kwargs):
  """This call's pads as `native_conv.conv` takes them, or None when it cannot
  compute exactly this call."""
  if not _plain_2d(lhs, rhs, kwargs):
    return None
  if kwargs.get("preferred_element_type") not in (None, jnp.float32):
    return None
  pads = _explicit_pads(padding, lhs.shape[1:3], rhs.shape[:2], window_strides)
  pads = tuple(tuple(int(v) for v in pair) for pair in pads)
  fits = lhs.dtype == rhs.dtype and native_conv.supports(
    lhs.shape, rhs.shape, window_strides, pads, lhs.dtype
  )
  return pads if fits else None


def native(lhs: jax.Array, rhs: jax.Array, window_strides, padding, **kwargs):
  """``conv_impl="native"``: the native kernels wherever they fit."""
  why = native_conv.unavailable()
  if not why and jax.default_backend() != "cpu":
    why = f"the kernels are CPU-only, the backend is {jax.default_backend()}"
  if why:
    raise ValueError(f"model.conv_impl='native' cannot run here: {why}")
  # Inside `native_conv.xla_only()` (forward-mode autodiff) XLA's kernels.
  pads = _native_pads(lhs, rhs, window_strides, padding, kwargs)
  if pads is not None and not native_conv.in_xla_only():
    return native_conv.conv(lhs, rhs, pads)
  return _auto(lhs, rhs, window_strides, padding, **kwargs)


def _auto(
  lhs: jax.Array, rhs: jax.Array, window_strides, padding, **kwargs
) -> jax.Array:
  pads = _native_pads(lhs, rhs, window_strides, padding, kwargs)
  if (
    pads is not None
    and native_conv.usable()
    and prefer_native(lhs.shape, rhs.shape, window_strides, padding)
  ):
    return native_conv.conv(lhs, rhs, pads)
  use_matmul = (
    jax.default_backend() == "cpu"
    and _plain_2d(lhs, rhs, kwargs)
    and prefer_matmul(lhs.shape, rhs.shape, window_strides, padding)
  )
  if use_matmul:
    return matmul_conv(lhs, rhs, window_strides, padding, **kwargs)
  if jax.default_backend() == "cpu":
    lhs = materialized(lhs)
  return lax.conv_general_dilated(lhs, rhs, window_strides, padding, **kwargs)


class ConvShape(NamedTuple):
  """One conv as it runs: NHWC input shape, HWIO kernel shape, stride, pads."""

  input_shape: tuple[int, int, int, int]
  kernel_shape: tuple[int, int, int, int]
  strides: tuple[int, int]
  padding: tuple[tuple[int, int], tuple[int, int]]


def conv_layers(model: nn.Module, input_shape: Sequence[int]) -> dict[str, ConvShape]:
  """{layer path: ConvShape} of every ``nn.Conv`` a model calls on inputs of
  ``input_shape`` (batch included); traced abstractly, nothing is computed."""
  found: dict[str, ConvShape] = {}

  def record(next_fun, args, kwargs, context):
    module = context.module
    if isinstance(module, nn.Conv) and context.method_name == "__call__":
      x = args[0]
      kh, kw = module.kernel_size
      strides = tuple(module.strides or (1, 1))
      pads = _explicit_pads(module.padding, x.shape[1:3], (kh, kw), strides)
      found["/".join(module.path)] = ConvShape(
        tuple(x.shape),
        (kh, kw, x.shape[-1], module.features),
        strides,
        tuple(tuple(p) for p in pads),
      )
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(record):
    jax.eval_shape(
      lambda: model.init(
        jax.random.key(0), jnp.zeros(tuple(input_shape), jnp.float32), train=False
      )
    )
  return found


def function(conv_impl: str) -> Callable[..., jax.Array]:
  """The ``conv_general_dilated`` callable for ``nn.Conv`` under `conv_impl`."""
  check(conv_impl)
  return {
    "auto": _auto,
    "xla": lax.conv_general_dilated,
    "matmul": matmul_conv,
    "native": native,
  }[conv_impl]
