r"""Liu et al. 2019, Sec. 5: network pruning as architecture search (Figs. 3, 6; Tables 7, 21).

Every point trains an architecture from scratch (protocol `scratch`,
Scratch-E: as many epochs as the large model, "All architectures are trained
from random initialization for the same number of epochs"), Rethinking's
CIFAR recipe (160 epochs, LR 0.1 x0.1 at 80/120, batch 64, wd 1e-4). The
architecture (`scratch.source`) is

* `pruned`: the one network slimming finds (sparsity training with
  s * sum|gamma|, s = 1e-4 for VGG (docs/provenance.md F4), one global
  BN-scale threshold at `pruning.ratio` of all channels, surgery);
* `uniform`: every layer keeps the same fraction, 1 - `pruning.ratio`;
* `guided`: "Guided Pruning", the slimmed widths averaged per stage (the convs
  between two poolings): `analysis.architecture.guided_widths`;
* `transferred`: "Transferred Guided Pruning", the stage ratios slimming finds
  on VGG-16 / CIFAR-10 applied to VGG-19 / CIFAR-100.

Two blocks, prune ratios 10-60 % (Table 21's columns), 5 seeds: VGG-16 on
CIFAR-10 (Fig. 3 left, Table 21, Table 7 at 60 %) with {guided, pruned,
uniform}, and VGG-19 on CIFAR-100 (Fig. 6 left) with {guided, pruned,
uniform, transferred}. Both VGGs are network slimming's (one Linear head,
`model.classifier="slimming"`). What the paper leaves open (ratios, rounding,
ratios vs counts when transferring): docs/provenance.md F13. A transferred
row records the dense VGG-16's CIFAR-10 accuracy as `source/test/accuracy`
(no `dense/test/accuracy`: no dense VGG-19 is trained for it).

Run (one net per figure: without `--where` the VGG-16 and VGG-19 points of
a source would share one line; the figures plot against parameter counts):
  python -m jaxprune.sweeps --config=configs/liu2019/arch_search.py --workdir=workdirs/liu2019_arch
  python -m jaxprune.report --results=workdirs/liu2019_arch/results.jsonl \\
      --out=workdirs/liu2019_arch/fig6_left --where=model.name=vgg19 \\
      --x=summary:nonzero_params --hue=scratch.source
(`--where=model.name=vgg16` for Fig. 3 left; `--x=pruning.ratio` for the
prune-ratio axis of Table 21.)
The patterns (Tables 7, 21; Figs. 3-4 as figures) of one slimmed run, from a
Python shell: `architecture.stage_channel_ratios("vgg16", widths,
classifier="slimming")` on the `widths` of its result row, or
`architecture.read_run(workdir, state)` on a finished run (README, "Pruning as
architecture search").
Expected: no table of accuracies is printed (Figs. 3 and 6 are plots): at
equal parameter counts, pruned >= uniform by a clear margin, guided on par
with pruned, transferred between the two (Sec. 5); the stage ratios of the
slimmed VGG-16 fall from ~1 in stages 1-3 to 0.13-0.87 in stages 4-5 (Table
21: 60 %: 0.836 / 1.000 / 0.947 / 0.258 / 0.132).
"""

from configs import common

RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
# Guided first: the smoke point (the first) exercises the stage averaging.
SOURCES = ("guided", "pruned", "uniform")
TRANSFERRED = {
  "scratch.source": "transferred",
  "scratch.transfer_model": "vgg16",
  "scratch.transfer_data": "cifar10",
}


def get_config(arg=None):
  config = common.slimming_scratch("vgg16", 1e-4)
  config.model.classifier = "slimming"
  return common.finalize(config, arg)


def get_sweep(arg=None):
  vgg16 = [{"pruning.ratio": r, "scratch.source": s} for s in SOURCES for r in RATIOS]
  sources = [{"scratch.source": s} for s in SOURCES] + [TRANSFERRED]
  vgg19 = [
    {"model.name": "vgg19", "data.name": "cifar100", "pruning.ratio": r, **src}
    for src in sources
    for r in RATIOS
  ]
  return common.sweep(vgg16 + vgg19, range(5), arg)
