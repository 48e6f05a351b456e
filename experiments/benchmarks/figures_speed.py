"""Figures 1-4 of the benchmark report: speed against PyTorch and sequential runs.

`run_all.py` calls each `fig_*` function with its context dict (`sizes`, `env`,
`data`) and writes what it returns (`rows`, `notes`, optional `data`) into
RESULTS.md and results.json. Figures 1 and 2 share one set of conv-net runs,
cached in the context, so each model is timed once. The timing and table-row
helpers at the top are shared with `figures_analysis.py` and `run_all.py`.

  1 train_step   ResNet-56, VGG-16 train step, jaxprune vs PyTorch;
  2 masked       jaxprune masked / dense step time;
  3 epoch        one epoch of MLP-7 and LeNet-5, scanned epoch vs DataLoader;
  4 grouped_runs sweeps grouped vs sequential (DI Table 3, Le & Hua, ResNet-20);
  8 drivers      per model family: driven and scanned epoch vs single steps.
"""

from __future__ import annotations

import collections
import contextlib
import os
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import epoch_drivers
import grouped_runs
import jax
import masked_step
import numpy as np
import train_step

from jaxprune import models
from jaxprune.data import datasets
from jaxprune.pruning import counting


# ---------------------------------------------------------------- helpers
def threads() -> int:
  return len(os.sched_getaffinity(0))


def median_time(fn: Callable[[], Any], repeats: int) -> float:
  """Median seconds of `repeats` calls of `fn` (warm it up yourself)."""
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return statistics.median(times)


def interleaved_times(
  fns: dict[str, Callable[[], Any]], repeats: int
) -> dict[str, list[float]]:
  """Seconds of `repeats` calls of each function, the functions taking turns
  (a, b, a, b, ...), so that a change of machine load hits all of them alike
  (warm them up yourself)."""
  times = {key: [] for key in fns}
  for _ in range(repeats):
    for key, fn in fns.items():
      t0 = time.perf_counter()
      fn()
      times[key].append(time.perf_counter() - t0)
  return times


def paired_ratio(numerator: list[float], denominator: list[float]) -> float:
  """Median over interleaved rounds of numerator / denominator time: robust to
  load that drifts between rounds, unlike a ratio of two medians."""
  return statistics.median(a / b for a, b in zip(numerator, denominator))


@contextlib.contextmanager
def count_compiles() -> Iterator[collections.Counter]:
  """Counter of XLA backend compiles per jitted function name while active."""
  counts: collections.Counter = collections.Counter()

  def listener(event: str, duration: float, **kwargs) -> None:
    if event == "/jax/core/compile/backend_compile_duration":
      name = kwargs.get("fun_name", "?")
      counts[name.removeprefix("jit(").removesuffix(")")] += 1

  jax.monitoring.register_event_duration_secs_listener(listener)
  try:
    yield counts
  finally:
    jax.monitoring.unregister_event_duration_listener(listener)


def row(
  case: str, jaxprune: str, reference: str, ratio: float, goal: str, met: bool
) -> dict[str, Any]:
  """One table row of a figure (RESULTS.md columns, results.json keys)."""
  return dict(
    case=case, jaxprune=jaxprune, reference=reference, ratio=ratio, goal=goal, met=met
  )


def shortfall(ratio: float, goal: float, higher_is_better: bool) -> str:
  """'missed by X%' text for a ratio against its goal."""
  if higher_is_better:
    return f"{ratio:.2f}x vs goal {goal:g}x: {100 * (1 - ratio / goal):.0f}% short"
  return f"{ratio:.3f} vs goal <= {goal:g}: {100 * (ratio / goal - 1):.1f}% over"


