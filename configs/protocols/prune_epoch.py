r"""Wang et al. 2023's P10F20 (S4.2): prune at epoch 10 of a 30-epoch schedule.

The scratch schedule S is piecewise 0.05 / 0.005 / 0.0005 over 30 epochs;
train 10 epochs of S, prune 50% of the neurons (L1), fine-tune 20 epochs with
the rest of S. `--config.prune_epoch.setup=sx_a|sx_b` with
`--config.prune_epoch.finetune_lr=` gives SX-A / SX-B (halving rule).

Run:
  python -m jaxprune.main --config=configs/protocols/prune_epoch.py --workdir=workdirs/p10f20
Expected (estimate, not yet measured): ~88% test accuracy, total_epochs 30; a few minutes on a 2-core CPU.
Smoke (seconds): --config=configs/protocols/prune_epoch.py:smoke
"""

from ml_collections import ConfigDict

from configs import common
from jaxprune import config_utils


def get_config(arg: str | None = None):
  config = common.fashion_mnist("prune_epoch", epochs=30)
  config.schedule = ConfigDict(  # The scratch schedule S of PkFn.
    dict(
      name="piecewise",
      spec="0:0.05,15:0.005,25:0.0005",
      epochs=config.get_ref("num_epochs"),
    )
  )
  config.pruning.name = "structured"
  config.pruning.criterion = "l1"
  config.pruning.group_allocation = "per_group"
  config.pruning.groups = "all"
  config.pruning.ratio = 0.5
  config.prune_epoch.setup = "pkfn"
  config.prune_epoch.epoch = 10
  config = config_utils.finalize(config, arg)
  if config_utils.is_smoke(arg):
    config.prune_epoch.epoch = 1
  return config
