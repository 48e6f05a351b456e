r"""Liu et al. 2019, Table 9: lottery tickets vs random init, unstructured.

CIFAR-10 VGG-16 and ResNet-50, one-shot global magnitude pruning of the conv
kernels (the head is not pruned) to 20/40/60/80/95 %, ticket rewound to init
vs random re-init of the same mask, (a) LR 0.1 and (b) LR 0.01, 160 epochs
(Rethinking recipe). 5 seeds.

ResNet-50 is `resnet50_cifar`: the authors' lottery-ticket code builds
`resnet(depth=50)` from 6n+2 BasicBlocks (n = 8, widths 16/32/64) with 1x1
conv + BN projection shortcuts, since it switches to bottleneck blocks only
from depth 54 (docs/provenance.md F12); 758,554 parameters.

Run:
  python -m jaxprune.sweeps --config=configs/liu2019/table9.py --workdir=workdirs/liu2019_table9
  python -m jaxprune.report --results=workdirs/liu2019_table9/results.jsonl \\
      --out=workdirs/liu2019_table9/report
Expected: third_party/paper_results/liu2019.csv, table "Table 9".
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
  # VGG-16 first and without a model key: its points keep their config hashes.
  resnet50 = [{"model.name": "resnet50_cifar", **p} for p in points]
  return common.sweep(points + resnet50, range(5), arg)


def paper_cell(setting):
  """The Table 9 winning-ticket cell a sweep setting reproduces (--paper_config)."""
  # `test/accuracy` is the ticket's; the control's `random/...` is "_randominit".
  part = {LR01["spec"]: "a", LR001["spec"]: "b"}[setting["schedule"]["spec"]]
  sparsity = setting["pruning.sparsity"]
  model = {"vgg16": "vgg16", "resnet50_cifar": "resnet50"}[
    setting.get("model.name", "vgg16")
  ]
  row_id = f"t9{part}_cifar10_{model}_pr{sparsity}_winningticket"
  return {"paper": "liu2019", "row_id": row_id}
