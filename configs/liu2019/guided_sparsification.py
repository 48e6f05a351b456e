r"""Liu et al. 2019, Sec. 5: unstructured pruning as architecture search (Figs. 3 right, 5 middle/right, 6 right; Tables 19-20).

Every point trains a sparse network from scratch (protocol `scratch`,
Scratch-E), Rethinking's CIFAR recipe (160 epochs, LR 0.1 x0.1 at 80/120,
batch 64, wd 1e-4). The sparse architecture (`scratch.source`) is

* `pruned`: the mask one-shot global magnitude pruning (Han et al.) finds on
  the trained large model, `pruning.sparsity` of all conv/dense kernels;
* `uniform`: every layer sparsified to `pruning.sparsity` at random;
* `guided`: "Guided Sparsification", the pruned mask's kept-weight ratio of
  each stage given to every layer of that stage (allocation `pattern` with
  `analysis.architecture.sparsity_pattern(guided=True)`), placed at random;
* `transferred` (VGG-19 / CIFAR-100 only): "Transferred Guided
  Sparsification", the stage ratios of the mask pruning finds on VGG-16 /
  CIFAR-10 at the same sparsity (`scratch.transfer_model` / `transfer_data`;
  the pretraining the VGG-16 points share) given to VGG-19's stages
  (`analysis.transfer`; the classifier `head` takes VGG-16's `head` ratio).

All are trained from a fresh initialisation with the mask fixed. Blocks
(5 seeds each, sparsities 10 / 50 / 90 %, the columns of Table 19): VGG-16 on
CIFAR-10 (Fig. 3 right), VGG-19 on CIFAR-100 (Fig. 6 right, with its
transferred curve), PreResNet-110 and DenseNet-40 on CIFAR-100 (Fig. 5 middle
and right). A transferred row's `source/test/accuracy` is the dense VGG-16's
on CIFAR-10; its `dense/test/accuracy` is empty. What the paper leaves open:
docs/provenance.md F16, F20.

Run (the figures plot against parameter counts, one net per figure):
  python -m jaxprune.sweeps --config=configs/liu2019/guided_sparsification.py \\
      --workdir=workdirs/liu2019_guided_sparse
  python -m jaxprune.report --results=workdirs/liu2019_guided_sparse/results.jsonl \\
      --out=workdirs/liu2019_guided_sparse/fig6_right --where=model.name=vgg19 \\
      --x=summary:nonzero_params --hue=scratch.source
(`--where=model.name=vgg16` for Fig. 3 right, `preresnet110` / `densenet40`
for Fig. 5; `--x=pruning.sparsity` for the sparsity axis.)
The stage patterns (Tables 19-20, Fig. 4) of a finished pruned run:
`architecture.stage_weight_ratios(run.masks, model_name=...)` and
`weights.kernel_position_keep` on `architecture.read_run(workdir, state)`;
`architecture.write_pattern(path, masks, guided=True)` writes a
`pruning.pattern` file for `pruning.allocation="pattern"` (with
`prunable=`, the pruning's bool tree, a prunable layer kept whole is written
as 1.0 rather than left out).
Expected: no table of accuracies (Figs. 3, 5, 6 are plots, so no paper_cell):
VGG: pruned and guided above uniform at equal parameter counts; on VGG-19
transferred "may sometimes be slightly worse" than pruned but clearly above
uniform (Sec. 5). A transferred point's sparsity is not `pruning.sparsity`
(VGG-19's extra convs take the ratios of stages 3-5), hence the parameter
axis. PreResNet-110 and DenseNet-40: pruned not clearly above uniform, their
per-stage patterns close to uniform (Table 19: 10 % -> ~0.85-0.91 kept,
90 % -> ~0.04-0.15).
"""

from configs import common

SPARSITIES = (0.1, 0.5, 0.9)
# Guided first: the smoke point (the first) exercises the stage averaging.
SOURCES = ("guided", "pruned", "uniform")
NETS = (
  {},  # VGG-16 / CIFAR-10: the base config, no model key.
  {"model.name": "vgg19", "data.name": "cifar100"},
  {"model.name": "preresnet110", "data.name": "cifar100"},
  {"model.name": "densenet40", "data.name": "cifar100"},
)
# Fig. 6 right's fourth curve: VGG-16 / CIFAR-10's pattern on VGG-19 / CIFAR-100.
TRANSFERRED = {
  "model.name": "vgg19",
  "data.name": "cifar100",
  "scratch.source": "transferred",
  "scratch.transfer_model": "vgg16",
  "scratch.transfer_data": "cifar10",
}


def get_config(arg=None):
  config = common.rethinking_cifar(common.base("scratch"), "vgg16")
  # Tied to num_epochs (see arch_search.py): Scratch's stretch reads it.
  config.schedule.epochs = config.get_ref("num_epochs")
  common.magnitude(config, 0.5)
  config.scratch.budget = "E"
  return common.finalize(config, arg)


def get_sweep(arg=None):
  points = [
    {**net, "pruning.sparsity": s, "scratch.source": src}
    for net in NETS
    for src in SOURCES
    for s in SPARSITIES
  ]
  # Appended: the points above keep their order (the smoke point stays first).
  points += [{**TRANSFERRED, "pruning.sparsity": s} for s in SPARSITIES]
  return common.sweep(points, range(5), arg)
