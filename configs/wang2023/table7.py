r"""Wang et al. 2023, Table 7: VGG-19 on CIFAR-100, L1-norm at PR 0.3-0.9 vs scratch.

Dense VGG-19 trained 200 epochs (0.1 x0.1 at 100/150, wd 5e-4, batch 128 / 256 for
VGG, ImageNet mean/std: TPP/GReg recipe, docs/provenance.md F7, F10); L1-norm
pruning of the first conv of every residual block (ResNet) / every conv but
the last (VGG) at a uniform ratio, fine-tuned 120 epochs with step or cosine
LR from 0.01 or 0.001, every arm ending at the paper's minimum LR 1e-4;
Scratch = the pruned architecture trained 200 epochs (Scratch-E). 3 seeds
(the paper prints mean ± std without a run count).

Run:
  python -m jaxprune.sweeps --config=configs/wang2023/table7.py --workdir=workdirs/wang2023_table7
  python -m jaxprune.report --results=workdirs/wang2023_table7/results.jsonl \
      --out=workdirs/wang2023_table7/report
Expected: third_party/paper_results/wang2023.csv, table "Table 7": initial
LR 0.01 beats 0.001 and cosine beats step at every PR.
"""

from configs.wang2023 import table6  # Same protocol; only network and data differ.


def get_config(arg=None):
  return table6.build_config("vgg19", "cifar100", arg)


def get_sweep(arg=None):
  return table6.get_sweep(arg)


def paper_cell(setting):
  """The Table 7 test-accuracy cell a sweep setting reproduces (--paper_config)."""
  return table6.cell("t7_vgg19", setting)
