"""One run's side of a training loop: its workdir, files, resume point and rows.

`train_runs` (`loop.py`) trains one run or a group of runs; everything that
belongs to a single run lives here, so a run in a group writes exactly what it
writes on its own: config.json, metrics.jsonl, tensorboard/, checkpoints/
{latest,best,final}/ and summary.json, with the same fields.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from typing import Any

import jax
import ml_collections

import jaxprune
from jaxprune import config_utils, io_utils
from jaxprune.train import checkpointing, metric_writers, sharding
from jaxprune.train.hyper import Hyper
from jaxprune.train.state import (
  TrainState,
  count_params,
  from_checkpoint,
  to_checkpoint,
)

Callback = Callable[[int, TrainState], dict[str, float]]
EpochEndHook = Callable[[int, TrainState], TrainState]


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


@dataclasses.dataclass
class Member:
  """A run inside `train_runs`: its state and bookkeeping between epochs."""

  config: ml_collections.ConfigDict
  workdir: str
  hyper: Hyper
  state: TrainState
  data_rng: jax.Array
  callbacks: Sequence[Callback] = ()
  on_epoch_end: EpochEndHook | None = None
  evaluate_start: bool = False
  epoch: int = 0  # Epochs done (the resume point, then the progress).
  best: float | None = None
  row: dict[str, Any] = dataclasses.field(default_factory=dict)
  result: dict[str, Any] | TrainingDivergedError | None = None

  def __post_init__(self):
    self.ckpt = checkpointing.Checkpointer(
      os.path.join(self.workdir, "checkpoints"),
      max_to_keep=self.config.keep_checkpoints,
    )
    restored = self.ckpt.restore(
      "latest", checkpointing.abstract_like(to_checkpoint(self.state))
    )
    if restored is not None:
      self.state, meta = from_checkpoint(restored[0]), restored[1]
      self.epoch, self.best = int(meta["epoch"]), meta.get("best_val_accuracy")
      print(
        f"Resuming from epoch {self.epoch} (step {int(self.state.step)})", flush=True
      )
    _truncate_metrics(self.workdir, self.epoch)
    self.writer = metric_writers.create_default_writer(
      self.workdir, sharding.is_primary()
    )

  @property
  def active(self) -> bool:
    return self.result is None and self.epoch < self.config.num_epochs

  @property
  def fresh(self) -> bool:
    return self.epoch == 0

  def eval_due(self, done: int) -> bool:
    every = self.config.eval_every_epochs
    return done % every == 0 or done == self.config.num_epochs

  def write(self, row: dict[str, Any]) -> None:
    self.writer.write_scalars(int(jax.device_get(self.state.step)), row)
    self.writer.flush()

  def run_callbacks(self, epoch: int, row: dict[str, Any]) -> None:
    for callback in self.callbacks:
      row.update(callback(epoch, self.state))

  def diverge(self, done: int, row: dict[str, Any]) -> None:
    self.writer.write_scalars(int(jax.device_get(self.state.step)), row)
    summary = self.summary("diverged", done, row)
    self.result = TrainingDivergedError(
      f"training loss is not finite in epoch {done} (lr {row['lr']:.3g}); "
      f"see {self.workdir}/summary.json",
      self.workdir,
      summary,
    )

  def end_epoch(self, done: int, row: dict[str, Any]) -> None:
    """Logs the epoch's row and writes its checkpoints (after evaluation)."""
    self.epoch, self.row = done, row
    self.write(row)
    step = int(jax.device_get(self.state.step))
    if "val/accuracy" in row and (self.best is None or row["val/accuracy"] > self.best):
      self.best = row["val/accuracy"]
      meta = {"epoch": done, "val_accuracy": self.best}
      self.ckpt.save("best", step, to_checkpoint(self.state), meta)
    every = self.config.checkpoint_every_epochs
    if done % every == 0 or done == self.config.num_epochs:
      meta = {"epoch": done, "best_val_accuracy": self.best}
      self.ckpt.save("latest", step, to_checkpoint(self.state), meta)

  def last_logged_row(self, epoch: int) -> dict[str, Any]:
    """The logged row of `epoch` (a resumed, finished run's training metrics)."""
    logged = io_utils.read_jsonl(os.path.join(self.workdir, "metrics.jsonl"))
    last = [r for r in logged if r.get("epoch") == epoch][-1:]
    return {**(last[0] if last else {}), "epoch": epoch}

  def summary(self, status: str, epoch: int, row: dict[str, Any], **extra) -> dict:
    """Writes and returns summary.json (status, epoch, step, final metrics)."""
    summary = {
      "status": status,
      "epoch": epoch,
      "step": int(jax.device_get(self.state.step)),
      **{k: v for k, v in row.items() if "/" in k or k == "lr"},
      **extra,
      "precision": self.config.get("precision", "float32"),
      "matmul_precision": self.config.get("matmul_precision", "default"),
      "num_params": count_params(self.state.params),
      "jaxprune_version": jaxprune.__version__,
    }
    if status == "completed":
      summary = {
        **{k: v for k, v in summary.items() if k != "jaxprune_version"},
        "config_hash": config_utils.config_hash(self.config),
        "jaxprune_version": jaxprune.__version__,
      }
    if sharding.is_primary():
      io_utils.atomic_write_json(os.path.join(self.workdir, "summary.json"), summary)
    return summary

  def finish(self, wall_time_seconds: float, **extra) -> None:
    """The final checkpoint and the "completed" summary."""
    final_epoch = max(self.config.num_epochs, self.epoch)
    step = int(jax.device_get(self.state.step))
    self.ckpt.save("final", step, to_checkpoint(self.state), {"epoch": final_epoch})
    self.result = self.summary(
      "completed",
      final_epoch,
      self.row,
      best_val_accuracy=self.best,
      wall_time_seconds=wall_time_seconds,
      **extra,
    )

  def close(self) -> None:
    self.writer.close()
    self.ckpt.close()
