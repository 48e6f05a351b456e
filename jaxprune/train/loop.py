"""`train_and_evaluate(config, workdir)`: one training run, resumable.

Sections, in the order they run: workdir and config; mesh and data; model,
schedule, optimizer and state; resume; the epoch loop (train, evaluate, log,
checkpoint); the summary.

Workdir contract (other commands read it):
  config.json     the run's config (a rerun with a different config is refused);
  metrics.jsonl   one object per evaluation: step, epoch, train/loss,
                  train/accuracy, test/loss, test/accuracy, val/... (with a
                  validation split), lr, time/epoch_seconds;
  summary.json    status ("completed" | "diverged") and the final metrics;
  checkpoints/    latest/, best/ (validation accuracy), final/ (orbax);
  tensorboard/    event files.
Resume: rerunning the same command continues from the latest checkpoint and
ends with bit-identical params to an uninterrupted run (the epoch's data order,
augmentation and dropout keys are all derived from the seed and the step).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import ml_collections

import jaxprune
from jaxprune import analysis, config_utils, io_utils, models, schedules
from jaxprune.data import pipeline
from jaxprune.train import checkpointing, metric_writers, optim, sharding, validation
from jaxprune.train.progress import ProgressBar
from jaxprune.train.state import (
  TrainState,
  count_params,
  create_train_state,
  state_from_params,
)
from jaxprune.train.steps import Steps, summarize_epoch


class TrainingDivergedError(RuntimeError):
  """The training loss became NaN or infinite.

  `workdir` is the diverged phase's directory, `summary` what it wrote to its
  summary.json (status "diverged", epoch, lr, the last metrics).
  """

  def __init__(
    self, message: str, workdir: str | None = None, summary: dict | None = None
  ):
    super().__init__(message)
    self.workdir = workdir
    self.summary = dict(summary or {})


@dataclasses.dataclass
class Start:
  """Weights a training phase starts from (pretrained, pruned, rewound ...)."""

  params: Any
  batch_stats: Any
  masks: Any = None  # None: dense (all ones).


def _state_from_start(start: Start, tx, state_rng, _init_rng) -> TrainState:
  return state_from_params(start.params, start.batch_stats, tx, state_rng, start.masks)


def initial_state(
  config: ml_collections.ConfigDict,
  model,
  tx,
  input_shape: tuple[int, ...],
  mesh,
  start: Start | None = None,
) -> tuple[TrainState, jax.Array]:
  """(state, data_rng) a fresh run of `config` starts from (replicated on `mesh`).

  The one place the seed is split into init and data keys, so a vmapped group of
  seeds (`jaxprune.train.vmapped`) starts every seed exactly as its own run does.
  """
  init_rng, data_rng = jax.random.split(jax.random.PRNGKey(config.seed))
  if start is None:
    init = functools.partial(create_train_state, model, tx, input_shape)
  else:
    init = functools.partial(
      _state_from_start, start, tx, jax.random.split(init_rng)[1]
    )
  state = jax.jit(init, out_shardings=sharding.replicated(mesh))(init_rng)
  return state, data_rng


def prepare_workdir(config: ml_collections.ConfigDict, workdir: str) -> None:
  """Creates `workdir` and its config.json; refuses a workdir of another config."""
  os.makedirs(workdir, exist_ok=True)
  path = os.path.join(workdir, "config.json")
  current = config_utils.to_json_dict(config)
  if os.path.exists(path):
    changed = config_utils.diff(io_utils.read_json(path), current)
    if changed:
      raise ValueError(
        f"workdir {workdir} holds a run with a different config (fields: "
        f"{', '.join(changed)}); use a new --workdir or the same config to resume"
      )
  if sharding.is_primary():
    io_utils.atomic_write_json(path, current)


def _truncate_metrics(workdir: str, epoch: int) -> None:
  """Drops metric rows written after the checkpoint we resume from."""
  path = os.path.join(workdir, "metrics.jsonl")
  rows = io_utils.read_jsonl(path)
  kept = [r for r in rows if r.get("epoch", 0) <= epoch]
  if sharding.is_primary() and (len(kept) != len(rows) or os.path.exists(path)):
    io_utils.rewrite_jsonl(path, kept)


def _train_one_epoch(
  steps: Steps, state, data: pipeline.Data, data_rng, epoch: int, seed: int
):
  if data.resident:
    return steps.train_epoch(
      state, data.train.device_images, data.train.device_labels, data_rng, epoch
    )
  per_step = []
  rows = sharding.host_rows(steps.mesh, steps.batch_size)
  for images, labels, _ in data.train.batches(
    steps.batch_size, train=True, seed=seed, epoch=epoch, rows=rows
  ):
    batch = sharding.shard_batch((images, labels), steps.mesh, steps.batch_size)
    state, metrics = steps.train_batch(state, *batch)
    per_step.append(metrics)
  stacked = jax.tree_util.tree_map(lambda *xs: jax.numpy.stack(xs), *per_step)
  return state, stacked


def _summary(status: str, state, epoch: int, last_row: dict[str, Any], **extra) -> dict:
  return {
    "status": status,
    "epoch": epoch,
    "step": int(jax.device_get(state.step)),
    **{k: v for k, v in last_row.items() if "/" in k or k == "lr"},
    **extra,
    "jaxprune_version": jaxprune.__version__,
  }


def _write_summary(workdir: str, summary: dict[str, Any]) -> None:
  if sharding.is_primary():
    io_utils.atomic_write_json(os.path.join(workdir, "summary.json"), summary)


Callback = Callable[[int, TrainState], dict[str, float]]
EpochEndHook = Callable[[int, TrainState], TrainState]


def train_and_evaluate(
  config: ml_collections.ConfigDict,
  workdir: str,
  *,
  callbacks: Sequence[Callback] = (),
  start: Start | None = None,
  model_overrides: dict[str, Any] | None = None,
  schedule_pruning: Any = None,
  loss_hook: Callable[[Any], Any] | None = None,
  soft_masks: bool = False,
  on_epoch_end: EpochEndHook | None = None,
  evaluate_start: bool = False,
) -> dict[str, Any]:
  """Trains and evaluates the model described by `config`; returns the summary.

  `callbacks(epoch, state) -> {name: value}` run at every evaluation (and at
  epoch 0 of a fresh run); their values are logged with the metrics. Callbacks
  requested by `config.analysis` (e.g. mean JSV tracking) are added to them.

  Protocols (prune -> retrain, IMP, ...) chain calls: `start` gives the weights
  (and masks) to begin from instead of a fresh initialisation, with a fresh
  optimizer; `model_overrides` (e.g. the `widths` of a small-dense model after
  surgery) are added to `config.model`'s; `schedule_pruning` carries the pruning
  statistics ALLR-style schedules need (see `jaxprune.schedules.create`).

  `loss_hook(params) -> scalar` (a regulariser, e.g. network slimming's) and
  `soft_masks` (GMP soft pruning) go to `Steps`. `on_epoch_end(epoch, state) ->
  state` runs after every training epoch, before evaluation and checkpointing
  (GMP updates the masks there; the optimizer state is kept). With
  `evaluate_start`, a fresh run evaluates its starting weights and logs them as
  the epoch-0 row (accuracy right after pruning, before retraining).
  """
  t_start = time.monotonic()
  # ---------------------------------------------------------------- workdir, config
  validation.validate(config)
  prepare_workdir(config, workdir)

  # ---------------------------------------------------------------- mesh, data
  mesh = sharding.make_mesh()
  sharding.check_batch_size(config.batch_size, mesh)
  sharding.check_batch_size(config.eval_batch_size, mesh, "eval_batch_size")
  data = pipeline.load(config.data, seed=config.seed)
  steps_per_epoch = data.train.num_examples // config.batch_size
  if steps_per_epoch == 0:
    raise ValueError(
      f"batch_size={config.batch_size} is larger than the {data.train.num_examples} "
      "training examples"
    )
  if data.resident:
    repl = sharding.replicated(mesh)
    for split in (data.train, *data.evals.values()):
      split.place(repl)

  # ---------------------------------------------------------------- model, optimizer
  schedule = schedules.create(config.schedule, steps_per_epoch, schedule_pruning)
  momentum = schedules.momentum(config.schedule, steps_per_epoch)
  tx = optim.create(config.optimizer, schedule, momentum)
  model = models.create(
    config.model.name,
    num_classes=data.spec.num_classes,
    **{**config_utils.model_overrides(config), **(model_overrides or {})},
  )
  state, data_rng = initial_state(config, model, tx, data.input_shape, mesh, start)
  steps = Steps(
    model,
    tx,
    schedule,
    data.preprocess,
    mesh,
    config.batch_size,
    config.eval_batch_size,
    loss_hook=loss_hook,
    soft_masks=soft_masks,
  )
  callbacks = [*callbacks, *analysis.make_callbacks(config.analysis, model, data)]

  # ---------------------------------------------------------------- resume
  ckpt = checkpointing.Checkpointer(
    os.path.join(workdir, "checkpoints"), max_to_keep=config.keep_checkpoints
  )
  start_epoch, best = 0, None
  restored = ckpt.restore("latest", checkpointing.abstract_like(state))
  if restored is not None:
    state, meta = restored
    start_epoch, best = int(meta["epoch"]), meta.get("best_val_accuracy")
    print(f"Resuming from epoch {start_epoch} (step {int(state.step)})", flush=True)
  _truncate_metrics(workdir, start_epoch)

  # ---------------------------------------------------------------- epoch loop
  # Every process trains; only process 0 writes metrics and summaries (orbax
  # coordinates the checkpoint writes of all processes itself).
  writer = metric_writers.create_default_writer(workdir, sharding.is_primary())
  show = config.progress and sharding.is_primary()
  bar = ProgressBar(config.num_epochs, start=start_epoch) if show else None
  row: dict[str, Any] = {}
  try:
    if start_epoch == 0 and (callbacks or evaluate_start):
      initial = {"epoch": 0}
      if evaluate_start:
        for name, split in data.evals.items():
          for key, value in steps.evaluate(state, split).items():
            initial[f"{name}/{key}"] = value
        if sharding.is_primary() and "test/accuracy" in initial:
          print(
            f"before training (e.g. just pruned): test acc "
            f"{100 * initial['test/accuracy']:.2f}%",
            flush=True,
          )
      for callback in callbacks:
        initial.update(callback(0, state))
      writer.write_scalars(int(state.step), initial)
    for epoch in range(start_epoch, config.num_epochs):
      t0 = time.monotonic()
      state, per_step = _train_one_epoch(
        steps, state, data, data_rng, epoch, config.seed
      )
      train = summarize_epoch(per_step)
      done = epoch + 1
      if on_epoch_end is not None:
        state = jax.device_put(on_epoch_end(done, state), sharding.replicated(mesh))
      row = {
        "epoch": done,
        "train/loss": train["loss"],
        "train/accuracy": train["accuracy"],
        "lr": train["lr"],
        "time/epoch_seconds": time.monotonic() - t0,
      }
      if not train["finite"]:
        writer.write_scalars(int(state.step), row)
        diverged = _summary(
          "diverged", state, done, row, num_params=count_params(state.params)
        )
        _write_summary(workdir, diverged)
        raise TrainingDivergedError(
          f"training loss is not finite in epoch {done} (lr {train['lr']:.3g}); "
          f"see {workdir}/summary.json",
          workdir,
          diverged,
        )
      if done % config.eval_every_epochs == 0 or done == config.num_epochs:
        for name, split in data.evals.items():
          for key, value in steps.evaluate(state, split).items():
            row[f"{name}/{key}"] = value
        for callback in callbacks:
          row.update(callback(done, state))
      writer.write_scalars(int(state.step), row)
      writer.flush()
      is_best = "val/accuracy" in row and (best is None or row["val/accuracy"] > best)
      if is_best:
        best = row["val/accuracy"]
        ckpt.save("best", int(state.step), state, {"epoch": done, "val_accuracy": best})
      if done % config.checkpoint_every_epochs == 0 or done == config.num_epochs:
        meta = {"epoch": done, "best_val_accuracy": best}
        ckpt.save("latest", int(state.step), state, meta)
      if bar:
        split = "test" if "test/accuracy" in row else "train"
        acc = row[f"{split}/accuracy"]
        bar.update(
          done, f"train loss {row['train/loss']:.4f} {split} acc {100 * acc:.2f}%"
        )

    # -------------------------------------------------------------- summary
    final_epoch = max(config.num_epochs, start_epoch)
    ckpt.save("final", int(state.step), state, {"epoch": final_epoch})
    if not row:  # Nothing left to train: evaluate the restored state.
      # The training metrics of the last epoch come from its logged row (a
      # kill between the final checkpoint and summary.json lost nothing else).
      logged = io_utils.read_jsonl(os.path.join(workdir, "metrics.jsonl"))
      last = [r for r in logged if r.get("epoch") == final_epoch][-1:]
      row = {**(last[0] if last else {}), "epoch": final_epoch}
      for name, split in data.evals.items():
        for key, value in steps.evaluate(state, split).items():
          row[f"{name}/{key}"] = value
    summary = _summary(
      "completed",
      state,
      final_epoch,
      row,
      best_val_accuracy=best,
      num_params=count_params(state.params),
      wall_time_seconds=time.monotonic() - t_start,
      config_hash=config_utils.config_hash(config),
    )
    _write_summary(workdir, summary)
    return summary
  finally:
    writer.close()
    ckpt.close()
