r"""Liu et al. 2019, Table 10 (ImageNet rows): SFP without pretrained models vs scratch.

ResNet-34 / ResNet-50 on ImageNet at SFP prune ratio 0.3 (the table's only
ImageNet ratio). "Pruned": protocol `sfp` trains from scratch on the
torchvision recipe (90 epochs, 0.1 x0.1 every 30, batch 256, wd 1e-4; assumed,
docs/provenance.md F17), zeroing the lowest-L2 30 % of the first conv of every
block after each epoch and removing them at the end. Scratch-E / Scratch-B:
the same small architecture (`scratch.source="uniform"`) for the same epochs /
the same FLOPs, Scratch-B capped at 2x the epochs (Liu et al. Sec. 4). One seed.

Not covered: Table 11 (SFP starting from a pretrained model).

Run:
  python -m jaxprune.sweeps --config=configs/liu2019/table10_imagenet.py --workdir=workdirs/liu2019_table10_imagenet
  python -m jaxprune.report --results=workdirs/liu2019_table10_imagenet/results.jsonl \\
      --out=workdirs/liu2019_table10_imagenet/report --hue=protocol
Expected: third_party/paper_results/liu2019.csv, "Table 10" ImageNet rows
(ResNet-34 PR 0.3: 71.83 pruned, 71.67 Scratch-E, 72.97 Scratch-B; ResNet-50
PR 0.3: 74.61 / 74.98 / 75.56).
"""

from configs import common

RATIOS = {"resnet34": (0.3,), "resnet50": (0.3,)}
METHODS = [
  {"protocol": "sfp"},
  {**common.SCRATCH_E, "scratch.source": "uniform"},
  {**common.SCRATCH_B, "scratch.source": "uniform"},
]


def get_config(arg=None):
  config = common.sfp(common.base("sfp"), 0.3)
  config = common.imagenet(config, "resnet34")
  config.scratch.max_speedup = 2.0
  return common.finalize(config, arg)


def get_sweep(arg=None):
  archs = common.arch_points(RATIOS)
  return common.sweep([{**a, **m} for a in archs for m in METHODS], [0], arg)


def paper_cell(setting):
  """The Table 10 ImageNet top-1 cell a sweep setting reproduces (--paper_config)."""
  method = common.method_label(setting, "pruned")
  arch = f"imagenet_{setting['model.name']}_pr{setting['pruning.ratio']}"
  return {"paper": "liu2019", "row_id": f"t10_{arch}_{method}"}
