r"""Liu et al. 2019, Table 6 (ImageNet rows): unstructured magnitude pruning, Fine-tuned vs Scratch-E/B.

VGG-16 (`vgg16_bn`) and ResNet-50 on ImageNet, torchvision recipe (90 epochs,
0.1 x0.1 every 30, batch 256, wd 1e-4), pruned by global magnitude over conv
kernels to 30 / 60 % (the table's ImageNet ratios), fine-tuned 20 epochs at
0.001 (as the other ImageNet rows, F8; assumed for this table, F17), or trained
from scratch with the same mask and the re-initialised std scaled per layer
(Scratch-E 90 epochs, Scratch-B by FLOPs ratio, capped at 2x: Sec. 4). One seed.

Run:
  python -m jaxprune.sweeps --config=configs/liu2019/table6_imagenet.py --workdir=workdirs/liu2019_table6_imagenet
  python -m jaxprune.report --results=workdirs/liu2019_table6_imagenet/results.jsonl \\
      --out=workdirs/liu2019_table6_imagenet/report
Expected: third_party/paper_results/liu2019.csv, "Table 6" ImageNet rows
(ResNet-50 60 %: 76.09 fine-tuned, 73.69 Scratch-E, 74.91 Scratch-B).
"""

from configs import common
from configs.liu2019 import table6
from jaxprune.results import sweeps


def get_config(arg=None):
  config = common.imagenet(common.base("prune_retrain"), "resnet50")
  common.magnitude(config, 0.6)
  config.pruning.prune_dense = False
  config.retrain.num_epochs = 20
  config.retrain.schedule, config.retrain.lr = "constant", 0.001
  config.scratch.max_speedup = 2.0
  return common.finalize(config, arg)


def get_sweep(arg=None):
  grid = sweeps.product(
    **{"model.name": ["vgg16_bn", "resnet50"], "pruning.sparsity": [0.3, 0.6]}
  )
  points = [{**g, **m} for g in grid for m in table6.METHODS]
  return common.sweep(points, [0], arg)


def paper_cell(setting):
  """The Table 6 ImageNet top-1 cell a sweep setting reproduces (--paper_config)."""
  model = setting["model.name"].replace("_bn", "")
  method = common.method_label(setting, "finetuned")
  sparsity = setting["pruning.sparsity"]
  return {"paper": "liu2019", "row_id": f"t6_imagenet_{model}_pr{sparsity}_{method}"}
