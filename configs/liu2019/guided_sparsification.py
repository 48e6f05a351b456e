r"""Liu et al. 2019, Sec. 5: unstructured pruning as architecture search (Figs. 3 right, 5 middle/right, 6 right; Tables 19-20).

Every point trains a sparse network from scratch (protocol `scratch`,
Scratch-E), Rethinking's CIFAR recipe (160 epochs, LR 0.1 x0.1 at 80/120,
batch 64, wd 1e-4). The sparse architecture (`scratch.source`) is

* `pruned`: the mask one-shot global magnitude pruning (Han et al.) finds on
  the trained large model, `pruning.sparsity` of all conv/dense kernels;
* `uniform`: every layer sparsified to `pruning.sparsity` at random;
* `guided`: "Guided Sparsification", the pruned mask's kept-weight ratio of
  each stage given to every layer of that stage (allocation `pattern` with
  `analysis.architecture.sparsity_pattern(guided=True)`), placed at random.

All three are trained from a fresh initialisation with the mask fixed. Blocks
(5 seeds each, sparsities 10 / 50 / 90 %, the columns of Table 19): VGG-16 on
CIFAR-10 (Fig. 3 right), VGG-19 on CIFAR-100 (Fig. 6 right, without its
transferred curve), PreResNet-110 and DenseNet-40 on CIFAR-100 (Fig. 5 middle
and right). What the paper leaves open: docs/provenance.md F16.

Run:
  python -m jaxprune.sweeps --config=configs/liu2019/guided_sparsification.py \\
      --workdir=workdirs/liu2019_guided_sparse
  python -m jaxprune.report --results=workdirs/liu2019_guided_sparse/results.jsonl \\
      --out=workdirs/liu2019_guided_sparse/report --x=pruning.sparsity \\
      --hue=scratch.source
The stage patterns (Tables 19-20, Fig. 4) of a finished pruned run:
`architecture.stage_weight_ratios(run.masks, model_name=...)` and
`weights.kernel_position_keep` on `architecture.read_run(workdir, state)`;
`architecture.write_pattern(path, masks, guided=True)` writes a
`pruning.pattern` file for `pruning.allocation="pattern"`.
Expected: no table of accuracies (Figs. 3, 5, 6 are plots, so no paper_cell):
VGG: pruned and guided above uniform at equal sparsity; PreResNet-110 and
DenseNet-40: pruned not clearly above uniform, their per-stage patterns close
to uniform (Table 19: 10 % -> ~0.85-0.91 kept, 90 % -> ~0.04-0.15).
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
  return common.sweep(points, range(5), arg)
