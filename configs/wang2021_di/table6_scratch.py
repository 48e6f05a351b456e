r"""Dynamical Isometry, Table 6 (scratch rows): WRN-d-2 of varying depth trained from scratch on CIFAR-10.

Table 6 cites four scratch-trained baselines of Crowley et al. at the 500K /
1M / 1.5M parameter budgets. The paper names them and gives their parameter
counts only. "Varying Depth" is read as WRN-d-2 (the widths of WRN-40-2,
fewer blocks): WRN-16-2, WRN-22-2 and WRN-28-2 have 0.69M / 1.08M / 1.47M
parameters, the table's counts to the printed digit
(`tests/test_models_zoo.py` counts them from the layer list). They are
`wrn40_2` with `model.depth` 16 / 22 / 28 under the plain `train` protocol.
"Fisher Scratch" is in `table6.py` (it shares that file's dense run);
"Varying Width" and "Varying Bottleneck" are left out: the paper does not
define those nets and their counts do not single one out (docs/provenance.md
F18).

Assumptions (F18): the scratch recipe is the dense one of `table6.py`, Wang
et al.'s 200-epoch CIFAR recipe (Crowley et al.'s is not in the paper); 3
seeds as the pruned rows.

Run:
  python -m jaxprune.sweeps --config=configs/wang2021_di/table6_scratch.py --workdir=workdirs/wang2021_di_table6_scratch
  python -m jaxprune.report --results=workdirs/wang2021_di_table6_scratch/results.jsonl \
      --out=workdirs/wang2021_di_table6_scratch/report --hue=model.depth
Expected: third_party/paper_results/wang2021_di.csv, table "Table 6", rows
t6_varying_depth_*: 93.56 / 94.54 / 94.64 at 500K / 1M / 1.5M, below
`table6.py`'s Fisher pruning with LR 0.01 (94.27 / 94.80 / 95.10).
"""

from configs import common

# Params budget -> WRN depth (WRN-d-2: 0.69M / 1.08M / 1.47M parameters).
DEPTHS = {"500k": 16, "1m": 22, "1.5m": 28}


def get_config(arg=None):
  config = common.wang_cifar(common.base("train"), "wrn40_2")
  config.model.depth = DEPTHS["1m"]
  return common.finalize(config, arg)


def get_sweep(arg=None):
  points = [{"model.depth": d} for d in DEPTHS.values()]
  return common.sweep(points, range(3), arg)


def paper_cell(setting):
  """The Table 6 accuracy cell a sweep setting reproduces (--paper_config)."""
  depth = setting["model.depth"]
  budgets = {d: b for b, d in DEPTHS.items()}
  if depth not in budgets:
    raise ValueError(f"model.depth must be one of {sorted(budgets)}, got {depth!r}")
  return {"paper": "wang2021_di", "row_id": f"t6_varying_depth_{budgets[depth]}_acc"}
