r"""Le & Hua 2021, Figure 5 (App. B.1): one-shot L1 filter pruning at high compression ratios.

Fig. 2's experiment (CIFAR-10, NPTM baseline of 160 epochs, one-shot PFEC,
retrained with FT, LRW, SLR and CLR for 20, 40, 80 and 160 epochs, NPTM
flavour, 3 seeds) on NPTM's high-ratio presets instead of Li et al.'s:
ResNet-56-C / D, ResNet-110-C / D (per-stage ratios, Li et al.'s skip lists)
and VGG-16-B / C (target widths), docs/provenance.md F1. Removed parameters
(conv + fc, `tests/test_pruning_structured.py` convention): 56-C 34.7 %,
56-D 48.9 %, 110-C 47.8 %, 110-D 64.9 %, VGG-16-B 71.9 %, VGG-16-C 82.4 %.

The text copy keeps two panel titles, "ResNet-110 PFEC, 63% Sparsity" and
"VGG-16, 72% Sparsity": by removed parameters these are ResNet-110-D and
VGG-16-B (docs/provenance.md F14). The other
presets, and the x axis (retraining epochs, Fig. 2's budgets; Sec. 3.1 speaks of
80 to 120 epochs instead of 40), are assumptions.

Run:
  python -m jaxprune.sweeps --config=configs/le2021/fig5.py --workdir=workdirs/le2021_fig5
  python -m jaxprune.report --results=workdirs/le2021_fig5/results.jsonl \
      --out=workdirs/le2021_fig5/report --x=retrain.num_epochs --hue=retrain.schedule
Expected: plots only (no typed numbers); with SLR / CLR and 80+ retraining
epochs almost no drop from the unpruned 93.46 (ResNet, Table 6) despite the
higher compression, FT lowest (Sec. 3.1, App. B.1).
"""

from configs import common
from jaxprune.results import sweeps

ARCHS = [
  ("resnet56", "resnet56_c"),
  ("resnet56", "resnet56_d"),
  ("resnet110", "resnet110_c"),
  ("resnet110", "resnet110_d"),
  ("vgg16", "vgg16_b"),
  ("vgg16", "vgg16_c"),
]


def get_config(arg=None):
  config = common.nptm_cifar(common.base("prune_retrain"), "resnet110")
  common.l1_filters(config, preset="resnet110_d")
  config.retrain.flavor = "le2021"
  return common.finalize(config, arg)


def get_sweep(arg=None):
  grid = sweeps.product(
    **{
      "retrain.schedule": ["ft", "lrw", "slr", "clr"],
      "retrain.num_epochs": [20, 40, 80, 160],
    }
  )
  archs = [{"model.name": m, "pruning.preset": p} for m, p in ARCHS]
  points = common.nptm_onecycle([{**a, **g} for a in archs for g in grid])
  return common.sweep(points, range(3), arg)
