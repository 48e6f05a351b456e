r"""Le & Hua 2021, Figure 3 (one-shot) and Fig. 7 (one-shot + iterative): MWP.

Global magnitude weight pruning (MWP) of every conv kernel of ResNet-56 /
VGG-16 on CIFAR-10 (the weight-level code prunes convs only, not the classifier:
docs/provenance.md F5), sparsity 50 / 70 / 90 / 95 %, retrained 40 epochs
with FT, LRW, SLR, CLR; one-shot and iterative (IMP, 20% of the remaining
weights per cycle, 40 epochs per cycle is Fig. 7's setting; here every cycle
gets `retrain.num_epochs`). 3 seeds.

Run:
  python -m jaxprune.sweeps --config=configs/le2021/fig3.py --workdir=workdirs/le2021_fig3
  python -m jaxprune.report --results=workdirs/le2021_fig3/results.jsonl \
      --out=workdirs/le2021_fig3/report --x=pruning.sparsity --hue=retrain.schedule
Expected: plots only; CLR/SLR above FT, gap growing with sparsity.
"""

from configs import common
from jaxprune.results import sweeps


def get_config(arg=None):
  config = common.nptm_cifar(common.base("prune_retrain"), "resnet56")
  common.magnitude(config, 0.9)
  config.pruning.prune_dense = False
  config.retrain.num_epochs = 40
  config.retrain.flavor = "le2021"
  return common.finalize(config, arg)


def get_sweep(arg=None):
  points = sweeps.product(
    **{
      "model.name": ["resnet56", "vgg16"],
      "pruning.schedule": ["one_shot", "imp"],
      "pruning.sparsity": [0.5, 0.7, 0.9, 0.95],
      "retrain.schedule": ["ft", "lrw", "slr", "clr"],
    }
  )
  return common.sweep(common.nptm_onecycle(points), range(3), arg)
