"""The types and the registry of the pruning-during-training methods
(`Context`, `Method`, `register`, `METHODS`), apart from the package
`jaxprune.pruning.during` that re-exports them and imports every method module:
method modules import these from here, so no module imports the package that
imports it (tests/test_import_graph.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import ml_collections

from jaxprune import registry
from jaxprune.pruning.step_hooks import StepHooks

EpochEnd = Callable[[int, Any], Any]  # (epochs done, TrainState) -> TrainState.
Final = Callable[[Any], tuple[Any, Any]]  # TrainState -> (params, masks), hard.


@dataclasses.dataclass(frozen=True)
class Context:
  """What a method is built from."""

  config: ml_collections.ConfigDict  # The whole run config.
  prunable: Any  # Tree like params: True where a leaf may be pruned.
  steps_per_epoch: int


@dataclasses.dataclass(frozen=True)
class Method:
  """A built pruning-during-training method (see the module docstring)."""

  hooks: StepHooks
  final: Final
  on_epoch_end: EpochEnd | None = None
  # True: `final` hits `config.pruning.sparsity` exactly (top-k methods);
  # False: the sparsity follows from other hyperparameters (STR, DST, CS), so
  # tests and reports treat the target as approximate.
  exact_sparsity: bool = True


@dataclasses.dataclass(frozen=True)
class Entry:
  build: Callable[[Context], Method]
  defaults: dict[str, Any]
  validate: Callable[[ml_collections.ConfigDict], None] | None


METHODS: registry.Registry[Entry] = registry.Registry("during.method")


def register(
  name: str,
  *,
  defaults: dict[str, Any] | None = None,
  validate: Callable[[ml_collections.ConfigDict], None] | None = None,
) -> Callable[[Callable[[Context], Method]], Callable[[Context], Method]]:
  """`@register("dnw", defaults={...})`: adds a method builder."""

  def add(build: Callable[[Context], Method]) -> Callable[[Context], Method]:
    METHODS.add(name, Entry(build, dict(defaults or {}), validate))
    return build

  return add
