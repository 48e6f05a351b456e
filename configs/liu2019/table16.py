r"""Liu et al. 2019, Table 16: fine-tuning for 40 / 80 / 160 epochs vs Scratch-E.

L1-norm filter pruning (VGG-16-A, ResNet-56-A/B, ResNet-110-A/B, CIFAR-10,
Rethinking recipe), fine-tuned at constant 0.001 for 40, 80 or 160 epochs,
against Scratch-E. 5 seeds.

Run:
  python -m jaxprune.sweeps --config=configs/liu2019/table16.py --workdir=workdirs/liu2019_table16
  python -m jaxprune.report --results=workdirs/liu2019_table16/results.jsonl \\
      --out=workdirs/liu2019_table16/report
Expected: third_party/paper_results/liu2019.csv, table "Table 16": longer fine-tuning
does not close the gap to Scratch-E.
"""

from configs import common

ARCHS = common.LI_PRESETS


def get_config(arg=None):
  config = common.rethinking_cifar(common.base("prune_retrain"), "vgg16")
  common.l1_filters(config, preset="vgg16_a")
  config.retrain.num_epochs = 40
  config.retrain.schedule, config.retrain.lr = "constant", 0.001
  return common.finalize(config, arg)


def get_sweep(arg=None):
  archs = [{"model.name": m, "pruning.preset": p} for m, p in ARCHS]
  methods = [{"retrain.num_epochs": e} for e in (40, 80, 160)]
  methods.append(common.SCRATCH_E)
  return common.sweep([{**a, **m} for a in archs for m in methods], range(5), arg)


def paper_cell(setting):
  """The Table 16 test-accuracy cell a sweep setting reproduces (--paper_config)."""
  arch = setting["pruning.preset"].replace("_", "")
  if setting.get("protocol") == "scratch":
    return {"paper": "liu2019", "row_id": f"t16_{arch}_scratche"}
  epochs = setting["retrain.num_epochs"]
  return {"paper": "liu2019", "row_id": f"t16_{arch}_finetune{epochs}"}
