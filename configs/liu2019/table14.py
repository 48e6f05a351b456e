r"""Liu et al. 2019, Table 14: L1-norm filter pruning of ResNet-56 at 90 %.

Table 1's recipe (`configs/liu2019/table1.py`: the Rethinking CIFAR baseline,
fine-tuning 40 epochs at 0.001, Scratch-E 160 epochs, Scratch-B by FLOPs)
with every prunable layer of the Li et al. scheme (the first conv of each
block) at a uniform 90 % of its filters instead of a preset. 5 seeds.

Run:
  python -m jaxprune.sweeps --config=configs/liu2019/table14.py --workdir=workdirs/liu2019_table14
  python -m jaxprune.report --results=workdirs/liu2019_table14/results.jsonl \\
      --out=workdirs/liu2019_table14/report --paper_config=configs/liu2019/table14.py
Expected: third_party/paper_results/liu2019.csv, table "Table 14": Fine-tuned
89.17, Scratch-E 91.02, Scratch-B 91.93 (unpruned 93.14).
"""

from configs import common
from configs.liu2019 import table1


def get_config(arg=None):
  config = table1.get_config(arg)
  with config.unlocked():
    config.model.name = "resnet56"
    common.l1_filters(config, preset="", ratio=0.9)
  return config


def get_sweep(arg=None):
  return common.sweep(list(table1.METHODS), range(5), arg)


def paper_cell(setting):
  """The Table 14 test-accuracy cell a sweep setting reproduces (--paper_config)."""
  method = common.method_label(setting, "finetuned")
  return {"paper": "liu2019", "row_id": f"t14_cifar10_resnet56_pr0.9_{method}"}
