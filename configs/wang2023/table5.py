r"""Wang et al. 2023, Table 5: ResNet-34 on ImageNet100 at pruning ratio 95 %, a
small fine-tuning LR catches up with a large one given more epochs.

Table 4's recipe (`table4.py`: ImageNet100, scratch schedule S of 120 epochs,
L1-norm filters of every block's first conv, protocol `prune_epoch`) at 95 %,
pruned at epoch 30, 60 or 90. Per pruning epoch, the larger fine-tuning LR
(SX-A: P30F90 1e-1, P60F60 1e-2, P90F30 1e-2, halving rule to 1e-5) against
the smaller one of S4.2 (P30F90 1e-2, P60F60 1e-3, P90F30 1e-4: the rest of
S), and the smaller one with N more epochs in its first LR stage
(`prune_epoch.extra_epochs`: "+30 epochs"). Reported: top-1 and the
fine-tuning's trainability accuracy (Eq. 1: mean training accuracy over the
first LR stage, `trainability/train_accuracy`; the paper gives TA for the
rows without added epochs). 3 seeds.

Run:
  python -m jaxprune.sweeps --config=configs/wang2023/table5.py --workdir=workdirs/wang2023_table5
  python -m jaxprune.report --results=workdirs/wang2023_table5/results.jsonl \
      --out=workdirs/wang2023_table5/report --paper_config=configs/wang2023/table5.py
Expected: third_party/paper_results/wang2023.csv, table "Table 5": the gap
between LRs closes with the added epochs (P30F90 1e-2 +60: 79.59 vs 1e-1 79.57).
"""

from configs import common
from configs.wang2023 import table4

RATIO = 0.95
# (pruning epoch, the SX-A LR, epochs added to the S4.2 arm's first stage).
ROWS = [(30, 0.1, (30, 60)), (60, 0.01, (60, 120, 180)), (90, 0.01, (60, 270, 1485))]


def points(rows) -> list[dict]:
  """Per row the S4.2 arms, then the SX-A one. The S4.2 arm comes first so
  that it is the smoke point: SX-A's halving rule needs at least one epoch
  per LR stage, more than the smoke run's single fine-tuning epoch."""
  out = []
  for k, large_lr, extras in rows:
    base = {"pruning.ratio": RATIO, "prune_epoch.epoch": k}
    for extra in (0, *extras):
      out.append(
        {**base, "prune_epoch.setup": "pkfn", "prune_epoch.extra_epochs": extra}
      )
    out.append(
      {**base, "prune_epoch.setup": "sx_a", "prune_epoch.finetune_lr": large_lr}
    )
  return out


def get_config(arg=None):
  return table4.build_config(arg)


def get_sweep(arg=None):
  return common.sweep(points(ROWS), range(3), arg)


def cell(table: str, setting) -> dict:
  """The top-1 cell `<table>_<row>_top1` of a setting."""
  return {"paper": "wang2023", "row_id": f"{table}_{table4.row_name(setting)}_top1"}


def paper_cell(setting):
  """The Table 5 top-1 cell a sweep setting reproduces (--paper_config)."""
  return cell("t5", setting)
