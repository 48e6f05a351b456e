"""Training callbacks built from ``config.analysis``: mean-JSV tracking.

``train_and_evaluate`` calls ``make_callbacks(config.analysis, model, data)``
and runs each callback as ``callback(epoch, state) -> {name: value}`` at epoch
0 of a fresh run and after every evaluation; the values land in
``metrics.jsonl`` and TensorBoard with the other metrics. This reproduces the
mean-JSV curves of Dynamical Isometry Fig. 2: the Jacobian singular values of
a fixed set of training examples, measured as training proceeds.

Fields of ``config.analysis``:
  jsv_every_epochs  k > 0: log ``jsv/mean`` and ``jsv/std`` at epoch 0 and at
                    every evaluated epoch divisible by k; 0 turns it off.
  jsv_num_examples  how many training examples (the first ones of the train
                    split, preprocessed in eval mode: no augmentation) to use;
                    the same examples at every epoch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxprune.analysis import jacobian

Callback = Callable[[int, Any], dict[str, float]]


def fixed_inputs(data: Any, num_examples: int) -> jax.Array:
  """The first ``num_examples`` training inputs, preprocessed in eval mode.

  Args:
    data: a ``jaxprune.data.pipeline.Data`` (resident or streaming train split).
    num_examples: how many; fewer are returned if the split is smaller.

  Returns:
    ``[n, *data.input_shape]`` float32 normalised inputs.
  """
  if (
    isinstance(num_examples, bool)
    or not isinstance(num_examples, int)
    or num_examples < 1
  ):
    raise ValueError(
      f"analysis.jsv_num_examples must be a positive int, got {num_examples!r}"
    )
  split = data.train
  n = min(num_examples, split.num_examples)
  if hasattr(split, "images"):  # ResidentSplit: uint8 arrays in host memory.
    images = np.asarray(split.images[:n])
  else:  # StreamingSplit: eval order is the split's own order, no shuffling.
    images = next(iter(split.batches(n, train=False, seed=0, epoch=0)))[0][:n]
  # The rng is unused in eval mode (no augmentation); any key will do.
  return data.preprocess(jnp.asarray(images), jax.random.PRNGKey(0), train=False)


def jsv_callback(
  model: nn.Module,
  inputs: jax.Array,
  every_epochs: int,
  *,
  batch_size: int = 256,
  prefix: str = "jsv",
) -> Callback:
  """A callback logging the mean and std JSV of ``inputs`` every k epochs.

  Args:
    model: the trained model (eval mode is used, so BN uses running stats).
    inputs: fixed, preprocessed inputs.
    every_epochs: k; the callback measures at epochs divisible by k (0 too).
    batch_size: examples per compiled batch.
    prefix: metric name prefix (``"jsv"`` -> ``jsv/mean``, ``jsv/std``).

  Returns:
    ``callback(epoch, state) -> {f"{prefix}/mean": ..., f"{prefix}/std": ...}``
    (empty at epochs not divisible by k). ``state`` needs ``params`` and
    ``batch_stats`` (a ``TrainState``).
  """
  if (
    isinstance(every_epochs, bool)
    or not isinstance(every_epochs, int)
    or every_epochs < 1
  ):
    raise ValueError(f"every_epochs must be a positive int, got {every_epochs!r}")

  def callback(epoch: int, state: Any) -> dict[str, float]:
    if epoch % every_epochs:
      return {}
    apply_fn = jacobian.apply_fn_from(model, state.params, state.batch_stats)
    stats = jacobian.jsv_summary(
      apply_fn, inputs, stats=("mean", "std"), batch_size=batch_size
    )
    return {f"{prefix}/mean": stats["mean"], f"{prefix}/std": stats["std"]}

  return callback


def make_callbacks(analysis_config: Any, model: Any, data: Any) -> list[Callback]:
  """Training callbacks requested by ``config.analysis`` (see train/loop.py).

  Args:
    analysis_config: ``config.analysis`` (fields in the module docstring).
    model: the Flax model being trained.
    data: the run's ``jaxprune.data.pipeline.Data``.

  Returns:
    A list of ``callback(epoch, state) -> {name: value}``; empty when every
    analysis is off.

  Raises:
    ValueError: a negative or non-integer ``jsv_every_epochs``, or a
      non-positive ``jsv_num_examples``.
  """
  callbacks: list[Callback] = []
  every = analysis_config.jsv_every_epochs
  if isinstance(every, bool) or not isinstance(every, int) or every < 0:
    raise ValueError(
      f"analysis.jsv_every_epochs must be an int >= 0 (0 = off), got {every!r}"
    )
  if every:
    inputs = fixed_inputs(data, analysis_config.jsv_num_examples)
    callbacks.append(jsv_callback(model, inputs, every))
  return callbacks
