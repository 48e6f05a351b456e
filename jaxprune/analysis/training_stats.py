"""Scalar diagnostics of training curves: trainability accuracy, pruning stability.

* Trainability accuracy (Wang et al. 2023, "Why is the state of pruning so
  confusing?", Sec. 5.1, Eq. 1): ``T = (1/N) sum_{i=1..N} Acc_i``, the mean
  per-epoch accuracy over the first N (re)training epochs, N being the length
  of the first LR stage of the schedule. It measures how fast a (pruned)
  network trains, so it is only comparable between runs with the same LR
  schedule. The paper does not name the split of Acc_i, but its Table 5 / 8
  values can only be training accuracy: TA 88.00 with a final test accuracy
  of 79.57 (P30F90, 1e-1) and 37.93 vs 29.89 (P90F30, 1e-4); a mean of test
  accuracies over the first stage cannot exceed the test accuracy the
  fine-tuning ends at by 8 points. So the default split is ``"train"`` (the
  per-epoch mean over the training batches); ``split="test"`` is the option.
* Pruning stability (Zimmer et al. 2023, App. A, Def. A.1, after Bartoldson et
  al. 2020): ``1 - (t_pre - t_post) / t_pre`` with t_pre / t_post the test
  accuracy before / right after pruning (before retraining); 1 means pruning
  cost no accuracy.

Inputs are plain numbers or the rows of a run's ``metrics.jsonl`` (one dict
per evaluated epoch with ``epoch`` and ``<split>/accuracy``), so the functions
work on a finished workdir as well as inside a notebook.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import ml_collections

from jaxprune import io_utils
from jaxprune.schedules import core, training


def first_stage_epochs(schedule: Any) -> int:
  """Length in epochs of the first LR stage of an epoch-wise schedule.

  Args:
    schedule: a piecewise spec string (``"0:0.01,30:0.001,60:0.0001"`` -> 30),
      or a schedule config (ConfigDict or dict) named ``piecewise``, ``step``
      (first milestone), ``halving`` or ``constant`` (whole run; needs
      ``epochs``).

  Returns:
    N of Eq. 1: the first stage boundary after epoch 0 (spec boundaries count
    even when the LR does not change there, e.g. ``"0:0.001,45:0.001"`` ->
    45), or the total epochs for a single-stage schedule.

  Raises:
    ValueError: for schedules without stages (cosine, linear, one-cycle,
      retraining variants); pass N explicitly for those.
  """
  if isinstance(schedule, str):
    starts, _ = core.parse_spec(schedule)
    if len(starts) < 2:
      raise ValueError(
        f"spec {schedule!r} has a single stage; its length is the run's epochs"
      )
    return starts[1]
  if isinstance(schedule, Mapping) and not isinstance(
    schedule, ml_collections.ConfigDict
  ):
    schedule = ml_collections.ConfigDict(dict(schedule))
  name = schedule.get("name")
  if name not in training.STAIRCASES:
    raise ValueError(
      f"first_stage_epochs needs a step-wise schedule ({list(training.STAIRCASES)}), "
      f"got {name!r}; pass the first-stage length explicitly"
    )
  starts, _, epochs = training.staircase(schedule, "schedule")
  if len(starts) > 1:
    return starts[1]
  if epochs is None:
    raise ValueError("a constant schedule without 'epochs' has no stage length")
  return int(epochs)


# The split Wang et al. 2023's TA values are on (see the module docstring).
DEFAULT_TA_SPLIT = "train"


def accuracy_curve(
  rows: Sequence[Mapping[str, Any]], split: str = "test"
) -> dict[int, float]:
  """``{epoch: accuracy}`` from metrics rows that carry ``<split>/accuracy``."""
  key = f"{split}/accuracy"
  return {int(r["epoch"]): float(r[key]) for r in rows if key in r and "epoch" in r}


def trainability_accuracy(
  history: Sequence[float] | Sequence[Mapping[str, Any]],
  first_stage: int | str | Any,
  *,
  split: str = DEFAULT_TA_SPLIT,
) -> float:
  """Trainability accuracy T of Eq. 1 (Wang et al. 2023).

  Args:
    history: per-epoch accuracies for epochs 1, 2, ... (floats), or metrics
      rows (dicts with ``epoch`` and ``<split>/accuracy``; rows without the
      key, e.g. an epoch-0 callback row, are ignored).
    first_stage: N as an int, or a schedule spec/config for
      :func:`first_stage_epochs`.
    split: which accuracy to read from rows (``"train"``, the paper's and the
      default; ``"test"``, ``"val"``); ignored for a float history.

  Returns:
    The mean accuracy over epochs 1..N, in the unit of the inputs.

  Raises:
    ValueError: N < 1, or epochs 1..N not all present.
  """
  n = first_stage if isinstance(first_stage, int) else first_stage_epochs(first_stage)
  if isinstance(n, bool) or n < 1:
    raise ValueError(f"the first LR stage must be >= 1 epoch, got {n!r}")
  if history and isinstance(history[0], Mapping):
    curve = accuracy_curve(history, split)  # type: ignore[arg-type]
    missing = [e for e in range(1, n + 1) if e not in curve]
    if missing:
      raise ValueError(
        f"trainability accuracy needs {split}/accuracy at epochs 1..{n}; "
        f"missing epochs {missing[:5]}{'...' if len(missing) > 5 else ''}"
      )
    values = [curve[e] for e in range(1, n + 1)]
  else:
    if len(history) < n:
      raise ValueError(
        f"trainability accuracy needs {n} per-epoch accuracies, got {len(history)}"
      )
    values = [float(a) for a in history[:n]]  # type: ignore[arg-type]
  return sum(values) / n


def trainability_from_workdir(workdir: str, *, split: str = DEFAULT_TA_SPLIT) -> float:
  """Trainability accuracy of a finished run, N from its ``config.json`` schedule."""
  config = io_utils.read_json(os.path.join(workdir, "config.json"))
  rows = io_utils.read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  return trainability_accuracy(
    rows, first_stage_epochs(config["schedule"]), split=split
  )


def pruning_stability(
  accuracy_before: float, accuracy_after: float, *, clip: bool = True
) -> float:
  """Pruning stability of Zimmer et al. Def. A.1: ``1 - (t_pre - t_post) / t_pre``.

  Args:
    accuracy_before: t_pre, test accuracy of the trained model before pruning.
    accuracy_after: t_post, test accuracy right after pruning (no retraining).
    clip: the definition assumes t_post <= t_pre (result in [0, 1]); with clip,
      a pruned model that happens to score higher gets 1 instead of > 1.

  Returns:
    The stability; equals ``t_post / t_pre`` before clipping.
  """
  if not accuracy_before > 0:
    raise ValueError(f"accuracy_before must be > 0, got {accuracy_before!r}")
  if accuracy_after < 0:
    raise ValueError(f"accuracy_after must be >= 0, got {accuracy_after!r}")
  stability = 1.0 - (accuracy_before - accuracy_after) / accuracy_before
  return min(stability, 1.0) if clip else stability
