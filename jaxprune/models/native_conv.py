"""Direct stride-1 convolutions in C++ for XLA:CPU, called through the XLA FFI.

Why: on a 2-core x86 CPU XLA's own convolutions run the CIFAR ResNets'
3x3 convs 1.1-2.2x slower than PyTorch's oneDNN in the forward pass and
input gradient and 2.1-16x slower in the filter gradient
(`experiments/benchmarks/conv_parts.md`); a ResNet-56 train step spends 86 %
of its time there. `native/conv.cc` holds two small register-blocked AVX2
kernels (forward; filter gradient; any kernel size and zero padding, stride
1) that run those convs at oneDNN's speed; the input gradient is the forward
kernel on the output gradient with the kernel flipped and transposed.

`conv(x, k, padding)` is a ``jax.custom_vjp`` over two ``jax.ffi.ffi_call`` s: it
works under ``jit``, ``grad`` and ``vmap`` (``vmap_method="expand_dims"``:
the C++ side broadcasts leading batch dims), not under forward-mode
autodiff (``jvp``/``jacfwd``), which cannot see through a custom VJP: code
that needs it wraps its tracing in `xla_only()` (the Jacobian analysis does
for ``method="jacfwd"``).

The library is compiled on first use with the system C++ compiler (``$CXX``,
else ``c++``/``g++``) into a cache directory keyed by the source, flags and
jaxlib version (``$JAXPRUNE_NATIVE_CACHE``, else ``~/.cache/jaxprune``), and
registered as two FFI targets. Where that cannot happen (no compiler, no
AVX2/FMA, not Linux x86-64, ``JAXPRUNE_NATIVE_CONV=0``) `unavailable()` says
why and ``conv_impl="auto"`` keeps XLA's kernels; nothing else changes.
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence

import jax
import jax.numpy as jnp
import jaxlib
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "native", "conv.cc")
FLAGS = ("-O3", "-mavx2", "-mfma", "-std=c++17", "-shared", "-fPIC", "-w")
_SYMBOLS = {
  "jaxprune_conv_forward": "JaxpruneConvForward",
  "jaxprune_conv_filter_grad": "JaxpruneConvFilterGrad",
}
# FFI target names (also how profilers tell these calls apart).
FORWARD_TARGET, FILTER_GRAD_TARGET = _SYMBOLS

_xla_only = contextvars.ContextVar("jaxprune_native_conv_xla_only", default=False)


@contextlib.contextmanager
def xla_only() -> Iterator[None]:
  """Within this block (at trace time), ``conv_impl="auto"`` never picks the
  native kernels: for forward-mode autodiff, which a custom VJP does not
  support."""
  token = _xla_only.set(True)
  try:
    yield
  finally:
    _xla_only.reset(token)


def _cpu_reason() -> str:
  if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
    return f"needs Linux x86-64, this is {platform.system()} {platform.machine()}"
  try:
    with open("/proc/cpuinfo") as f:
      flags = next((line for line in f if line.startswith("flags")), "").split()
  except OSError as e:
    return f"cannot read /proc/cpuinfo ({e})"
  missing = [f for f in ("avx2", "fma") if f not in flags]
  return f"the CPU lacks {', '.join(missing)}" if missing else ""


def _compiler() -> str | None:
  for name in (os.environ.get("CXX"), "c++", "g++", "clang++"):
    if name and shutil.which(name):
      return shutil.which(name)
  return None


def build(cache_dir: str | None = None) -> str:
  """Compiles `SOURCE` (once per source, flags and jaxlib version) and returns
  the shared library's path; RuntimeError with the compiler's output if it
  fails."""
  compiler = _compiler()
  if compiler is None:
    raise RuntimeError("no C++ compiler ($CXX, c++, g++ or clang++) on PATH")
  with open(SOURCE, "rb") as f:
    source = f.read()
  key = hashlib.sha256(source + repr((FLAGS, jaxlib.__version__)).encode()).hexdigest()[
    :16
  ]
  root = cache_dir or os.environ.get("JAXPRUNE_NATIVE_CACHE")
  root = root or os.path.join(os.path.expanduser("~"), ".cache", "jaxprune")
  os.makedirs(root, exist_ok=True)
  path = os.path.join(root, f"conv-{key}.so")
  if os.path.exists(path):
    return path
  include = jax.ffi.include_dir()
  fd, tmp = tempfile.mkstemp(suffix=".so", dir=root)
  os.close(fd)
  cmd = [compiler, *FLAGS, "-I", include, SOURCE, "-o", tmp]
  done = subprocess.run(cmd, capture_output=True, text=True, check=False)
  if done.returncode != 0:
    os.unlink(tmp)
    raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
  os.replace(tmp, path)  # Atomic: concurrent builders never see half a file.
  return path


@functools.cache
def unavailable() -> str:
  """Why the native kernels cannot run here ("" when they can; then the FFI
  targets are registered). Decided once per process."""
  if os.environ.get("JAXPRUNE_NATIVE_CONV", "1") == "0":
    return "disabled by JAXPRUNE_NATIVE_CONV=0"
  why = _cpu_reason()
  if why:
    return why
  try:
    library = ctypes.cdll.LoadLibrary(build())
  except (RuntimeError, OSError) as e:
    return f"could not build or load the library: {e}"
  for target, symbol in _SYMBOLS.items():
    jax.ffi.register_ffi_target(
      target, jax.ffi.pycapsule(getattr(library, symbol)), platform="cpu"
    )
  return ""


def in_xla_only() -> bool:
  """Whether tracing happens inside `xla_only()`."""
  return _xla_only.get()


def usable() -> bool:
  """Whether ``conv_impl="auto"`` may pick the native kernels now: on the CPU
  backend with one device (an FFI call has no partitioning rule, so a
  data-parallel mesh keeps XLA's convs), outside `xla_only`, with the library
  built."""
  return (
    jax.default_backend() == "cpu"
    and jax.device_count() == 1
    and not _xla_only.get()
    and not unavailable()
  )


Padding = tuple[tuple[int, int], tuple[int, int]]


def supports(
  lhs_shape: Sequence[int],
  rhs_shape: Sequence[int],
  strides: Sequence[int],
  pads: Sequence[Sequence[int]],
  dtype,
) -> bool:
  """Whether `conv` computes this conv: NHWC/HWIO, stride 1, float32, zero
  padding of at most kernel size - 1 per side (so that the input gradient
  is a conv of the same kind)."""
  if len(lhs_shape) != 4 or tuple(strides) != (1, 1):
    return False
  (top, bottom), (left, right) = pads
  kh, kw = rhs_shape[:2]
  return (
    0 <= min(top, bottom) <= max(top, bottom) < kh
    and 0 <= min(left, right) <= max(left, right) < kw
    and lhs_shape[1] + top + bottom >= kh
    and lhs_shape[2] + left + right >= kw
    and jnp.dtype(dtype) == jnp.float32
  )


def _attrs(padding: Padding) -> dict:
  (top, bottom), (left, right) = padding
  return {
    "pad_top": np.int64(top),
    "pad_bottom": np.int64(bottom),
    "pad_left": np.int64(left),
    "pad_right": np.int64(right),
  }


def _require() -> None:
  """Builds and registers the kernels (once); RuntimeError naming why not."""
  why = unavailable()
  if why:
    raise RuntimeError(f"jaxprune's native convolutions cannot run here: {why}")


def _forward(x: jax.Array, k: jax.Array, padding: Padding) -> jax.Array:
  _require()
  (top, bottom), (left, right) = padding
  oh = x.shape[-3] + top + bottom - k.shape[0] + 1
  ow = x.shape[-2] + left + right - k.shape[1] + 1
  out = jax.ShapeDtypeStruct((x.shape[0], oh, ow, k.shape[-1]), jnp.float32)
  call = jax.ffi.ffi_call(FORWARD_TARGET, out, vmap_method="expand_dims")
  return call(x, k, **_attrs(padding))


def _filter_grad(x: jax.Array, g: jax.Array, kernel: Sequence[int], padding: Padding):
  _require()
  out = jax.ShapeDtypeStruct((*kernel, x.shape[-1], g.shape[-1]), jnp.float32)
  call = jax.ffi.ffi_call(FILTER_GRAD_TARGET, out, vmap_method="expand_dims")
  return call(x, g, **_attrs(padding))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv(x: jax.Array, k: jax.Array, padding: Padding) -> jax.Array:
  """``lax.conv_general_dilated(x, k, (1, 1), padding)`` for NHWC ``x`` and an
  HWIO ``k``, float32, on the native kernels; ``padding`` is
  ``((top, bottom), (left, right))`` (`supports` says which)."""
  return _forward(x, k, padding)


def _conv_fwd(x, k, padding):
  return _forward(x, k, padding), (x, k)


def _conv_bwd(padding, residuals, g):
  x, k = residuals
  kh, kw = k.shape[:2]
  (top, bottom), (left, right) = padding
  # The input gradient of a stride-1 conv is the "full" conv of the output
  # gradient with the kernel rotated 180 degrees and Cin/Cout swapped: pads
  # of kernel size - 1 minus the forward pads.
  flipped = jnp.flip(k, (0, 1)).transpose(0, 1, 3, 2)
  back = ((kh - 1 - top, kh - 1 - bottom), (kw - 1 - left, kw - 1 - right))
  return _forward(g, flipped, back), _filter_grad(x, g, (kh, kw), padding)


conv.defvjp(_conv_fwd, _conv_bwd)
