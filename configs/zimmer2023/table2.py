r"""Zimmer et al. 2023, Table 2 / Table 23 (IMP-based rows): BIMP vs GMP, ResNet-56 on CIFAR-10.

Budget 200 epochs from a random init, goal sparsity 90 / 95 / 99 %. BIMP: T0
epochs with an LR decaying linearly from 0.1 to 0 (Sec. 2.2: "train a network
for some T0 < T epochs using a linearly decaying learning rate schedule";
App. B: "The initial training follows a linearly decaying learning rate
schedule which starts from 0.1"), then ALLR retraining, T0 and the number of
cycles tuned (grid T0 in {100, 150}, 1-4 cycles, Sec. 3.3); GMP: global cubic schedule pruning every 5 or 10
epochs from epoch 10 to 150, stepped LR (App. C.3). Weight decay tuned over
1e-4 / 5e-4 / 1e-3 (App. B.1 grid, CIFAR-10). Two seeds. The other
pruning-stable methods (GSM, DPF, DNW, LC, STR, CS, DST) are not in jaxprune.

Run:
  python -m jaxprune.sweeps --config=configs/zimmer2023/table2.py --workdir=workdirs/zimmer2023_table2
  python -m jaxprune.report --results=workdirs/zimmer2023_table2/results.jsonl \
      --out=workdirs/zimmer2023_table2/report
Expected: Table 2 / 23 of the paper are lost in the text copy (not typed):
BIMP above GMP at every sparsity.
"""

import ml_collections

from configs import common
from jaxprune.results import sweeps


def linear_t0(t0) -> dict:
  """BIMP's initial training: LR 0.1 decaying linearly to 0 over T0 epochs."""
  return {"name": "linear", "lr": 0.1, "epochs": t0}


def get_config(arg=None):
  config = common.zimmer_cifar(common.base("bimp"), "resnet56")
  common.magnitude(config, 0.9)
  config.num_epochs = 150
  config.schedule = ml_collections.ConfigDict(linear_t0(config.get_ref("num_epochs")))
  config.bimp.budget_epochs = 200
  config.pruning.schedule = "imp"
  config.pruning.imp_cycles = 2
  config.retrain.schedule = "allr"
  config.pruning.gmp_start, config.pruning.gmp_end = 10, 150
  return common.finalize(config, arg)


def get_sweep(arg=None):
  bimp = sweeps.product(
    **{
      "num_epochs": [100, 150],
      "pruning.imp_cycles": [1, 2, 3, 4],
      "optimizer.weight_decay": [1e-4, 5e-4, 1e-3],
      "pruning.sparsity": [0.9, 0.95, 0.99],
    }
  )
  for p in bimp:
    p["schedule"] = linear_t0(p["num_epochs"])
  gmp = sweeps.product(
    **{
      "protocol": ["gmp"],
      "pruning.schedule": ["gmp"],
      "num_epochs": [200],
      "schedule": [
        {"name": "piecewise", "spec": "0:0.1,100:0.01,150:0.001", "epochs": 200}
      ],
      "pruning.gmp_frequency": [5, 10],
      "optimizer.weight_decay": [1e-4, 5e-4, 1e-3],
      "pruning.sparsity": [0.9, 0.95, 0.99],
    }
  )
  return common.sweep(bimp + gmp, range(2), arg)
