r"""Wang et al. 2023, Table 8 (App. D): P90F30 at pruning ratio 95 %, LR 1e-4 with
up to 1485 more epochs against LR 1e-2.

Table 5's P90F30 rows (`table5.py`: ResNet-34, ImageNet100, L1-norm filters,
protocol `prune_epoch`): SX-A from 1e-2 (halving to 1e-5) vs S4.2 from 1e-4
with 0, 60, 270 or 1485 epochs added to its first LR stage; with 1485 the
first stage lasts 1500 epochs, 100 times the 15 of the 1e-2 arm. 3 seeds (the
paper prints one run for +1485).

Run:
  python -m jaxprune.sweeps --config=configs/wang2023/table8.py --workdir=workdirs/wang2023_table8
  python -m jaxprune.report --results=workdirs/wang2023_table8/results.jsonl \
      --out=workdirs/wang2023_table8/report --paper_config=configs/wang2023/table8.py
Expected: third_party/paper_results/wang2023.csv, table "Table 8": 1e-4 +1485
epochs 78.18 beats 1e-2's 75.20.
"""

from configs import common
from configs.wang2023 import table4, table5


def get_config(arg=None):
  return table4.build_config(arg)


def get_sweep(arg=None):
  return common.sweep(table5.points([table5.ROWS[-1]]), range(3), arg)


def paper_cell(setting):
  """The Table 8 top-1 cell a sweep setting reproduces (--paper_config)."""
  return table5.cell("t8", setting)