# ---------------------------------------------------------------- figures 1 + 2
def conv_steps(ctx: dict) -> dict[str, dict]:
  """Dense and masked train steps of ResNet-56 and VGG-16, both frameworks,
  timed interleaved (jax dense, jax masked, torch dense, torch masked, ...)."""
  if "conv" in ctx:
    return ctx["conv"]
  s = ctx["sizes"]
  batch, steps = s["conv_batch"], s["conv_steps"]
  out = {}
  for name in s["conv_models"]:
    runners = masked_step.jax_runners(batch, steps, name)
    fns = {f"jax_{kind}": run for kind, (run, _) in runners.items()}
    for kind in ("dense", "masked"):
      fns[f"torch_{kind}"] = masked_step.torch_runner(
        batch, steps, threads(), name, kind == "masked"
      )
    times = interleaved_times(fns, s["repeats"])
    per_step = {key: statistics.median(t) / steps for key, t in times.items()}
    j = {kind: per_step[f"jax_{kind}"] for kind in ("dense", "masked")}
    for kind, (_, sparsity) in runners.items():
      j[f"{kind}_sparsity_after"] = sparsity()
    t = {kind: per_step[f"torch_{kind}"] for kind in ("dense", "masked")}
    ratios = {
      kind: paired_ratio(times[f"torch_{kind}"], times[f"jax_{kind}"])
      for kind in ("dense", "masked")
    }
    ratios["masked_dense"] = paired_ratio(times["jax_masked"], times["jax_dense"])
    macs = counting.count(models.create(name), (32, 32, 3)).macs
    out[name] = {"jax": j, "torch": t, "ratios": ratios, "macs": macs}
  ctx["conv"] = out
  return out


# Issue 16's goals (PyTorch time / jaxprune time) and stretch goals.
STEP_GOALS = {"resnet56": (1.0, 1.5), "vgg16": (0.8, 1.5)}


def fig_train_step(ctx: dict) -> dict:
  s, batch = ctx["sizes"], ctx["sizes"]["conv_batch"]
  res = conv_steps(ctx)
  peak = ctx["env"]["matmul"]
  rows, notes = [], []
  for name, r in res.items():
    # Forward + backward of a conv net is about 3x the forward multiply-adds.
    flops = 3 * 2 * r["macs"] * batch
    for kind in ("dense", "masked"):
      js, ts = r["jax"][kind], r["torch"][kind]
      ratio = r["ratios"][kind]
      goal, stretch = STEP_GOALS.get(name, (1.0, 1.5))
      rows.append(
        row(
          f"{name} {kind}, batch {batch}",
          f"{batch / js:.1f} img/s ({1e3 * js:.0f} ms/step)",
          f"{batch / ts:.1f} img/s ({1e3 * ts:.0f} ms/step)",
          ratio,
          f">= {goal:g}x (stretch {stretch:g}x)",
          ratio >= goal,
        )
      )
      if ratio < goal:
        notes.append(f"{name} {kind}: missed, {shortfall(ratio, goal, True)}.")
      elif ratio < stretch:
        notes.append(
          f"{name} {kind}: goal met, stretch {shortfall(ratio, stretch, True)}."
        )
    notes.append(
      f"{name} achieved throughput (dense step, ~6 x {r['macs'] / 1e6:.1f}M MACs x "
      f"batch = {flops / 1e9:.1f} GFLOP per step): jaxprune "
      f"{flops / r['jax']['dense'] / 1e9:.1f} GFLOP/s = "
      f"{100 * flops / r['jax']['dense'] / 1e9 / peak['jax_gflops']:.0f}% of the measured "
      f"XLA f32 matmul peak ({peak['jax_gflops']:.0f} GFLOP/s, {peak['n']}^2 jnp.dot); "
      f"PyTorch {flops / r['torch']['dense'] / 1e9:.1f} GFLOP/s = "
      f"{100 * flops / r['torch']['dense'] / 1e9 / peak['torch_gflops']:.0f}% of its "
      f"matmul peak ({peak['torch_gflops']:.0f} GFLOP/s, torch.mm)."
    )
  notes.append(
    "Both sides: SGD momentum 0.9, weight decay 5e-4, random float inputs (no "
    "augmentation), 90% global magnitude masks; jaxprune masks gradients and "
    "params inside the jitted step, PyTorch masks gradients and re-applies the "
    f"masks after every step (torch_reference.py), {threads()} threads. "
    f"{s['repeats']} rounds of {s['conv_steps']} step(s) per case after one warm-up "
    "step, the four cases of a model taking turns within a round; times are "
    "medians, the ratio the median of the per-round ratios. "
    "On CPU, jaxprune's stride-1 convolutions run on its native AVX2 kernels "
    "(`jaxprune/models/native_conv.py`; `conv_impl='auto'`), the others on "
    "XLA's; PyTorch uses oneDNN. The GFLOP/s above show how far each is from "
    "the matmul peak."
  )
  return {"rows": rows, "notes": notes, "data": res}


