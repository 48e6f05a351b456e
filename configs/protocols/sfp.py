r"""SFP (He et al. 2018): MLP-7-ReLU soft-pruned to 50% of its hidden units while training.

At the end of every epoch the lowest-L2 half of every hidden layer's units is
zeroed but kept trainable (they may regrow); after the 20 epochs the zeroed
units are removed (surgery) and the small net is retrained 5 epochs with CLR.

Run:
  python -m jaxprune.main --config=configs/protocols/sfp.py --workdir=workdirs/sfp
Expected (estimate, not yet measured): ~85% test accuracy, half the hidden units.
Smoke (seconds): --config=configs/protocols/sfp.py:smoke
"""

from configs import common
from jaxprune import config_utils


def get_config(arg: str | None = None):
  config = common.fashion_mnist("sfp")
  p = config.pruning
  p.name, p.criterion, p.groups, p.ratio = "structured", "l2", "all", 0.5
  config.retrain.num_epochs, config.retrain.schedule = 5, "clr"
  return config_utils.finalize(config, arg)
