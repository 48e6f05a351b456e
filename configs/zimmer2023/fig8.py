r"""Zimmer et al. 2023, Figure 8: ResNet-56 on CIFAR-10, One Shot, selection criteria.

GLOBAL, UNIFORM, UNIFORM+, ERK and LAMP allocations of magnitude pruning at
sparsities 50-99 %, retrained 30 epochs with FT or SLR (BIMP CIFAR recipe, see
configs/common.py), weight decay 1e-4 / 5e-4 / 1e-3 (the paper reports the best
per point). Three seeds (the caption's max-min bands over three).

Run:
  python -m jaxprune.sweeps --config=configs/zimmer2023/fig8.py --workdir=workdirs/zimmer2023_fig8
  python -m jaxprune.report --results=workdirs/zimmer2023_fig8/results.jsonl \
      --out=workdirs/zimmer2023_fig8/report
Expected: plot only; GLOBAL on par with the best criterion vs sparsity.
"""

from configs import common
from jaxprune.results import sweeps


def get_config(arg=None):
  config = common.zimmer_cifar(common.base("prune_retrain"), "resnet56")
  common.magnitude(config, 0.9)
  config.retrain.num_epochs = 30
  config.retrain.schedule = "ft"
  return common.finalize(config, arg)


def get_sweep(arg=None):
  points = sweeps.product(
    **{
      "optimizer.weight_decay": [1e-4, 5e-4, 1e-3],
      "pruning.allocation": ["global", "uniform", "uniform_plus", "erk", "lamp"],
      "pruning.sparsity": [0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99],
      "retrain.schedule": ["ft", "slr"],
    }
  )
  return common.sweep(points, range(3), arg)
