r"""Liu et al. 2019, Table 17: L1-norm filter pruning after a 300-epoch baseline.

Table 1 (`configs/liu2019/table1.py`: VGG-16-A, ResNet-56-A/B, ResNet-110-A/B,
fine-tuning 40 epochs at 0.001) with the large model's schedule extended from
160 to 300 epochs, the LR steps kept at the same fractions (0.1, x0.1 at 150
and 225, as Rethinking's `main.py` places them at 50 % / 75 % of `--epochs`);
Scratch-E trains the pruned architecture for the same 300 epochs, Scratch-B
for int(300 * FLOPs ratio). 5 seeds.

Run:
  python -m jaxprune.sweeps --config=configs/liu2019/table17.py --workdir=workdirs/liu2019_table17
  python -m jaxprune.report --results=workdirs/liu2019_table17/results.jsonl \\
      --out=workdirs/liu2019_table17/report --paper_config=configs/liu2019/table17.py
Expected: third_party/paper_results/liu2019.csv, table "Table 17": scratch at
least on par with fine-tuned.
"""

import ml_collections

from configs import common
from configs.liu2019 import table1

EPOCHS = 300


def get_config(arg=None):
  config = table1.get_config(None)
  with config.unlocked():
    config.num_epochs = EPOCHS
    config.schedule = ml_collections.ConfigDict(
      dict(name="piecewise", spec="0:0.1,150:0.01,225:0.001", epochs=EPOCHS)
    )
  return common.finalize(config, arg)


def get_sweep(arg=None):
  return table1.get_sweep(arg)


def paper_cell(setting):
  """The Table 17 test-accuracy cell a sweep setting reproduces (--paper_config)."""
  cell = table1.paper_cell(setting)
  return {**cell, "row_id": cell["row_id"].replace("t1_", "t17_")}
