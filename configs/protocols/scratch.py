r"""Scratch-B: the small-dense MLP found by L1 neuron pruning, trained from scratch.

Pretrain 20 epochs, prune 50% of the neurons of every hidden layer (L1 norm),
then train the 50-wide architecture from a random init for
int(20 * FLOPs_dense / FLOPs_pruned) epochs with the schedule stretched.
`--config.scratch.budget=E` trains 20 epochs; `--config.scratch.source=
uniform|guided` uses uniform / stage-averaged widths instead.

Run:
  python -m jaxprune.main --config=configs/protocols/scratch.py --workdir=workdirs/scratch_b
Expected (estimate, not yet measured): ~88% test accuracy, scratch_epochs 36 (speedup ~1.8x); a few
minutes on a 2-core CPU.
Smoke (seconds): --config=configs/protocols/scratch.py:smoke
"""

from configs import common
from jaxprune import config_utils


def get_config(arg: str | None = None):
  config = common.fashion_mnist("scratch")
  config.pruning.name = "structured"
  config.pruning.criterion = "l1"
  config.pruning.group_allocation = "per_group"
  config.pruning.groups = "all"
  config.pruning.ratio = 0.5
  config.scratch.budget = "B"
  config.scratch.source = "pruned"
  config = config_utils.finalize(config, arg)
  if config_utils.is_smoke(arg):
    config.scratch.budget = "E"
  return config
