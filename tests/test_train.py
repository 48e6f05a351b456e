"""Training: workdir contract, learning, resume, divergence, masks, optimizer maths."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from jaxprune import io_utils
from jaxprune.train import (
  TrainingDivergedError,
  checkpointing,
  optim,
  train_and_evaluate,
)
from jaxprune.train.state import state_from_params


def _final_params(workdir):
  with checkpointing.Checkpointer(os.path.join(workdir, "checkpoints")) as ckpt:
    return ckpt.restore("final")[0]["params"]


def test_workdir_contract_and_learning(tiny_config, tmp_path):
  workdir = str(tmp_path / "run")
  summary = train_and_evaluate(tiny_config, workdir)
  assert summary["status"] == "completed" and summary["epoch"] == 3
  for name in ("config.json", "metrics.jsonl", "summary.json", "checkpoints"):
    assert os.path.exists(os.path.join(workdir, name)), name
  assert any(
    f.startswith("events.out.tfevents") for f in os.listdir(f"{workdir}/tensorboard")
  )
  rows = io_utils.read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  assert [r["epoch"] for r in rows] == [1, 2, 3]
  for key in (
    "step",
    "epoch",
    "train/loss",
    "train/accuracy",
    "test/loss",
    "test/accuracy",
  ):
    assert key in rows[-1]
  assert rows[-1]["step"] == 3 * (512 // 64)
  # The synthetic classes are separable: far above the 10% chance level.
  assert summary["test/accuracy"] > 0.5
  assert (
    io_utils.read_json(os.path.join(workdir, "summary.json"))["status"] == "completed"
  )
  # Learning rate follows the piecewise schedule "0:0.05,2:0.005".
  assert rows[0]["lr"] == pytest.approx(0.05) and rows[2]["lr"] == pytest.approx(0.005)


@pytest.mark.parametrize("model", ["mlp7_relu", "lenet5_relu"])
def test_resume_after_kill_is_bit_identical(tiny_config, tmp_path, monkeypatch, model):
  # LeNet-5 trains with the per-step loop epoch driver on CPU, MLP-7 with the scan.
  tiny_config = tiny_config.copy_and_resolve_references()
  with tiny_config.unlocked():
    tiny_config.model.name = model
    tiny_config.model.widths = {"mlp7_relu": (16,) * 6, "lenet5_relu": (2, 4, 8, 8)}[
      model
    ]
  reference = str(tmp_path / "uninterrupted")
  train_and_evaluate(tiny_config, reference)

  interrupted = str(tmp_path / "interrupted")
  original_save = checkpointing.Checkpointer.save
  calls = []

  def save_then_die(self, kind, step, state, meta):
    original_save(self, kind, step, state, meta)
    calls.append(kind)
    if kind == "latest":
      raise KeyboardInterrupt("simulated kill after the first checkpoint")

  monkeypatch.setattr(checkpointing.Checkpointer, "save", save_then_die)
  with pytest.raises(KeyboardInterrupt):
    train_and_evaluate(tiny_config, interrupted)
  monkeypatch.setattr(checkpointing.Checkpointer, "save", original_save)
  assert calls == ["latest"]
  assert len(io_utils.read_jsonl(os.path.join(interrupted, "metrics.jsonl"))) == 1

  summary = train_and_evaluate(tiny_config, interrupted)
  assert summary["epoch"] == 3
  want, got = _final_params(reference), _final_params(interrupted)
  jax.tree_util.tree_map(np.testing.assert_array_equal, want, got)
  rows = io_utils.read_jsonl(os.path.join(interrupted, "metrics.jsonl"))
  assert [r["epoch"] for r in rows] == [1, 2, 3]


def test_rerun_with_other_config_is_refused(tiny_config, tmp_path):
  workdir = str(tmp_path / "run")
  with tiny_config.unlocked():
    tiny_config.num_epochs = 1
  tiny_config.schedule.spec = "0:0.05"
  train_and_evaluate(tiny_config, workdir)
  tiny_config.optimizer.momentum = 0.5
  with pytest.raises(
    ValueError, match=r"different config \(fields: optimizer.momentum\)"
  ):
    train_and_evaluate(tiny_config, workdir)


def test_divergence_is_reported(tiny_config, tmp_path):
  workdir = str(tmp_path / "run")
  tiny_config.schedule.spec = "0:1e12"
  with pytest.raises(TrainingDivergedError, match="not finite"):
    train_and_evaluate(tiny_config, workdir)
  summary = io_utils.read_json(os.path.join(workdir, "summary.json"))
  assert summary["status"] == "diverged"


def test_validation_split_logs_val_metrics_and_best_checkpoint(tiny_config, tmp_path):
  workdir = str(tmp_path / "run")
  tiny_config.data.validation_fraction = 0.25
  summary = train_and_evaluate(tiny_config, workdir)
  rows = io_utils.read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  assert all("val/accuracy" in r for r in rows)
  assert summary["best_val_accuracy"] == max(r["val/accuracy"] for r in rows)
  assert os.listdir(os.path.join(workdir, "checkpoints", "best"))


def test_streaming_path_trains(tiny_config, tmp_path):
  tiny_config.data.resident = False
  tiny_config.num_epochs = 2
  tiny_config.schedule.spec = "0:0.05,1:0.005"
  summary = train_and_evaluate(tiny_config, str(tmp_path / "run"))
  assert summary["status"] == "completed" and summary["test/accuracy"] > 0.2


def test_sgd_matches_pytorch_update_rule():
  """One step of SGD(momentum, weight_decay, nesterov) vs PyTorch's documented rule."""
  w0 = np.array([1.0, -2.0, 0.5], np.float32)
  grads = [
    np.array([0.3, 0.1, -0.2], np.float32),
    np.array([-0.1, 0.4, 0.2], np.float32),
  ]
  lr, m, wd = 0.1, 0.9, 1e-2
  for nesterov in (False, True):
    cfg = ml_collections.ConfigDict(
      dict(name="sgd", momentum=m, nesterov=nesterov, weight_decay=wd)
    )
    tx = optim.create(cfg, lr)
    w, state = jnp.asarray(w0), None
    state = tx.init(w)
    want, buf = w0.copy(), np.zeros(3, np.float32)
    for i, g in enumerate(grads):
      d = g + wd * want  # torch.optim.SGD: d_p = grad + weight_decay * p
      buf = d if i == 0 else m * buf + d  # first step: buf = d_p
      step = d + m * buf if nesterov else buf
      want = want - lr * step
      updates, state = tx.update(jnp.asarray(g), state, w)
      w = optax.apply_updates(w, updates)
    np.testing.assert_allclose(np.asarray(w), want, rtol=1e-6)


