r"""Where a conv-net train step spends its time: jaxprune (XLA:CPU) vs PyTorch.

  JAX_PLATFORMS=cpu .venv/bin/python experiments/benchmarks/profile_step.py \
      [--models=lenet5_relu,resnet56,vgg16] [--batch=128] [--steps=2]

For each model, one warmed-up train step is profiled `--steps` times on each
side and its op time is split into the categories of `CATEGORIES` (ms per
step, summed over threads, so it can exceed the wall time when ops overlap):

* jaxprune: `Steps.train_batch` (SGD momentum, CIFAR augmentation for 3-channel
  models) under `jax.profiler`; every XLA:CPU op event (one per HLO instruction
  of the compiled step) is classified from the compiled HLO: the opcodes of the
  instruction or of the fusion it calls, and its `op_name` metadata (`transpose(`
  marks the backward pass, a `bn*` module or `BatchNorm` marks BatchNorm, the
  `preprocess` scope marks augmentation). A backward convolution is a filter
  gradient when its lhs batch size is not the step's batch or its window is
  wider than 7 (it slides over the whole feature map), else an input gradient.
* PyTorch: the same net of `torch_reference.py` under `torch.profiler`, self
  CPU time per aten op. PyTorch computes both convolution gradients in one op
  (`convolution_backward`); it is listed under the input gradient.

Prints one markdown table per model; `--out=experiments/benchmarks/profile.md`
also writes them, with date and load, where `run_all.py` includes them in
RESULTS.md.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import glob
import os
import re
import sys
import tempfile
import time

import jax
import numpy as np
import train_step

from jaxprune import io_utils, models
from jaxprune.models import native_conv

CATEGORIES = (
  "conv forward",
  "conv input-gradient",
  "conv filter-gradient",
  "BatchNorm forward",
  "BatchNorm backward",
  "dense matmul",
  "pooling",
  "augmentation",
  "copies/transposes",
  "elementwise/other",
)
# jaxprune's native kernels' FFI targets, by the category of their work.
NATIVE_CONV = {
  native_conv.FORWARD_TARGET: "conv forward",
  native_conv.FILTER_GRAD_TARGET: "conv filter-gradient",
}
_INSTR = re.compile(r"^\s*(?:ROOT )?%([\w.\-]+) = (.*?) ([a-z][a-z0-9\-]*)\((.*)$")
_COMP = re.compile(r"^(?:ENTRY )?%([\w.\-]+) ")
_MOVES = {"parameter", "copy", "transpose", "bitcast", "reshape", "tuple"}


def parse_hlo(text: str) -> tuple[dict, dict]:
  """(instructions by name, opcodes per computation) of a compiled HLO module."""
  instrs, comps, current = {}, collections.defaultdict(set), None
  for line in text.splitlines():
    head = _COMP.match(line)
    if head and line.rstrip().endswith("{"):
      current = head.group(1)
      continue
    m = _INSTR.match(line)
    if m and current:
      name, shape, op, rest = m.groups()
      calls = re.search(r"calls=%([\w.\-]+)", rest)
      meta = re.search(r'op_name="([^"]*)"', rest)
      instrs[name] = dict(
        shape=shape,
        op=op,
        rest=rest,
        calls=calls.group(1) if calls else None,
        op_name=meta.group(1) if meta else "",
        computation=current,
      )
      comps[current].add(op)
  return instrs, comps


def _dims(shape: str) -> list[int]:
  m = re.match(r"\w+\[([\d,]*)\]", shape)
  return [int(d) for d in m.group(1).split(",") if d] if m else []


def _conv_kind(instr: dict, text_by_name: dict, batch: int) -> str:
  if "transpose(" not in instr["op_name"] and instr["op_name"]:
    return "conv forward"
  window = [int(w) for w in re.findall(r"size=([\dx]+)", instr["rest"])[0].split("x")]
  lhs = re.match(r"%?([\w.\-]+)", instr["rest"]).group(1)
  labels = re.search(r"dim_labels=(\w+)_", instr["rest"]).group(1)
  lhs_dims = _dims(text_by_name.get(lhs, {}).get("shape", ""))
  lhs_batch = lhs_dims[labels.index("b")] if lhs_dims else batch
  wide = max(window) > 7
  return "conv filter-gradient" if wide or lhs_batch != batch else "conv input-gradient"


def classify(name: str, instrs: dict, comps: dict, batch: int) -> str:
  """The category of the XLA op `name` (see the module docstring)."""
  instr = instrs[name]
  op_name = instr["op_name"]
  ops = comps.get(instr["calls"], set()) if instr["calls"] else {instr["op"]}
  if "convolution" in ops:
    conv = instr
    if instr["calls"]:  # The convolution inside the fusion decides.
      conv = next(
        v
        for v in instrs.values()
        if v["op"] == "convolution" and v["computation"] == instr["calls"]
      )
      conv = {**conv, "op_name": conv["op_name"] or op_name}
    return _conv_kind(conv, instrs, batch)
  backward = "transpose(" in op_name
  target = re.search(r'custom_call_target="(\w+)"', instr["rest"])
  if target and target.group(1) in NATIVE_CONV:  # jaxprune's native kernels.
    kind = NATIVE_CONV[target.group(1)]
    # The input gradient is the forward kernel run on the output gradient.
    return "conv input-gradient" if kind == "conv forward" and backward else kind
  if "preprocess" in op_name:
    return "augmentation"
  if re.search(r"/(bn\w*|\w*_bn\d*|BatchNorm\w*)/", op_name):
    return "BatchNorm backward" if backward else "BatchNorm forward"
  if "dot" in ops:
    return "dense matmul"
  if ops & {"reduce-window", "select-and-scatter"} or "reduce_window" in op_name:
    return "pooling"
  if ops <= _MOVES or "transpose" in ops:
    # Transposes XLA inserts to feed Eigen's filter-gradient convolutions, often
    # fused with a recomputation of the BatchNorm/ReLU that produced their input.
    return "copies/transposes"
  return "elementwise/other"


def jax_profile(name: str, batch: int, steps: int) -> dict:
  shape = models.input_shape(name)
  augment = "cifar" if shape[-1] == 3 else "none"
  jsteps, state, hyper = train_step._jax_steps(name, shape, augment, batch)
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (batch, *shape), dtype=np.uint8)
  labels = rng.integers(0, 10, batch).astype(np.int32)
  images, labels = jax.device_put(images), jax.device_put(labels)
  hlo = jsteps.train_batch.lower(state, hyper, images, labels).compile().as_text()
  instrs, comps = parse_hlo(hlo)
  state, m = jsteps.train_batch(state, hyper, images, labels)
  jax.block_until_ready(m)
  with tempfile.TemporaryDirectory() as tmp:
    jax.profiler.start_trace(tmp)
    t0 = time.perf_counter()
    for _ in range(steps):
      state, m = jsteps.train_batch(state, hyper, images, labels)
    jax.block_until_ready(m)
    wall = (time.perf_counter() - t0) / steps
    jax.profiler.stop_trace()
    path = glob.glob(os.path.join(tmp, "**", "*.xplane.pb"), recursive=True)[0]
    data = jax.profiler.ProfileData.from_file(path)
    totals, ops = collections.Counter(), collections.Counter()
    for plane in data.planes:
      for line in plane.lines:
        for event in line.events:
          if event.name in instrs:
            cat = classify(event.name, instrs, comps, batch)
            totals[cat] += event.duration_ns
            ops[f"{cat}: {event.name} {instrs[event.name]['shape']}"] += (
              event.duration_ns
            )
  ms = {k: totals[k] / 1e6 / steps for k in CATEGORIES}
  top = {k: v / 1e6 / steps for k, v in ops.most_common(12)}
  return {"wall_ms": 1e3 * wall, "categories": ms, "top": top}


_TORCH = (
  ("conv forward", ("mkldnn_convolution", "thnn_conv", "slow_conv")),
  ("conv input-gradient", ("convolution_backward",)),
  ("BatchNorm backward", ("batch_norm_backward",)),
  ("BatchNorm forward", ("batch_norm",)),
  ("dense matmul", ("addmm", "aten::mm", "aten::bmm", "linear")),
  ("pooling", ("pool",)),
  ("copies/transposes", ("copy_", "clone", "contiguous", "aten::to", "transpose")),
)


def torch_profile(name: str, batch: int, steps: int, threads: int) -> dict:
  import torch
  import torch.nn.functional as F
  import torch_reference
  from torch.profiler import ProfilerActivity, profile

  torch.set_num_threads(threads)
  net = torch_reference.create(name).train()
  opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
  shape = models.input_shape(name)
  x = torch.randn(batch, shape[-1], *shape[:2])
  y = torch.randint(0, 10, (batch,))

  def one():
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(net(x), y).backward()
    opt.step()

  one()
  with profile(activities=[ProfilerActivity.CPU]) as prof:
    t0 = time.perf_counter()
    for _ in range(steps):
      one()
    wall = (time.perf_counter() - t0) / steps
  totals, ops = collections.Counter(), collections.Counter()
  for event in prof.key_averages():
    key = next(
      (cat for cat, needles in _TORCH if any(n in event.key for n in needles)),
      "elementwise/other",
    )
    totals[key] += event.self_cpu_time_total
    ops[f"{key}: {event.key}"] += event.self_cpu_time_total
  ms = {k: totals[k] / 1e3 / steps for k in CATEGORIES}
  top = {k: v / 1e3 / steps for k, v in ops.most_common(12)}
  return {"wall_ms": 1e3 * wall, "categories": ms, "top": top}


def table(name: str, j: dict, t: dict) -> list[str]:
  lines = [
    f"| {name} category | jaxprune ms/step | PyTorch ms/step | jaxprune / PyTorch |",
    "|---|---:|---:|---:|",
  ]
  for cat in CATEGORIES:
    a, b = j["categories"][cat], t["categories"][cat]
    ratio = f"{a / b:.2f}" if b > 0.05 else "n/a"
    lines.append(f"| {cat} | {a:.1f} | {b:.1f} | {ratio} |")
  a, b = sum(j["categories"].values()), sum(t["categories"].values())
  lines.append(f"| **sum of ops** | {a:.1f} | {b:.1f} | {a / b:.2f} |")
  lines.append(
    f"| **wall per step** | {j['wall_ms']:.1f} | {t['wall_ms']:.1f} "
    f"| {j['wall_ms'] / t['wall_ms']:.2f} |"
  )
  return lines


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser()
  parser.add_argument("--models", default="lenet5_relu,resnet56,vgg16")
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--steps", type=int, default=2)
  parser.add_argument("--detail", action="store_true", help="list the top ops")
  parser.add_argument("--out", default=None, help="markdown file for RESULTS.md")
  args = parser.parse_args(argv)
  threads = len(os.sched_getaffinity(0))
  load0 = os.getloadavg()[0]
  lines = []
  for name in args.models.split(","):
    j = jax_profile(name, args.batch, args.steps)
    t = torch_profile(name, args.batch, args.steps, threads)
    block = ["", *table(name, j, t), ""]
    if args.detail:
      for side, r in (("jaxprune", j), ("PyTorch", t)):
        block.append(f"{side} top ops of {name} (ms/step):")
        block += [f"* {v:.1f} {op[:140]}" for op, v in r["top"].items()]
        block.append("")
    print("\n".join(block), flush=True)
    lines += block
  stamp = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
  head = (
    f"Written by `experiments/benchmarks/profile_step.py --models={args.models} "
    f"--batch={args.batch} --steps={args.steps}` on {stamp}; 1-min load average "
    f"{load0:.1f} at start, {os.getloadavg()[0]:.1f} at end ({threads} cores). "
    "Op times are summed over threads; on a loaded machine memory-bound ops "
    "(transposes, elementwise) inflate more than compute-bound ones, so read the "
    "shares, not the absolute times."
  )
  if args.out:
    io_utils.atomic_write_bytes(args.out, "\n".join([head, *lines]).encode())
  return 0


if __name__ == "__main__":
  sys.exit(main())
