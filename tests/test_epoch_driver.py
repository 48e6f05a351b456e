"""Epoch drivers: the scanned epoch and the per-step loop train the same way.

`Steps.train_epoch` runs a resident epoch either as one `lax.scan` or as a
Python loop of jitted steps that gather their batch from the on-device
permutation (conv nets on CPU, where XLA leaves the scan body's gradient
convolutions on a slow path). Checked here against an independent computation:
the loop equals `train_batch` fed host-gathered batches in the permutation's
order, bit for bit; the scan agrees with it (bit for bit for a dense net, to
float rounding for a conv net, whose convolutions XLA runs with another kernel
inside the scan); the automatic choice; no recompiles across epochs and masks.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from test_recompile import count_compiles

from jaxprune import models
from jaxprune.data import pipeline
from jaxprune.train import hyper as hyper_lib
from jaxprune.train import sharding
from jaxprune.train.state import state_from_params
from jaxprune.train.steps import Steps, resolve_epoch_driver

pytestmark = pytest.mark.usefixtures("fast_compiles")

BATCH, N = 16, 64  # Four steps per epoch.
NETS = {"mlp7_relu": dict(widths=(8,) * 6), "lenet5_relu": dict(widths=(2, 4, 8, 8))}


CFG = ml_collections.ConfigDict(dict(name="sgd", momentum=0.9, weight_decay=1e-4))
HYPER = hyper_lib.build(CFG, optax.linear_schedule(0.05, 0.0, 40), 40)


def _setup(name: str, driver: str):
  model = models.create(name, **NETS[name])
  make_tx = hyper_lib.make_tx(CFG)
  tx = make_tx(HYPER)
  pre = pipeline.Preprocess(mean=(0.5,), std=(0.25,), augment="flip")
  mesh = sharding.make_mesh()
  steps = Steps(model, make_tx, pre, mesh, BATCH, BATCH, epoch_driver=driver)
  variables = model.init(jax.random.key(0), np.zeros((1, 32, 32, 1), np.float32))
  state = state_from_params(variables["params"], {}, tx, jax.random.key(1))
  rng = np.random.default_rng(0)
  images = jnp.asarray(rng.integers(0, 256, (N, 32, 32, 1), dtype=np.uint8))
  labels = jnp.asarray(rng.integers(0, 10, N), jnp.int32)
  return steps, jax.device_put(state, sharding.replicated(mesh)), images, labels


def _epochs(name: str, driver: str, epochs: int = 2):
  steps, state, images, labels = _setup(name, driver)
  losses = []
  for epoch in range(epochs):
    state, metrics = steps.train_epoch(
      state, HYPER, images, labels, jax.random.key(2), epoch
    )
    losses.append(np.asarray(metrics["loss"]))
  return steps, jax.device_get(state.params), np.concatenate(losses)


def _by_hand(name: str, epochs: int = 2):
  """`train_batch` on host-gathered batches of the documented epoch permutation."""
  steps, state, images, labels = _setup(name, "scan")
  host_images, host_labels, losses = np.asarray(images), np.asarray(labels), []
  for epoch in range(epochs):
    order = pipeline.epoch_permutation(
      jax.random.fold_in(jax.random.key(2), epoch), N, BATCH
    )
    for idx in np.asarray(order):
      state, m = steps.train_batch(state, HYPER, host_images[idx], host_labels[idx])
      losses.append(float(m["loss"]))
  return jax.device_get(state.params), np.asarray(losses)


@pytest.mark.parametrize("name", sorted(NETS))
def test_loop_driver_equals_single_steps_bit_for_bit(name):
  steps, params, losses = _epochs(name, "loop")
  assert steps.epoch_driver == "loop"
  want_params, want_losses = _by_hand(name)
  np.testing.assert_array_equal(losses, want_losses)
  jax.tree_util.tree_map(np.testing.assert_array_equal, params, want_params)


def test_scan_equals_loop_bit_for_bit_for_a_dense_net():
  _, scan_params, scan_losses = _epochs("mlp7_relu", "scan")
  _, loop_params, loop_losses = _epochs("mlp7_relu", "loop")
  np.testing.assert_array_equal(scan_losses, loop_losses)
  jax.tree_util.tree_map(np.testing.assert_array_equal, scan_params, loop_params)


def test_scan_equals_loop_to_rounding_for_a_conv_net():
  # Inside the scan XLA:CPU runs the gradient convolutions with its generic
  # loop emitter instead of Eigen, so sums are ordered differently: equal up
  # to float32 rounding, not bit for bit.
  _, scan_params, scan_losses = _epochs("lenet5_relu", "scan")
  _, loop_params, loop_losses = _epochs("lenet5_relu", "loop")
  np.testing.assert_allclose(scan_losses, loop_losses, rtol=1e-5)
  jax.tree_util.tree_map(
    lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
    scan_params,
    loop_params,
  )


def test_auto_driver_picks_loop_for_conv_nets_on_cpu_only():
  dense = {"fc0": {"kernel": np.zeros((4, 3)), "bias": np.zeros(3)}}
  conv = {**dense, "conv0": {"kernel": np.zeros((5, 5, 1, 6))}}
  assert resolve_epoch_driver("auto", dense, "cpu") == "scan"
  assert resolve_epoch_driver("auto", conv, "cpu") == "loop"
  assert resolve_epoch_driver("auto", conv, "gpu") == "scan"
  assert resolve_epoch_driver("scan", conv, "cpu") == "scan"
  with pytest.raises(ValueError, match="epoch_driver='while'; allowed: auto, scan"):
    resolve_epoch_driver("while", dense, "cpu")


def test_loop_driver_compiles_once_across_epochs_and_new_masks():
  steps, state, images, labels = _setup("lenet5_relu", "auto")
  assert steps.driver_for(state) == "loop"
  with count_compiles() as compiles:
    for keep in (jnp.ones_like, jnp.zeros_like):
      masks = jax.tree_util.tree_map(keep, state.masks)
      state = jax.device_put(
        state.replace(masks=masks), sharding.replicated(steps.mesh)
      )
      for epoch in range(2):
        state, _ = steps.train_epoch(
          state, HYPER, images, labels, jax.random.key(2), epoch
        )
  jax.block_until_ready(state)
  assert compiles["_indexed_step"] == 1, compiles
  assert compiles["_epoch_order"] == 1, compiles
  assert steps.indexed_step._cache_size() == 1
  assert compiles["_train_epoch"] == 0, compiles
  # All-zero masks kept every weight at exactly zero.
  assert all(not np.any(leaf) for leaf in jax.tree_util.tree_leaves(state.params))
