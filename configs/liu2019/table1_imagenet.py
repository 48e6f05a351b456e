r"""Liu et al. 2019, Table 1 (ImageNet part): ResNet-34-A/B, Fine-tuned vs Scratch-E/B.

torchvision ResNet-34 recipe (90 epochs, 0.1 x0.1 every 30, batch 256, wd 1e-4);
fine-tune 20 epochs at 0.001 (docs/provenance.md F8); Scratch-B capped at 2x
the epochs (Liu et al. Sec. 4: at most twice the budget on ImageNet). One seed.

Run:
  python -m jaxprune.sweeps --config=configs/liu2019/table1_imagenet.py --workdir=workdirs/liu2019_table1_imagenet
  python -m jaxprune.report --results=workdirs/liu2019_table1_imagenet/results.jsonl \\
      --out=workdirs/liu2019_table1_imagenet/report
Expected: third_party/paper_results/liu2019.csv, "Table 1" ImageNet rows (ResNet-34-A
Fine-tuned 72.56, Scratch-E 72.77, Scratch-B 73.03).
"""

from configs import common
from jaxprune.results import sweeps

FINE_TUNE = {"protocol": "prune_retrain"}
METHODS = [FINE_TUNE, common.SCRATCH_E, common.SCRATCH_B]


def get_config(arg=None):
  config = common.imagenet(common.base("prune_retrain"), "resnet34")
  common.l1_filters(config, preset="resnet34_a")
  config.retrain.num_epochs = 20
  config.retrain.schedule, config.retrain.lr = "constant", 0.001
  config.scratch.max_speedup = 2.0
  return common.finalize(config, arg)


def get_sweep(arg=None):
  presets = sweeps.product(**{"pruning.preset": ["resnet34_a", "resnet34_b"]})
  return common.sweep([{**p, **m} for p in presets for m in METHODS], [0], arg)


def paper_cell(setting):
  """The Table 1 ImageNet top-1 cell a sweep setting reproduces (--paper_config)."""
  arch = setting["pruning.preset"].replace("_", "")
  method = common.method_label(setting, "finetuned")
  return {"paper": "liu2019", "row_id": f"t1_imagenet_{arch}_{method}"}
