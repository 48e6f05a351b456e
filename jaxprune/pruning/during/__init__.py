"""Pruning during training: the methods BIMP is compared against (Zimmer et al.
2023, Table 2) and the sparse-training baselines, one registry.

A method is built from a run's config into a `Method`: its `StepHooks` (what it
changes inside the jitted train step: forward weights, penalties, gradient
selection, in-step mask updates, its own trainable variables in
`TrainState.aux`), an optional host-side `on_epoch_end` (e.g. GMP's pruning
events), and `final` (the hard-pruned weights and masks the trained run ends
with, which counting, evaluation after training and the optional fine-tuning
use). The `during` protocol (`jaxprune.protocols.during`) trains any
registered method from scratch under an epoch budget.

Methods register with `@register(name, defaults={...}, validate=fn)`:
`defaults` become the fields of `config.during.<name>` (so every method
option is a validated, hashed config field), `validate(config)` checks them
with one-line errors. A builder gets a `Context` (config, the prunable-leaf
tree of the model, steps per epoch) and returns a `Method`.
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


def default_config() -> ml_collections.ConfigDict:
  """`config.during`: the method's name and every registered method's options."""
  c = ml_collections.ConfigDict()
  c.method = ""  # A registered name (the `during` protocol requires one).
  for name in METHODS.names():
    c[name] = ml_collections.ConfigDict(METHODS.get(name).defaults)
  return c


def build(context: Context) -> Method:
  """The `Method` of `context.config.during.method`."""
  entry = METHODS.get(context.config.during.method, "during.method")
  return entry.build(context)


def validate(config: ml_collections.ConfigDict) -> None:
  entry = METHODS.get(config.during.method, "during.method")
  if entry.validate is not None:
    entry.validate(config)


from jaxprune.pruning.during import gsm, lc  # noqa: E402,F401 (registers)
