"""Recompile guard: the compiled train/eval programs are built once and reused.

Counts both traces (the jitted functions' `_cache_size()`) and XLA backend
compiles (the `jax.monitoring` compile-duration event, keyed by function name)
on a tiny MLP-7 over the tiny dataset, across:

* many epochs and single steps of one `Steps` (shapes never change);
* a prune-retrain cycle inside one `Steps`: new masks change values, not
  structure, so the train step must not retrace;
* LR schedules: a schedule is data (the run's LR table, `train.hyper`), so new
  schedule values, a new seed or new masks of the same shapes reuse the
  compiled program; the loop keeps the `Steps` of earlier phases, so a whole
  prune-retrain protocol compiles its train epoch once.
"""

from __future__ import annotations

import collections
import contextlib

import jax
import ml_collections
import numpy as np
import optax
import pytest
from jax import monitoring

from jaxprune import models, protocols, pruning
from jaxprune.data import pipeline
from jaxprune.train import hyper as hyper_lib
from jaxprune.train import loop, sharding
from jaxprune.train.state import state_from_params
from jaxprune.train.steps import Steps, eval_variables

pytestmark = pytest.mark.usefixtures("fast_compiles")

_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


@contextlib.contextmanager
def count_compiles():
  """Yields a Counter of XLA compiles per function name while active."""
  counts: collections.Counter = collections.Counter()

  def listener(event: str, duration: float, **kwargs) -> None:
    if event == _COMPILE_EVENT:
      name = kwargs.get("fun_name", "?")  # e.g. "jit(_train_epoch)".
      counts[name.removeprefix("jit(").removesuffix(")")] += 1

  monitoring.register_event_duration_secs_listener(listener)
  try:
    yield counts
  finally:
    monitoring.unregister_event_duration_listener(listener)


OPTIMIZER = ml_collections.ConfigDict(dict(name="sgd", momentum=0.9, weight_decay=1e-4))


def _hyper(schedule):
  return hyper_lib.build(OPTIMIZER, schedule, 40)


def _tiny_steps(schedule):
  model = models.create("mlp7_relu", widths=(16,) * 6)
  make_tx = hyper_lib.make_tx(OPTIMIZER)
  pre = pipeline.Preprocess(mean=(0.5,), std=(0.25,), augment="none")
  steps = Steps(model, make_tx, pre, sharding.make_mesh(), 32, 64)
  variables = model.init(jax.random.key(0), np.zeros((1, 32, 32, 1), np.float32))
  return steps, make_tx(_hyper(schedule)), jax.device_get(variables["params"])


def _data(n: int = 128):
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (n, 32, 32, 1), dtype=np.uint8)
  return jax.numpy.asarray(images), jax.numpy.asarray(rng.integers(0, 10, n))


def _placed(steps: Steps, state):
  # What train_and_evaluate does (its init is jitted with replicated
  # out_shardings): the state enters the step with the sharding it leaves with.
  return jax.device_put(state, sharding.replicated(steps.mesh))


def _masks(params, sparsity: float):
  cfg = pruning.default_config()
  cfg.name, cfg.sparsity = "unstructured", sparsity
  res = pruning.prune(cfg, params, {}, model_name="mlp7_relu")
  return jax.device_get((res.params, res.masks))


