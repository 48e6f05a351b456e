r"""Le & Hua 2021, Figure 4 (a, b): iterative L1-norm filter pruning of ResNet-56 / ResNet-110.

CIFAR-10, NPTM recipe (160 epochs dense, shared). NPTM's "I" presets
(ResNet-56-I / ResNet-110-I: 0.1 / 0.15 / 0.2 of the current filters of
every block's first conv per stage, no skip list) applied at every cycle
(`presets.REPEATED`) with surgery, for 2 to 8 cycles (the x axis, compression
ratio, is in each summary's params / dense_params), each cycle retrained 40
epochs with FT, LRW, SLR or CLR (NPTM flavour). 3 seeds.

Assumption: 40 retraining epochs per cycle (Le & Hua's per-cycle budget of
Fig. 7; Sec. 3.2 mentions 80 epochs for the trade-off study).

Run:
  python -m jaxprune.sweeps --config=configs/le2021/fig4.py --workdir=workdirs/le2021_fig4
  python -m jaxprune.report --results=workdirs/le2021_fig4/results.jsonl \
      --out=workdirs/le2021_fig4/report --x=pruning.imp_cycles --hue=retrain.schedule
Expected: plots only; SLR and CLR comparable to or above LRW, all above FT.
"""

from configs import common
from jaxprune.results import sweeps


def get_config(arg=None):
  config = common.nptm_cifar(common.base("prune_retrain"), "resnet56")
  common.l1_filters(config, preset="resnet56_i")
  config.pruning.schedule, config.pruning.imp_cycles = "imp", 4
  config.retrain.num_epochs, config.retrain.flavor = 40, "le2021"
  return common.finalize(config, arg)


def get_sweep(arg=None):
  models = [
    {"model.name": m, "pruning.preset": f"{m}_i"} for m in ("resnet56", "resnet110")
  ]
  grid = sweeps.product(
    **{
      "pruning.imp_cycles": [2, 4, 6, 8],
      "retrain.schedule": ["ft", "lrw", "slr", "clr"],
    }
  )
  points = [{**m, **g} for m in models for g in grid]
  flavor = get_config(arg).retrain.flavor
  return common.sweep(common.nptm_onecycle(points, flavor), range(3), arg)
