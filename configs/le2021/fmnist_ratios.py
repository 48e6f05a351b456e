r"""Le & Hua 2021's retraining variants at their CIFAR budget ratios, on Fashion-MNIST.

The paper's CIFAR recipe trains 160 epochs with the LR stepped down 10x at
50 % and 75 % of training, then retrains for budgets of a quarter and a half
of that (40 and 80 of 160 epochs), so LRW replays epochs from earlier LR
stages and SLR compresses the whole schedule. Here the same proportions on
MLP-7-ReLU and the offline Fashion-MNIST (the mini-reproduction compresses
them 10x, which makes LRW the same schedule as FT at small budgets): 160
epochs from LR 0.05 (x0.1 at 80 and 120; batch 128, wd 1e-4), one-shot
pruning by L1 neuron norm (structured, 50 % of every hidden layer, surgery:
PFEC-style) or global weight magnitude (90 %), retrained with FT / LRW / SLR /
CLR (flavour le2021; CLR cycles the momentum as NPTM's OneCycle) for 40 or 80 epochs, 5 seeds.

Run:
  python -m jaxprune.sweeps --config=configs/le2021/fmnist_ratios.py \
      --workdir=workdirs/le2021_fmnist_ratios
  python -m jaxprune.report --results=workdirs/le2021_fmnist_ratios/results.jsonl \
      --out=workdirs/le2021_fmnist_ratios/report --x=retrain.num_epochs \
      --hue=retrain.schedule
Expected: no published Fashion-MNIST numbers; Le & Hua's ordering (Tables 1-4:
CLR and SLR above FT at every budget, LRW above FT once it replays an earlier
LR stage). Claims and report: configs/cpu_full/le2021.py (`jaxprune.reproduce`).
"""

import ml_collections

from configs import common

EPOCHS = 160
SPEC = "0:0.05,80:0.005,120:0.0005"
BUDGETS = (40, 80)  # 25 % and 50 % of the original schedule.
VARIANTS = ("ft", "lrw", "slr", "clr")
L1 = common.MLP_L1_HALF
MAGNITUDE = common.MLP_MAGNITUDE_90


def get_config(arg=None):
  config = common.fashion_mnist("prune_retrain", model="mlp7_relu", epochs=EPOCHS)
  config.schedule = ml_collections.ConfigDict(
    dict(name="piecewise", spec=SPEC, epochs=config.get_ref("num_epochs"))
  )
  config.pruning.name, config.pruning.criterion = "structured", "l1"
  config.pruning.ratio = 0.5
  config.retrain.flavor = "le2021"
  config.retrain.schedule, config.retrain.num_epochs = "ft", BUDGETS[0]
  config.progress = False
  config.checkpoint_every_epochs = 10  # Sub-second epochs: save every tenth.
  return common.finalize(config, arg)


def get_sweep(arg=None):
  points = [
    {**pruning, "retrain.schedule": v, "retrain.num_epochs": e}
    for pruning in (L1, MAGNITUDE)
    for e in BUDGETS
    for v in VARIANTS
  ]
  # CLR is NPTM's OneCycle, which cycles the momentum too.
  return common.sweep(common.nptm_onecycle(points), range(5), arg)
