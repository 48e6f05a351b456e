r"""Zimmer et al. 2023, Figure 1: retraining schedules for 60 epochs after a
stepped 200-epoch original training (per-iteration, BIMP code).

The paper does not print the stepped schedule of the figure; we assume the
common CIFAR recipe LR 0.1, x0.1 at epochs 100 and 150 (Wang et al.'s
ResNet-56 recipe). ALLR needs a pruning step: we draw it for an illustrative
90 % one-shot prune with ||W - W_p|| / ||W|| = 0.45, so d1 = 0.45 / sqrt(0.9)
= 0.474 > d2 = 60 / 200 = 0.3 and ALLR starts at 0.0474.

  python -m jaxprune.schedules --config=configs/figures/zimmer2023_fig1.py \
      --steps_per_epoch=352 --out=experiments/figures/zimmer2023_fig1.png

(352 = ceil(45000 / 128): BIMP's 90 % train split of CIFAR-10, batch 128.)
`:ARG` sets the retraining epochs.
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.base = dict(name="piecewise", spec="0:0.1,100:0.01,150:0.001", epochs=200)
  config.retrain_epochs = int(arg) if arg else 60
  config.title = (
    f"Zimmer et al. (2023) Fig. 1: retraining for {config.retrain_epochs} epochs "
    "(flavor zimmer2023)"
  )
  config.flavor = "zimmer2023"
  config.pruning = dict(relative_norm_change=0.45, sparsity=0.9)
  config.columns = 3
  config.variants = [
    dict(name="ft", label="FT"),
    dict(name="lrw", label="LRW"),
    dict(name="slr", label="SLR"),
    dict(name="clr", label="CLR"),
    dict(name="llr", label="LLR"),
    dict(name="allr", label="ALLR (d = 0.474)"),
  ]
  return config
