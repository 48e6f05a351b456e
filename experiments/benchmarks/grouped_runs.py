r"""Grouped vs sequential sweeps: the same points, side by side, compiles included.

Each case is one sweep run twice through `jaxprune.sweeps.run_sweep`, each time
into a fresh temporary workdir (so both sides pay the same checkpoint, logging
and row I/O): "sequential" with `group="none"` (one point after the other, as
separate sweep points run today) and "grouped" with `group="auto"` (the points'
training phases batch into one program per phase, `jaxprune.protocols.grouped`).
The jit and `Steps` caches are cleared before each side, so each pays its own
compiles. Cases (epochs shortened; an epoch costs what it costs in the paper's
setting):

  di_table3  Dynamical Isometry Table 3's 40 retraining runs: MLP-7-Linear,
             batch 100, L1 neuron pruning at ratio 0.8 / 0.9 with surgery,
             OrthP off / on, initial LR 0.01 / 0.001 (the 90-epoch schedules
             shortened to 2 epochs: one 10x step after epoch 1), 5 seeds, on
             Fashion-MNIST (60,000 x 32x32; MNIST is not on this machine);
  le2021     a Le & Hua grid on MLP-7-ReLU: retraining variants FT / LRW / SLR /
             CLR x budgets of 1 and 2 epochs x 3 seeds after 50% L1 neuron
             pruning (configs/mini/le2021.py, shortened);
  resnet20   8 ResNet-20 training runs (4 seeds x 2 LR schedules), 32x32 inputs
             with CIFAR augmentation (1-channel: no CIFAR-10 here), a few steps.

The dense pretraining the pruning cases start from (1 epoch per seed) is
trained once before timing and copied into both sides' caches, so the timed
sweeps are pruning + retraining only. The script checks that every grouped row
equals its sequential row (test accuracy within 0.3 points, the same sparsity)
and records the 1-min load average of the (shared) machine during each side.

  JAX_PLATFORMS=cpu .venv/bin/python experiments/benchmarks/grouped_runs.py \
      [--cases=di_table3,le2021,resnet20] [--quick] [--profile]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import jax
import ml_collections

from configs import common as recipes
from jaxprune import config_args
from jaxprune.protocols import common, grouped
from jaxprune.results import sweeps
from jaxprune.train import checkpointing, epochs, loop, member

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

CASES = ("di_table3", "le2021", "resnet20")
GOALS = {"di_table3": 4.0, "le2021": 4.0, "resnet20": 1.0}  # sequential / grouped.
TITLES = {
  "di_table3": "DI Table 3 retraining grid",
  "le2021": "Le & Hua schedules x budgets x seeds",
  "resnet20": "ResNet-20 runs",
}
LOADED = 2.5  # 1-min load average above which the machine counts as loaded.
ACC_TOLERANCE = 0.003  # 0.3 points of test accuracy.
# Shortened DI Table 2 schedules (first LR, then 10x down; the last LRs agree).
DI_SPECS = ("0:0.01,1:0.001", "0:0.001,1:0.0001")
LE_VARIANTS = ("ft", "lrw", "slr", "clr")


def _config(path: str, arg: str) -> ml_collections.ConfigDict:
  return config_args.load_module(os.path.join(ROOT, path), ("get_config",)).get_config(
    arg
  )


def _shrink(config: ml_collections.ConfigDict, quick: bool, data: dict) -> None:
  config.progress = False
  if quick:
    config.data.train_limit, config.data.test_limit = 256, 128
  config.data.update(data)


def di_table3(quick: bool, data: dict) -> tuple[ml_collections.ConfigDict, list]:
  c = _config("configs/wang2021_di/table3.py", "fashion_mnist")
  c.num_epochs = 1  # The shared pretraining (not timed).
  c.schedule.spec, c.schedule.epochs = "0:0.01", 1
  c.retrain.num_epochs = 2
  c.retrain.spec = DI_SPECS[0]
  _shrink(c, quick, data)
  points = [
    {"pruning.ratio": r, "retrain.orthp": o, "retrain.spec": s, "seed": seed}
    for r in ((0.8,) if quick else (0.8, 0.9))
    for o in (False, True)
    for s in (DI_SPECS[:1] if quick else DI_SPECS)
    for seed in range(1 if quick else 5)
  ]
  return c, points


def le2021(quick: bool, data: dict) -> tuple[ml_collections.ConfigDict, list]:
  c = _config("configs/mini/le2021.py", "retrain")
  c.num_epochs = 2  # The shared pretraining (not timed); LRW replays its end.
  c.schedule.spec = "0:0.05,1:0.005"
  _shrink(c, quick, data)
  l1 = {"pruning.name": "structured", "pruning.criterion": "l1", "pruning.ratio": 0.5}
  points = [
    {**l1, "retrain.schedule": v, "retrain.num_epochs": e, "seed": seed}
    for e in ((1,) if quick else (1, 2))
    for v in (("ft", "clr") if quick else LE_VARIANTS)
    for seed in range(1 if quick else 3)
  ]
  return c, points


def resnet20(quick: bool, data: dict) -> tuple[ml_collections.ConfigDict, list]:
  c = recipes.base("train")
  # Quick: LeNet-5 stands in (a conv net, the same serial path, a fast compile).
  c.model.name = "lenet5_relu" if quick else "resnet20"
  c.data.name, c.data.image_size, c.data.augment = (
    "fashion_mnist_local",
    (32, 32),
    "cifar",
  )
  c.data.train_limit, c.data.test_limit = 1024, 1000  # 8 steps of 128 per epoch.
  c.num_epochs = 1 if quick else 2
  c.optimizer.weight_decay = 1e-4
  _shrink(c, quick, data)
  specs = ("0:0.1,1/2:0.01", "0:0.05,1/2:0.005")
  points = [
    {"schedule.spec": s, "seed": seed}
    for s in specs
    for seed in range(1 if quick else 4)
  ]
  return c, points


BUILD: dict[str, Callable[[bool, dict], tuple[ml_collections.ConfigDict, list]]] = {
  "di_table3": di_table3,
  "le2021": le2021,
  "resnet20": resnet20,
}


def run_epochs(config: ml_collections.ConfigDict) -> int:
  """The timed training epochs of one point (retraining, or the whole run)."""
  return int(
    config.num_epochs if config.protocol == "train" else config.retrain.num_epochs
  )


def pretrain(base: ml_collections.ConfigDict, points: list, cache: str) -> None:
  """The dense phases of every seed's pruning points, into `cache` (grouped)."""
  if base.protocol == "train":
    return
  configs, dirs = [], []
  for i, p in enumerate({p["seed"]: p for p in points}.values()):
    c = sweeps.apply_overrides(base, p)
    with c.unlocked():
      c.cache_dir = cache
    configs.append(c)
    dirs.append(os.path.join(cache, "callers", str(i)))
  for result in grouped.run_group(configs, dirs, run_fn=common.dense_phase):
    if isinstance(result, BaseException):
      raise result


