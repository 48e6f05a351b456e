r"""GMP (Zhu & Gupta): MLP-7-ReLU pruned gradually to 90% during 20 epochs.

Cubic sparsity schedule from epoch 2 to epoch 15, masks updated at the end of
every epoch (global magnitude, hard pruning; `--config.pruning.mode=soft` lets
pruned weights regrow), linear LR.

Run:
  python -m jaxprune.main --config=configs/protocols/gmp.py --workdir=workdirs/gmp
Expected (estimate, not yet measured): ~87% test accuracy, sparsity 0.90; about a minute on a 2-core CPU.
Smoke (seconds): --config=configs/protocols/gmp.py:smoke
"""

from configs import common
from jaxprune import config_utils


def get_config(arg: str | None = None):
  config = common.fashion_mnist("gmp")
  config.pruning.name = "unstructured"
  config.pruning.sparsity = 0.9
  config.pruning.schedule = "gmp"
  config.pruning.gmp_start = 2
  config.pruning.gmp_end = 15
  config.pruning.gmp_frequency = 1
  config = config_utils.finalize(config, arg)
  if config_utils.is_smoke(arg):
    config.pruning.gmp_start, config.pruning.gmp_end = 1, 2
  return config
