r"""Benchmark: one conv's forward, input gradient and filter gradient, XLA / native vs PyTorch.

  JAX_PLATFORMS=cpu .venv/bin/python experiments/benchmarks/conv_parts.py \
      [--repeats=5] [--out=experiments/benchmarks/conv_parts.md]

Where a conv-net train step loses to PyTorch on this CPU, split per conv
shape: ``lax.conv_general_dilated`` (the kernel `conv_impl` "auto" keeps for
ResNet-56's 16/32/64-channel 3x3 convs) and its two vjp halves, each jitted
on its own, against ``torch.nn.functional.conv2d`` and
``torch.nn.grad.conv2d_input`` / ``conv2d_weight`` (oneDNN) on the same
shapes, 2 threads each. The shapes are ResNet-56's three stages and VGG-16's
32x32x64 conv at batch 128. Beside XLA's kernel, jaxprune's native one
(`jaxprune.models.native_conv`, what ``auto`` runs these convs on where it is
built). The sides take turns per repeat; a cell is the minimum over repeats
(the kernels' own speed, not the machine's load).
"""

from __future__ import annotations

import argparse
import datetime
import os
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import torch
from jax import lax

from jaxprune import io_utils
from jaxprune.models import native_conv

HERE = os.path.dirname(os.path.abspath(__file__))
# (NHWC input, Cout, used by); 3x3, stride 1, SAME.
SHAPES = (
  ((128, 32, 32, 16), 16, "resnet56 stage 1 (18 convs)"),
  ((128, 16, 16, 32), 32, "resnet56 stage 2 (17 convs)"),
  ((128, 8, 8, 64), 64, "resnet56 stage 3 (17 convs)"),
  ((128, 32, 32, 64), 64, "vgg16 conv1"),
)
PARTS = ("fwd", "dx", "dw")
_DN = ("NHWC", "HWIO", "NHWC")


def _xla_conv(a, b):
  return lax.conv_general_dilated(a, b, (1, 1), "SAME", dimension_numbers=_DN)


def _native_conv(a, b):
  return native_conv.conv(a, b, ((1, 1), (1, 1)))


def _jax_parts(x_shape, cout, conv=_xla_conv) -> dict[str, Callable[[], object]]:
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal(x_shape), jnp.float32)
  w = jnp.asarray(rng.standard_normal((3, 3, x_shape[-1], cout)) * 0.1, jnp.float32)

  g = jnp.asarray(rng.standard_normal((*x_shape[:3], cout)), jnp.float32)
  fwd = jax.jit(conv)
  dx = jax.jit(lambda b, ct: jax.vjp(lambda a: conv(a, b), x)[1](ct)[0])
  dw = jax.jit(lambda a, ct: jax.vjp(lambda b: conv(a, b), w)[1](ct)[0])
  return {
    "fwd": lambda: jax.block_until_ready(fwd(x, w)),
    "dx": lambda: jax.block_until_ready(dx(w, g)),
    "dw": lambda: jax.block_until_ready(dw(x, g)),
  }


def _torch_parts(x_shape, cout) -> dict[str, Callable[[], object]]:
  n, h, w_, c = x_shape
  x = torch.randn(n, c, h, w_)
  w = torch.randn(cout, c, 3, 3) * 0.1
  g = torch.randn(n, cout, h, w_)
  f = torch.nn.functional.conv2d
  return {
    "fwd": lambda: f(x, w, padding=1),
    "dx": lambda: torch.nn.grad.conv2d_input(x.shape, w, g, padding=1),
    "dw": lambda: torch.nn.grad.conv2d_weight(x, w.shape, g, padding=1),
  }


def measure(repeats: int) -> list[dict]:
  rows = []
  for x_shape, cout, used_by in SHAPES:
    sides = {"jax": _jax_parts(x_shape, cout), "torch": _torch_parts(x_shape, cout)}
    if not native_conv.unavailable():
      sides["native"] = _jax_parts(x_shape, cout, _native_conv)
    times = {(s, p): [] for s in sides for p in PARTS}
    for fns in sides.values():
      for fn in fns.values():
        fn()  # Compile / warm up.
    for _ in range(repeats):
      for side, fns in sides.items():
        for part, fn in fns.items():
          start = time.perf_counter()
          fn()
          times[side, part].append(time.perf_counter() - start)
    row = {"shape": list(x_shape), "cout": cout, "used_by": used_by}
    for (side, part), ts in times.items():
      row[f"{side}_{part}_ms"] = 1e3 * min(ts)
    rows.append(row)
  return rows


def render(rows: list[dict], command: str, load: tuple[float, float]) -> str:
  lines = [
    "# One conv split in forward / input gradient / filter gradient: XLA and "
    "native vs PyTorch",
    "",
    f"Written by `{command}` on "
    f"{datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')};"
    f" 1-min load average {load[0]:.1f} before, {load[1]:.1f} after, on "
    f"{os.cpu_count()} CPUs. Minimum ms over repeats, 3x3 SAME convs, 2 threads.",
    "",
    f"Native kernels: {native_conv.unavailable() or 'built'}.",
    "",
    "| conv (NHWC -> Cout) | used by | part | XLA ms | native ms | PyTorch ms "
    "| XLA / PyTorch | native / PyTorch |",
    "|---|---|---|---:|---:|---:|---:|---:|",
  ]
  for r in rows:
    name = "x".join(map(str, r["shape"])) + f" -> {r['cout']}"
    for part in PARTS:
      j, t = r[f"jax_{part}_ms"], r[f"torch_{part}_ms"]
      n = r.get(f"native_{part}_ms")
      native = (f"{n:.1f}", f"{n / t:.2f}") if n else ("-", "-")
      lines.append(
        f"| {name} | {r['used_by']} | {part} | {j:.1f} | {native[0]} | {t:.1f} "
        f"| {j / t:.2f} | {native[1]} |"
      )
  return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--out", default=os.path.join(HERE, "conv_parts.md"))
  args = parser.parse_args(argv)
  torch.set_num_threads(2)
  before = os.getloadavg()[0]
  rows = measure(args.repeats)
  command = f"python experiments/benchmarks/conv_parts.py --repeats={args.repeats}"
  text = render(rows, command, (before, os.getloadavg()[0]))
  io_utils.atomic_write_bytes(args.out, text.encode())
  io_utils.atomic_write_json(os.path.splitext(args.out)[0] + ".json", rows)
  print(text)
  return 0


if __name__ == "__main__":
  raise SystemExit(main())