@contextlib.contextmanager
def timed_calls(targets: dict[str, tuple[Any, str]]) -> Iterator[dict[str, list]]:
  """Seconds of every call of `getattr(owner, attr)` per name while active
  (`--profile`: where a side's wall time goes)."""
  times: dict[str, list] = collections.defaultdict(list)
  originals = {name: getattr(owner, attr) for name, (owner, attr) in targets.items()}

  def wrap(name: str, fn: Callable) -> Callable:
    def timed(*args, **kwargs):
      t0 = time.perf_counter()
      try:
        return fn(*args, **kwargs)
      finally:
        times[name].append(time.perf_counter() - t0)

    return timed

  for name, (owner, attr) in targets.items():
    setattr(owner, attr, wrap(name, originals[name]))
  try:
    yield times
  finally:
    for name, (owner, attr) in targets.items():
      setattr(owner, attr, originals[name])


def profile_targets() -> dict[str, tuple[Any, str]]:
  from jaxprune import pruning  # Patched for timing; imported with the others.

  return {
    "train epochs (epochs.train_epoch)": (epochs, "train_epoch"),
    "evaluation (epochs.evaluate)": (epochs, "evaluate"),
    "checkpoint saves (Checkpointer.save)": (checkpointing.Checkpointer, "save"),
    "epoch rows + saves (Member.end_epoch)": (member.Member, "end_epoch"),
    "initial states (loop.initial_state)": (loop, "initial_state"),
    "data loads (pipeline.load)": (loop.pipeline, "load"),
    "pruning (pruning.prune)": (pruning, "prune"),
  }


def run_side(
  base, points, how: str, pretrained: str, profile: bool, mode: str = "auto"
) -> dict:
  """One side: a fresh workdir, the pretraining copied in, the sweep timed."""
  jax.clear_caches()
  loop._STEPS.clear()
  with tempfile.TemporaryDirectory() as tmp:
    cache = os.path.join(tmp, "cache")
    if os.path.isdir(os.path.join(pretrained, "train")):
      shutil.copytree(os.path.join(pretrained, "train"), os.path.join(cache, "train"))
    side = sweeps.apply_overrides(base, {"cache_dir": cache})
    load0 = os.getloadavg()[0]
    targets = profile_targets() if profile else {}
    with timed_calls(targets) as times:
      t0 = time.perf_counter()
      rows = sweeps.run_sweep(
        side, points, os.path.join(tmp, "sweep"), group=how, group_mode=mode
      )
      wall = time.perf_counter() - t0
  return {
    "wall_s": wall,
    "load": [load0, os.getloadavg()[0]],
    "rows": {r["config_hash"]: r for r in rows},
    "profile": {k: [len(v), sum(v)] for k, v in times.items()},
  }


