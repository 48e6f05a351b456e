r"""Lottery ticket with rewinding to epoch 1 vs random re-initialisation.

Pretrain 20 epochs, prune 80% of all kernels (global magnitude), rewind the
survivors to their epoch-1 values and train 19 epochs with the rest of the
schedule; the control trains the same mask from a fresh random init.

Run:
  python -m jaxprune.main --config=configs/protocols/lottery.py --workdir=workdirs/lottery
Expected (estimate, not yet measured): ticket ~88% vs random init ~87% test accuracy (random/test/accuracy);
a few minutes on a 2-core CPU.
Smoke (seconds): --config=configs/protocols/lottery.py:smoke
"""

from configs import common
from jaxprune import config_utils


def get_config(arg: str | None = None):
  config = common.fashion_mnist("lottery")
  config.pruning.name = "unstructured"
  config.pruning.sparsity = 0.8
  config.pruning.rewind = "epoch"
  config.pruning.rewind_epoch = 1
  config.lottery.random_control = True
  config = config_utils.finalize(config, arg)
  if config_utils.is_smoke(arg):
    config.pruning.rewind_epoch = 1
  return config
