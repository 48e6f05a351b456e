"""Pruning during training: the methods BIMP is compared against (Zimmer et al.
2023, Table 2) and the sparse-training baselines, one registry.

A method is built from a run's config into a `Method`: its `StepHooks` (what it
changes inside the jitted train step: forward weights, penalties, gradient
selection, in-step mask updates, its own trainable variables in
`TrainState.aux`), an optional host-side `on_epoch_end` (e.g. GMP's pruning
events), and `final` (the hard-pruned weights and masks the trained run ends
with, which counting, evaluation after training and the optional fine-tuning
use), and for methods that train sparse from the first step `init_sparse`
(the weights and masks the run starts with). The `during` protocol
(`jaxprune.protocols.during`) trains any registered method from scratch
under an epoch budget.

Methods register with `@register(name, defaults={...}, validate=fn)` (from
`jaxprune.pruning.during.base`, which defines the registry):
`defaults` become the fields of `config.during.<name>` (so every method
option is a validated, hashed config field), `validate(config)` checks them
with one-line errors. A builder gets a `Context` (config, the prunable-leaf
tree of the model, steps per epoch) and returns a `Method`.
"""

from __future__ import annotations

import ml_collections

from jaxprune.pruning.during.base import (  # noqa: F401 (the package's API)
  METHODS,
  Context,
  Entry,
  EpochEnd,
  Final,
  InitSparse,
  Method,
  register,
)


def default_config() -> ml_collections.ConfigDict:
  """`config.during`: the method's name and every registered method's options."""
  c = ml_collections.ConfigDict()
  c.method = ""  # A registered name (the `during` protocol requires one).
  # Optional retraining of the hard-pruned net with fixed masks (Zimmer et
  # al. give the pruning-stable methods 30 epochs of FT on CIFAR), with a
  # retraining schedule as `retrain.schedule` names them ("ft": the last LR
  # of the training schedule, constant).
  c.finetune_epochs = 0
  c.finetune_schedule = "ft"
  # Start from the dense pretraining of the run's own recipe (the shared
  # dense phase of prune_retrain / bimp, or `retrain.dense_workdir`) instead
  # of a random init: LC and GSM "applied to pretrained models" (Zimmer et
  # al. Sec. 3.3). The method then trains `num_epochs` more.
  c.pretrained = False
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


from jaxprune.pruning.during import (  # noqa: E402,F401 (registers)
  cs,
  dnw,
  dpf,
  dst,
  gmp,
  gsm,
  lc,
  rigl,
  set_,
  str_,
)