def compare(seq: dict, grp: dict) -> dict:
  """Max |accuracy| and |sparsity| differences of the rows, by config hash."""
  if set(seq) != set(grp):
    raise AssertionError("the grouped and sequential sweeps wrote different points")
  acc = max(
    abs(seq[h]["metrics"]["test/accuracy"] - grp[h]["metrics"]["test/accuracy"])
    for h in seq
  )
  sparsity = max(
    abs((seq[h].get("sparsity") or 0) - (grp[h].get("sparsity") or 0)) for h in seq
  )
  return {"max_acc_diff": acc, "max_sparsity_diff": sparsity}


def measure(
  case: str,
  quick: bool = False,
  data: dict | None = None,
  profile: bool = False,
  mode: str = "auto",
) -> dict:
  """Sequential and grouped wall seconds of `case`, throughput and row checks."""
  base, points = BUILD[case](quick, dict(data or {}))
  configs = [sweeps.apply_overrides(base, p) for p in points]
  epochs = sum(run_epochs(c) for c in configs)
  with tempfile.TemporaryDirectory() as pretrained:
    t0 = time.perf_counter()
    pretrain(base, points, pretrained)
    pretrain_s = time.perf_counter() - t0
    seq = run_side(base, points, "none", pretrained, profile)
    grp = run_side(base, points, "auto", pretrained, profile, mode)
  checks = compare(seq.pop("rows"), grp.pop("rows"))
  loads = [*seq["load"], *grp["load"]]
  return {
    "case": case,
    "runs": len(points),
    "run_epochs": epochs,
    "model": base.model.name,
    "train_examples": base.data.train_limit or 60000,
    "pretrain_s": pretrain_s,
    "sequential": seq,
    "grouped": grp,
    "speedup": seq["wall_s"] / grp["wall_s"],
    "sequential_run_epochs_per_s": epochs / seq["wall_s"],
    "grouped_run_epochs_per_s": epochs / grp["wall_s"],
    "max_load": max(loads),
    "loaded": max(loads) > LOADED,
    **checks,
    "rows_match": checks["max_acc_diff"] <= ACC_TOLERANCE
    and checks["max_sparsity_diff"] == 0,
  }


def report(r: dict) -> str:
  lines = [
    f"{r['case']}: {r['runs']} runs of {r['model']} ({r['run_epochs']} run-epochs, "
    f"{r['train_examples']} train examples), dense pretraining {r['pretrain_s']:.1f} s "
    "(not timed)",
    f"  sequential {r['sequential']['wall_s']:.1f} s "
    f"({r['sequential_run_epochs_per_s']:.2f} run-epochs/s)   grouped "
    f"{r['grouped']['wall_s']:.1f} s ({r['grouped_run_epochs_per_s']:.2f} "
    f"run-epochs/s)   speedup {r['speedup']:.2f}x (goal >= {GOALS[r['case']]:g}x)",
    f"  rows: max |test accuracy diff| {r['max_acc_diff']:.4f}, max |sparsity diff| "
    f"{r['max_sparsity_diff']:.2g} ({'match' if r['rows_match'] else 'MISMATCH'})",
    f"  1-min load: sequential {r['sequential']['load']}, grouped "
    f"{r['grouped']['load']}" + (" (LOADED: shared machine)" if r["loaded"] else ""),
  ]
  for side in ("sequential", "grouped"):
    for name, (calls, seconds) in r[side]["profile"].items():
      lines.append(f"  {side:10s} {name}: {seconds:.2f} s in {calls} calls")
  return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser()
  parser.add_argument("--cases", default=",".join(CASES))
  parser.add_argument("--quick", action="store_true", help="tiny sizes")
  parser.add_argument("--profile", action="store_true", help="time the loop's parts")
  parser.add_argument(
    "--group_mode", default="auto", help="the grouped side's mode: auto|vmap|serial"
  )
  parser.add_argument("--data_dir", default=None)
  parser.add_argument("--manual_dir", default=None)
  args = parser.parse_args(argv)
  data = {k: getattr(args, k) for k in ("data_dir", "manual_dir") if getattr(args, k)}
  print(f"jax on {jax.devices()[0].device_kind}, {os.cpu_count()} CPUs", flush=True)
  for case in args.cases.split(","):
    if case not in CASES:
      parser.error(f"--cases: unknown case {case!r}; allowed: {', '.join(CASES)}")
    result = measure(case, args.quick, data, args.profile, args.group_mode)
    print(report(result), flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
