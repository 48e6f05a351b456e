"""Dynamical Isometry Table 3 in full on Fashion-MNIST, and its four hypotheses.

`configs/wang2021_di/table3.py` at the paper's settings (MLP-7-Linear, 90
dense epochs, L1 neuron pruning at PR 0.8 / 0.9, OrthP on / off, the four
Table 2 fine-tuning schedules: 90 / 900 epochs from LR 0.01 / 0.001, Scratch,
5 seeds), with the mean JSV logged every 5 epochs (epoch 0: right after
pruning and OrthP). The paper's claims (Sec. 3.3, Table 3):

  H1  without OrthP, LR 0.01 beats LR 0.001 at 90 epochs;
  H2  without OrthP, that gain shrinks (or reverses) at 900 epochs;
  H3  OrthP removes the gain at 90 epochs (it shrinks with OrthP);
  H4  ... and at 900 epochs.

The published column is MNIST, ours Fashion-MNIST (harder: lower accuracies);
the claims are about differences, which the two datasets can share.

  python -m jaxprune.reproduce --suite=configs/cpu_full --only=wang2021_di \
      --workdir=workdirs/cpu_full
"""

from configs.cpu_full import base
from configs.wang2021_di import table3

LONG_EPOCHS = 900
S90_HIGH, S90_LOW, S900_HIGH, S900_LOW = (f["retrain.spec"] for f in table3.FINETUNES)
HIGH = {"retrain.spec": {"one_of": [S90_HIGH, S900_HIGH]}}  # Initial LR 0.01.
LOW = {"retrain.spec": {"one_of": [S90_LOW, S900_LOW]}}  # Initial LR 0.001.
NO_ORTHP = {"retrain.orthp": False}
# Scratch points carry the default fine-tuning spec and no OrthP too: every
# filter names the protocol, or it matches two settings (verdicts: AMBIGUOUS).
PRUNED = {"protocol": "prune_retrain"}


def _gain(claim_id, text, when, otherwise, fixed):
  return {
    "id": claim_id,
    "text": text,
    "kind": "gain_shrinks",
    "metric": "test/accuracy",
    "a": {**HIGH, **fixed, **PRUNED},
    "b": {**LOW, **fixed, **PRUNED},
    "when": when,
    "otherwise": otherwise,
    "for_each": ["pruning.ratio"],
  }


EXPERIMENTS = {
  "table3": {
    "title": "Dynamical Isometry Table 3 (full settings, Fashion-MNIST): "
    "MLP-7-Linear, L1 neuron pruning, OrthP, 90 / 900 fine-tuning epochs",
    "metrics": ["test/accuracy", "jsv/mean@start", "jsv/mean@end"],
    "figures": [],
    "jsv_curves": {"panel": "retrain.spec", "hue": ["pruning.ratio", "retrain.orthp"]},
    # A group of 10 900-epoch runs takes about 35 min on 2 CPU cores: small
    # groups write their rows (and a saved record keeps them) group by group.
    "group_runs": 10,
    "claims": [
      {
        "id": "wang2021_di.h1_lr_001_beats_0001_at_90",
        "text": "H1: without OrthP, fine-tuning from LR 0.01 beats LR 0.001 at 90 "
        "epochs (Table 3)",
        "kind": "greater",
        "metric": "test/accuracy",
        "a": {"retrain.spec": S90_HIGH, **NO_ORTHP, **PRUNED},
        "b": {"retrain.spec": S90_LOW, **NO_ORTHP, **PRUNED},
        "for_each": ["pruning.ratio"],
      },
      _gain(
        "wang2021_di.h2_gain_shrinks_at_900",
        "H2: without OrthP, the gain of LR 0.01 over 0.001 shrinks (or reverses) "
        "when fine-tuning 900 epochs instead of 90 (Table 3)",
        {"retrain.num_epochs": 900},
        {"retrain.num_epochs": 90},
        NO_ORTHP,
      ),
      _gain(
        "wang2021_di.h3_orthp_removes_gain_at_90",
        "H3: OrthP shrinks the gain of LR 0.01 over 0.001 at 90 epochs (Sec. 3.3)",
        {"retrain.orthp": True},
        {"retrain.orthp": False},
        {"retrain.num_epochs": 90},
      ),
      _gain(
        "wang2021_di.h4_orthp_removes_gain_at_900",
        "H4: OrthP shrinks the gain of LR 0.01 over 0.001 at 900 epochs (Sec. 3.3)",
        {"retrain.orthp": True},
        {"retrain.orthp": False},
        {"retrain.num_epochs": 900},
      ),
    ],
  },
}


def get_config(arg=None):
  _, is_smoke = base.smoke(arg)
  return table3.get_config(base.paper_arg(is_smoke))


def get_sweep(arg=None):
  """Table 3's points, the 90-epoch ones and Scratch first: they end within
  the first half hour, so H1 and H3 have their rows long before the 900-epoch
  runs (10 to a group, "group_runs") end one group at a time."""
  _, is_smoke = base.smoke(arg)
  points = table3.get_sweep(base.paper_arg(is_smoke))
  return sorted(points, key=lambda p: p.get("retrain.num_epochs") == LONG_EPOCHS)


paper_cell = table3.paper_cell
