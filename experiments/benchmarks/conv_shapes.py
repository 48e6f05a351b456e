r"""Forward + backward time of every distinct conv shape, XLA vs slices + matmul.

  JAX_PLATFORMS=cpu PYTHONPATH=. .venv/bin/python \
      experiments/benchmarks/conv_shapes.py [--repeats=7] [--batch=128]
      [--steps=resnet56,vgg16]

For every distinct convolution of the registered conv nets at their benchmark
batch (LeNet-5 on Fashion-MNIST resized to 32x32 (its conv2 needs that), ResNet-20/56 and VGG-16 on
CIFAR), times one jitted call computing the output and both gradients (input
and kernel, from a fixed cotangent) with ``lax.conv_general_dilated`` and with
`jaxprune.models.conv_impl.matmul_conv`. The two are timed interleaved
(xla, matmul, xla, matmul, ...) and the medians compared, so a load change on
the shared machine hits both alike. Writes `conv_shapes.md` next to this file
(atomically) with the date, commit and load averages; the ``auto`` rule of
`conv_impl.prefer_matmul` is read off this table, and its last column says
what the rule picks. ``--steps=MODELS`` instead times whole dense train steps
of those models with ``model.conv_impl`` xla vs auto (interleaved) and prints them.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import os
import sys
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import masked_step  # noqa: E402
import run_all  # noqa: E402

from jaxprune import io_utils, models  # noqa: E402
from jaxprune.models import conv_impl  # noqa: E402
from jaxprune.train import hyper as hyper_lib  # noqa: E402
from jaxprune.train.state import state_from_params  # noqa: E402

# (registered name, per-example NHWC input) at the benchmark batch.
MODELS = (
  ("lenet5_relu", (32, 32, 1)),
  ("resnet20", (32, 32, 3)),
  ("resnet56", (32, 32, 3)),
  ("vgg16", (32, 32, 3)),
)
IMPLS = ("xla", "matmul")


def distinct_shapes(batch: int) -> dict[conv_impl.ConvShape, list[str]]:
  """{conv shape: ["model:layer", ...]} over `MODELS`, first use first."""
  out: dict[conv_impl.ConvShape, list[str]] = {}
  for name, shape in MODELS:
    layers = conv_impl.conv_layers(models.create(name), (batch, *shape))
    for path, conv in layers.items():
      out.setdefault(conv, []).append(f"{name}@{shape[0]}:{path}")
  return out


def fwd_bwd(conv: conv_impl.ConvShape, impl: str) -> Callable:
  """Jitted (x, kernel, cotangent) -> (y, dx, dkernel) under `impl`."""
  fn = conv_impl.function(impl)

  def run(x, k, ct):
    y, vjp = jax.vjp(
      lambda a, b: fn(
        a, b, conv.strides, conv.padding, dimension_numbers=("NHWC", "HWIO", "NHWC")
      ),
      x,
      k,
    )
    return (y, *vjp(ct))

  return jax.jit(run)


def interleaved_medians(fns: dict[str, Callable], repeats: int) -> dict[str, float]:
  """Median seconds per fn, timing them in turn (A, B, A, B, ...)."""
  for fn in fns.values():
    jax.block_until_ready(fn())  # Compile.
  times: dict[str, list[float]] = {k: [] for k in fns}
  for _ in range(repeats):
    for key, fn in fns.items():
      start = time.perf_counter()
      jax.block_until_ready(fn())
      times[key].append(time.perf_counter() - start)
  return {k: float(np.median(v)) for k, v in times.items()}


def measure(conv: conv_impl.ConvShape, repeats: int) -> dict[str, float]:
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.standard_normal(conv.input_shape), jnp.float32)
  k = jnp.asarray(rng.standard_normal(conv.kernel_shape), jnp.float32)
  out_shape = jax.eval_shape(
    lambda a, b: conv_impl.function("xla")(
      a, b, conv.strides, conv.padding, dimension_numbers=("NHWC", "HWIO", "NHWC")
    ),
    x,
    k,
  ).shape
  ct = jnp.asarray(rng.standard_normal(out_shape), jnp.float32)
  fns = {impl: functools.partial(fwd_bwd(conv, impl), x, k, ct) for impl in IMPLS}
  return interleaved_medians(fns, repeats)


def step_medians(name: str, batch: int, repeats: int) -> dict[str, float]:
  """Seconds per dense train step (SGD momentum, no donation) of model `name`
  under each ``conv_impl`` in ("xla", "auto"), same state and batch, timed
  interleaved."""
  shape = models.input_shape(name)
  nets = {impl: models.create(name, conv_impl=impl) for impl in ("xla", "auto")}
  params, stats = models.init_variables(nets["xla"], jax.random.key(0), shape)
  tx = optax.sgd(0.01, momentum=0.9)
  make_tx, hyper = hyper_lib.fixed(tx, lambda s: 0.01)
  state = state_from_params(params, stats, tx, jax.random.key(1))
  rng = np.random.default_rng(0)
  images = jnp.asarray(rng.standard_normal((batch, *shape)), jnp.float32)
  labels = jnp.asarray(rng.integers(0, 10, batch), jnp.int32)
  fns = {}
  for impl, net in nets.items():
    step = jax.jit(masked_step.plain_step(net, make_tx))
    fns[impl] = functools.partial(step, state, hyper, images, labels)
  return interleaved_medians(fns, repeats)


def describe(conv: conv_impl.ConvShape) -> str:
  n, h, w, c = conv.input_shape
  kh, kw, _, o = conv.kernel_shape
  pad = conv.padding[0][0]
  return f"{n}x{h}x{w}x{c} -> {o}, {kh}x{kw} s{conv.strides[0]} p{pad}"


def table(rows: list[dict], env: dict) -> str:
  lines = [
    "# Conv shapes: XLA vs slices + matmul (forward + both gradients)",
    "",
    f"Written by `{env['command']}` on {env['date']} at commit {env['commit']};",
    f"1/5/15-min load average {env['load_before']} before, {env['load_after']} "
    f"after, on {env['cpus']} CPUs (a shared machine: compare the two columns of "
    "a row, which were timed interleaved, not rows or runs).",
    "",
    "| conv (NHWC input -> out, kernel, stride, pad) | used by | xla ms | "
    "matmul ms | xla / matmul | auto picks |",
    "|---|---|---:|---:|---:|---|",
  ]
  for r in rows:
    users = ", ".join(r["users"][:3]) + (
      f" (+{len(r['users']) - 3})" if len(r["users"]) > 3 else ""
    )
    lines.append(
      f"| {r['conv']} | {users} | {r['xla'] * 1e3:.1f} | {r['matmul'] * 1e3:.1f} "
      f"| {r['xla'] / r['matmul']:.2f} | {r['auto']} |"
    )
  if env.get("steps"):
    lines += [
      "",
      "Whole dense train steps, `model.conv_impl` xla vs auto (`--steps`, each "
      "model's pair timed interleaved in one process):",
      "",
      *(f"* {line}" for line in env["steps"].values()),
    ]
  return "\n".join(lines) + "\n"


def _tuples(value):
  """JSON lists back to the nested tuples of a ConvShape."""
  return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--repeats", type=int, default=7)
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--out", default=os.path.join(HERE, "conv_shapes.md"))
  parser.add_argument(
    "--steps",
    default="",
    help="comma-separated models: time whole train steps, conv_impl xla vs auto, "
    "and print them (no table)",
  )
  parser.add_argument(
    "--from_json", action="store_true", help="re-render the table from the saved times"
  )
  args = parser.parse_args(argv)
  raw = os.path.splitext(args.out)[0] + ".json"
  if args.steps:  # Whole steps: kept in the json, rendered under the table.
    saved = io_utils.read_json(raw)
    for name in args.steps.split(","):
      load = os.getloadavg()[0]
      t = step_medians(name, args.batch, args.repeats)
      line = (
        f"{name} batch {args.batch} train step: xla {t['xla'] * 1e3:.0f} ms, auto "
        f"{t['auto'] * 1e3:.0f} ms, xla/auto {t['xla'] / t['auto']:.2f} (median of "
        f"{args.repeats}, interleaved; 1-min load {load:.1f} -> "
        f"{os.getloadavg()[0]:.1f})"
      )
      print(line, flush=True)
      saved.setdefault("steps", {})[name] = line
    io_utils.atomic_write_json(raw, saved)
    args.from_json = True
  fmt = lambda v: "/".join(f"{x:.2f}" for x in v)  # noqa: E731
  env = {
    "command": "python experiments/benchmarks/conv_shapes.py "
    f"--repeats={args.repeats} --batch={args.batch}",
    "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    "commit": run_all._git_commit(),
    "load_before": fmt(os.getloadavg()),
    "cpus": os.cpu_count(),
  }
  if args.from_json:  # Re-render (e.g. after changing the rule), no timing.
    saved = io_utils.read_json(raw)
    env, rows = saved["env"], saved["rows"]
    env["steps"] = saved.get("steps", {})
  else:
    rows = []
    for conv, users in distinct_shapes(args.batch).items():
      times = measure(conv, args.repeats)
      rows.append(
        {
          "shape": [list(v) for v in conv],
          "conv": describe(conv),
          "users": users,
          **times,
        }
      )
      print(rows[-1]["conv"], {k: round(v * 1e3, 1) for k, v in times.items()})
    env["load_after"] = fmt(os.getloadavg())
    io_utils.atomic_write_json(raw, {"env": env, "rows": rows})
  for r in rows:
    shape = conv_impl.ConvShape(*(_tuples(v) for v in r["shape"]))
    auto = conv_impl.prefer_matmul(
      shape.input_shape, shape.kernel_shape, shape.strides, shape.padding
    )
    r["auto"] = ("xla", "matmul")[auto]
  io_utils.atomic_write_bytes(args.out, table(rows, env).encode())
  print(f"wrote {args.out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
