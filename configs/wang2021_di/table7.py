r"""Dynamical Isometry, Table 7: LeNet-5-Linear/ReLU and MLP-7-ReLU, L1 +- OrthP vs scratch.

As configs/wang2021_di/table3.py on the other three MNIST nets, PR 0.9 on the
first 6 fc layers (MLP-7: `groups=all`, every hidden layer) / first 3 conv
layers (LeNet-5: its fc layer 120 -> 84 is skipped); the classifier stays.
ceil(0.9 n) of a layer's n neurons or filters are pruned, at least one kept:
MLP-7 keeps 10 of 100, LeNet-5 1 of 6, 1 of 16 and 12 of 120 filters. OrthP
gain from the activation (1 for linear nets, sqrt 2 for ReLU:
docs/provenance.md F9). 5 seeds.

Run:
  python -m jaxprune.sweeps --config=configs/wang2021_di/table7.py --workdir=workdirs/wang2021_di_table7
  python -m jaxprune.report --results=workdirs/wang2021_di_table7/results.jsonl \
      --out=workdirs/wang2021_di_table7/report
Expected: third_party/paper_results/wang2021_di.csv, table "Table 7".
"""

from configs import common
from configs.wang2021_di.table3 import FINETUNES  # DI Table 2's four schedules.
from jaxprune.results import sweeps

# LeNet-5: "the first 3 conv layers" are pruned, so its hidden fc layer
# (120 -> 84, group fc0) stays whole; MLP-7's "first 6 fc layers" are all of
# its hidden layers.
CONV_ONLY = {"pruning.skip": ("fc0",)}
MODELS = [
  {"model.name": "lenet5_linear", "retrain.orthp_gain": 1.0, **CONV_ONLY},
  {"model.name": "lenet5_relu", "retrain.orthp_gain": 0.0, **CONV_ONLY},
  {"model.name": "mlp7_relu", "retrain.orthp_gain": 0.0},
]


def get_config(arg=None):
  config = common.di_mnist(common.base("prune_retrain"), "lenet5_linear")
  p = config.pruning
  p.name, p.criterion, p.groups, p.ratio = "structured", "l1", "all", 0.9
  config.retrain.schedule = "piecewise"
  config.retrain.num_epochs, config.retrain.spec = 90, FINETUNES[0]["retrain.spec"]
  return common.finalize(config, arg)


def get_sweep(arg=None):
  pruned = sweeps.product(**{"retrain.orthp": [False, True]})
  pruned = [{**o, **f} for o in pruned for f in FINETUNES]
  scratch = [common.SCRATCH_E]
  points = [{**m, **x} for m in MODELS for x in pruned + scratch]
  return common.sweep(points, range(5), arg)


def paper_cell(setting):
  """The Table 7 cell a sweep setting reproduces (for `report --paper_config`)."""
  model = setting["model.name"].replace("_", "")
  if setting.get("protocol") == "scratch":
    return {"paper": "wang2021_di", "row_id": f"t7_{model}_pr0.9_scratch"}
  lr = setting["retrain.spec"].split(",")[0].split(":")[1]
  orthp = "_orthp" if setting["retrain.orthp"] else ""
  epochs = setting["retrain.num_epochs"]
  row_id = f"t7_{model}_pr0.9{orthp}_{epochs}ep_lr{lr}"
  return {"paper": "wang2021_di", "row_id": row_id}
