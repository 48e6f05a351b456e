"""The `during` protocol end to end: every registered pruning-during-training
method trains a tiny MLP-7 for 2 epochs and ends hard-pruned; the row's
sparsity is counted independently from the final checkpoint, methods with an
exact target hit it; fine-tuning keeps the masks; bad fields are refused."""

from __future__ import annotations

import dataclasses
import os
import re

import jax
import ml_collections
import numpy as np
import pytest

from jaxprune import config_utils, io_utils, protocols
from jaxprune.protocols import during as during_protocol
from jaxprune.pruning import during
from jaxprune.pruning.step_hooks import StepHooks
from jaxprune.train import checkpointing

pytestmark = pytest.mark.usefixtures("fast_compiles")
SPARSITY = 0.75


@pytest.fixture
def base(tiny_fmnist):
  """MLP-7 (width 16), 256 examples, 2 epochs of linear LR 0.05, 75% target."""
  data_dir, manual_dir, _ = tiny_fmnist
  c = config_utils.base_config()
  c.protocol = "during"
  c.data.data_dir, c.data.manual_dir = data_dir, manual_dir
  c.data.image_size, c.data.train_limit = (32, 32), 256
  c.num_epochs, c.batch_size, c.eval_batch_size = 2, 64, 128
  c.progress = False
  c.model.init, c.model.widths = "orthogonal", (16,) * 6
  c.optimizer.momentum, c.optimizer.weight_decay = 0.9, 1e-4
  c.schedule = ml_collections.ConfigDict(
    dict(name="linear", lr=0.05, epochs=c.get_ref("num_epochs"))
  )
  c.pruning.name, c.pruning.sparsity = "unstructured", SPARSITY
  return c


def _kernels(tree):
  flat = jax.tree_util.tree_flatten_with_path(tree)[0]
  return [np.asarray(x) for p, x in flat if getattr(p[-1], "key", "") == "kernel"]


def _final_masks(workdir: str):
  with checkpointing.Checkpointer(os.path.join(workdir, "checkpoints")) as ckpt:
    return jax.device_get(ckpt.restore("final")[0])["masks"]


@pytest.mark.parametrize("method", during.METHODS.names())
def test_every_method_trains_and_ends_hard_pruned(base, tmp_path, method):
  base.during.method = method
  if method in ("set", "rigl"):  # Their initial distribution: erk | uniform.
    base.pruning.allocation = "uniform"
  summary = protocols.run(base, str(tmp_path / method))
  entry = during.METHODS.get(method)
  assert summary["status"] == "completed" and summary["method"] == method
  assert 0.0 <= summary["sparsity"] < 1.0
  assert summary["images_per_second"] > 0
  assert summary["target_sparsity"] == SPARSITY
  built, _ = during_protocol.build_method(base)
  assert summary["exact_target"] == built.exact_sparsity
  if built.exact_sparsity:  # Every prunable leaf of MLP-7 is a kernel.
    assert summary["sparsity"] == pytest.approx(SPARSITY, abs=1e-3)
  assert entry is not None
  rows = io_utils.read_jsonl(str(tmp_path / method / "train" / "metrics.jsonl"))
  logged = [r for r in rows if "pruning/sparsity" in r]
  assert logged and "pruning/mask_sparsity" in logged[-1]
  if built.exact_sparsity:  # The callback counts what `final` gives.
    assert logged[-1]["pruning/sparsity"] == pytest.approx(summary["sparsity"])
  assert np.isfinite(summary["test/accuracy"])
  assert summary["accuracy_source"] == "pruned"
  assert summary["test/accuracy"] == summary["pruned/test/accuracy"]


def test_finetune_keeps_the_hard_pruned_masks(base, tmp_path):
  base.during.method = "dnw"
  base.during.finetune_epochs = 1
  base.during.finetune_schedule = "llr"  # "ft" at a linear schedule's end: LR ~0.
  workdir = str(tmp_path / "ft")
  summary = protocols.run(base, workdir)
  masks = _final_masks(os.path.join(workdir, "finetune"))
  kernels = _kernels(masks)
  pruned = sum(float((k == 0).sum()) for k in kernels)
  assert pruned / sum(k.size for k in kernels) == pytest.approx(SPARSITY, abs=1e-3)
  assert summary["total_epochs"] == 3 and summary["epoch"] == 3
  assert summary["finetune/test/accuracy"] is not None
  best = max(summary["finetune/test/accuracy"], summary["pruned/test/accuracy"])
  assert summary["test/accuracy"] == best
  assert summary["sparsity"] == pytest.approx(SPARSITY, abs=1e-3)


