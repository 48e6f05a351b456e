r"""Liu et al. 2019, Table 9 (VGG-16 part): lottery tickets vs random init, unstructured.

VGG-16 on CIFAR-10, iterative global magnitude pruning of conv kernels to
20/40/60/80/95 % (IMP, 20% of the remaining weights per round), ticket rewound
to init vs random re-init of the same mask, (a) LR 0.1 and (b) LR 0.01,
160 epochs (Rethinking recipe). 5 seeds. The ResNet-50 rows use a CIFAR
bottleneck ResNet-50 that the registry does not have (see configs/README.md).

Run:
  python -m jaxprune.sweeps --config=configs/liu2019/table9.py --workdir=workdirs/liu2019_table9
  python -m jaxprune.report --results=workdirs/liu2019_table9/results.jsonl \\
      --out=workdirs/liu2019_table9/report
Expected: third_party/paper_results/liu2019.csv, table "Table 9" (VGG-16 rows).
"""

from configs import common
from jaxprune.results import sweeps

LR01 = {"name": "piecewise", "spec": "0:0.1,80:0.01,120:0.001", "epochs": 160}
LR001 = {"name": "piecewise", "spec": "0:0.01,80:0.001,120:0.0001", "epochs": 160}


def get_config(arg=None):
  config = common.rethinking_cifar(common.base("lottery"), "vgg16")
  common.magnitude(config, 0.8)
  config.pruning.prune_dense = False
  config.pruning.rewind = "init"
  config.lottery.random_control = True
  return common.finalize(config, arg)


def get_sweep(arg=None):
  points = sweeps.product(
    **{"schedule": [LR01, LR001], "pruning.sparsity": [0.2, 0.4, 0.6, 0.8, 0.95]}
  )
  return common.sweep(points, range(5), arg)


def paper_cell(setting):
  """The Table 9 winning-ticket cell a sweep setting reproduces (--paper_config)."""
  # `test/accuracy` is the ticket's; the control's `random/...` is "_randominit".
  part = {LR01["spec"]: "a", LR001["spec"]: "b"}[setting["schedule"]["spec"]]
  sparsity = setting["pruning.sparsity"]
  row_id = f"t9{part}_cifar10_vgg16_pr{sparsity}_winningticket"
  return {"paper": "liu2019", "row_id": row_id}
