r"""BIMP (Zimmer et al. 2023 Sec. 2.2): budget T = 30 epochs, T0 = 20, 2 cycles.

Train 20 epochs with a linear schedule, then prune (global magnitude) to 90%
in 2 equal IMP cycles, retraining with ALLR for (30 - 20) / 2 = 5 epochs each:
exactly 30 epochs in total.

Run:
  python -m jaxprune.main --config=configs/protocols/bimp.py --workdir=workdirs/bimp
Expected (estimate, not yet measured): ~87% test accuracy at 90% sparsity, total_epochs 30; a few minutes
on a 2-core CPU.
Smoke (seconds): --config=configs/protocols/bimp.py:smoke
"""

from configs import common
from jaxprune import config_utils


def get_config(arg: str | None = None):
  config = common.fashion_mnist("bimp")
  config.bimp.budget_epochs = 30
  config.pruning.name = "unstructured"
  config.pruning.sparsity = 0.9
  config.pruning.schedule = "imp"
  config.pruning.imp_cycles = 2
  config.retrain.schedule = "allr"
  config = config_utils.finalize(config, arg)
  if config_utils.is_smoke(arg):
    config.bimp.budget_epochs = config.num_epochs + 2
  return config
