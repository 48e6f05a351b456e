r"""Le & Hua 2021, Figure 2 (and Fig. 6): one-shot L1 filter pruning, accuracy vs retraining epochs.

ResNet-56-B / ResNet-110-B / VGG-16-A (PFEC presets) on CIFAR-10 from the NPTM
baseline, retrained with FT, LRW, SLR and CLR for 20, 40, 80 and 160 epochs
(the figure's x-axis ticks span these budgets; NPTM flavour). Fig. 6 is the
same sweep with `pruning.criterion=random` (random filters, same per-layer
counts): included as a second criterion. 3 seeds.

Run:
  python -m jaxprune.sweeps --config=configs/le2021/fig2.py --workdir=workdirs/le2021_fig2
  python -m jaxprune.report --results=workdirs/le2021_fig2/results.jsonl \
      --out=workdirs/le2021_fig2/report --x=retrain.num_epochs --hue=retrain.schedule
Expected: plots only (no typed numbers); CLR/SLR above LRW above FT at every
budget, random filters close to L1 with CLR (Le & Hua Sec. 4.1, Table 5).
"""

from configs import common
from jaxprune.results import sweeps

ARCHS = [("resnet56", "resnet56_b"), ("resnet110", "resnet110_b"), ("vgg16", "vgg16_a")]


def get_config(arg=None):
  config = common.nptm_cifar(common.base("prune_retrain"), "resnet56")
  common.l1_filters(config, preset="resnet56_b")
  config.retrain.flavor = "le2021"
  return common.finalize(config, arg)


def get_sweep(arg=None):
  grid = sweeps.product(
    **{
      "pruning.criterion": ["l1", "random"],
      "retrain.schedule": ["ft", "lrw", "slr", "clr"],
      "retrain.num_epochs": [20, 40, 80, 160],
    }
  )
  archs = [{"model.name": m, "pruning.preset": p} for m, p in ARCHS]
  points = common.nptm_onecycle([{**a, **g} for a in archs for g in grid])
  return common.sweep(points, range(3), arg)
