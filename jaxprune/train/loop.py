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

import collections
import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import ml_collections
import numpy as np
import optax

from jaxprune import analysis, checks, config_utils, models, schedules
from jaxprune.data import pipeline
from jaxprune.pruning.step_hooks import ForwardParams, Regularizer, StepHooks
from jaxprune.pruning.step_hooks import combine as combine_hooks
from jaxprune.pruning.step_hooks import from_pieces as hooks_from_pieces
from jaxprune.train import epochs, sharding, validation
from jaxprune.train import group as group_lib
from jaxprune.train import hyper as hyper_lib
from jaxprune.train import precision as precision_lib
from jaxprune.train.member import (
  Callback,
  EpochEndHook,
  Member,
  TrainingDivergedError,
  prepare_workdir,
)
from jaxprune.train.progress import ProgressBar
from jaxprune.train.state import (  # noqa: F401 (seed_keys: protocols use it here)
  Start,
  TrainState,
  init_program,
  initial_state,
  seed_keys,
)
from jaxprune.train.steps import Steps, summarize_epoch


@dataclasses.dataclass
class Run:
  """One `train_and_evaluate` call: a config, its workdir and its pieces.

  `schedule(config, steps_per_epoch) -> (step -> LR)` replaces the schedule
  `config.schedule` describes (a protocol's retraining schedule built with its pruning
  statistics); `callbacks(epoch, state) -> {name: value}` add logged values at
  every evaluation; `on_epoch_end(epoch, state) -> state` runs after every
  training epoch (e.g. mask updates); `regularizer(params) -> scalar` is added
  to the loss; `forward_params(params, masks) -> params` makes the masks soft;
  `hooks` are a pruning method's changes to the train step (`jaxprune.pruning.step_hooks`; they
  combine with the two pieces before).
  """

  config: ml_collections.ConfigDict
  workdir: str
  start: Start | None = None
  model_overrides: dict[str, Any] | None = None
  schedule: Callable[[ml_collections.ConfigDict, int], optax.Schedule] | None = None
  callbacks: Sequence[Callback] = ()
  on_epoch_end: EpochEndHook | None = None
  regularizer: Regularizer | None = None
  forward_params: ForwardParams | None = None
  hooks: StepHooks | None = None
  evaluate_start: bool = False

  def step_hooks(self) -> StepHooks | None:
    """Everything this run changes in the train step, as one `StepHooks`."""
    return combine_hooks(
      self.hooks, hooks_from_pieces(self.regularizer, self.forward_params)
    )

  def model_kwargs(self) -> dict[str, Any]:
    return {**config_utils.model_overrides(self.config), **(self.model_overrides or {})}

  def program_key(self) -> str:
    """Equal for runs that can train as one group: same data, batch sizes,
    model shapes, optimizer kind and loss/forward transforms."""
    c = self.config
    data = config_utils.to_json_dict(ml_collections.ConfigDict({"d": c.data}))["d"]
    if c.data.get("split_seed") == pipeline.SPLIT_PER_RUN:
      data["run_seed"] = c.seed  # Each seed has its own train/val split.
    o = c.optimizer.to_dict()
    key = {
      "data": data,
      "batch": [c.batch_size, c.eval_batch_size],
      "model": [c.model.name, repr(sorted(self.model_kwargs().items()))],
      "optimizer": [
        o.get("name"),
        o.get("nesterov"),
        o.get("b1"),
        o.get("b2"),
        o.get("eps"),
        bool(o.get("momentum")),
        bool(o.get("weight_decay")),
        bool(schedules.momentum(c.schedule, 1)),
      ],
      "hooks": None if (h := self.step_hooks()) is None else h.name,
      "driver": c.get("epoch_driver", "auto"),
      "precision": [c.get("precision"), c.get("matmul_precision")],
    }
    return json.dumps(key, sort_keys=True, default=repr)


def default_schedule(
  config: ml_collections.ConfigDict, steps_per_epoch: int
) -> optax.Schedule:
  """The LR schedule `config.schedule` describes."""
  return schedules.create(config.schedule, steps_per_epoch)


Result = dict[str, Any] | TrainingDivergedError
GROUP_MODES = ("auto", "vmap", "serial")


