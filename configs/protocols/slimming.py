r"""Network slimming on ResNet-20 (Fashion-MNIST at 32x32, BN scales, global 40%).

Train 20 epochs with the s * sum|gamma| penalty (s = 1e-4), prune the 40% of
channels with the smallest BN scales (one global threshold), shrink to the
small-dense ResNet and fine-tune 10 epochs at constant LR 0.001 (Rethinking).
Note: needs CIFAR-like 3-channel data for surgery's shape check
(`--config.data.name=cifar10`); on 1-channel Fashion-MNIST the surgery shape
check of jaxprune.pruning currently fails (it assumes 3 input channels).

Run:
  python -m jaxprune.main --config=configs/protocols/slimming.py --workdir=workdirs/slim \
      --config.data.name=cifar10
Expected (estimate, not yet measured): ~90% test accuracy on CIFAR-10 with ~1.5x fewer FLOPs (hours on CPU).
Smoke (seconds): --config=configs/protocols/slimming.py:smoke
"""

from configs import common
from jaxprune import config_utils


def get_config(arg: str | None = None):
  config = common.fashion_mnist("slimming", model="resnet20")
  config.data.image_size = None
  config.pruning.name = "structured"
  config.pruning.criterion = "bn_scale"
  config.pruning.group_allocation = "global"
  config.pruning.groups = "all"
  config.pruning.ratio = 0.4
  config.pruning.slimming_strength = 1e-4
  config.retrain.num_epochs = 10
  config.retrain.schedule = "constant"
  config.retrain.lr = 0.001
  config = config_utils.finalize(config, arg)
  if config_utils.is_smoke(arg):
    config.retrain.num_epochs = 1
  return config
