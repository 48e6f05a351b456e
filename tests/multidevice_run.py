"""Subprocess half of test_multidevice.py (the device count is fixed when JAX starts).

`python multidevice_run.py DATA_ROOT OUT.npz` trains one epoch of the default
experiment (MLP-7-ReLU) on the tiny dataset with every visible device and saves
the final params. With 8 devices it also runs one ResNet-20 train step (BatchNorm
+ CIFAR augmentation) on a 1-device and on an 8-device mesh and saves both.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

import jax
import ml_collections
import numpy as np

from jaxprune import config_utils, models
from jaxprune.data import fashion_mnist_local, pipeline
from jaxprune.train import checkpointing, optim, sharding, train_and_evaluate
from jaxprune.train import hyper as hyper_lib
from jaxprune.train.state import create_train_state
from jaxprune.train.steps import Steps


def flat(tree, prefix):
  leaves = jax.tree_util.tree_flatten_with_path(jax.device_get(tree))[0]
  return {prefix + jax.tree_util.keystr(k): np.asarray(v) for k, v in leaves}


def default_experiment_epoch(root: str) -> dict:
  fashion_mnist_local.FashionMnistLocal.strict_counts = False
  config = config_utils.base_config()  # The default experiment's model and optimizer.
  config.data.data_dir = os.path.join(root, "tfds")
  config.data.manual_dir = os.path.join(root, "idx")
  config.data.image_size = (32, 32)
  config.num_epochs = 1
  config.batch_size = 64
  config.eval_batch_size = 64
  config.progress = False
  config.schedule.spec = "0:0.05"
  workdir = os.path.join(root, f"run{jax.device_count()}")
  summary = train_and_evaluate(config, workdir)
  with checkpointing.Checkpointer(os.path.join(workdir, "checkpoints")) as ckpt:
    state = ckpt.restore("final")[0]
  return {
    **flat(state["params"], "mlp"),
    "mlp_test_loss": np.asarray(summary["test/loss"]),
  }


def resnet_step(devices: list) -> dict:
  model = models.create("resnet20")
  tx = optim.create(ml_collections.ConfigDict(dict(name="sgd", momentum=0.9)), 0.05)
  rng = np.random.default_rng(0)
  images = rng.integers(0, 255, (64, 16, 16, 1)).astype(np.uint8)
  labels = rng.integers(0, 10, 64).astype(np.int32)
  mesh = sharding.make_mesh(devices)
  pre = pipeline.Preprocess(mean=(0.5,), std=(0.5,), augment="cifar")
  make_tx, hyper = hyper_lib.fixed(tx, lambda s: 0.05)
  steps = Steps(model, make_tx, pre, mesh, 64, 64)
  init = jax.jit(
    lambda r: create_train_state(model, tx, (16, 16, 1), r),
    out_shardings=sharding.replicated(mesh),
  )
  state = init(jax.random.PRNGKey(0))
  state, metrics = steps.train_batch(
    state, hyper, *sharding.shard_batch((images, labels), mesh)
  )
  return {
    **flat(state.params, "params"),
    **flat(state.batch_stats, "stats"),
    "loss": np.asarray(metrics["loss"]),
  }


def main(root: str, out: str) -> None:
  arrays = default_experiment_epoch(root)
  if jax.device_count() == 8:
    for name, devices in (("one", jax.devices()[:1]), ("eight", jax.devices())):
      arrays.update({f"resnet_{name}/{k}": v for k, v in resnet_step(devices).items()})
  np.savez(out, **arrays)


if __name__ == "__main__":
  main(sys.argv[1], sys.argv[2])