def group_mode(mode: str, num_runs: int, resident: bool) -> str:
  """ "vmap" (one program over a run axis) or "serial" (the runs one after the
  other through the same compiled functions) for a group of `num_runs`.

  auto: vmap for 2+ runs on resident data on an accelerator, where one run
  cannot fill the device; serial on CPU. Measured on the 2-core CPU
  (experiments/benchmarks/RESULTS.md, figure 4): 20 vmapped MLP-7 runs train
  no faster than the same runs one after another (85.0 s vs 89.2 s; the
  epochs are compute-bound), every change of the group's size (runs of other
  budgets finishing) costs a new compile, and vmapped convolutions become
  grouped convolutions that XLA:CPU runs slowly. Serial groups keep what
  grouping saves there: one compile, one data load and one init program for
  all the runs of a program.
  """
  checks.choice(mode, "group mode", GROUP_MODES)
  if num_runs == 1 or not resident or jax.process_count() > 1:
    return "serial"
  if mode != "auto":
    return mode
  return "serial" if jax.default_backend() == "cpu" else "vmap"


def train_and_evaluate(
  config: ml_collections.ConfigDict, workdir: str, **pieces: Any
) -> dict[str, Any]:
  """Trains and evaluates the model described by `config`; returns the summary.

  `pieces` are the fields of `Run` (start, model_overrides, schedule,
  callbacks, on_epoch_end, regularizer, forward_params, hooks, evaluate_start).
  Callbacks requested by `config.analysis` (e.g. mean JSV tracking) are added.
  Protocols chain calls (prune -> retrain, IMP ...): `start` gives the weights
  (and masks) to begin from, with a fresh optimizer; `model_overrides` (e.g.
  the `widths` of a small-dense model after surgery) are added to
  `config.model`'s. With `evaluate_start`, a fresh run evaluates its starting
  weights and logs them as the epoch-0 row (accuracy right after pruning).

  Inside `jaxprune.train.group.running` (a group of protocol runs in threads)
  the call joins the group's next batched phase instead of training alone.
  Raises `TrainingDivergedError` when the loss stops being finite.
  """
  run = Run(config, workdir, **pieces)
  coordinator = group_lib.current()
  result = coordinator.submit(run) if coordinator else train_runs([run])[0]
  if isinstance(result, BaseException):  # Diverged, or the group's phase failed.
    raise result
  return result


def train_runs(runs: Sequence[Run], mode: str = "auto") -> list[Result]:
  """Trains `runs` (same `Run.program_key`) as one group; per run its summary or
  the `TrainingDivergedError` of a run whose loss stopped being finite (the
  others go on). A run alone is a group of one, through the same code.

  The group's programs are traced under its `config.matmul_precision` (a jit
  cache key, so programs of another setting are not reused)."""
  matmul = runs[0].config.get("matmul_precision", "default")
  with precision_lib.matmul(matmul):
    return _train_runs(runs, mode)


