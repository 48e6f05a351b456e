"""Several seeds of one training run as one compiled program (`jax.vmap`).

A sweep repeats every setting over seeds. For small models one program over
the stacked `TrainState`s of all seeds uses the machine better than N programs
one after another (and compiles once): `train_and_evaluate_seeds(configs,
workdirs)` trains configs that differ only in `seed`, with the same `Steps`
(`_train_epoch` and `_evaluate_resident` vmapped over the state and the per-seed
data key), and writes per seed the workdir contract of `train_and_evaluate`:
config.json, metrics.jsonl, tensorboard/, checkpoints/{latest,best,final}/ and
summary.json, with the same fields. Each seed starts exactly as its own run
(`loop.initial_state`): same init, data order, augmentation and dropout keys.
The metrics equal a sequential run's up to float noise: vmap batches the
matmuls, which reorders float sums.

Limits, each raising `NotVmappable` before anything is written (callers then
run the seeds one by one): resident data only (not streamed ImageNet), no
`config.analysis` callbacks, one process, and the learning-rate schedules of
all seeds must agree step by step (ALLR after pruning reads per-seed pruning
statistics and usually differs). A group has no mid-run resume: checkpoints are
written at the end (a killed group starts again from epoch 0); a diverged seed
gets its "diverged" summary and the others go on. `wall_time_seconds` is the
group's wall time divided by the number of seeds; `time/epoch_seconds` is the
group's epoch time.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

import jaxprune
from jaxprune import config_utils, io_utils, models, schedules
from jaxprune.data import pipeline
from jaxprune.train import (
  checkpointing,
  loop,
  metric_writers,
  optim,
  sharding,
  validation,
)
from jaxprune.train.state import count_params
from jaxprune.train.steps import Steps, eval_variables, summarize_epoch


class NotVmappable(ValueError):
  """These runs cannot share one vmapped program (the message says why)."""


def unsupported(config: ml_collections.ConfigDict) -> str | None:
  """Why `config`'s seeds cannot be vmapped (None: they can, as far as the
  config tells; the schedules and data are checked when the group runs)."""
  if config.analysis.jsv_every_epochs:
    return "config.analysis callbacks run per seed"
  if jax.process_count() > 1:
    return "multi-process runs"
  if config.data.resident is False:
    return "streamed data (data.resident=False)"
  if config.schedule.get("cycle_momentum"):
    return "a momentum schedule (schedule.cycle_momentum)"
  if config.data.split_seed == pipeline.SPLIT_PER_RUN:
    return "a train/val split per seed (data.split_seed=-1)"
  return None


def _same_setting(configs: Sequence[ml_collections.ConfigDict]) -> None:
  def without_seed(c):
    d = config_utils.to_json_dict(c)
    d.pop("seed")
    return d

  ref = without_seed(configs[0])
  for c in configs[1:]:
    changed = config_utils.diff(ref, without_seed(c))
    if changed:
      raise NotVmappable(f"configs differ in more than the seed: {changed}")


def _schedule_values(schedule, steps: int) -> np.ndarray:
  return np.asarray(jax.jit(jax.vmap(schedule))(jnp.arange(steps)))


def _seed(tree: Any, i: int) -> Any:
  return jax.tree_util.tree_map(lambda x: x[i], tree)


def _eval_all(evaluate, state, data) -> list[dict[str, float]]:
  """Per seed: {"test/loss": ..., "test/accuracy": ..., ...} for every split."""
  rows = [{} for _ in range(state.step.shape[0])]
  variables = eval_variables(state)
  for name, split in data.evals.items():
    totals = jax.device_get(
      evaluate(variables, split.device_images, split.device_labels)
    )
    for i, row in enumerate(rows):
      count = max(float(totals["count"][i]), 1.0)
      row[f"{name}/loss"] = float(totals["loss_sum"][i]) / count
      row[f"{name}/accuracy"] = float(totals["correct_sum"][i]) / count
  return rows


def train_and_evaluate_seeds(
  configs: Sequence[ml_collections.ConfigDict],
  workdirs: Sequence[str],
  *,
  starts: Sequence[loop.Start] | None = None,
  model_overrides: dict[str, Any] | None = None,
  schedule_pruning: Sequence[Any] | None = None,
  evaluate_start: bool = False,
) -> list[dict[str, Any]]:
  """`train_and_evaluate(configs[i], workdirs[i], start=starts[i], ...)` for every
  i as one vmapped program; returns the per-seed summaries (status "completed"
  or "diverged"). Raises `NotVmappable` (nothing written) when it cannot."""
  t_start = time.monotonic()
  n, config = len(configs), configs[0]
  for c in configs:
    validation.validate(c)
  _same_setting(configs)
  if reason := unsupported(config):
    raise NotVmappable(reason)
  mesh = sharding.make_mesh()
  sharding.check_batch_size(config.batch_size, mesh)
  sharding.check_batch_size(config.eval_batch_size, mesh, "eval_batch_size")
  data = pipeline.load(config.data)
  if not data.resident:
    raise NotVmappable("streamed data")
  steps_per_epoch = data.train.num_examples // config.batch_size
  if steps_per_epoch == 0:
    raise ValueError(f"batch_size={config.batch_size} exceeds the training set")
  stats = list(schedule_pruning or [None] * n)
  scheds = [schedules.create(config.schedule, steps_per_epoch, s) for s in stats]
  total = steps_per_epoch * config.num_epochs
  reference = _schedule_values(scheds[0], total)
  if any(not np.array_equal(reference, _schedule_values(s, total)) for s in scheds[1:]):
    raise NotVmappable("the seeds' LR schedules differ (per-seed pruning statistics)")

  # ---------------------------------------------------------------- state, steps
  for c, w in zip(configs, workdirs):
    loop.prepare_workdir(c, w)
    if sharding.is_primary():  # A killed group left rows of a run that restarts.
      io_utils.rewrite_jsonl(os.path.join(w, "metrics.jsonl"), [])
  repl = sharding.replicated(mesh)
  for split in (data.train, *data.evals.values()):
    split.place(repl)
  tx = optim.create(config.optimizer, scheds[0])
  model = models.create(
    config.model.name,
    num_classes=data.spec.num_classes,
    **{**config_utils.model_overrides(config), **(model_overrides or {})},
  )
  starts = list(starts or [None] * n)
  seeds = [
    loop.initial_state(c, model, tx, data.input_shape, mesh, s)
    for c, s in zip(configs, starts)
  ]
  state = jax.device_put(
    jax.tree_util.tree_map(lambda *x: jnp.stack(x), *[s for s, _ in seeds]), repl
  )
  keys = jax.device_put(jnp.stack([k for _, k in seeds]), repl)
  steps = Steps(
    model,
    tx,
    scheds[0],
    data.preprocess,
    mesh,
    config.batch_size,
    config.eval_batch_size,
  )
  train = jax.jit(
    jax.vmap(steps._train_epoch, in_axes=(0, None, None, 0, None)),
    donate_argnums=0,
    out_shardings=(repl, repl),
  )
  evaluate = jax.jit(
    jax.vmap(steps._evaluate_resident, in_axes=(0, None, None)), out_shardings=repl
  )

  # ---------------------------------------------------------------- epoch loop
  writers = [
    metric_writers.create_default_writer(w, sharding.is_primary()) for w in workdirs
  ]
  ckpts = [
    checkpointing.Checkpointer(
      os.path.join(w, "checkpoints"), max_to_keep=config.keep_checkpoints
    )
    for w in workdirs
  ]
  best: list[float | None] = [None] * n
  rows: list[dict[str, Any]] = [{} for _ in range(n)]
  summaries: list[dict[str, Any] | None] = [None] * n
  try:
    if evaluate_start:
      for i, initial in enumerate(_eval_all(evaluate, state, data)):
        writers[i].write_scalars(0, {"epoch": 0, **initial})
    for epoch in range(config.num_epochs):
      t0 = time.monotonic()
      state, per_step = train(
        state, data.train.device_images, data.train.device_labels, keys, epoch
      )
      per_step = jax.device_get(per_step)
      done = epoch + 1
      due = done % config.eval_every_epochs == 0 or done == config.num_epochs
      evals = _eval_all(evaluate, state, data) if due else [{}] * n
      seconds = time.monotonic() - t0
      step = int(jax.device_get(state.step[0]))
      for i in range(n):
        if summaries[i] is not None:
          continue  # Diverged earlier.
        stats_i = summarize_epoch(_seed(per_step, i))
        row = {
          "epoch": done,
          "train/loss": stats_i["loss"],
          "train/accuracy": stats_i["accuracy"],
          "lr": stats_i["lr"],
          "time/epoch_seconds": seconds,
        }
        if stats_i["finite"]:
          row.update(evals[i])
        writers[i].write_scalars(step, row)
        writers[i].flush()
        rows[i] = row
        if not stats_i["finite"]:
          summaries[i] = _finish(
            workdirs[i], "diverged", step, done, row, num_params=_params(state)
          )
          continue
        if "val/accuracy" in row and (best[i] is None or row["val/accuracy"] > best[i]):
          best[i] = row["val/accuracy"]
          meta = {"epoch": done, "val_accuracy": best[i]}
          ckpts[i].save("best", step, _seed(state, i), meta)

    # -------------------------------------------------------------- summaries
    wall = (time.monotonic() - t_start) / n
    step = int(jax.device_get(state.step[0]))
    for i in range(n):
      if summaries[i] is not None:
        continue
      single = _seed(state, i)
      epoch = config.num_epochs
      ckpts[i].save(
        "latest", step, single, {"epoch": epoch, "best_val_accuracy": best[i]}
      )
      ckpts[i].save("final", step, single, {"epoch": epoch})
      summaries[i] = _finish(
        workdirs[i],
        "completed",
        step,
        epoch,
        rows[i],
        best_val_accuracy=best[i],
        num_params=_params(state),
        wall_time_seconds=wall,
        config_hash=config_utils.config_hash(configs[i]),
        vmapped_seeds=n,
      )
    return summaries
  finally:
    for writer, ckpt in zip(writers, ckpts):
      writer.close()
      ckpt.close()


def _params(state) -> int:
  return count_params(jax.tree_util.tree_map(lambda x: x[0], state.params))


def _finish(
  workdir: str, status: str, step: int, epoch: int, row: dict[str, Any], **extra
) -> dict[str, Any]:
  # The fields of `loop._summary`, built from host values.
  summary = {
    "status": status,
    "epoch": epoch,
    "step": step,
    **{k: v for k, v in row.items() if "/" in k or k == "lr"},
    **extra,
    "jaxprune_version": jaxprune.__version__,
  }
  loop._write_summary(workdir, summary)
  return summary
