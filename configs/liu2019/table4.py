r"""Liu et al. 2019, Table 4 (CIFAR part): network slimming, Fine-tuned vs Scratch-E/B.

VGG-19 (prune ratio 0.7), PreResNet-164 (0.4, 0.6) and DenseNet-40 (0.4, 0.6) on
CIFAR-10 and CIFAR-100: sparsity training with s * sum|gamma| (s = 1e-4 for VGG,
1e-5 otherwise: network-slimming README, docs/provenance.md F4), one global
BN-scale threshold, surgery, then fine-tuning 160 epochs with the training
schedule (the slimming code fine-tunes like it trains; Liu et al. keep it), or
Scratch-E / Scratch-B of the slimmed architecture. 5 seeds.

Run:
  python -m jaxprune.sweeps --config=configs/liu2019/table4.py --workdir=workdirs/liu2019_table4
  python -m jaxprune.report --results=workdirs/liu2019_table4/results.jsonl \\
      --out=workdirs/liu2019_table4/report
Expected: third_party/paper_results/liu2019.csv, table "Table 4" (CIFAR rows).
The ImageNet VGG-11 row is `table4_imagenet.py`.
"""

from configs import common
from jaxprune.results import sweeps

ARCHS = [
  {"model.name": "vgg19", "pruning.ratio": 0.7, "pruning.slimming_strength": 1e-4},
  {"model.name": "preresnet164", "pruning.ratio": 0.4},
  {"model.name": "preresnet164", "pruning.ratio": 0.6},
  {"model.name": "densenet40", "pruning.ratio": 0.4},
  {"model.name": "densenet40", "pruning.ratio": 0.6},
]
METHODS = [
  {"protocol": "slimming"},
  common.SCRATCH_E,
  common.SCRATCH_B,
]


def get_config(arg=None):
  config = common.rethinking_cifar(common.base("slimming"), "vgg19")
  common.network_slimming(config, 0.7, 1e-5)
  config.retrain.num_epochs = 160
  config.retrain.schedule = "piecewise"
  config.retrain.spec = "0:0.1,80:0.01,120:0.001"
  return common.finalize(config, arg)


def get_sweep(arg=None):
  data = sweeps.product(**{"data.name": ["cifar10", "cifar100"]})
  points = [{**d, **a, **m} for d in data for a in ARCHS for m in METHODS]
  return common.sweep(points, range(5), arg)


# (model, prune ratio) pairs Table 4 prints per dataset: CIFAR-100 VGG-19 is at 0.5.
_NETS = [
  ("preresnet164", 0.4),
  ("preresnet164", 0.6),
  ("densenet40", 0.4),
  ("densenet40", 0.6),
]
PUBLISHED = {
  "cifar10": [("vgg19", 0.7), *_NETS],
  "cifar100": [("vgg19", 0.5), *_NETS],
}


def paper_cell(setting):
  """The Table 4 test-accuracy cell a sweep setting reproduces (--paper_config)."""
  data, ratio = setting["data.name"], setting["pruning.ratio"]
  model = setting["model.name"]
  if (model, ratio) not in PUBLISHED[data]:
    return None
  method = common.method_label(setting, "finetuned")
  return {"paper": "liu2019", "row_id": f"t4_{data}_{model}_pr{ratio}_{method}"}
