"""JSV tracking through train_and_evaluate, Fig. 1 trend, trainability, stability."""

from __future__ import annotations

import itertools
import math
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxprune import analysis, config_utils, io_utils, models
from jaxprune.data import pipeline
from jaxprune.train import checkpointing, train_and_evaluate

NUM_JSV_EXAMPLES = 64


def _config(tiny_fmnist) -> ml_collections.ConfigDict:
  data_dir, manual_dir, _ = tiny_fmnist
  config = config_utils.base_config()
  config.data.data_dir = data_dir
  config.data.manual_dir = manual_dir
  config.data.image_size = (32, 32)
  config.num_epochs = 4
  config.batch_size = 64
  config.eval_batch_size = 64
  config.progress = False
  config.model.name = "mlp7_linear"
  config.model.init = "orthogonal"
  config.schedule.spec = "0:0.05,2:0.005"
  config.analysis.jsv_num_examples = NUM_JSV_EXAMPLES
  return config


@pytest.fixture(scope="module")
def trained(tiny_fmnist, tmp_path_factory):
  """MLP-7-Linear trained 4 epochs with a JSV callback every 2 epochs."""
  config = _config(tiny_fmnist)
  data = pipeline.load(config.data)
  model = models.create("mlp7_linear", **config_utils.model_overrides(config))
  # The callback is passed explicitly (config.analysis stays off), so the run
  # logs each JSV once whether or not the loop also builds config callbacks.
  wanted = ml_collections.ConfigDict(config.analysis.to_dict())
  wanted.jsv_every_epochs = 2
  callbacks = analysis.make_callbacks(wanted, model, data)
  workdir = str(tmp_path_factory.mktemp("jsv_run"))
  train_and_evaluate(config, workdir, callbacks=callbacks)
  with checkpointing.Checkpointer(os.path.join(workdir, "checkpoints")) as ckpt:
    params = ckpt.restore("final")[0]["params"]
  return config, workdir, data, params


def _explicit_mean_jsv(params, inputs) -> float:
  """Mean JSV of a linear MLP from the product of its kernels (numpy float64)."""
  product = np.eye(np.prod(inputs.shape[1:]))
  for layer in [f"fc{i}" for i in range(6)] + ["head"]:
    product = product @ np.asarray(params[layer]["kernel"], np.float64)
  return float(np.linalg.svd(product.T, compute_uv=False).mean())


def test_jsv_callback_logs_at_the_right_epochs(trained):
  _, workdir, data, params = trained
  rows = io_utils.read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  logged = {r["epoch"]: r for r in rows if "jsv/mean" in r}
  assert sorted(logged) == [0, 2, 4]
  assert all("jsv/std" in r for r in logged.values())
  # Epoch 0: orthogonal init of MLP-7-Linear, Dynamical Isometry Table 1 row 1.
  assert logged[0]["jsv/mean"] == pytest.approx(1.0, abs=1e-5)
  assert logged[0]["jsv/std"] == pytest.approx(0.0, abs=1e-5)
  # Epoch 4 = the final weights; recompute independently of analysis.jacobian:
  # the first training images, normalised by hand, through the kernel product.
  images = data.train.images[:NUM_JSV_EXAMPLES].astype(np.float32) / 255.0
  spec_mean, spec_std = data.preprocess.mean[0], data.preprocess.std[0]
  inputs = (images - spec_mean) / spec_std
  want = _explicit_mean_jsv(params, inputs)
  assert abs(want - 1.0) > 1e-3  # Training moved it, so the check has teeth.
  assert logged[4]["jsv/mean"] == pytest.approx(want, rel=1e-4)
  # The callback's inputs are those same images.
  np.testing.assert_allclose(
    analysis.fixed_inputs(data, NUM_JSV_EXAMPLES), inputs, rtol=1e-6, atol=1e-6
  )


def _l1_prune_mlp(params, ratio):
  """Minimal L1 neuron pruning (ceil(n r) pruned per hidden layer); see test_analysis_orthp."""
  out, keep_prev = {}, None
  for i in range(6):
    kernel = np.asarray(params[f"fc{i}"]["kernel"])
    n = kernel.shape[1]
    keep = np.sort(np.argsort(-np.abs(kernel).sum(axis=0))[: n - math.ceil(n * ratio)])
    if keep_prev is not None:
      kernel = kernel[keep_prev]
    bias = np.asarray(params[f"fc{i}"]["bias"])[keep]
    out[f"fc{i}"] = {"kernel": kernel[:, keep], "bias": bias}
    keep_prev = keep
  out["head"] = {
    "kernel": np.asarray(params["head"]["kernel"])[keep_prev],
    "bias": np.asarray(params["head"]["bias"]),
  }
  return jax.tree_util.tree_map(jnp.asarray, out)


def test_mean_jsv_decreases_with_the_pruning_ratio(trained):
  """Dynamical Isometry Fig. 1: larger L1 pruning ratio, lower mean JSV."""
  _, _, data, params = trained
  inputs = analysis.fixed_inputs(data, 8)
  ratios = (0.0, 0.3, 0.5, 0.7, 0.9)
  means = []
  for ratio in ratios:
    pruned = _l1_prune_mlp(params, ratio)
    model = models.create(
      "mlp7_linear", widths=models.read_widths("mlp7_linear", pruned)
    )
    means.append(analysis.mean_jsv(analysis.apply_fn_from(model, pruned), inputs))
  dense = models.create("mlp7_linear")
  assert means[0] == pytest.approx(
    analysis.mean_jsv(analysis.apply_fn_from(dense, params), inputs), rel=1e-5
  )
  assert all(b < a for a, b in itertools.pairwise(means)), dict(zip(ratios, means))
  assert means[-1] < 0.8 * means[0]