def fig_masked(ctx: dict) -> dict:
  res = conv_steps(ctx)
  rows, notes = [], []
  for name, r in res.items():
    d, m = r["jax"]["dense"], r["jax"]["masked"]
    ratio = r["ratios"]["masked_dense"]
    rows.append(
      row(
        name,
        f"masked {1e3 * m:.0f} ms/step",
        f"dense {1e3 * d:.0f} ms/step",
        ratio,
        "<= 1.05",
        ratio <= 1.05,
      )
    )
    if ratio > 1.05:
      notes.append(
        f"{name}: missed, {shortfall(ratio, 1.05, False)}; the masked step "
        "adds two elementwise multiplies per kernel (gradients and params)."
      )
    notes.append(
      f"{name}: pruned-weight sparsity after the timed masked steps "
      f"{r['jax']['masked_sparsity_after']:.4f} (stays exact)."
    )
  notes.append(
    "Ratio column: masked / dense step time (jaxprune only; median of the "
    "per-round ratios of the interleaved runs of figure 1)."
  )
  return {"rows": rows, "notes": notes}


# ---------------------------------------------------------------- figure 3
def fashion_mnist_32(n: int, data_dir: str | None) -> tuple[tuple, str]:
  """(uint8 [n, 32, 32, 1] images, int32 labels) and where they came from."""
  spec = datasets.get_spec("fashion_mnist_local")
  try:
    source = datasets.open_split(spec.tfds_name, spec.train_split, data_dir)
    images, labels = datasets.read_all(source, spec, limit=n)
  except FileNotFoundError:
    return train_step.random_images(n), f"random uint8 ({n} x 32x32x1)"
  if len(labels) < n:  # A small prepared split (tests): tile it to n.
    reps = -(-n // len(labels))
    images, labels = np.tile(images, (reps, 1, 1, 1))[:n], np.tile(labels, reps)[:n]
  images = datasets.resize_images(images, (32, 32))
  return (images, labels.astype(np.int32)), f"Fashion-MNIST train ({n} x 32x32x1)"


# Issue 16's goal for LeNet-5 (PyTorch time / jaxprune time); issue 9's for MLP-7.
EPOCH_GOALS = {"mlp7_relu": 2.0, "lenet5_relu": 1.5}


def fig_epoch(ctx: dict) -> dict:
  s = ctx["sizes"]
  data, source = fashion_mnist_32(s["epoch_n"], ctx["data"].get("data_dir"))
  rows, notes, out = [], [], {}
  for name in ("mlp7_relu", "lenet5_relu"):
    first, jax_run = train_step.jax_epoch_runner(s["epoch_n"], name, data)
    torch_run = train_step.torch_epoch_runner(s["epoch_n"], name, data)
    torch_run()  # Warm-up, as the first jaxprune epoch above.
    times = interleaved_times({"jax": jax_run, "torch": torch_run}, s["repeats"])
    j = {"first_epoch_s": first, "epoch_s": statistics.median(times["jax"])}
    t = {"epoch_s": statistics.median(times["torch"])}
    ratio = paired_ratio(times["torch"], times["jax"])
    goal = EPOCH_GOALS[name]
    out[name] = {"jax": j, "torch": t, "ratio": ratio}
    rows.append(
      row(
        f"{name}, {s['epoch_n']} examples, batch {train_step.BATCH}",
        f"{j['epoch_s']:.2f} s/epoch (first incl. compile {j['first_epoch_s']:.1f} s)",
        f"{t['epoch_s']:.2f} s/epoch",
        ratio,
        f">= {goal:g}x",
        ratio >= goal,
      )
    )
    if ratio < goal:
      notes.append(f"{name}: missed, {shortfall(ratio, goal, True)}.")
  notes.append(
    f"Data: {source}. jaxprune: data resident on device, `Steps.train_epoch` with "
    "its automatic driver (MLP-7: the epoch as one compiled lax.scan; LeNet-5 on "
    "CPU: a loop of jitted steps gathering their batch from the on-device "
    "permutation; normalisation inside the step). PyTorch: "
    "TensorDataset + shuffling DataLoader (batch 128, drop_last), normalised per "
    "batch, per-step Python loop, SGD momentum 0.9, wd 1e-4. "
    f"{s['repeats']} epochs each after a first one, the two taking turns; times "
    "are medians, the ratio the median of the per-round ratios."
  )
  return {"rows": rows, "notes": notes, "data": out}


# ---------------------------------------------------------------- figure 4
def fig_grouped_runs(ctx: dict) -> dict:
  s = ctx["sizes"]
  rows, notes, out = [], [], {}
  for case in s["grouped_cases"]:
    r = grouped_runs.measure(case, s["grouped_quick"], ctx["data"], profile=True)
    out[case] = r
    goal = grouped_runs.GOALS[case]
    seq, grp = r["sequential"], r["grouped"]
    rows.append(
      row(
        f"{grouped_runs.TITLES[case]}: {r['runs']} runs of {r['model']}, "
        f"{r['run_epochs']} run-epochs, {r['train_examples']} train examples",
        f"grouped {grp['wall_s']:.1f} s ({r['grouped_run_epochs_per_s']:.2f} "
        "run-epochs/s)",
        f"sequential {seq['wall_s']:.1f} s ({r['sequential_run_epochs_per_s']:.2f} "
        "run-epochs/s)",
        r["speedup"],
        f">= {goal:g}x" + (" (never slower)" if goal == 1 else ""),
        r["speedup"] >= goal,
      )
    )
    loads = f"{seq['load'][0]:.1f}-{seq['load'][1]:.1f} / {grp['load'][0]:.1f}-{grp['load'][1]:.1f}"
    notes.append(
      f"{case}: rows grouped vs sequential: max |test accuracy difference| "
      f"{r['max_acc_diff']:.4f}, max |sparsity difference| "
      f"{r['max_sparsity_diff']:.2g} ("
      + ("match" if r["rows_match"] else "**MISMATCH**: over 0.3 points or sparsity")
      + f"); 1-min load sequential / grouped {loads}"
      + (" (LOADED: the machine was shared)" if r["loaded"] else "")
      + "."
    )
    if r["speedup"] < goal:
      notes.append(f"{case}: missed, {shortfall(r['speedup'], goal, True)}.")
    parts = [
      f"{name} {seq['profile'].get(name, [0, 0])[1]:.1f} s / "
      f"{grp['profile'].get(name, [0, 0])[1]:.1f} s"
      for name in grouped_runs.profile_targets()
    ]
    notes.append(
      f"{case} time by part, sequential / grouped: " + "; ".join(parts) + "."
    )
  notes.append(
    "Both sides are jaxprune: the same sweep through `jaxprune.sweeps.run_sweep` "
    "into fresh temporary workdirs (same checkpoint, log and row I/O), "
    'sequential with `group="none"`, grouped with `group="auto"`; jit and '
    "compiled-`Steps` caches cleared before each side, so compiles are included. "
    "Ratio: sequential / grouped wall time. The pruning cases start from a dense "
    "pretraining (1 epoch per seed) trained once before timing and copied into "
    "both sides' caches. Cases and settings: `experiments/benchmarks/grouped_runs.py`."
  )
  return {"rows": rows, "notes": notes, "data": out}


# ---------------------------------------------------------------- figure 8
def fig_drivers(ctx: dict) -> dict:
  s = ctx["sizes"]
  rows, notes, out = [], [], {}
  for name in s["driver_models"]:
    r = epoch_drivers.measure(
      name, s["driver_batch"], s["driver_steps"], s["repeats"], s["scan_repeats"]
    )
    out[name] = r
    single, driven, scanned = (
      r[f"{k}_step_s"] for k in ("single", "driven", "scanned")
    )
    ratio = driven / single
    rows.append(
      row(
        f"{name} ({epoch_drivers.FAMILIES[name]}), batch {r['batch']}",
        f"driven ({r['driver']}) {1e3 * driven:.1f} ms/step; "
        f"scanned {1e3 * scanned:.1f} ms/step",
        f"single jitted steps {1e3 * single:.1f} ms/step",
        ratio,
        "<= 1.1",
        ratio <= 1.1,
      )
    )
    notes.append(f"{name}: scanned / single = {scanned / single:.2f}x.")
  notes.append(
    "Ratio column: driven-epoch / single-step time per step (jaxprune only; same "
    f"model, optimizer and random uint8 data, {s['driver_steps']} steps per epoch, "
    f"median of {s['repeats']} epochs after a compiling one; the scanned epoch "
    f"timed {s['scan_repeats']} time(s)). XLA:CPU rewrites convolutions into the "
    "form its Eigen kernels run only in a program's entry computation, so inside "
    "a lax.scan body the gradient convolutions run on the slow generic path; "
    "`Steps.train_epoch` therefore loops over jitted steps for conv nets on CPU."
  )
  return {"rows": rows, "notes": notes, "data": out}
