r"""Liu et al. 2019, Fig. 5 (left; Table 18): PreResNet-164 slimmed vs uniform, from scratch.

The counter-example to Sec. 5's VGG result: on PreResNet-164 / CIFAR-10 the
architecture network slimming finds "is not significantly more efficient"
than a uniformly pruned one, because its sparsity pattern is near uniform
across stages (Table 18). Every point trains an architecture from scratch
(protocol `scratch`, Scratch-E: "trained from random initialization for the
same number of epochs" as the large model) with Rethinking's CIFAR recipe
(160 epochs, LR 0.1 x0.1 at 80/120, batch 64, wd 1e-4). The architecture
(`scratch.source`) is

* `pruned`: network slimming's: sparsity training with s * sum|gamma|,
  s = 1e-5 for ResNets (network-slimming README, docs/provenance.md F4), one
  global BN-scale threshold at `pruning.ratio` of all channels, surgery;
* `uniform`: every prunable layer keeps 1 - `pruning.ratio` of its channels.

Prune ratios 10-70 % (Table 18's columns), 5 seeds ("averaged over 5 runs"):
2 sources x 7 ratios x 5 seeds = 70 runs, plus the 5 slimming trainings the
`pruned` points share. The two curves are plotted against parameter counts,
so equal ratios need not give equal sizes.

Run:
  python -m jaxprune.sweeps --config=configs/liu2019/arch_search_fig5.py \\
      --workdir=workdirs/liu2019_fig5
  python -m jaxprune.report --results=workdirs/liu2019_fig5/results.jsonl \\
      --out=workdirs/liu2019_fig5/fig5_left --x=summary:nonzero_params \\
      --hue=scratch.source
(`--x=pruning.ratio` for the prune-ratio axis.) Table 18 (the per-stage
kept-channel ratios of each slimmed run) from a Python shell:
`architecture.stage_channel_ratios("preresnet164", widths)` on the `widths`
of a `pruned` result row.
Expected: no table of accuracies is printed (Fig. 5 is a plot): the pruned
and uniform curves overlap within their 5-seed spread at every size, and the
slimmed stage ratios stay within ~0.15 of each other at every prune ratio
(Table 18 at 50 %: 0.421 / 0.537 / 0.507).
"""

from configs import common

RATIOS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
SOURCES = ("pruned", "uniform")


def get_config(arg=None):
  config = common.slimming_scratch("preresnet164", 1e-5)
  return common.finalize(config, arg)


def get_sweep(arg=None):
  points = [{"pruning.ratio": r, "scratch.source": s} for s in SOURCES for r in RATIOS]
  return common.sweep(points, range(5), arg)
