r"""Liu et al. 2019, Table 1 (CIFAR-10 part): L1-norm filter pruning, Fine-tuned vs Scratch-E/B.

VGG-16-A, ResNet-56-A/B, ResNet-110-A/B (Li et al. presets) from the Rethinking
CIFAR baseline (160 epochs, 0.1 x0.1 at 80/120, batch 64, wd 1e-4); fine-tuned
40 epochs at constant 0.001 (`main_finetune.py`, docs/provenance.md F8), or
trained from scratch for 160 epochs (Scratch-E) or int(160 * FLOPs ratio)
epochs (Scratch-B). 5 seeds, as in the paper.

Run:
  python -m jaxprune.sweeps --config=configs/liu2019/table1.py --workdir=workdirs/liu2019_table1
  python -m jaxprune.report --results=workdirs/liu2019_table1/results.jsonl \\
      --out=workdirs/liu2019_table1/report
Expected: third_party/paper_results/liu2019.csv, table "Table 1" (CIFAR-10 rows),
e.g. VGG-16-A Fine-tuned 93.41 ± 0.12, Scratch-E 93.62 ± 0.11, Scratch-B 93.78 ± 0.15.
ImageNet ResNet-34-A/B: configs/liu2019/table1_imagenet.py.
"""

from configs import common

ARCHS = common.LI_PRESETS
FINE_TUNE = {"protocol": "prune_retrain"}
METHODS = [FINE_TUNE, common.SCRATCH_E, common.SCRATCH_B]


def get_config(arg=None):
  config = common.rethinking_cifar(common.base("prune_retrain"), "vgg16")
  common.l1_filters(config, preset="vgg16_a")
  config.retrain.num_epochs = 40
  config.retrain.schedule, config.retrain.lr = "constant", 0.001
  return common.finalize(config, arg)


def get_sweep(arg=None):
  archs = [{"model.name": m, "pruning.preset": p} for m, p in ARCHS]
  return common.sweep([{**a, **m} for a in archs for m in METHODS], range(5), arg)


def paper_cell(setting):
  """The Table 1 test-accuracy cell a sweep setting reproduces (--paper_config)."""
  arch = setting["pruning.preset"].replace("_", "")
  method = common.method_label(setting, "finetuned")
  return {"paper": "liu2019", "row_id": f"t1_cifar10_{arch}_{method}"}