def test_epochs_steps_and_new_masks_never_retrace():
  schedule = optax.linear_schedule(0.05, 0.0, 40)
  steps, tx, params = _tiny_steps(schedule)
  hyper = _hyper(schedule)
  images, labels = _data()
  key, data_key = jax.random.key(1), jax.random.key(2)
  with count_compiles() as compiles:
    state = _placed(steps, state_from_params(params, {}, tx, key))  # Dense.
    for epoch in range(3):
      state, _ = steps.train_epoch(state, hyper, images, labels, data_key, epoch)
      steps.evaluate_resident(eval_variables(state), images, labels)
    for _ in range(3):
      state, _ = steps.train_batch(state, hyper, images[:32], labels[:32])
    # Prune-retrain cycles: masks (and params) are new host arrays each time,
    # the optimizer state is fresh, as a protocol's retraining phase has it.
    for sparsity in (0.5, 0.8):
      pruned, masks = _masks(jax.device_get(state.params), sparsity)
      state = _placed(
        steps, state_from_params(pruned, {}, tx, jax.random.key(3), masks)
      )
      for epoch in range(2):
        state, _ = steps.train_epoch(state, hyper, images, labels, data_key, epoch)
      state, _ = steps.train_batch(state, hyper, images[:32], labels[:32])
      steps.evaluate_resident(eval_variables(state), images, labels)
  jax.block_until_ready(state)
  assert steps.scan_epoch._cache_size() == 1
  assert steps.train_batch._cache_size() == 1
  assert steps.evaluate_resident._cache_size() == 1
  assert compiles["_train_epoch"] == 1, compiles
  assert compiles["train_step"] == 1, compiles
  assert compiles["_evaluate_resident"] == 1, compiles
  # The masks were applied: 80% of the kernels are exactly zero at the end.
  kernels = [np.asarray(v["kernel"]) for v in jax.device_get(state.params).values()]
  zeros = sum(int(np.sum(k == 0)) for k in kernels) / sum(k.size for k in kernels)
  assert zeros == pytest.approx(0.8, abs=1e-2)


def test_new_schedule_values_seeds_and_lengths_reuse_the_program():
  # New schedule values (and a table of another length, padded as a group
  # pads them) go through the same compiled epoch: schedules are data.
  images, labels = _data()
  data_key = jax.random.key(2)
  steps, tx, params = _tiny_steps(optax.linear_schedule(0.05, 0.0, 40))
  with count_compiles() as compiles:
    for lr in (0.05, 0.01, 0.2):
      hyper = hyper_lib.pad(_hyper(optax.linear_schedule(lr, 0.0, 40)), 40)
      state = _placed(steps, state_from_params(params, {}, tx, jax.random.key(1)))
      for epoch in range(2):
        state, metrics = steps.train_epoch(
          state, hyper, images, labels, data_key, epoch
        )
      assert float(metrics["lr"][0]) < lr  # The new values are the ones used.
      assert float(metrics["lr"][0]) > lr / 2
  assert compiles["_train_epoch"] == 1, compiles
  assert steps.scan_epoch._cache_size() == 1


@pytest.mark.xfail(
  strict=True,
  reason="known: a state not yet placed on the mesh (e.g. straight from "
  "state_from_params) has a different abstract sharding than the replicated "
  "state the step returns, so the second call retraces and compiles again",
)
def test_unplaced_state_compiles_once():
  steps, tx, params = _tiny_steps(optax.linear_schedule(0.05, 0.0, 40))
  images, labels = _data()
  with count_compiles() as compiles:
    state = state_from_params(params, {}, tx, jax.random.key(1))
    for epoch in range(2):
      state, _ = steps.train_epoch(
        state,
        _hyper(optax.linear_schedule(0.05, 0.0, 40)),
        images,
        labels,
        jax.random.key(2),
        epoch,
      )
  assert compiles["_train_epoch"] == 1, compiles


def test_prune_retrain_protocol_compiles_train_epoch_once_per_phase(
  tiny_config, tmp_path, monkeypatch
):
  built = []

  class CountingSteps(Steps):
    def __post_init__(self):
      super().__post_init__()
      built.append(self)

  monkeypatch.setattr(loop, "Steps", CountingSteps)
  c = tiny_config.copy_and_resolve_references()
  with c.unlocked():
    c.protocol = "prune_retrain"
    c.num_epochs = 2
    c.data.train_limit = 256
    c.model.widths = (16,) * 6
    c.pruning.name, c.pruning.sparsity = "unstructured", 0.8
    c.pruning.schedule, c.pruning.imp_cycles = "imp", 2
    c.retrain.num_epochs = 2
    c.retrain.schedule = "allr"  # LR values depend on each cycle's pruning.
    c.cache_dir = str(tmp_path / "cache")
  loop._STEPS.clear()
  with count_compiles() as compiles:
    protocols.run(c, str(tmp_path / "run"))
  # Pretraining and two IMP retraining cycles (ALLR: other LR values each
  # time) share one program: one Steps, one train-epoch compile.
  assert len(built) == 1
  assert built[0].scan_epoch._cache_size() == 1
  assert compiles["_train_epoch"] == 1, compiles
  assert compiles["_evaluate_resident"] == 1, compiles
