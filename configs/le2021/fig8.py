r"""Le & Hua 2021, Figure 8: PFEC ResNet-56-B retrained with CLR, number of warm-up epochs.

CLR's 1-cycle warm-up fraction varied (0, 5, 10, 20, 30 % of 40 retraining
epochs; 10 % is NPTM's default) after one-shot L1 filter pruning of the NPTM
CIFAR-10 baseline. 3 seeds.

Run:
  python -m jaxprune.sweeps --config=configs/le2021/fig8.py --workdir=workdirs/le2021_fig8
  python -m jaxprune.report --results=workdirs/le2021_fig8/results.jsonl \
      --out=workdirs/le2021_fig8/report --x=retrain.warmup_fraction
Expected: plot only; accuracy flat across warm-up lengths (Le & Hua App. D).
"""

from configs import common
from jaxprune.results import sweeps


def get_config(arg=None):
  config = common.nptm_cifar(common.base("prune_retrain"), "resnet56")
  common.l1_filters(config, preset="resnet56_b")
  config.retrain.num_epochs = 40
  config.retrain.schedule = "clr"
  config.retrain.flavor = "le2021"
  config.retrain.cycle_momentum = True  # NPTM: OneCycleLR cycle_momentum=True.
  return common.finalize(config, arg)


def get_sweep(arg=None):
  points = sweeps.product(**{"retrain.warmup_fraction": [0.0, 0.05, 0.1, 0.2, 0.3]})
  return common.sweep(points, range(3), arg)
