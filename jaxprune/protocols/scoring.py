"""Data passes that pruning decisions need: criterion scores and AccALLR accuracies.

* :func:`pruning_inputs`: for the data-dependent criteria
  (``pruning.data_scores.DATA_CRITERIA``: saliency, taylor, taylor_fo_bn,
  fisher, hrank) one jitted pass over N training batches
  (``pruning.score_batches``, 0 = the paper default), returning the keyword
  arguments of ``pruning.prune`` (``grads=`` or ``channel_scores=``); ``{}`` for
  the weight-only criteria. The batches are the first N of a permutation
  seeded by ``config.seed`` and the cycle, preprocessed without augmentation.
* :func:`train_accuracy`: the accuracy of a model over the whole training split
  (inference mode); AccALLR (Zimmer et al. 2023 App. C.1) compares it before
  and after pruning (:func:`acc_allr_stats`).

Used by `prune_retrain` / `bimp` (every cycle, so IMP rescored per cycle) and
`prune_epoch` through `prune_retrain.prune_once`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jaxprune import models, schedules
from jaxprune.data import pipeline
from jaxprune.protocols import common
from jaxprune.pruning import data_scores
from jaxprune.pruning import masks as masks_lib
from jaxprune.train import Start
from jaxprune.train.steps import eval_sums


def host_batches(
  split: Any, batch_size: int, *, shuffle: bool, seed: int, limit: int | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
  """(uint8 images, labels, weights) host batches of a resident or streaming
  split; `shuffle`: a seeded permutation (full batches only), else all examples
  in order (the last batch padded with weight 0); at most `limit` batches."""
  if isinstance(split, pipeline.ResidentSplit):
    n = split.num_examples
    if shuffle:
      order = np.random.default_rng(seed).permutation(n)
      order = order[: (n // batch_size) * batch_size]
    else:
      order = np.arange(n)
    gen = (
      pipeline.pad_batch(
        split.images[order[i : i + batch_size]],
        split.labels[order[i : i + batch_size]],
        batch_size,
      )
      for i in range(0, len(order), batch_size)
    )
  else:
    gen = split.batches(batch_size, train=shuffle, seed=seed, epoch=0)
  for i, batch in enumerate(gen):
    if limit is not None and i >= limit:
      return
    yield batch


def _model_and_data(config: ml_collections.ConfigDict, params: Any):
  ovr = common.overrides_without_widths(config)
  widths = models.read_widths(config.model.name, params, **ovr)
  model = models.create(
    config.model.name, common.num_classes(config), widths=widths, **ovr
  )
  return model, pipeline.load(config.data), widths


def _variables(start: Start) -> dict[str, Any]:
  params = start.params
  if start.masks is not None:
    params = masks_lib.apply(params, start.masks)
  return {"params": params, "batch_stats": start.batch_stats or {}}


def pruning_inputs(
  config: ml_collections.ConfigDict, start: Start, cycle: int = 1
) -> dict[str, Any]:
  """`pruning.prune` keywords for `config.pruning.criterion` scored on `start`."""
  p = config.pruning
  if p.criterion not in data_scores.DATA_CRITERIA:
    return {}
  n = data_scores.num_batches(p.criterion, p.score_batches)
  model, data, widths = _model_and_data(config, start.params)
  groups = models.channel_groups(
    config.model.name,
    common.num_classes(config),
    widths=widths,
    **common.overrides_without_widths(config),
  )
  variables = _variables(start)
  total, count, seen = None, 0, 0
  seed = int(jax.random.randint(common.pruning_rng(config, cycle), (), 0, 2**30))
  for images, labels, _ in host_batches(
    data.train, config.batch_size, shuffle=True, seed=seed, limit=n
  ):
    x = data.preprocess(jnp.asarray(images), jax.random.PRNGKey(0), train=False)
    stats = data_scores.batch_statistics(
      p.criterion, model, variables, x, jnp.asarray(labels), groups
    )
    total = stats if total is None else jax.tree_util.tree_map(jnp.add, total, stats)
    count, seen = count + 1, seen + len(labels)
  if total is None:
    raise ValueError("pruning.score_batches: the training split has no full batch")
  total = jax.device_get(total)
  if p.criterion in data_scores.GRAD_CRITERIA:
    return {"grads": jax.tree_util.tree_map(lambda g: g / count, total)}
  if p.criterion == "hrank":  # Average rank per example.
    total = {k: v / seen for k, v in total.items()}
  return {"channel_scores": {k: np.asarray(v) for k, v in total.items()}}


def evaluate(
  config: ml_collections.ConfigDict, start: Start, split: str = "train"
) -> dict[str, float]:
  """Inference-mode loss and accuracy of `start` (masks applied) over the
  whole `split`: "train" or an evaluation split ("test", "val")."""
  model, data, _ = _model_and_data(config, start.params)
  source = data.train if split == "train" else data.evals.get(split)
  if source is None:
    allowed = ["train", *data.evals]
    raise ValueError(f"split must be one of {allowed}, got {split!r}")
  fn = jax.jit(
    lambda v, x, y, w: eval_sums(v, x, y, w, model=model, preprocess=data.preprocess)
  )
  variables = _variables(start)
  correct = loss = count = 0.0
  for images, labels, weights in host_batches(
    source, config.eval_batch_size, shuffle=False, seed=0
  ):
    sums = jax.device_get(fn(variables, images, labels, weights))
    correct += float(sums["correct_sum"])
    loss += float(sums["loss_sum"])
    count += float(sums["count"])
  count = max(count, 1.0)
  return {"loss": loss / count, "accuracy": correct / count}


def train_accuracy(config: ml_collections.ConfigDict, start: Start) -> float:
  """Inference-mode accuracy of `start` over the whole training split."""
  return evaluate(config, start, "train")["accuracy"]


def acc_allr_stats(
  config: ml_collections.ConfigDict,
  before: Start,
  after: Start,
  norm_change: float,
  fraction: float,
) -> schedules.PruningStats:
  """The cycle's ALLR statistics with the train accuracies AccALLR needs."""
  return schedules.PruningStats(
    norm_change,
    max(fraction, 1e-12),
    train_accuracy_before=train_accuracy(config, before),
    train_accuracy_after=train_accuracy(config, after),
  )
