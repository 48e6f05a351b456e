"""Several protocol runs as one group: their training phases batch together.

`run_group(configs, workdirs)` runs `protocols.run(config, workdir)` for every
pair in threads under a `jaxprune.train.group.Coordinator`, so the runs'
training phases meet and train as groups (`jaxprune.train.loop.train_runs`):
seeds, retraining variants, LR schedules, budgets, weight decay, OrthP on/off,
unstructured sparsities and allocations all share one program per phase;
structured runs share one where their pruned widths agree. Every run writes
the files it writes alone, and returns its summary or raises its own error.

`form_groups(points, how, budget_bytes)` is the sweep runner's policy
(`--group=auto|seeds|none`): "none" runs points one by one, "seeds" groups
points that differ only in their seed, "auto" groups consecutive points of the
sweep up to `max_group_size` runs (and into at least one group per shard), a
number bounded by the memory `budget` over
the estimated memory of one run (`run_bytes`). Points whose programs differ
still run side by side in one thread group: each phase round trains one
program per distinct `Run.program_key`.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

import jax
import ml_collections
import numpy as np

from jaxprune import checks, config_utils, models
from jaxprune.data import datasets
from jaxprune.train import group, loop

GROUPINGS = ("auto", "seeds", "none")
MAX_GROUP = 64  # More threads than this only add host contention.
DEFAULT_BUDGET_BYTES = 4 << 30


def run_tasks(tasks: Sequence[Callable[[], Any]], mode: str = "auto") -> list[Any]:
  """Runs `tasks` (each calls a protocol, or `train_and_evaluate`) as one
  group; per task its return value or the exception it raised."""
  coordinator = group.Coordinator(functools.partial(loop.train_runs, mode=mode))
  return coordinator.run(tasks)


def run_group(
  configs: Sequence[ml_collections.ConfigDict],
  workdirs: Sequence[str],
  run_fn: Callable[[ml_collections.ConfigDict, str], Any] | None = None,
  mode: str = "auto",
) -> list[Any]:
  """`run_fn(configs[i], workdirs[i])` (default `protocols.run`) for every i as
  one group; per run its return value or the exception it raised."""
  if run_fn is None:
    from jaxprune import protocols  # The registry imports every protocol module.

    run_fn = protocols.run
  tasks = [functools.partial(run_fn, c, w) for c, w in zip(configs, workdirs)]
  return run_tasks(tasks, mode)


def seed_key(config: ml_collections.ConfigDict) -> str:
  """Equal for configs that differ only in `seed`."""
  fields = config_utils.to_json_dict(config)
  fields.pop("seed", None)
  return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def run_bytes(config: ml_collections.ConfigDict) -> int:
  """A rough upper estimate of one run's memory while training: the state
  (params, masks, gradients, optimizer and update buffers: 6 copies) plus the
  activations of one batch (taken as 16 x the params' count per example for
  conv nets, which keep many feature maps, and 4 x for dense nets)."""
  spec = datasets.get_spec(config.data.name)
  shape = tuple(config.data.image_size or spec.image_shape[:2]) + spec.image_shape[2:]
  model = models.create(
    config.model.name, spec.num_classes, **config_utils.model_overrides(config)
  )
  x = jax.ShapeDtypeStruct((1, *shape), np.float32)
  variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
  leaves = jax.tree_util.tree_leaves(variables["params"])
  params = sum(int(np.prod(v.shape)) for v in leaves)
  conv = any(len(v.shape) >= 3 for v in leaves)
  per_example = int(np.prod(shape)) * (16 if conv else 4)
  return 4 * (6 * params + config.batch_size * per_example)


def max_group_size(config: ml_collections.ConfigDict, budget_bytes: int) -> int:
  return int(np.clip(budget_bytes // max(run_bytes(config), 1), 1, MAX_GROUP))


def form_groups(
  points: Sequence[tuple[Any, ...]],
  how: str,
  budget_bytes: int = DEFAULT_BUDGET_BYTES,
  config_of: Callable[[Any], ml_collections.ConfigDict] = lambda p: p[2],
  min_groups: int = 1,
  max_runs: int | None = None,
) -> list[list[Any]]:
  """`points` (in order) split into the groups that run together; "auto"
  makes at least `min_groups` groups (one per shard) when there are enough
  points. `max_runs` caps a group's size below what memory allows: a group's
  rows are written as its runs end, and the runs of one group end together
  when they share a length, so small groups make a long sweep's rows arrive
  (and survive an interruption) group by group."""
  checks.choice(how, "--group", GROUPINGS)
  if max_runs is not None and (isinstance(max_runs, bool) or max_runs < 1):
    raise ValueError(f"--group_runs must be a positive integer, got {max_runs!r}")
  if how == "none" or not points:
    return [[p] for p in points]
  if how == "seeds":
    by_key: dict[str, list] = {}
    for p in points:
      by_key.setdefault(seed_key(config_of(p)), []).append(p)
    groups = list(by_key.values())
  else:
    groups = [list(points)]
  out = []
  for g in groups:
    size = max_group_size(config_of(g[0]), budget_bytes)
    size = min(size, max_runs or size)
    if how == "auto":
      size = min(size, -(-len(g) // max(min_groups, 1)))
    out.extend(g[i : i + size] for i in range(0, len(g), size))
  return out
