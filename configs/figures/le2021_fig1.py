r"""Le & Hua 2021, Figure 1: FT, LRW, SLR, CLR when retraining for 72 epochs.

Original CIFAR training (NPTM `main.py`): 160 epochs, LR 0.1, x0.1 at epochs 80
and 120; batch 64, so 782 steps per epoch on CIFAR-10.

  python -m jaxprune.schedules --config=configs/figures/le2021_fig1.py \
      --steps_per_epoch=782 --out=experiments/figures/le2021_fig1.png

`:ARG` sets the retraining epochs, e.g. `le2021_fig1.py:40`.
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.title = "Le & Hua (2021) Fig. 1: retraining schedules"
  config.base = dict(name="piecewise", spec="0:0.1,80:0.01,120:0.001", epochs=160)
  config.retrain_epochs = int(arg) if arg else 72
  config.title += f", {config.retrain_epochs} epochs (flavor le2021)"
  config.flavor = "le2021"
  config.columns = 2
  config.variants = [
    dict(name="ft", label="(a) FT"),
    dict(name="lrw", label="(b) LRW"),
    dict(name="slr", label="(c) SLR"),
    dict(name="clr", label="(d) CLR"),
  ]
  return config
