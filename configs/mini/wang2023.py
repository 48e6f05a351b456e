"""Wang et al. 2023 ("Why so confusing") on the CPU: PkFn, trainability, LR vs epochs.

`pkfn` (Table 4's S4.2 protocol in miniature): MLP-7-ReLU on Fashion-MNIST,
scratch schedule S = 15 epochs "0:0.05,5:0.005,10:0.0005"; train k = 5 or 10
epochs of S, prune L1 neurons (50 % or 80 % of every hidden layer, surgery),
fine-tune the remaining 15 - k epochs with the rest of S (P5F10, P10F5).
Reported: final test accuracy and the trainability accuracy (Eq. 1: mean
training accuracy over the first LR stage of the fine-tuning, the split of the
paper's TA values). Claim (Sec. 5.2):
pruning damages trainability, more so at the larger ratio.

`lr_epochs` (Table 5's trend): the shared 15-epoch pretraining of
`configs/mini/base.py`, L1 neuron pruning at 80 %, then fine-tuning with
initial LR 0.01 for 5 epochs ("0:0.01,3:0.001") or LR 0.001 for 5, 10 or 20
epochs (the extra epochs added to the first stage, as in Table 5). Claims:
at equal epochs the larger LR wins; the smaller LR improves with more epochs
and with 4x the epochs reaches the larger LR (best or within one std).

  python -m jaxprune.sweeps --config=configs/mini/wang2023.py:pkfn \
      --workdir=workdirs/mini/wang2023/pkfn
"""

from configs.mini import base

SCRATCH_SPEC = "0:0.05,5:0.005,10:0.0005"
LARGE = {"retrain.spec": "0:0.01,3:0.001", "retrain.num_epochs": 5}
SMALL = {
  5: {"retrain.spec": "0:0.001,3:0.0001", "retrain.num_epochs": 5},
  10: {"retrain.spec": "0:0.001,8:0.0001", "retrain.num_epochs": 10},
  20: {"retrain.spec": "0:0.001,18:0.0001", "retrain.num_epochs": 20},
}
SMALL_SPECS = {"one_of": [p["retrain.spec"] for p in SMALL.values()]}

EXPERIMENTS = {
  "pkfn": {
    "title": "Wang et al. 2023: PkFn at two pruning ratios, trainability accuracy",
    "metrics": ["test/accuracy", "trainability/train_accuracy", "accuracy_before"],
    "figures": [("trainability/train_accuracy", "pruning.ratio", "prune_epoch.epoch")],
    "claims": [
      {
        "id": "wang2023.pruning_damages_trainability",
        "text": "a larger pruning ratio damages trainability more: lower"
        " trainability accuracy at 80 % than at 50 % (Sec. 5.2)",
        "kind": "greater",
        "metric": "trainability/train_accuracy",
        "a": {"pruning.ratio": 0.5},
        "b": {"pruning.ratio": 0.8},
        "for_each": ["prune_epoch.epoch"],
      }
    ],
  },
  "lr_epochs": {
    "title": "Wang et al. 2023 Table 5 trend: a small fine-tuning LR needs more epochs",
    "metrics": ["test/accuracy"],
    "figures": [("test/accuracy", "retrain.num_epochs", "retrain.spec")],
    "claims": [
      {
        "id": "wang2023.large_lr_wins_at_equal_epochs",
        "text": "at 5 fine-tuning epochs, initial LR 0.01 beats LR 0.001 (Table 5)",
        "kind": "greater",
        "metric": "test/accuracy",
        "a": LARGE,
        "b": SMALL[5],
      },
      {
        "id": "wang2023.small_lr_improves_with_epochs",
        "text": "with LR 0.001, accuracy rises with the fine-tuning epochs (Table 5)",
        "kind": "increasing",
        "metric": "test/accuracy",
        "a": {"retrain.spec": SMALL_SPECS},
        "x": "retrain.num_epochs",
      },
      {
        "id": "wang2023.more_epochs_close_the_gap",
        "text": "LR 0.001 with 4x the epochs matches LR 0.01 (best or within one"
        " std; Table 5: the gap is not fundamental)",
        "kind": "best_within_std",
        "metric": "test/accuracy",
        "a": SMALL[20],
        "among": {
          "retrain.spec": {"one_of": [LARGE["retrain.spec"], SMALL[20]["retrain.spec"]]}
        },
        "name_by": "retrain.spec",
      },
    ],
  },
}


def get_config(arg=None):
  name, is_smoke = base.smoke(arg)
  if name not in EXPERIMENTS:
    raise ValueError(f"experiment must be one of {sorted(EXPERIMENTS)}, got {name!r}")
  config = base.mlp7()
  config.pruning.name = "structured"
  config.pruning.criterion = "l1"
  config.pruning.groups = "all"
  if name == "pkfn":
    config.protocol = "prune_epoch"
    config.schedule.spec = SCRATCH_SPEC
    config.prune_epoch.setup = "pkfn"
  else:
    config.pruning.ratio = 0.8
    config.retrain.schedule = "piecewise"
  config = base.finalize(config, is_smoke)
  return config


def get_sweep(arg=None):
  name, is_smoke = base.smoke(arg)
  if name == "pkfn":
    epochs = (1,) if is_smoke else (5, 10)
    points = [
      {"prune_epoch.epoch": k, "pruning.ratio": r} for k in epochs for r in (0.5, 0.8)
    ]
  else:
    points = [LARGE, *SMALL.values()]
  return base.seeded(points, is_smoke)
