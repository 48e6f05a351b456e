r"""Runs every speed figure of issue 9 and writes RESULTS.md + results.json.

  JAX_PLATFORMS=cpu .venv/bin/python experiments/benchmarks/run_all.py \
      [--quick] [--only=train_step,jsv,...] [--out=experiments/benchmarks] \
      [--data_dir=DIR --manual_dir=DIR] [--repeats=N]

`make bench` runs it with the defaults (about 40 min on 2 quiet cores);
`--repeats=7` times more rounds of the step, epoch and driver figures where the
host's speed drifts;
`--quick` shrinks every size (batch 4, a few hundred examples, one repeat) to
check the pipeline in about a minute: its numbers mean nothing. Figures (each a
median of several timed repeats after warm-up/compilation), reusing the
single-figure scripts of this directory:

  1 train_step   ResNet-56, VGG-16 train step images/s, dense and 90% masked,
                 jaxprune vs a plain PyTorch loop (masked_step.py);
  2 masked       jaxprune masked / dense step time (same runs as 1);
  3 epoch        one epoch of MLP-7 and LeNet-5 on Fashion-MNIST shapes,
                 resident scanned epoch vs PyTorch DataLoader (train_step.py);
  4 grouped_runs sweeps through `jaxprune.sweeps` grouped vs one by one: DI
                 Table 3's 40 retraining runs, a Le & Hua grid, 8 ResNet-20
                 runs (grouped_runs.py);
  5 jsv          mean JSV of 1000 examples, MLP-7/LeNet-5/ResNet-20 (jsv.py);
  6 compile      ResNet-56 train-step compile time; compiles across epochs
                 and a mask change (tests/test_recompile.py asserts more);
  7 overhead     wall time outside the compiled epochs of an MLP-7 prune +
                 retrain protocol run, and the DI Table 3 sweep extrapolated;
  8 drivers      per model family, per-step time of the automatically driven
                 and the scanned epoch against single jitted steps
                 (epoch_drivers.py);
  9 gpu          which accelerator ran the figures (none on a CPU-only run).

Both files are rewritten atomically after every figure, so an interrupted run
leaves the figures done so far. Figures not named by `--only` keep their numbers
from the results.json already in `--out` (same mode); every figure says when,
at which commit and under which 1-min load average it ran (the machine may be
shared: compare ratios measured side by side, not absolute times). A figure that fails is recorded with its error.
This module holds the command line, the machine description and the report
writer; the figures themselves live in `figures_speed.py` (1-4) and
`figures_analysis.py` (5-7).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import os
import platform
import shlex
import subprocess
import sys
import time
import traceback
from typing import Any

import jax
import jax.numpy as jnp

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)  # The sibling single-figure scripts and figure modules.

import epoch_drivers  # noqa: E402
import figures_analysis  # noqa: E402
import figures_speed  # noqa: E402
import torch  # noqa: E402
from figures_speed import median_time, threads  # noqa: E402

from jaxprune import io_utils  # noqa: E402

# Sizes per mode. `default` is the real benchmark; `quick` checks the pipeline.
SIZES = {
  "default": dict(
    repeats=3,
    conv_batch=128,
    conv_steps=1,
    epoch_n=60000,
    jsv_n=1000,
    jsv_repeats=3,
    grouped_cases=("di_table3", "le2021", "resnet20"),
    grouped_quick=False,
    compile_repeats=2,
    protocol_epochs=3,
    protocol_train_limit=0,
    matmul_n=2048,
    conv_models=("resnet56", "vgg16"),
    compile_model="resnet56",
    driver_models=tuple(epoch_drivers.FAMILIES),
    driver_batch=16,
    driver_steps=2,
    scan_repeats=1,
  ),
  "quick": dict(
    repeats=1,
    conv_batch=4,
    conv_steps=1,
    epoch_n=512,
    jsv_n=8,
    jsv_repeats=1,
    # Two DI Table 3 points (OrthP off/on) on 256 examples: the code path only.
    grouped_cases=("di_table3",),
    grouped_quick=True,
    compile_repeats=1,
    protocol_epochs=1,
    protocol_train_limit=256,
    matmul_n=256,
    # Smaller stand-ins and unoptimised XLA programs: quick checks the code
    # paths in a minute or two, its numbers mean nothing. One conv net for
    # figures 1-2 (VGG: its PyTorch twin runs nowhere else; the ResNet twin
    # runs in figure 5 and the jaxprune ResNet-20 step in figure 6).
    conv_models=("vgg11",),
    compile_model="resnet20",
    driver_models=("mlp7_relu", "lenet5_relu"),
    driver_batch=4,
    driver_steps=2,
    scan_repeats=1,
  ),
}
FIGURES = (
  "train_step",
  "masked",
  "epoch",
  "grouped_runs",
  "jsv",
  "compile",
  "overhead",
  "drivers",
)
TITLES = {
  "train_step": "1. Train-step throughput, jaxprune vs PyTorch (CIFAR shapes)",
  "masked": "2. Masked vs dense step time in jaxprune",
  "epoch": "3. One epoch on Fashion-MNIST shapes: scanned epoch vs PyTorch DataLoader",
  "grouped_runs": "4. Sweeps as groups: grouped vs sequential runs (compiles included)",
  "jsv": "5. Mean Jacobian singular values: jaxprune vs torch.func",
  "compile": "6. Compile time and recompiles",
  "overhead": "7. Wall time outside compiled steps; DI Table 3 sweep (extrapolated)",
  "gpu": "9. GPU",
  "drivers": "8. Epoch drivers: driven and scanned epoch vs single jitted steps",
}


# ---------------------------------------------------------------- environment


def _verdict(met: bool | None, yes: str, no: str) -> str:
  """A row's goal verdict; None marks a measurement voided (e.g. by load)."""
  return "void (see notes)" if met is None else yes if met else no


