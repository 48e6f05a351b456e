r"""Dynamical Isometry, Table 5: ImageNet ResNet-18/34, L1-norm at PR 0.1-0.95 vs scratch.

torchvision recipe for the dense nets (the paper uses the official torchvision
models); L1-norm pruning of the first conv of every block at a uniform ratio,
fine-tuned with Pruned-Finetuned-1 (90 epochs, 0:1e-2,30:1e-3,60:1e-4,75:1e-5)
and Pruned-Finetuned-2 (the LR 1e-3 schedule, 0:1e-3,45:1e-4,60:1e-5);
Scratch-E of the pruned architecture. One seed.

Run:
  python -m jaxprune.sweeps --config=configs/wang2021_di/table5.py --workdir=workdirs/wang2021_di_table5
  python -m jaxprune.report --results=workdirs/wang2021_di_table5/results.jsonl \
      --out=workdirs/wang2021_di_table5/report
Expected: third_party/paper_results/wang2021_di.csv, table "Table 5".
"""

from configs import common
from jaxprune.results import sweeps

FINETUNES = [
  {"retrain.num_epochs": 90, "retrain.spec": "0:1e-2,30:1e-3,60:1e-4,75:1e-5"},
  {"retrain.num_epochs": 90, "retrain.spec": "0:1e-3,45:1e-4,60:1e-5"},
]


def get_config(arg=None):
  config = common.imagenet(common.base("prune_retrain"), "resnet34")
  common.l1_filters(config, ratio=0.5)
  config.retrain.schedule = "piecewise"
  config.retrain.num_epochs, config.retrain.spec = 90, FINETUNES[0]["retrain.spec"]
  return common.finalize(config, arg)


def get_sweep(arg=None):
  grid = sweeps.product(
    **{
      "model.name": ["resnet18", "resnet34"],
      "pruning.ratio": [0.1, 0.3, 0.5, 0.7, 0.9, 0.95],
    }
  )
  methods = [*FINETUNES, common.SCRATCH_E]
  return common.sweep([{**g, **m} for g in grid for m in methods], [0], arg)


def paper_cell(setting):
  """The Table 5 top-1 cell a sweep setting reproduces (for `report --paper_config`)."""
  model, ratio = setting["model.name"], setting["pruning.ratio"]
  if setting.get("protocol") == "scratch":
    return {"paper": "wang2021_di", "row_id": f"t5_{model}_pr{ratio}_scratch"}
  ft = 1 + [f["retrain.spec"] for f in FINETUNES].index(setting["retrain.spec"])
  return {"paper": "wang2021_di", "row_id": f"t5_{model}_pr{ratio}_ft{ft}"}
