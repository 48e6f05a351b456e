r"""Wang et al. 2023, Table 6: ResNet-56 on CIFAR-10, L1-norm at PR 0.3-0.9 vs scratch.

Dense ResNet-56 trained 200 epochs (0.1 x0.1 at 100/150, wd 5e-4, batch 128 / 256 for
VGG, ImageNet mean/std: TPP/GReg recipe, docs/provenance.md F7, F10); L1-norm
pruning of the first conv of every residual block (ResNet) / every conv but
the last (VGG) at a uniform ratio, fine-tuned 120 epochs with step or cosine
LR from 0.01 or 0.001, every arm ending at the paper's minimum LR 1e-4;
Scratch = the pruned architecture trained 200 epochs (Scratch-E). 3 seeds (the paper prints mean ± std without a run count).

Run:
  python -m jaxprune.sweeps --config=configs/wang2023/table6.py --workdir=workdirs/wang2023_table6
  python -m jaxprune.report --results=workdirs/wang2023_table6/results.jsonl \
      --out=workdirs/wang2023_table6/report
Expected: third_party/paper_results/wang2023.csv, table "Table 6": initial
LR 0.01 beats 0.001 and cosine beats step at every PR.
"""

from configs import common
from jaxprune.results import sweeps

# Fine-tuning 120 epochs from 0.01 or 0.001, step (x0.1 at 60/90) or cosine.
# App. C: "the initial LR is 0.01 or 0.001, the minimum LR 0.0001", and the
# cosine keeps the step arm's start and end: every arm ends at 1e-4 (Rule 1:
# equal final LRs), so the 0.001 step arm stops decaying at 1e-4.
MIN_LR = 1e-4
FINETUNES = [
  {"retrain.schedule": "piecewise", "retrain.spec": "0:0.01,60:0.001,90:0.0001"},
  {"retrain.schedule": "piecewise", "retrain.spec": "0:0.001,60:0.0001"},
  {"retrain.schedule": "cosine", "retrain.lr": 0.01, "retrain.min_lr": MIN_LR},
  {"retrain.schedule": "cosine", "retrain.lr": 0.001, "retrain.min_lr": MIN_LR},
]


def build_config(model: str, dataset: str, arg=None):
  """Tables 6 and 7 share everything but the network and the dataset."""
  config = common.wang_cifar(common.base("prune_retrain"), model, dataset)
  common.l1_filters(config, ratio=0.5)
  config.retrain.num_epochs = 120
  config.retrain.schedule = "piecewise"
  config.retrain.spec = FINETUNES[0]["retrain.spec"]
  return common.finalize(config, arg)


def get_config(arg=None):
  return build_config("resnet56", "cifar10", arg)


def get_sweep(arg=None):
  ratios = sweeps.product(**{"pruning.ratio": [0.3, 0.5, 0.7, 0.9]})
  methods = [*FINETUNES, common.SCRATCH_E]
  return common.sweep([{**r, **m} for r in ratios for m in methods], range(3), arg)


def paper_cell(setting):
  """The Table 6 test-accuracy cell a sweep setting reproduces (--paper_config)."""
  return cell("t6_resnet56", setting)


def cell(table_model: str, setting) -> dict:
  """The cell of `setting` among rows named `<table_model>_pr<ratio>_...`."""
  prefix = f"{table_model}_pr{setting['pruning.ratio']}"
  if setting.get("protocol") == "scratch":  # The dense step-LR recipe, 200 epochs.
    return {"paper": "wang2023", "row_id": f"{prefix}_scratch_step"}
  if setting["retrain.schedule"] == "cosine":
    row_id = f"{prefix}_l1norm_cosine{setting['retrain.lr']}"
  else:
    lr = setting["retrain.spec"].split(",")[0].split(":")[1]
    row_id = f"{prefix}_l1norm_step{lr}"
  return {"paper": "wang2023", "row_id": row_id}
