r"""Liu et al. 2019, Table 15: unstructured magnitude pruning of VGG-19 at 95 %.

The VGG-19 points of Table 6 (`configs/liu2019/table6.py`: global magnitude
over conv kernels, fine-tuning 40 epochs at 0.001, or Scratch-E / Scratch-B
with the same mask and the re-initialised std rescaled per layer) at 95 % on
CIFAR-10 and CIFAR-100. These points are Table 6's own (same config hashes),
so a finished Table 6 sweep answers this table too. 5 seeds.

Run:
  python -m jaxprune.sweeps --config=configs/liu2019/table15.py --workdir=workdirs/liu2019_table15
  python -m jaxprune.report --results=workdirs/liu2019_table15/results.jsonl \\
      --out=workdirs/liu2019_table15/report --paper_config=configs/liu2019/table15.py
Expected: third_party/paper_results/liu2019.csv, table "Table 15".
"""

from configs import common
from configs.liu2019 import table6


def get_config(arg=None):
  return table6.get_config(arg)


def get_sweep(arg=None):
  points = [
    {"data.name": d, "model.name": "vgg19", "pruning.sparsity": 0.95, **m}
    for d in ("cifar10", "cifar100")
    for m in table6.METHODS
  ]
  return common.sweep(points, range(5), arg)


def paper_cell(setting):
  """The Table 15 test-accuracy cell a sweep setting reproduces (--paper_config)."""
  method = common.method_label(setting, "finetuned")
  return {
    "paper": "liu2019",
    "row_id": f"t15_{setting['data.name']}_vgg19_pr0.95_{method}",
  }
