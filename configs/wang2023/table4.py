r"""Wang et al. 2023, Table 4: ResNet-34 on ImageNet100, L1-norm pruning vs scratch
under the comparison setups S4.2 (PkFn), SX-A and SX-B.

Dense ResNet-34 on ImageNet100 (`data.name=imagenet100`: the 100 classes of
`jaxprune/data/imagenet100_classes.txt`, CMC's list; the paper only says "a
randomly drawn 100-class subset") trained with the scratch schedule S: 120
epochs, 0.1 x0.1 at 30/60/90/105 (`common.wang_imagenet100`, docs/provenance.md
"ImageNet100"). L1-norm pruning of the first conv of every residual block at a
uniform ratio 10-95 % with surgery, at pruning epoch k (protocol `prune_epoch`):

  S4.2  PkFn, k = 15, 30, 45, 60, 75, 90: fine-tune E - k epochs with the rest of S
        (initial LR = S's LR at k: "P30F90, 1e-2");
  SX-A  P30F90 at 1e-1, P60F60 at 1e-2, P90F30 at 1e-2: the fine-tuning from a
        larger LR down to S's final 1e-5 by the halving rule, stages <= 30 epochs
        (App. A: "0:1e-1,30:1e-2,60:1e-3,75:1e-4,83:1e-5" for P30F90, 1e-1);
  SX-B  P30/kF90 at 1e-1 and 1e-2: pretraining squeezed to round(30 / k) epochs,
        k the FLOPs speedup of the pruning (counted on the initial weights);
  Scratch  the pruned architecture trained with S (Scratch-E, 120 epochs).

3 seeds ("averaged by at least three random runs").

Run:
  python -m jaxprune.sweeps --config=configs/wang2023/table4.py --workdir=workdirs/wang2023_table4
  python -m jaxprune.report --results=workdirs/wang2023_table4/results.jsonl \
      --out=workdirs/wang2023_table4/report --paper_config=configs/wang2023/table4.py
Expected: third_party/paper_results/wang2023.csv, table "Table 4" (dense 84.56 %;
e.g. PR 95 %: scratch 76.67, P30F90 1e-2 77.64, P30F90 1e-1 79.57, P90F30 1e-4 29.89).
"""

from configs import common
from jaxprune.protocols import budget
from jaxprune.results import sweeps

RATIOS = [0.1, 0.3, 0.5, 0.7, 0.9, 0.95]
PKFN = [
  {"prune_epoch.setup": "pkfn", "prune_epoch.epoch": k} for k in range(15, 91, 15)
]
SX_A = [
  {"prune_epoch.setup": "sx_a", "prune_epoch.epoch": k, "prune_epoch.finetune_lr": lr}
  for k, lr in ((30, 0.1), (60, 0.01), (90, 0.01))
]
SX_B = [
  {"prune_epoch.setup": "sx_b", "prune_epoch.epoch": 30, "prune_epoch.finetune_lr": lr}
  for lr in (0.1, 0.01)
]


def build_config(arg=None):
  """The Table 4/5/8 base: ResNet-34 ImageNet100, L1 filters, `prune_epoch`."""
  config = common.wang_imagenet100(common.base("prune_epoch"))
  common.l1_filters(config, ratio=0.5)
  config.prune_epoch.setup = "pkfn"
  config.prune_epoch.epoch = 30
  return common.finalize(config, arg)


def get_config(arg=None):
  return build_config(arg)


def get_sweep(arg=None):
  ratios = sweeps.product(**{"pruning.ratio": RATIOS})
  methods = [*PKFN, *SX_A, *SX_B, common.SCRATCH_E]
  return common.sweep([{**r, **m} for r in ratios for m in methods], range(3), arg)


def _lr(value: float) -> str:
  return f"{value:.0e}".replace("e-0", "e-")


def label(setting) -> str:
  """The paper's name of a pruning setting, e.g. "P30F90, 1e-2" or
  "P30/kF90, 1e-1" (S4.2's LR is the scratch schedule's at epoch k)."""
  k, setup = setting["prune_epoch.epoch"], setting["prune_epoch.setup"]
  if setup == "pkfn":
    return budget.pkfn(get_config().schedule, k).label
  squeezed = "/k" if setup == "sx_b" else ""
  return f"P{k}{squeezed}F{120 - k}, {_lr(setting['prune_epoch.finetune_lr'])}"


def row_name(setting) -> str:
  """`label` as the results table spells it: "p30divkf90_lr1e-1"."""
  text = label(setting).lower().replace("/k", "divk").replace(", ", "_lr")
  extra = setting.get("prune_epoch.extra_epochs", 0)
  return f"{text}_plus{extra}ep" if extra else text


def paper_cell(setting):
  """The Table 4 top-1 cell a sweep setting reproduces (--paper_config)."""
  prefix = f"t4_pr{setting['pruning.ratio']}"
  if setting.get("protocol") == "scratch":
    return {"paper": "wang2023", "row_id": f"{prefix}_scratch"}
  return {"paper": "wang2023", "row_id": f"{prefix}_{row_name(setting)}"}