def test_trainability_accuracy_of_the_run(trained):
  """Wang et al. 2023 Eq. 1: "T = (1/N) sum_{i=1}^N Acc_i" over "the number of
  the 1st LR stage". Table 5 prints TA 88.00 next to a final top-1 of 79.57
  (P30F90, 1e-1) and 37.93 next to 29.89 (P90F30, 1e-4): a mean of test
  accuracies over the first stage cannot sit 8 points above the test accuracy
  the fine-tuning ends at, so Acc_i is training accuracy, the default split."""
  _, workdir, _, _ = trained
  rows = io_utils.read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  # Schedule "0:0.05,2:0.005": the first LR stage is epochs 1-2.
  train_acc = {r["epoch"]: r["train/accuracy"] for r in rows if "train/accuracy" in r}
  test_acc = {r["epoch"]: r["test/accuracy"] for r in rows if "test/accuracy" in r}
  want = (train_acc[1] + train_acc[2]) / 2
  assert want != pytest.approx((test_acc[1] + test_acc[2]) / 2)
  assert analysis.trainability_from_workdir(workdir) == pytest.approx(want)
  assert analysis.trainability_accuracy(rows, 2) == pytest.approx(want)
  assert analysis.trainability_from_workdir(workdir, split="test") == pytest.approx(
    (test_acc[1] + test_acc[2]) / 2
  )


def test_trainability_accuracy_formula_and_first_stage():
  # Eq. 1: T = (1/N) sum_{i<=N} Acc_i with N the first LR stage.
  accs = [10.0, 20.0, 30.0, 40.0, 90.0]
  assert analysis.trainability_accuracy(accs, 3) == pytest.approx(20.0)
  assert analysis.trainability_accuracy(accs, "0:0.1,4:0.01") == pytest.approx(25.0)
  # Dynamical Isometry Table 2 schedules: the stage boundary counts even when
  # the LR does not change ("0:0.001,45:0.001").
  assert analysis.first_stage_epochs("0:0.01,30:0.001,60:0.0001") == 30
  assert analysis.first_stage_epochs("0:0.001,450:0.001") == 450
  step = {"name": "step", "lr": 0.1, "epochs": 160, "milestones": (80, 120)}
  assert analysis.first_stage_epochs(step) == 80
  assert analysis.first_stage_epochs({"name": "constant", "lr": 0.1, "epochs": 7}) == 7
  with pytest.raises(ValueError, match="step-wise"):
    analysis.first_stage_epochs({"name": "cosine", "lr": 0.1, "epochs": 10})
  with pytest.raises(ValueError, match=r"missing epochs \[3\]"):
    rows = [{"epoch": e, "test/accuracy": 0.5} for e in (0, 1, 2, 4)]
    analysis.trainability_accuracy(rows, 3, split="test")
  with pytest.raises(ValueError, match="needs 6"):
    analysis.trainability_accuracy(accs, 6)


def test_pruning_stability_definition_a1():
  # Delta = 1 - (t_pre - t_post) / t_pre.
  assert analysis.pruning_stability(0.9, 0.45) == pytest.approx(0.5)
  assert analysis.pruning_stability(93.0, 93.0) == pytest.approx(1.0)
  assert analysis.pruning_stability(0.8, 0.1) == pytest.approx(0.125)
  assert analysis.pruning_stability(0.8, 0.0) == 0.0
  assert analysis.pruning_stability(0.8, 0.9) == 1.0
  assert analysis.pruning_stability(0.8, 0.9, clip=False) == pytest.approx(1.125)
  with pytest.raises(ValueError, match="accuracy_before"):
    analysis.pruning_stability(0.0, 0.0)


def test_make_callbacks_validates_and_can_be_off(tiny_fmnist):
  config = _config(tiny_fmnist)
  assert analysis.make_callbacks(config.analysis, None, None) == []
  config.analysis.jsv_every_epochs = -1
  with pytest.raises(ValueError, match="jsv_every_epochs"):
    analysis.make_callbacks(config.analysis, None, None)
  with pytest.raises(ValueError, match="every_epochs"):
    analysis.jsv_callback(None, jnp.zeros((1, 4)), 0)


def test_streaming_split_gives_the_first_examples(tiny_fmnist):
  config = _config(tiny_fmnist)
  config.data.resident = False
  streaming = pipeline.load(config.data)
  x = analysis.fixed_inputs(streaming, 5)
  assert x.shape == (5, 32, 32, 1) and x.dtype == jnp.float32
  np.testing.assert_array_equal(x, analysis.fixed_inputs(streaming, 5))
  # The same (first) images as the resident path, which resizes differently:
  # each is closest to the resident image of the same index.
  config.data.resident = True
  resident = np.asarray(analysis.fixed_inputs(pipeline.load(config.data), 20))
  for i, image in enumerate(np.asarray(x)):
    distances = np.abs(resident - image).reshape(20, -1).mean(axis=1)
    assert np.argmin(distances) == i


def test_config_analysis_turns_on_jsv_tracking(tiny_fmnist, tmp_path):
  """`config.analysis.jsv_every_epochs` alone makes the train loop log JSVs."""
  config = _config(tiny_fmnist)
  config.num_epochs = 2
  config.schedule.spec = "0:0.05"
  config.analysis.jsv_every_epochs = 1
  train_and_evaluate(config, str(tmp_path))
  rows = io_utils.read_jsonl(os.path.join(tmp_path, "metrics.jsonl"))
  logged = {r["epoch"]: r["jsv/mean"] for r in rows if "jsv/mean" in r}
  assert sorted(logged) == [0, 1, 2]
  assert logged[0] == pytest.approx(1.0, abs=1e-5)  # Orthogonal MLP-7-Linear.