@pytest.mark.parametrize(
  "field,value,message",
  [
    ("during.method", "nope", "during.method"),
    ("during.finetune_epochs", -1, "during.finetune_epochs must be an integer >= 0"),
    ("during.finetune_schedule", "weird", "during.finetune_schedule must be one of"),
    ("pruning.sparsity", 1.0, "pruning.sparsity must be in [0, 1)"),
    (
      "pruning.allocation",
      "erk",
      "pruning.allocation must be one of ['global', 'uniform'] for during.method='dnw'",
    ),
  ],
)
def test_bad_fields_get_one_line_errors(base, field, value, message):
  base.during.method = "dnw"
  section, name = field.rsplit(".", 1)
  node = base
  for part in section.split("."):
    node = node[part]
  node[name] = value
  with pytest.raises(ValueError, match=re.escape(message)):
    protocols.validate(base)


def _frozen(build):
  """`build_method` with every gradient zeroed: the weights never move, so
  the training phase ends with the weights its first step saw."""

  def frozen_build(config):
    method, context = build(config)

    def zero(grads, params, masks, step):
      del params, masks, step
      return jax.tree_util.tree_map(jax.numpy.zeros_like, grads)

    hooks = StepHooks(name="frozen", select_grads=zero)
    return dataclasses.replace(method, hooks=hooks), context

  return frozen_build


def _train_params(workdir: str):
  with checkpointing.Checkpointer(os.path.join(workdir, "checkpoints")) as ckpt:
    return jax.device_get(ckpt.restore("final")[0])["params"]


def test_pretrained_start_sees_the_dense_phase_params(base, tmp_path, monkeypatch):
  base.during.method = "lc"  # GSM needs weight decay > 0, which moves w.
  base.optimizer.weight_decay = 0.0  # Zero gradients then leave w unchanged.
  base.num_epochs = 1
  # The dense run, trained on its own as a plain `train` run (not the cache).
  dense_config = config_utils.base_config()
  for key in ("data", "model", "optimizer", "schedule"):
    dense_config[key] = ml_collections.ConfigDict(base[key].to_dict())
  dense_config.num_epochs, dense_config.batch_size = 1, base.batch_size
  dense_config.eval_batch_size, dense_config.progress = base.eval_batch_size, False
  dense_summary = protocols.run(dense_config, str(tmp_path / "dense"))
  dense_params = _train_params(str(tmp_path / "dense"))
  init_params, _ = during_protocol.common.init_params(base)
  assert dense_summary["epoch"] == 1

  monkeypatch.setattr(
    during_protocol, "build_method", _frozen(during_protocol.build_method)
  )
  base.during.pretrained = True
  summary = protocols.run(base, str(tmp_path / "pre"))
  seen = _kernels(_train_params(str(tmp_path / "pre" / "train")))
  for got, want, init in zip(seen, _kernels(dense_params), _kernels(init_params)):
    np.testing.assert_array_equal(got, want)
    assert not np.allclose(got, init)  # The dense phase did train.
  assert summary["total_epochs"] == 2 and summary["epoch"] == 1
  assert summary["dense/test/accuracy"] == pytest.approx(dense_summary["test/accuracy"])

  base.during.pretrained = False  # A random start: the run's own init.
  protocols.run(base, str(tmp_path / "scratch"))
  seen = _kernels(_train_params(str(tmp_path / "scratch" / "train")))
  for got, init in zip(seen, _kernels(init_params)):
    np.testing.assert_array_equal(got, init)


def test_pretrained_must_be_a_bool(base):
  base.during.method = "lc"
  with base.during.ignore_type():
    base.during.pretrained = "yes"
  with pytest.raises(ValueError, match=r"during\.pretrained must be True or False"):
    protocols.validate(base)
