r"""Le & Hua 2021, Table 2 (ImageNet part): ResNet-34-A/B, PFEC + FT / CLR vs Scratch-E/B.

Baseline: torchvision ResNet-34 recipe (90 epochs, 0.1 x0.1 every 30, batch 256,
wd 1e-4); Le & Hua start from the torchvision pretrained model, we train it
(shared dense pretraining). Retraining 20 epochs (Liu et al.'s ImageNet fine-tune
length, docs/provenance.md F8) with FT (0.001) or CLR (NPTM flavour). One seed:
the paper prints single ImageNet runs.

Run:
  python -m jaxprune.sweeps --config=configs/le2021/table2_imagenet.py --workdir=workdirs/le2021_table2_in
  python -m jaxprune.report --results=workdirs/le2021_table2_in/results.jsonl \
      --out=workdirs/le2021_table2_in/report
Expected: third_party/paper_results/le2021.csv, "Table 2" rows t2_imagenet_* (ResNet-34-A
FT 72.96 ± 0.06 vs CLR above it; unpruned 73.30).
"""

from configs import common
from jaxprune.results import sweeps

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
  config = common.imagenet(common.base("prune_retrain"), "resnet34")
  common.l1_filters(config, preset="resnet34_a")
  config.retrain.num_epochs = 20
  config.retrain.flavor = "le2021"
  config.scratch.e_convention = "le2021"
  config.scratch.max_speedup = 2.0  # Liu et al.'s ImageNet Scratch-B cap.
  return common.finalize(config, arg)


def get_sweep(arg=None):
  presets = sweeps.product(**{"pruning.preset": ["resnet34_a", "resnet34_b"]})
  points = [{**p, **m} for p in presets for m in METHODS]
  return common.sweep(points, [0], arg)


def paper_cell(setting):
  """The Table 2 ImageNet top-1 cell a sweep setting reproduces (--paper_config)."""
  arch = setting["pruning.preset"].replace("_", "")
  method = common.method_label(setting, setting["retrain.schedule"])
  return {"paper": "le2021", "row_id": f"t2_imagenet_{arch}_{method}"}
