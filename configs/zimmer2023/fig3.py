r"""Zimmer et al. 2023, Figures 3-5: ResNet-56 on CIFAR-10, IMP with ALLR / LLR vs Renda et al.

BIMP CIFAR recipe (200 epochs stepped, batch 128, wd 1e-4, Nesterov, 90/10
split; Table 3 is garbled so the steps at 100/150 are assumed, as in
configs/figures/zimmer2023_fig1.py). Global magnitude IMP to 90 / 95 / 98 %
with 1-5 cycles and 5-30 retraining epochs per cycle (the envelope over these
is Fig. 3/5 for ALLR and Fig. 4 for LLR), plus Renda et al.'s baseline: LRW,
20% per cycle (`imp_cycles=0`, `imp_rate=0.2`), 200 epochs per cycle. Two seeds.

Run:
  python -m jaxprune.sweeps --config=configs/zimmer2023/fig3.py --workdir=workdirs/zimmer2023_fig3
  python -m jaxprune.report --results=workdirs/zimmer2023_fig3/results.jsonl \
      --out=workdirs/zimmer2023_fig3/report
Expected: plots; the Renda baseline totals 2000 / 2800 / 3600 retraining epochs at
90 / 95 / 98 % (zimmer2023.csv rows s3.2_*), which ALLR reaches after ~100.
"""

from configs import common
from jaxprune.results import sweeps


def get_config(arg=None):
  config = common.zimmer_cifar(common.base("prune_retrain"), "resnet56")
  common.magnitude(config, 0.9)
  config.pruning.schedule = "imp"
  config.pruning.imp_cycles = 1
  config.retrain.num_epochs = 10
  config.retrain.schedule = "allr"
  return common.finalize(config, arg)


def get_sweep(arg=None):
  ours = sweeps.product(
    **{
      "pruning.sparsity": [0.9, 0.95, 0.98],
      "retrain.schedule": ["allr", "llr"],
      "pruning.imp_cycles": [1, 2, 3, 5],
      "retrain.num_epochs": [5, 10, 20, 30],
    }
  )
  renda = sweeps.product(
    **{
      "pruning.sparsity": [0.9, 0.95, 0.98],
      "retrain.schedule": ["lrw"],
      "pruning.imp_cycles": [0],
      "retrain.num_epochs": [200],
    }
  )
  return common.sweep(ours + renda, range(2), arg)