def test_sgd_with_a_momentum_schedule_matches_pytorch_cycled_momentum():
  """PyTorch's OneCycleLR(cycle_momentum=True) sets SGD's momentum before every
  step: buf = m_t * buf + d, with m_t the schedule's value at step t."""
  w0 = np.array([1.0, -2.0, 0.5], np.float32)
  grads = [np.array([0.3, 0.1, -0.2], np.float32) * (i + 1) for i in range(3)]
  ms, lr, wd = (0.95, 0.85, 0.9), 0.1, 1e-2
  for nesterov in (False, True):
    cfg = ml_collections.ConfigDict(
      dict(name="sgd", momentum=0.9, nesterov=nesterov, weight_decay=wd)
    )
    tx = optim.create(cfg, lr, lambda t: jnp.asarray(ms)[t])
    w, want, buf = jnp.asarray(w0), w0.copy(), np.zeros(3, np.float32)
    state = tx.init(w)
    for t, g in enumerate(grads):
      d = g + wd * want
      buf = ms[t] * buf + d  # buf starts at 0: the first step gives d.
      want = want - lr * (d + ms[t] * buf if nesterov else buf)
      updates, state = jax.jit(tx.update)(jnp.asarray(g), state, w)
      w = optax.apply_updates(w, updates)
    np.testing.assert_allclose(np.asarray(w), want, rtol=1e-6)
  with pytest.raises(ValueError, match=r"needs optimizer\.name='sgd'"):
    optim.create(ml_collections.ConfigDict(dict(name="adam")), lr, lambda t: 0.9)


def test_masked_weights_stay_zero_through_momentum_and_decay(tiny_config):
  """Gradients and params are masked inside the step: zeros never come back."""
  from jaxprune import models
  from jaxprune.data import pipeline
  from jaxprune.models import init_variables
  from jaxprune.train import hyper as hyper_lib
  from jaxprune.train import sharding
  from jaxprune.train.steps import Steps

  model = models.create("mlp7_relu")
  params, stats = init_variables(model, jax.random.PRNGKey(0), (32, 32, 1))
  rng = np.random.default_rng(0)
  masks = jax.tree_util.tree_map(
    lambda p: (rng.random(p.shape) > 0.5).astype(p.dtype), params
  )
  tx = optim.create(
    ml_collections.ConfigDict(dict(name="sgd", momentum=0.9, weight_decay=5e-4)), 0.05
  )
  # Momentum accumulated while dense, then pruning: the old buffer must not revive zeros.
  state = state_from_params(params, stats, tx, jax.random.PRNGKey(1))
  mesh = sharding.make_mesh()
  pre = pipeline.Preprocess(mean=(0.5,), std=(0.5,))
  make_tx, hyper = hyper_lib.fixed(tx, lambda s: 0.05)
  steps = Steps(model, make_tx, pre, mesh, 32, 32)
  images = jnp.asarray(rng.integers(0, 255, (32, 32, 32, 1)), jnp.uint8)
  labels = jnp.asarray(rng.integers(0, 10, 32), jnp.int32)
  for _ in range(3):
    state, _ = steps.train_batch(state, hyper, images, labels)
  state = state.replace(
    masks=masks, params=jax.tree_util.tree_map(jnp.multiply, state.params, masks)
  )
  for _ in range(10):
    state, _ = steps.train_batch(state, hyper, images, labels)
  for p, m in zip(
    jax.tree_util.tree_leaves(state.params), jax.tree_util.tree_leaves(masks)
  ):
    assert np.all(np.asarray(p)[np.asarray(m) == 0] == 0)
    assert np.any(np.asarray(p)[np.asarray(m) == 1] != 0)


def test_start_from_given_weights_and_masks(tiny_config, tmp_path):
  """A phase started from given weights keeps them (lr 0) with the masks applied."""
  from jaxprune import models
  from jaxprune.models import init_variables
  from jaxprune.train import Start

  params, stats = init_variables(
    models.create("mlp7_relu", widths=(50,) * 6), jax.random.PRNGKey(7), (32, 32, 1)
  )
  masks = jax.tree_util.tree_map(lambda p: (jnp.abs(p) > 0.05).astype(p.dtype), params)
  tiny_config.num_epochs = 1
  tiny_config.schedule.spec = "0:0.0"
  workdir = str(tmp_path / "run")
  train_and_evaluate(
    tiny_config,
    workdir,
    start=Start(params, stats, masks),
    model_overrides={"widths": (50,) * 6},
  )
  got = _final_params(workdir)
  want = jax.tree_util.tree_map(lambda p, m: np.asarray(p * m), params, masks)
  jax.tree_util.tree_map(np.testing.assert_array_equal, want, got)
