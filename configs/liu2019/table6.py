r"""Liu et al. 2019, Table 6 (CIFAR part): unstructured magnitude pruning, Fine-tuned vs Scratch-E/B.

VGG-19, PreResNet-110 and DenseNet-BC-100 on CIFAR-10/100 pruned by global
magnitude over conv kernels (the weight-level code prunes convs only,
docs/provenance.md F5) to 30/50/60/80/95 % (the paper's ratios per model
differ; we run the union), fine-tuned 40 epochs at 0.001, or trained from
scratch with the same mask (Scratch-E 160 epochs, Scratch-B by FLOPs ratio),
the re-initialised std scaled by 1/sqrt(kept fraction) per layer as Liu et al.
The weight-level code builds bottleneck PreResNet-110 (§1.4); ours is the
registry's `preresnet110`. 5 seeds.

Run:
  python -m jaxprune.sweeps --config=configs/liu2019/table6.py --workdir=workdirs/liu2019_table6
  python -m jaxprune.report --results=workdirs/liu2019_table6/results.jsonl \\
      --out=workdirs/liu2019_table6/report
Expected: third_party/paper_results/liu2019.csv, table "Table 6" (CIFAR rows).
The ImageNet rows (VGG-16, ResNet-50) are `table6_imagenet.py`.
"""

from configs import common
from jaxprune.results import sweeps

FINE_TUNE = {"protocol": "prune_retrain"}
# Sec. 4 (unstructured pruning): "Before training the pruned sparse model from scratch, we re-scale
# the standard deviation of the Gaussian distribution for weight
# initialization, based on how many non-zero weights remain in this layer."
RESCALE = {"pruning.reinit_rescale": True}
SCRATCH_E = {**common.SCRATCH_E, **RESCALE}
SCRATCH_B = {**common.SCRATCH_B, **RESCALE}
METHODS = [FINE_TUNE, SCRATCH_E, SCRATCH_B]


def get_config(arg=None):
  config = common.rethinking_cifar(common.base("prune_retrain"), "vgg19")
  common.magnitude(config, 0.5)
  config.pruning.prune_dense = False
  config.retrain.num_epochs = 40
  config.retrain.schedule, config.retrain.lr = "constant", 0.001
  return common.finalize(config, arg)


def get_sweep(arg=None):
  grid = sweeps.product(
    **{
      "data.name": ["cifar10", "cifar100"],
      "model.name": ["vgg19", "preresnet110", "densenet_bc100"],
      "pruning.sparsity": [0.3, 0.5, 0.6, 0.8, 0.95],
    }
  )
  return common.sweep([{**g, **m} for g in grid for m in METHODS], range(5), arg)


# The sparsities Table 6 prints for the CIFAR models (the sweep runs the union).
PUBLISHED_SPARSITIES = {"cifar10": (0.3, 0.8, 0.95), "cifar100": (0.3, 0.5, 0.95)}


def paper_cell(setting):
  """The Table 6 test-accuracy cell a sweep setting reproduces (--paper_config)."""
  data, sparsity = setting["data.name"], setting["pruning.sparsity"]
  if sparsity not in PUBLISHED_SPARSITIES[data]:
    return None
  model = setting["model.name"].replace("_", "")
  method = common.method_label(setting, "finetuned")
  return {"paper": "liu2019", "row_id": f"t6_{data}_{model}_pr{sparsity}_{method}"}
