r"""Liu et al. 2019, Table 8: structured lottery tickets (L1-norm filter pruning) vs random init.

CIFAR-10 VGG-16-A, ResNet-56-A/B, ResNet-110-A/B (Li et al.'s presets), the
dense nets trained 160 epochs (Rethinking recipe) with (a) initial LR 0.1 or
(b) 0.01; L1 filter pruning with surgery; the winning ticket = the kept
filters at their initial values, trained 160 epochs with the same schedule,
vs the same small architecture from a fresh random initialisation
(`lottery.random_control`; its accuracy is `random/test/accuracy`). 5 seeds.

Run:
  python -m jaxprune.sweeps --config=configs/liu2019/table8.py --workdir=workdirs/liu2019_table8
  python -m jaxprune.report --results=workdirs/liu2019_table8/results.jsonl \
      --out=workdirs/liu2019_table8/report
Expected: third_party/paper_results/liu2019.csv, table "Table 8": the winning
ticket does not beat random initialisation at either LR.
"""

from configs import common
from jaxprune.results import sweeps

LR01 = {"name": "piecewise", "spec": "0:0.1,80:0.01,120:0.001", "epochs": 160}
LR001 = {"name": "piecewise", "spec": "0:0.01,80:0.001,120:0.0001", "epochs": 160}
ARCHS = common.LI_PRESETS


def get_config(arg=None):
  config = common.rethinking_cifar(common.base("lottery"), "resnet56")
  common.l1_filters(config, preset="resnet56_a")
  config.pruning.rewind = "init"
  config.lottery.random_control = True
  return common.finalize(config, arg)


def get_sweep(arg=None):
  archs = [{"model.name": m, "pruning.preset": p} for m, p in ARCHS]
  lrs = sweeps.product(schedule=[LR01, LR001])
  return common.sweep([{**a, **lr} for lr in lrs for a in archs], range(5), arg)


def paper_cell(setting):
  """The Table 8 winning-ticket cell a sweep setting reproduces (--paper_config)."""
  part = {LR01["spec"]: "a", LR001["spec"]: "b"}[setting["schedule"]["spec"]]
  arch = setting["pruning.preset"].replace("_", "")
  return {"paper": "liu2019", "row_id": f"t8{part}_cifar10_{arch}_winningticket"}
