"""A sweep's seeds of one setting as one vmapped program (`sweeps --vmap_seeds`).

`run_group(configs, workdirs)` runs configs that differ only in `seed` and
returns per seed what `protocols.run` returns for it (or the
`TrainingDivergedError` it raises), writing the same run directories, so sweep
rows, reports and resume do not depend on how a point ran. Supported:

* `train`: the runs themselves;
* `prune_retrain` with one-shot unstructured pruning: the dense phases (in the
  shared cache, all the group's cache locks held) and the retraining phases;
  pruning goes through the pruned-state cache per seed in between.

Anything else (structured pruning or surgery, IMP, other protocols; see
`unsupported`) is the caller's to run point by point. Inside a group, a phase
that already completed is loaded, one with checkpoints of an interrupted
sequential run resumes on its own, and when the phases cannot share a program
(`vmapped.NotVmappable`: e.g. ALLR's per-seed schedules) they run one by one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Sequence
from typing import Any

import ml_collections

from jaxprune import config_utils, io_utils
from jaxprune.protocols import common, retrain
from jaxprune.train import TrainingDivergedError, train_and_evaluate, vmapped

Result = dict[str, Any] | TrainingDivergedError


def group_key(config: ml_collections.ConfigDict) -> str:
  """Equal for configs that differ only in `seed`."""
  fields = config_utils.to_json_dict(config)
  fields.pop("seed", None)
  return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def unsupported(config: ml_collections.ConfigDict) -> str | None:
  """Why `config`'s seeds cannot run as one group (None: they can)."""
  protocol = config.get("protocol", "train")
  if protocol == "prune_retrain":
    if config.pruning.name != "unstructured":
      return "structured pruning"
    if config.pruning.schedule != "one_shot":
      return f"pruning.schedule={config.pruning.schedule!r} (iterative)"
  elif protocol != "train":
    return f"protocol {protocol!r}"
  return vmapped.unsupported(config)


def _interrupted(workdir: str) -> bool:
  latest = os.path.join(workdir, "checkpoints", "latest")
  return os.path.isdir(latest) and any(d.isdigit() for d in os.listdir(latest))


def _phases(
  configs: Sequence[ml_collections.ConfigDict],
  workdirs: Sequence[str],
  **kwargs: Any,
) -> list[dict[str, Any]]:
  """Summaries of `train_and_evaluate(configs[i], workdirs[i], ...)`; keyword
  values given as lists (`starts`, `schedule_pruning`) are per seed."""
  n = len(configs)
  starts = kwargs.pop("starts", None) or [None] * n
  stats = kwargs.pop("schedule_pruning", None) or [None] * n
  summaries = [common.completed(w, c) for c, w in zip(configs, workdirs)]
  fresh = [
    i for i in range(n) if summaries[i] is None and not _interrupted(workdirs[i])
  ]
  if len(fresh) > 1:
    try:
      out = vmapped.train_and_evaluate_seeds(
        [configs[i] for i in fresh],
        [workdirs[i] for i in fresh],
        starts=[starts[i] for i in fresh],
        schedule_pruning=[stats[i] for i in fresh],
        **kwargs,
      )
      for i, summary in zip(fresh, out):
        summaries[i] = summary
    except vmapped.NotVmappable as e:
      print(f"[sweep] seeds run one by one: {e}", flush=True)
  for i in range(n):
    if summaries[i] is None:
      try:
        summaries[i] = train_and_evaluate(
          configs[i],
          workdirs[i],
          start=starts[i],
          schedule_pruning=stats[i],
          **kwargs,
        )
      except TrainingDivergedError as e:
        summaries[i] = e.summary
  return summaries


def _diverged(workdir: str, summary: dict[str, Any]) -> TrainingDivergedError:
  return TrainingDivergedError(
    f"training diverged; see {workdir}/summary.json", workdir, summary
  )


def _dense(
  configs: Sequence[ml_collections.ConfigDict], workdirs: Sequence[str]
) -> list[common.Phase | TrainingDivergedError]:
  if configs[0].retrain.dense_workdir:  # One given dense run for every seed.
    return [common.dense_phase(c, w) for c, w in zip(configs, workdirs)]
  train_cfgs = [common.training_config(c) for c in configs]
  dirs = [
    common.dense_cache_dir(common.cache_root(c, w), t)
    for c, w, t in zip(configs, workdirs, train_cfgs)
  ]
  with contextlib.ExitStack() as stack:
    # In sorted order, so groups of concurrent shards cannot deadlock.
    for d in sorted(set(dirs)):
      stack.enter_context(io_utils.file_lock(d + ".lock"))
    summaries = _phases(train_cfgs, dirs)
  return [
    common.Phase(d, s) if s["status"] == "completed" else _diverged(d, s)
    for d, s in zip(dirs, summaries)
  ]


def _prune_retrain(
  configs: Sequence[ml_collections.ConfigDict], workdirs: Sequence[str]
) -> list[Result]:
  results: list[Result | None] = []
  for c, w in zip(configs, workdirs):
    retrain.validate_prune_retrain(c)
    results.append(common.prepare_run(c, w))
  todo = [i for i, r in enumerate(results) if r is None]
  if not todo:
    return results
  cfgs, dirs = [configs[i] for i in todo], [workdirs[i] for i in todo]
  dense = _dense(cfgs, dirs)
  live = [j for j, d in enumerate(dense) if isinstance(d, common.Phase)]
  for j, d in enumerate(dense):
    if not isinstance(d, common.Phase):
      results[todo[j]] = d
  if not live:
    return results
  cum, epochs = retrain.cycle_targets(cfgs[0])[0], cfgs[0].retrain.num_epochs
  sched = retrain.retrain_schedule(cfgs[0], epochs)
  pruned = {j: retrain.first_prune(cfgs[j], dirs[j], dense[j], cum) for j in live}
  kwargs = [retrain.retrain_kwargs(pruned[j], None) for j in live]
  cycle_dirs = [os.path.join(dirs[j], "cycle1") for j in live]
  summaries = _phases(
    [common.phase_config(cfgs[j], epochs, sched) for j in live],
    cycle_dirs,
    starts=[k["start"] for k in kwargs],
    schedule_pruning=[k["schedule_pruning"] for k in kwargs],
    evaluate_start=True,
  )
  for j, cycle_dir, summary in zip(live, cycle_dirs, summaries):
    if summary["status"] != "completed":
      results[todo[j]] = _diverged(cycle_dir, summary)
      continue
    config, phase = cfgs[j], common.Phase(cycle_dir, summary)
    record = retrain.cycle_record(1, cum, epochs, sched, pruned[j], phase)
    out = retrain.cycles_summary(
      config, dense[j], phase, phase.final(), pruned[j], None, [record], [epochs]
    )
    out["setup"] = retrain.prune_retrain_setup(config)
    results[todo[j]] = common.finish(config, dirs[j], out)
  return results


def run_group(
  configs: Sequence[ml_collections.ConfigDict], workdirs: Sequence[str]
) -> list[Result]:
  """Per seed: the run's summary, or the `TrainingDivergedError` it raised."""
  if len({group_key(c) for c in configs}) != 1:
    raise ValueError("a seed group's configs must differ only in seed")
  if reason := unsupported(configs[0]):
    raise ValueError(f"seeds of this setting cannot run as a group: {reason}")
  if configs[0].get("protocol", "train") == "prune_retrain":
    return _prune_retrain(configs, workdirs)
  summaries = _phases(configs, workdirs)
  return [
    s if s["status"] == "completed" else _diverged(w, s)
    for s, w in zip(summaries, workdirs)
  ]
