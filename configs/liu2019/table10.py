r"""Liu et al. 2019, Table 10 (CIFAR-10 rows): Soft Filter Pruning without pretrained models vs scratch.

"Pruned": SFP (protocol `sfp`, `common.sfp`) trains CIFAR-10 ResNet-20/32/56/110
from scratch, zeroing the lowest-L2 `ratio` of the first conv of every block
after every epoch, and removes them at the end (no fine-tuning: SFP without
pretrained models has none). Scratch-E / Scratch-B: the same small
architecture (per-layer counts do not depend on the weights, so `scratch`
with `source="uniform"` builds it without a pretraining) trained from a fresh
initialisation for the same epochs / the same FLOPs. 5 seeds.

Not covered here: the ImageNet rows (`table10_imagenet.py`) and Table 11 (SFP starting from
a pretrained model, `sfp.pretrained`: `table11.py`).

Run:
  python -m jaxprune.sweeps --config=configs/liu2019/table10.py --workdir=workdirs/liu2019_table10
  python -m jaxprune.report --results=workdirs/liu2019_table10/results.jsonl \
      --out=workdirs/liu2019_table10/report --hue=protocol
Expected: third_party/paper_results/liu2019.csv, table "Table 10": Scratch-B
matches or beats the SFP-pruned model (ResNet-56 PR 0.4: 92.59 pruned vs 93.07
Scratch-B).
"""

from configs import common

RATIOS = {
  "resnet20": (0.1, 0.2, 0.3),
  "resnet32": (0.1, 0.2, 0.3),
  "resnet56": (0.1, 0.2, 0.3, 0.4),
  "resnet110": (0.1, 0.2, 0.3),
}
METHODS = [
  {"protocol": "sfp"},
  {**common.SCRATCH_E, "scratch.source": "uniform"},
  {**common.SCRATCH_B, "scratch.source": "uniform"},
]


def get_config(arg=None):
  config = common.sfp(common.rethinking_cifar(common.base("sfp"), "resnet56"), 0.3)
  return common.finalize(config, arg)


def get_sweep(arg=None):
  archs = common.arch_points(RATIOS)
  points = [{**a, **m} for a in archs for m in METHODS]
  return common.sweep(points, range(5), arg)


def paper_cell(setting):
  """The Table 10 accuracy cell a sweep setting reproduces (--paper_config)."""
  method = common.method_label(setting, "pruned")
  arch = f"cifar10_{setting['model.name']}_pr{setting['pruning.ratio']}"
  return {"paper": "liu2019", "row_id": f"t10_{arch}_{method}"}