def _cpu_model() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or platform.machine()


def _memory_gib() -> float:
  try:
    with open("/proc/meminfo") as f:
      for line in f:
        if line.startswith("MemTotal"):
          return int(line.split()[1]) / 2**20
  except OSError:
    pass
  return float("nan")


def _git_commit() -> str:
  try:
    head = subprocess.run(
      ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    dirty = subprocess.run(
      ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return head + (" (with uncommitted changes)" if dirty else "")
  except (OSError, subprocess.CalledProcessError):
    return "unknown"


def environment() -> dict[str, Any]:
  dev = jax.devices()[0]
  versions = {"python": platform.python_version()}
  for pkg in ("jax", "jaxlib", "flax", "optax", "torch"):
    try:
      versions[pkg] = importlib.metadata.version(pkg)
    except importlib.metadata.PackageNotFoundError:
      versions[pkg] = "not installed"
  return {
    "cpu": _cpu_model(),
    "cpu_count": os.cpu_count(),
    "cpus_usable": threads(),
    "memory_gib": round(_memory_gib(), 1),
    "jax_platform": dev.platform,
    "jax_device": getattr(dev, "device_kind", str(dev)),
    "jax_device_count": jax.device_count(),
    "gpu": dev.device_kind if dev.platform == "gpu" else None,
    "torch_threads": torch.get_num_threads(),
    "versions": versions,
    "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    "git_commit": _git_commit(),
    "platform": platform.platform(),
  }


def matmul_peak(n: int, repeats: int) -> dict[str, float]:
  """Measured f32 matmul GFLOP/s of an n x n product: XLA and PyTorch."""
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
  dot = jax.jit(jnp.dot)
  dot(a, a).block_until_ready()
  jax_s = median_time(lambda: dot(a, a).block_until_ready(), max(3, repeats))
  t = torch.randn(n, n)
  torch.mm(t, t)
  torch_s = median_time(lambda: torch.mm(t, t), max(3, repeats))
  flops = 2.0 * n**3
  return {
    "n": n,
    "jax_gflops": flops / jax_s / 1e9,
    "torch_gflops": flops / torch_s / 1e9,
  }


# ---------------------------------------------------------------- report
RUNNERS = {
  "train_step": figures_speed.fig_train_step,
  "masked": figures_speed.fig_masked,
  "epoch": figures_speed.fig_epoch,
  "grouped_runs": figures_speed.fig_grouped_runs,
  "jsv": figures_analysis.fig_jsv,
  "compile": figures_analysis.fig_compile,
  "overhead": figures_analysis.fig_overhead,
  "drivers": figures_speed.fig_drivers,
}


def gpu_section(env: dict) -> list[str]:
  if env["gpu"]:
    return [
      f"The figures above ran on the GPU `{env['gpu']}` (jax.devices()[0]); "
      "the PyTorch references ran on "
      + ("CUDA." if torch.cuda.is_available() else "the CPU (CPU-only torch).")
    ]
  return ["no GPU was lent to this run: every figure above is XLA:CPU."]


def markdown(results: dict) -> str:
  env, lines = results["environment"], []
  v = env["versions"]
  lines += [
    "# jaxprune benchmarks",
    "",
    f"Written by `experiments/benchmarks/run_all.py` ({results['mode']} mode"
    + (": tiny sizes, numbers are NOT meaningful" if results["mode"] == "quick" else "")
    + f") on {env['date']}; `make bench` regenerates it.",
    "",
    "## Hardware and versions",
    "",
    f"* CPU: {env['cpu']}, {env['cpu_count']} cores ({env['cpus_usable']} usable), "
    f"{env['memory_gib']} GiB memory",
    f"* JAX device: {env['jax_platform']} `{env['jax_device']}` x "
    f"{env['jax_device_count']}; GPU: {env['gpu'] or 'none'}",
    f"* Measured f32 matmul peak ({env['matmul']['n']}^2): XLA "
    f"{env['matmul']['jax_gflops']:.0f} GFLOP/s, PyTorch "
    f"{env['matmul']['torch_gflops']:.0f} GFLOP/s ({env['torch_threads']} threads)",
    "* Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
    f"* git commit: {env['git_commit']}",
    f"* Platform: {env['platform']}",
    "",
    "Ratio column: the figure's goal quantity (speed-up = PyTorch time / "
    "jaxprune time unless the figure says otherwise).",
    "",
  ]
  for key in FIGURES:
    lines += [f"## {TITLES[key]}", ""]
    fig = results["figures"].get(key)
    if fig is None:
      lines += ["(not run)", ""]
      continue
    if "error" in fig:
      lines += [f"**Failed**: `{fig['error']}`", ""]
    else:
      lines += [
        "| case | jaxprune | reference | ratio | goal | met |",
        "|---|---|---|---:|---|---|",
      ]
      for r in fig["rows"]:
        lines.append(
          f"| {r['case']} | {r['jaxprune']} | {r['reference']} | {r['ratio']:.3g} "
          f"| {r['goal']} | {_verdict(r['met'], 'met', '**missed**')} |"
        )
      lines.append("")
      lines += [f"* {n}" for n in fig["notes"]]
      lines.append("")
    lines += [
      f"Command: `{fig['command']}` (took {fig['seconds']:.0f} s"
      + _when(fig, env)
      + ")",
      "",
    ]
  lines += [f"## {TITLES['gpu']}", "", *gpu_section(env), ""]
  profile = os.path.join(HERE, "profile.md")
  if os.path.exists(profile):  # Written by profile_step.py --out, run separately.
    with open(profile) as f:
      lines += ["## 10. Train-step time by op category, jaxprune vs PyTorch", ""]
      lines += [f.read(), ""]
  return "\n".join(lines)


def _when(fig: dict, env: dict) -> str:
  """When and under which load a figure ran (figures kept from older runs too)."""
  if "load_average" not in fig:
    return ""
  start, end = fig["load_average"]
  date = fig.get("date", env["date"])
  commit = fig.get("git_commit", env["git_commit"])[:12]
  return (
    f"; 1-min load average {start:.1f} at start, {end:.1f} at end; {date}, {commit}"
  )


def previous_figures(out: str, mode: str) -> dict:
  """Figures of an earlier run of the same mode in `out`, kept by `--only` runs."""
  path = os.path.join(out, "results.json")
  if not os.path.exists(path):
    return {}
  old = io_utils.read_json(path)
  if old.get("mode") != mode:
    return {}
  keep = {}
  for key, fig in old.get("figures", {}).items():
    if key not in FIGURES:  # A figure since removed (e.g. vmap_seeds).
      continue
    fig.setdefault("date", old["environment"]["date"])
    fig.setdefault("git_commit", old["environment"]["git_commit"])
    keep[key] = fig
  return keep


def write(results: dict, out: str) -> None:
  io_utils.atomic_write_json(os.path.join(out, "results.json"), results)
  io_utils.atomic_write_bytes(
    os.path.join(out, "RESULTS.md"), markdown(results).encode()
  )


def command_for(args: argparse.Namespace, key: str) -> str:
  parts = ["JAX_PLATFORMS=" + os.environ.get("JAX_PLATFORMS", "")] * bool(
    os.environ.get("JAX_PLATFORMS")
  )
  parts += [".venv/bin/python", "experiments/benchmarks/run_all.py", f"--only={key}"]
  parts += ["--quick"] * args.quick
  for flag in ("data_dir", "manual_dir", "driver_models", "grouped_cases", "repeats"):
    if getattr(args, flag):
      parts.append(f"--{flag}={shlex.quote(str(getattr(args, flag)))}")
  return " ".join(parts)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--quick", action="store_true", help="tiny sizes, 1 repeat")
  parser.add_argument("--only", default=",".join(FIGURES), help="comma-separated")
  parser.add_argument("--out", default=HERE, help="directory for the two files")
  parser.add_argument("--data_dir", default=None, help="TFDS dir (config.data)")
  parser.add_argument("--manual_dir", default=None, help="IDX dir (config.data)")
  parser.add_argument(
    "--driver_models", default=None, help="figure 8 models (default: one per family)"
  )
  parser.add_argument(
    "--grouped_cases", default=None, help="figure 4 cases (default: all three)"
  )
  parser.add_argument(
    "--repeats",
    type=int,
    default=None,
    help="timed rounds of the step, epoch and driver figures (default 3)",
  )
  args = parser.parse_args(argv)
  if args.repeats is not None and args.repeats < 1:
    parser.error(f"--repeats must be >= 1, got {args.repeats}")
  wanted = [k for k in args.only.split(",") if k]
  unknown = set(wanted) - set(FIGURES)
  if unknown:
    parser.error(f"--only: unknown figures {sorted(unknown)}; choose from {FIGURES}")
  mode = "quick" if args.quick else "default"
  if args.quick:
    jax.config.update("jax_disable_most_optimizations", True)
  torch.set_num_threads(threads())
  env = environment()
  env["matmul"] = matmul_peak(SIZES[mode]["matmul_n"], SIZES[mode]["repeats"])
  data = {k: getattr(args, k) for k in ("data_dir", "manual_dir") if getattr(args, k)}
  sizes = dict(SIZES[mode])
  if args.driver_models:
    sizes["driver_models"] = tuple(args.driver_models.split(","))
  if args.grouped_cases:
    sizes["grouped_cases"] = tuple(args.grouped_cases.split(","))
  if args.repeats is not None:
    sizes["repeats"] = args.repeats
  ctx = {"sizes": sizes, "env": env, "data": data}
  # Figures not re-run keep their earlier numbers (each carries its own date,
  # commit and load), so `--only=...` refreshes part of the report.
  kept = previous_figures(args.out, mode)
  results = {"mode": mode, "sizes": sizes, "environment": env, "figures": kept}
  print(f"{env['cpu']} x{env['cpus_usable']}, jax on {env['jax_device']}", flush=True)
  for key in wanted:
    t0, load0 = time.perf_counter(), os.getloadavg()[0]
    try:
      fig = RUNNERS[key](ctx)
    except Exception as e:  # Record and go on: one broken figure keeps the rest.
      traceback.print_exc()
      fig = {"error": f"{type(e).__name__}: {e}".splitlines()[0]}
    fig["seconds"] = time.perf_counter() - t0
    fig["load_average"] = [load0, os.getloadavg()[0]]
    fig["date"], fig["git_commit"] = env["date"], env["git_commit"]
    fig["command"] = command_for(args, key)
    results["figures"][key] = fig
    write(results, args.out)
    status = fig.get("error") or ", ".join(
      f"{r['case']}: {r['ratio']:.3g} ({_verdict(r['met'], 'met', 'MISSED')})"
      for r in fig["rows"]
    )
    print(f"[{key}] {fig['seconds']:.0f} s: {status}", flush=True)
  write(results, args.out)  # Also with no figure run (`--only=`): re-renders.
  print(f"wrote {os.path.join(args.out, 'RESULTS.md')} and results.json")
  return 0


if __name__ == "__main__":
  sys.exit(main())
