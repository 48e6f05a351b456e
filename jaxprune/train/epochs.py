"""One epoch of a group of runs, their evaluation and their epoch-0 rows.

`loop.train_runs` keeps each run's state in its `Member`; these functions
advance them: vmapped (the states stacked along a leading run axis, one
program call for all) when the group's `Steps` are vmapped, else one run after
another through the same compiled functions. Resident data is shared by every
run; streamed data is read per run (its own seed's order).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from jaxprune.data import pipeline
from jaxprune.train import sharding
from jaxprune.train.member import Member
from jaxprune.train.steps import Steps


def initial_rows(steps: Steps, data, members: Sequence[Member]) -> None:
  """The epoch-0 rows of fresh runs: evaluation of the start (with
  `evaluate_start`) and callbacks."""
  members = [m for m in members if m.callbacks or m.evaluate_start]
  wanted = [m for m in members if m.evaluate_start]
  evals = dict(zip(map(id, wanted), evaluate(steps, data, wanted)))
  for m in members:
    initial = {"epoch": 0, **evals.get(id(m), {})}
    if m.evaluate_start and sharding.is_primary() and "test/accuracy" in initial:
      print(
        f"before training (e.g. just pruned): test acc "
        f"{100 * initial['test/accuracy']:.2f}%",
        flush=True,
      )
    m.run_callbacks(0, initial)
    m.write(initial)


@jax.jit
def _stack(trees: Sequence[Any]) -> Any:
  return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *trees)


@functools.partial(jax.jit, static_argnums=1)
def _unstack(tree: Any, n: int) -> list[Any]:
  return [jax.tree_util.tree_map(lambda x, i=i: x[i], tree) for i in range(n)]


def _unstack_host(tree: Any, n: int) -> list[Any]:
  return [jax.tree_util.tree_map(lambda x, i=i: x[i], tree) for i in range(n)]


def train_epoch(steps: Steps, data, members: Sequence[Member]) -> list[Any]:
  """Trains every member one epoch (updating `m.state`); per member its
  per-step metrics (host arrays)."""
  if steps.vmapped:
    n = len(members)
    state, per_step = steps.train_epoch(
      _stack([m.state for m in members]),
      _stack([m.hyper for m in members]),
      data.train.device_images,
      data.train.device_labels,
      jnp.stack([m.data_rng for m in members]),
      jnp.asarray([m.epoch for m in members], jnp.int32),
    )
    for m, s in zip(members, _unstack(state, n)):
      m.state = s
    return _unstack_host(jax.device_get(per_step), n)
  out = []
  for m in members:
    m.state, metrics = _train_one(steps, m, data)
    out.append(jax.device_get(metrics))
  return out


def _train_one(steps: Steps, m: Member, data: pipeline.Data):
  if data.resident:
    return steps.train_epoch(
      m.state,
      m.hyper,
      data.train.device_images,
      data.train.device_labels,
      m.data_rng,
      m.epoch,
    )
  per_step = []
  rows = sharding.host_rows(steps.mesh, steps.batch_size)
  state = m.state
  for images, labels, _ in data.train.batches(
    steps.batch_size, train=True, seed=m.config.seed, epoch=m.epoch, rows=rows
  ):
    batch = sharding.shard_batch((images, labels), steps.mesh, steps.batch_size)
    state, metrics = steps.train_batch(state, m.hyper, *batch)
    per_step.append(metrics)
  return state, jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *per_step)


def evaluate(steps: Steps, data, members: Sequence[Member]) -> list[dict[str, float]]:
  """Per member {"<split>/loss": ..., "<split>/accuracy": ...} on every split."""
  if not members:
    return []
  rows: list[dict[str, float]] = [{} for _ in members]
  if steps.vmapped:
    state = _stack([m.state for m in members])
    for name, split in data.evals.items():
      values = steps.evaluate(state, split)
      for i, row in enumerate(rows):
        for key, per_run in values.items():
          row[f"{name}/{key}"] = per_run[i]
    return rows
  for m, row in zip(members, rows):
    for name, split in data.evals.items():
      for key, value in steps.evaluate(m.state, split).items():
        row[f"{name}/{key}"] = value
  return rows
