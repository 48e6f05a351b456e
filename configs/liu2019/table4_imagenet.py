r"""Liu et al. 2019, Table 4 (ImageNet row): network slimming on VGG-11, Fine-tuned vs Scratch-E/B.

VGG-11 with BatchNorm (`vgg11_bn`) on ImageNet, torchvision recipe (90
epochs, 0.1 x0.1 every 30, batch 256, wd 1e-4) with sparsity training
s * sum|gamma| (s = 1e-5, the slimming code's non-VGG-CIFAR value; assumed,
docs/provenance.md F17), one global BN-scale threshold removing 50 % of the
channels, surgery, then fine-tuning 20 epochs at 0.001 (as the other ImageNet
rows, F8; assumed), or Scratch-E / Scratch-B (capped at 2x, Sec. 4) of the
slimmed architecture. One seed.

Run:
  python -m jaxprune.sweeps --config=configs/liu2019/table4_imagenet.py --workdir=workdirs/liu2019_table4_imagenet
  python -m jaxprune.report --results=workdirs/liu2019_table4_imagenet/results.jsonl \\
      --out=workdirs/liu2019_table4_imagenet/report
Expected: third_party/paper_results/liu2019.csv, "Table 4" ImageNet row
(VGG-11 PR 0.5: 68.62 fine-tuned, 70.00 Scratch-E, 71.18 Scratch-B).
"""

from configs import common
from configs.liu2019 import table4


def get_config(arg=None):
  config = common.imagenet(common.base("slimming"), "vgg11_bn")
  common.network_slimming(config, 0.5, 1e-5)
  config.retrain.num_epochs = 20
  config.retrain.schedule, config.retrain.lr = "constant", 0.001
  config.scratch.max_speedup = 2.0
  return common.finalize(config, arg)


def get_sweep(arg=None):
  return common.sweep([dict(m) for m in table4.METHODS], [0], arg)


def paper_cell(setting):
  """The Table 4 ImageNet top-1 cell a sweep setting reproduces (--paper_config)."""
  method = common.method_label(setting, "finetuned")
  return {"paper": "liu2019", "row_id": f"t4_imagenet_vgg11_pr0.5_{method}"}