def _train_runs(runs: Sequence[Run], mode: str) -> list[Result]:
  t_start = time.monotonic()
  keys = {r.program_key() for r in runs}
  if len(keys) != 1:
    raise ValueError("runs of one group must share data, batch sizes, model shapes")
  first = runs[0].config
  for r in runs:
    validation.validate(r.config)
    prepare_workdir(r.config, r.workdir)

  # ---------------------------------------------------------------- mesh, data
  mesh = sharding.make_mesh()
  sharding.check_batch_size(first.batch_size, mesh)
  sharding.check_batch_size(first.eval_batch_size, mesh, "eval_batch_size")
  data = pipeline.load(first.data, seed=first.seed)
  steps_per_epoch = data.train.num_examples // first.batch_size
  if steps_per_epoch == 0:
    raise ValueError(
      f"batch_size={first.batch_size} is larger than the "
      f"{data.train.num_examples} training examples"
    )
  if data.resident:
    repl = sharding.replicated(mesh)
    for split in (data.train, *data.evals.values()):
      split.place(repl)

  # ---------------------------------------------------------------- model, runs
  model = models.create(
    first.model.name, num_classes=data.spec.num_classes, **runs[0].model_kwargs()
  )
  make_tx = hyper_lib.make_tx(first.optimizer, first.get("precision", "float32"))
  key = keys.pop()
  hooks = runs[0].step_hooks()
  init = _cached_steps(
    (key, "init", str(mesh)),
    lambda: init_program(
      model, make_tx, data.input_shape, mesh, hooks and hooks.init_aux
    ),
  )
  members = []
  for r in runs:
    c = r.config
    lr = r.schedule or default_schedule
    hyper = hyper_lib.build(
      c.optimizer,
      lr(c, steps_per_epoch),
      steps_per_epoch * c.num_epochs,
      schedules.momentum(c.schedule, steps_per_epoch),
    )
    state, data_rng = initial_state(c, init, hyper, r.start)
    callbacks = [*r.callbacks, *analysis.make_callbacks(c.analysis, model, data)]
    members.append(
      Member(
        c,
        r.workdir,
        hyper,
        state,
        data_rng,
        callbacks,
        r.on_epoch_end,
        r.evaluate_start,
      )
    )
  # Equal table lengths: runs of other budgets stack, and serial runs reuse
  # one compiled program (entries past a run's end are never read).
  longest = max(np.shape(m.hyper["lr"])[-1] for m in members)
  for m in members:
    m.hyper = hyper_lib.pad(m.hyper, longest)
  how = group_mode(mode, len(members), data.resident)
  steps = _cached_steps(
    (key, how, str(mesh)),
    lambda: Steps(
      model,
      make_tx,
      data.preprocess,
      mesh,
      first.batch_size,
      first.eval_batch_size,
      hooks=hooks,
      vmapped=how == "vmap",
      precision=first.get("precision", "float32"),
    ),
  )
  if len(members) > 1 and sharding.is_primary():
    print(f"[group] {len(members)} runs as one group ({how})", flush=True)

  # ---------------------------------------------------------------- epochs
  total = max(m.config.num_epochs for m in members)
  show = first.progress and sharding.is_primary()
  bar = ProgressBar(total, start=min(m.epoch for m in members)) if show else None
  try:
    epochs.initial_rows(steps, data, [m for m in members if m.fresh])
    while active := [m for m in members if m.active]:
      t0 = time.monotonic()
      per_step = epochs.train_epoch(steps, data, active)
      seconds = time.monotonic() - t0
      done_rows = []
      for m, metrics in zip(active, per_step):
        train = summarize_epoch(metrics)
        done = m.epoch + 1
        if m.on_epoch_end is not None:
          m.state = jax.device_put(
            m.on_epoch_end(done, m.state), sharding.replicated(mesh)
          )
        row = {
          "epoch": done,
          "train/loss": train["loss"],
          "train/accuracy": train["accuracy"],
          "lr": train["lr"],
          "time/epoch_seconds": seconds,
        }
        if not train["finite"]:
          m.diverge(done, row)
        else:
          done_rows.append((m, done, row))
      due = [(m, done, row) for m, done, row in done_rows if m.eval_due(done)]
      for (m, done, row), evals in zip(
        due, epochs.evaluate(steps, data, [m for m, *_ in due])
      ):
        row.update(evals)
        m.run_callbacks(done, row)
      for m, done, row in done_rows:
        m.end_epoch(done, row)
      if bar:
        bar.update(max(m.epoch for m in members), _progress_info(members))

    # -------------------------------------------------------------- summaries
    leftover = [m for m in members if m.result is None and not m.row]
    for m in leftover:  # Nothing left to train: evaluate the restored state.
      # The training metrics of the last epoch come from its logged row (a
      # kill between the final checkpoint and summary.json lost nothing else).
      m.row = m.last_logged_row(max(m.config.num_epochs, m.epoch))
    for m, evals in zip(leftover, epochs.evaluate(steps, data, leftover)):
      m.row.update(evals)
    wall = (time.monotonic() - t_start) / len(members)
    for m in members:
      if m.result is None:
        extra = {"group_size": len(members)} if len(members) > 1 else {}
        m.finish(wall, **extra)
    return [m.result for m in members]
  finally:
    for m in members:
      m.close()


_STEPS: collections.OrderedDict[Any, Any] = collections.OrderedDict()
STEPS_CACHE_SIZE = 16  # Entries: a `Steps` and an `init_program` per program.


def _cached_steps(key: Any, build: Callable[[], Any]) -> Any:
  """The compiled `Steps` (or `init_program`) of an earlier phase with the same
  program (so a new LR schedule, seed or pruning of the same shapes compiles
  nothing new).

  The key holds `Run.program_key`, which names the step hooks (functions
  without a `group_key` by `id`); the cached `Steps` keeps those objects alive,
  so an id cannot be reused by another function while its entry exists.
  """
  if key in _STEPS:
    _STEPS.move_to_end(key)
    return _STEPS[key]
  _STEPS[key] = steps = build()
  while len(_STEPS) > STEPS_CACHE_SIZE:
    _STEPS.popitem(last=False)
  return steps


def _progress_info(members: Sequence[Member]) -> str:
  if len(members) > 1:
    live = sum(m.result is None for m in members)
    return f"{len(members)} runs ({live} live)"
  row = members[0].row
  if not row:
    return ""
  split = "test" if "test/accuracy" in row else "train"
  return f"train loss {row['train/loss']:.4f} {split} acc {100 * row[f'{split}/accuracy']:.2f}%"
