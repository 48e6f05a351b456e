r"""Le & Hua 2021, Table 1: Soft Filter Pruning of CIFAR ResNet-56/110, no retraining vs FT vs CLR.

SFP (He et al. 2018, protocol `sfp`): training from scratch, zeroing the
lowest-L2 filters of every pruned layer at the end of every epoch (they stay
trainable), final hard prune with surgery, then: nothing ("w/o FT"), FT for
200 more epochs, or CLR for 50 / 100 / 200 epochs (NPTM 1-cycle). %PF = the
fraction of filters pruned per layer (30 / 40 %). 3 seeds, 90/10 train/val
split as NPTM.

Assumptions (`common.sfp`): SFP's 200-epoch schedule (0.1, x0.2 at 60/120/160)
for the soft-pruning training (the paper does not print it); only the first
conv of every block is pruned (`groups="inner"`): option-A shortcuts couple the
residual channels, which SFP's code zeroes too but cannot remove.

Run:
  python -m jaxprune.sweeps --config=configs/le2021/table1.py --workdir=workdirs/le2021_table1
  python -m jaxprune.report --results=workdirs/le2021_table1/results.jsonl \
      --out=workdirs/le2021_table1/report --hue=retrain.schedule
Expected: third_party/paper_results/le2021.csv, table "Table 1": retraining
with CLR beats no retraining and FT at every ratio.
"""

from configs import common

ARCHS = [  # (dataset, model, %PF)
  ("cifar10", "resnet56", 0.3),
  ("cifar10", "resnet56", 0.4),
  ("cifar10", "resnet110", 0.4),
  ("cifar100", "resnet56", 0.3),
  ("cifar100", "resnet56", 0.4),
  ("cifar100", "resnet110", 0.3),
  ("cifar100", "resnet110", 0.4),
]
RETRAINS = [
  {"retrain.num_epochs": 0},
  {"retrain.num_epochs": 200, "retrain.schedule": "ft"},
  *({"retrain.num_epochs": e, "retrain.schedule": "clr"} for e in (50, 100, 200)),
]


def get_config(arg=None):
  config = common.sfp(common.nptm_cifar(common.base("sfp"), "resnet56"), 0.3)
  config.retrain.schedule = "ft"
  config.retrain.flavor = "le2021"
  return common.finalize(config, arg)


def get_sweep(arg=None):
  archs = [{"data.name": d, "model.name": m, "pruning.ratio": r} for d, m, r in ARCHS]
  points = [{**a, **r} for a in archs for r in RETRAINS]
  flavor = get_config(arg).retrain.flavor
  return common.sweep(common.nptm_onecycle(points, flavor), range(3), arg)


def paper_cell(setting):
  """The Table 1 test-accuracy cell a sweep setting reproduces (--paper_config)."""
  pf = round(100 * setting["pruning.ratio"])
  epochs = setting["retrain.num_epochs"]
  method = "woft" if not epochs else setting["retrain.schedule"]
  method += str(epochs) if method == "clr" else ""
  arch = f"{setting['data.name']}_{setting['model.name']}_pf{pf}"
  return {"paper": "le2021", "row_id": f"t1_{arch}_{method}"}
