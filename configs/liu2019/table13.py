r"""Liu et al. 2019, Table 13: network slimming at aggressive prune ratios.

Table 4's recipe (`configs/liu2019/table4.py`: sparsity training with
s * sum|gamma|, one global BN-scale threshold, surgery, 160 fine-tuning
epochs, or Scratch-E / Scratch-B of the slimmed architecture) at the larger
ratios of Appendix C: PreResNet-56 at 80 %, PreResNet-164 at 80 % and 90 %,
DenseNet-40 at 80 % on CIFAR-10, DenseNet-40 at 80 % on CIFAR-100. 5 seeds.

Run:
  python -m jaxprune.sweeps --config=configs/liu2019/table13.py --workdir=workdirs/liu2019_table13
  python -m jaxprune.report --results=workdirs/liu2019_table13/results.jsonl \\
      --out=workdirs/liu2019_table13/report --paper_config=configs/liu2019/table13.py
Expected: third_party/paper_results/liu2019.csv, table "Table 13": the scratch
models beat the fine-tuned ones by a larger margin than at Table 4's ratios.
"""

from configs import common
from configs.liu2019 import table4

ARCHS = [
  ("cifar10", "preresnet56", 0.8),
  ("cifar10", "preresnet164", 0.8),
  ("cifar10", "preresnet164", 0.9),
  ("cifar10", "densenet40", 0.8),
  ("cifar100", "densenet40", 0.8),
]


def get_config(arg=None):
  return table4.get_config(arg)


def get_sweep(arg=None):
  points = [
    {"data.name": d, "model.name": m, "pruning.ratio": r, **method}
    for d, m, r in ARCHS
    for method in table4.METHODS
  ]
  return common.sweep(points, range(5), arg)


def paper_cell(setting):
  """The Table 13 test-accuracy cell a sweep setting reproduces (--paper_config)."""
  data, model, ratio = (
    setting["data.name"],
    setting["model.name"],
    setting["pruning.ratio"],
  )
  method = common.method_label(setting, "finetuned")
  return {"paper": "liu2019", "row_id": f"t13_{data}_{model}_pr{ratio}_{method}"}
