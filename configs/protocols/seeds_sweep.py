r"""Seeds sweep: 5 seeds of one-shot 80% pruning + retraining of MLP-7-ReLU.

Fashion-MNIST (32x32), 2 epochs of dense pretraining (linear LR 0.05 -> 0;
shared in <sweep>/cache), one-shot global magnitude pruning to 80%, then 2
epochs of retraining with LLR (linear from 0.05 to 0). A small sweep whose
points differ only in `seed`, for timing grouped runs (`--group=auto`, the
default: the seeds' dense and retraining phases as one program each) against
point-by-point runs (`--group=none`).

Run:
  python -m jaxprune.sweeps --config=configs/protocols/seeds_sweep.py \
      --workdir=sweeps/seeds [--group=none]
  python -m jaxprune.main --config=configs/protocols/seeds_sweep.py --workdir=workdirs/s
Expected (measured on a quiet 2-core CPU): 85.8-86.5% test accuracy per seed,
sparsity 0.80; the sweep took 43.8 s point by point and 38.9 s with the
seeds vmapped (measured before grouped runs replaced `--vmap_seeds`; per-seed
accuracies agree within 0.25 points).
Smoke (seconds): --config=configs/protocols/seeds_sweep.py:smoke
"""

from configs import common
from jaxprune import config_utils
from jaxprune.results import sweeps


def get_config(arg: str | None = None):
  config = common.fashion_mnist("prune_retrain", epochs=2)
  config.pruning.name = "unstructured"
  config.pruning.criterion = "magnitude"
  config.pruning.allocation = "global"
  config.pruning.sparsity = 0.8
  config.pruning.schedule = "one_shot"
  config.retrain.num_epochs = 2
  config.retrain.schedule = "llr"
  config = config_utils.finalize(config, arg)
  if config_utils.is_smoke(arg):
    config.retrain.num_epochs = 1
  return config


def get_sweep(arg: str | None = None):
  del arg
  return sweeps.seeds([{}], range(5))
