r"""Le & Hua 2021, Table 2 (CIFAR-10/100 part): PFEC with FT / CLR vs Scratch-E/B.

VGG-16-A, ResNet-56-A/B and ResNet-110-A/B (Li et al. presets) pruned one-shot
by L1 filter norm from the NPTM CIFAR baseline (160 epochs, 0.1 x0.1 at 80/120,
batch 64, wd 1e-4, 90/10 train/val split, best-validation model), then retrained
40 epochs with FT (constant 0.001) or CLR (1-cycle 0.001 -> 0.1 -> 1e-5, NPTM
flavour), against Scratch-E / Scratch-B of the same architecture. 3 seeds (the
paper's runs). The unpruned row is the shared dense pretraining.

Run:
  python -m jaxprune.sweeps --config=configs/le2021/table2.py --workdir=workdirs/le2021_table2
  python -m jaxprune.report --results=workdirs/le2021_table2/results.jsonl \
      --out=workdirs/le2021_table2/report
Expected: third_party/paper_results/le2021.csv, table "Table 2" (rows t2_cifar10_*,
t2_cifar100_*), e.g. ResNet-56-B CIFAR-10 FT 92.06 ± 0.23,
CLR 92.41 ± 0.19, Scratch-E 92.39 ± 0.22, Scratch-B 92.31 ± 0.23.
The ImageNet rows are configs/le2021/table2_imagenet.py.
"""

from configs import common
from jaxprune.results import sweeps

ARCHS = common.LI_PRESETS
METHODS = [
  {"protocol": "prune_retrain", "retrain.schedule": "ft"},
  {
    "protocol": "prune_retrain",
    "retrain.schedule": "clr",
    "retrain.cycle_momentum": True,  # NPTM: OneCycleLR cycle_momentum=True.
  },
  common.SCRATCH_E,
  common.SCRATCH_B,
]


def get_config(arg=None):
  config = common.nptm_cifar(common.base("prune_retrain"), "resnet56")
  common.l1_filters(config, preset="resnet56_b")
  config.retrain.num_epochs = 40
  config.retrain.flavor = "le2021"
  config.scratch.e_convention = "le2021"
  return common.finalize(config, arg)


def get_sweep(arg=None):
  archs = [{"model.name": m, "pruning.preset": p} for m, p in ARCHS]
  data = sweeps.product(**{"data.name": ["cifar10", "cifar100"]})
  points = [{**d, **a, **m} for d in data for a in archs for m in METHODS]
  return common.sweep(points, range(3), arg)


def paper_cell(setting):
  """The Table 2 test-accuracy cell a sweep setting reproduces (--paper_config)."""
  preset = setting["pruning.preset"]
  arch = "vgg16" if preset == "vgg16_a" else preset.replace("_", "")  # VGG-16 is A.
  method = common.method_label(setting, setting["retrain.schedule"])
  return {"paper": "le2021", "row_id": f"t2_{setting['data.name']}_{arch}_{method}"}
