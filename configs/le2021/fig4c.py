r"""Le & Hua 2021, Figure 4 (c): iterative MWP of ImageNet ResNet-50, FT vs CLR.

Dense: the torchvision ResNet-50 recipe (90 epochs, 0.1 x0.1 every 30, batch
256, wd 1e-4; Le & Hua start from the torchvision model, we train it, shared),
as `table2_imagenet.py` / `table8.py`. Pruning: global magnitude weight pruning
(MWP, Han et al.) of the conv kernels only (the figure's x axis is the
sparsity "of convolutional layers", Sec. 3.2; docs/provenance.md F5),
iterative as in `fig3.py`: 20 % of the remaining weights per cycle up to the
target sparsity 0.2 / 0.4 / 0.6 / 0.8 (the figure's x range), each cycle
retrained 45 epochs (Sec. 3.2: the ImageNet budget of the model-size study)
with FT (constant 0.001) or CLR (NPTM one-cycle, peak 0.1, cycled momentum).
One seed: the paper prints single ImageNet runs (Sec. 2, Evaluation).

Assumptions (docs/provenance.md F14): the per-cycle
rate (20 %, Fig. 7's IMP) and the four sparsity targets are read off
`fig3.py` and the figure's axis, not stated for ImageNet; the text compares
CLR with fine-tuning only, so LRW / SLR are left out (add
`"retrain.schedule": ["lrw", "slr"]` to RETRAINS to draw all four legend
entries). The 0.8 run's summary `cycles` also lists the accuracy after every
earlier cycle (0.2, 0.36, 0.49, ...), a cheaper curve than four runs.

Run:
  python -m jaxprune.sweeps --config=configs/le2021/fig4c.py --workdir=workdirs/le2021_fig4c
  python -m jaxprune.report --results=workdirs/le2021_fig4c/results.jsonl \
      --out=workdirs/le2021_fig4c/report --x=pruning.sparsity --hue=retrain.schedule
Expected: plots only (no typed numbers); CLR well above FT at every sparsity,
CLR at or above the dense top-1 (76.15 for the torchvision model) up to 80 %
sparsity of the conv layers (Sec. 3.2).
"""

from configs import common
from jaxprune.results import sweeps

SPARSITIES = [0.2, 0.4, 0.6, 0.8]
RETRAINS = ["ft", "clr"]


def get_config(arg=None):
  config = common.imagenet(common.base("prune_retrain"), "resnet50")
  common.magnitude(config, SPARSITIES[-1])
  config.pruning.prune_dense = False  # Conv kernels only (F5).
  config.pruning.schedule, config.pruning.imp_rate = "imp", 0.2
  config.retrain.num_epochs = 45
  config.retrain.flavor = "le2021"
  return common.finalize(config, arg)


def get_sweep(arg=None):
  points = sweeps.product(
    **{"pruning.sparsity": SPARSITIES, "retrain.schedule": RETRAINS}
  )
  return common.sweep(common.nptm_onecycle(points), [0], arg)
