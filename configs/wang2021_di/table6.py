r"""Dynamical Isometry, Table 6: WRN-40-2 on CIFAR-10, L1-norm vs Fisher pruning, LR 8e-4 vs 0.01.

Dense WRN-40-2 (shared pretraining). Pruning of the inner channel of every
block (between its two convs, as Crowley et al.'s pytorch-prunes does) to the
table's 500K / 1M / 1.5M parameter budgets, by L1-norm or by the Fisher
criterion (Theis et al. 2018: per channel, half the sum over examples of the
squared sum over positions of activation x gradient, accumulated over
`pruning.score_batches` training batches, 0 = 100), one global threshold, with
surgery. Fine-tuning: the original fixed LR 8e-4 ("Rerun") vs DI's 120 epochs
0:1e-2,60:1e-3,90:1e-4 ("LR 0.01"). 3 seeds (DI repeats fine-tuning 3 times).
"Fisher Scratch" (cited from Crowley et al. above the dashline): the Fisher-
pruned architecture of each budget trained from a fresh initialisation for
the dense run's 200 epochs (`scratch`, Scratch-E, source "pruned"; it shares
the dense pretraining). The "varying depth" rows are `table6_scratch.py`; the
"varying width / bottleneck" rows are not defined by the paper (F18).

Assumptions (not in the paper or the authors' code, docs/provenance.md): the dense recipe (and the
scratch recipe, F18) is Wang et al.'s 200-epoch CIFAR recipe (pytorch-prunes' own is not recorded); the
fixed-8e-4 fine-tuning also lasts 120 epochs; pytorch-prunes prunes one
channel every 100 steps while fine-tuning, we prune once; the global ratios
0.77 / 0.55 / 0.33 give 0.50M / 1.0M / 1.5M params with a uniform per-block
ratio (measured on WRN-40-2), the global threshold lands near them (each
summary reports its params). No FLOPs penalty (`pruning.flops_weight` = 0).

Run:
  python -m jaxprune.sweeps --config=configs/wang2021_di/table6.py --workdir=workdirs/wang2021_di_table6
  python -m jaxprune.report --results=workdirs/wang2021_di_table6/results.jsonl \
      --out=workdirs/wang2021_di_table6/report --hue=pruning.criterion
Expected: third_party/paper_results/wang2021_di.csv, table "Table 6": LR 0.01
beats the fixed 8e-4 for both criteria at every budget (Fisher 94.27 vs 92.17
at 500K).
"""

from configs import common
from jaxprune.results import sweeps

BUDGETS = {"500k": 0.77, "1m": 0.55, "1.5m": 0.33}  # params budget -> ratio
FINETUNES = [
  {"retrain.spec": "0:0.0008"},  # "Rerun": the original fixed LR.
  {"retrain.spec": "0:0.01,60:0.001,90:0.0001"},  # "LR 0.01".
]


def get_config(arg=None):
  config = common.wang_cifar(common.base("prune_retrain"), "wrn40_2")
  p = config.pruning
  p.name, p.criterion, p.groups = "structured", "fisher", "inner"
  p.group_allocation, p.ratio = "global", BUDGETS["1m"]
  config.retrain.schedule = "piecewise"
  config.retrain.num_epochs, config.retrain.spec = 120, FINETUNES[1]["retrain.spec"]
  return common.finalize(config, arg)


def get_sweep(arg=None):
  grid = sweeps.product(
    **{"pruning.criterion": ["fisher", "l1"], "pruning.ratio": list(BUDGETS.values())}
  )
  points = [{**g, **f} for g in grid for f in FINETUNES]
  # Fisher Scratch (new points; the pruned ones above keep their hashes).
  points += [
    {**common.SCRATCH_E, "pruning.criterion": "fisher", "pruning.ratio": r}
    for r in BUDGETS.values()
  ]
  return common.sweep(points, range(3), arg)


def paper_cell(setting):
  """The Table 6 accuracy cell a sweep setting reproduces (--paper_config)."""
  budget = {r: b for b, r in BUDGETS.items()}[setting["pruning.ratio"]]
  if setting.get("protocol") == "scratch":
    return {"paper": "wang2021_di", "row_id": f"t6_fisher_scratch_{budget}_acc"}
  lr = "rerun" if setting["retrain.spec"] == "0:0.0008" else "lr0.01"
  method = setting["pruning.criterion"]
  return {"paper": "wang2021_di", "row_id": f"t6_{method}_{lr}_{budget}_acc"}
