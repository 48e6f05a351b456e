r"""IMP with ALLR: MLP-7-ReLU on Fashion-MNIST pruned to 90% in 3 cycles.

Pretrain 20 epochs (linear LR 0.05 -> 0; shared in <workdir>/../cache), then 3
cycles of global magnitude pruning (cumulative 53.6%, 78.5%, 90% of all
kernels) each followed by 5 epochs of ALLR retraining. `--config.pruning.
schedule=one_shot` gives one-shot pruning; `--config.retrain.schedule=` any of
ft lrw slr clr llr allr (or constant/step/cosine/linear with retrain.lr).

Run:
  python -m jaxprune.main --config=configs/protocols/prune_retrain.py --workdir=workdirs/imp
Expected (estimate, not yet measured): ~88% dense, ~87-88% test accuracy after the last cycle; sparsity
0.90, speedup ~10x; a few minutes on a 2-core CPU.
Smoke (seconds): --config=configs/protocols/prune_retrain.py:smoke
"""

from configs import common
from jaxprune import config_utils


def get_config(arg: str | None = None):
  config = common.fashion_mnist("prune_retrain")
  config.pruning.name = "unstructured"
  config.pruning.criterion = "magnitude"
  config.pruning.allocation = "global"
  config.pruning.sparsity = 0.9
  config.pruning.schedule = "imp"
  config.pruning.imp_cycles = 3
  config.retrain.num_epochs = 5
  config.retrain.schedule = "allr"
  config = config_utils.finalize(config, arg)
  if config_utils.is_smoke(arg):
    config.retrain.num_epochs = 1
  return config
