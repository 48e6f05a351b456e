"""Dynamical Isometry (Wang et al. 2021) on the CPU: Tables 1 and 3, Figs. 1 and 2.

`table3` (Table 3's 90-epoch rows, compressed 6x): MLP-7-Linear (orthogonal
init, as in Table 1) on Fashion-MNIST, pretrained 15 epochs with "0:0.01,
5:0.001,10:0.0001" (the paper's "90 epochs, 0:0.01,30:0.001,60:0.0001"), L1
neuron pruning of every hidden layer at ratio 0.8 or 0.9 (ceil(n r) pruned,
small-dense after surgery), optional OrthP, then 15 retraining epochs with
initial LR 0.01 ("0:0.01,5:0.001,10:0.0001") or 0.001 ("0:0.001,7:0.0001":
Table 2 prints "0:0.001,45:0.001", but Sec. 3.3 keeps the last LR equal across
schedules, as configs/wang2021_di/table3.py does); "scratch" trains the pruned
architecture from a fresh orthogonal init for 15 epochs. The mean JSV of 256
training images is logged after every retraining epoch (Fig. 2).
Claims (Sec. 3.3): without OrthP, LR 0.01 beats LR 0.001 at both ratios;
OrthP shrinks that gain.

`jsv` (no training of its own; reads `table3`'s pretrained networks):
Table 1 (mean/max/min JSV of orthogonally initialised MLP-7 and LeNet-5,
Linear and ReLU) and Fig. 1 (mean JSV after L1 pruning at ratios 0..0.9, and
after OrthP). Claims: an orthogonal linear MLP is exactly isometric (mean JSV
1) and LeNet-5-Linear is not; the mean JSV falls as the pruning ratio grows;
OrthP restores mean JSV 1 at every ratio.

  python -m jaxprune.sweeps --config=configs/mini/wang2021_di.py:table3 \
      --workdir=workdirs/mini/wang2021_di/table3
"""

from configs.mini import base

SPEC_001 = "0:0.01,5:0.001,10:0.0001"
SPEC_0001 = "0:0.001,7:0.0001"
RATIOS = (0.8, 0.9)

EXPERIMENTS = {
  "table3": {
    "title": "Dynamical Isometry Table 3 (90-epoch rows, compressed): MLP-7-Linear",
    "metrics": ["test/accuracy", "jsv/mean"],
    "figures": [],
    # Fig. 2: mean JSV and accuracy per retraining epoch, from the runs.
    "jsv_curves": {"panel": "retrain.spec", "hue": ["pruning.ratio", "retrain.orthp"]},
    "claims": [
      {
        "id": "wang2021_di.lr_001_beats_0001",
        "text": "without OrthP, retraining with initial LR 0.01 beats LR 0.001"
        " (Table 3, 90-epoch rows)",
        "kind": "greater",
        "metric": "test/accuracy",
        "a": {"retrain.spec": SPEC_001, "retrain.orthp": False},
        "b": {"retrain.spec": SPEC_0001, "retrain.orthp": False},
        "for_each": ["pruning.ratio"],
      },
      {
        "id": "wang2021_di.orthp_shrinks_lr_gain",
        "text": "OrthP shrinks the accuracy gain of LR 0.01 over LR 0.001"
        " (Table 3, Sec. 3.3)",
        "kind": "gain_shrinks",
        "metric": "test/accuracy",
        "a": {"retrain.spec": SPEC_001},
        "b": {"retrain.spec": SPEC_0001},
        "when": {"retrain.orthp": True},
        "otherwise": {"retrain.orthp": False},
        "for_each": ["pruning.ratio"],
      },
    ],
  },
  "jsv": {
    "title": "Dynamical Isometry Table 1 and Fig. 1: mean JSV at init and after pruning",
    "metrics": ["jsv/mean", "jsv/std", "jsv/max", "jsv/min"],
    "figures": [("jsv/mean", "pruning.ratio", "orthp")],
    "analysis": "isometry",  # jaxprune.results.studies.isometry
    "claims": [
      {
        "id": "wang2021_di.orthogonal_linear_mlp_isometric",
        "text": "an orthogonally initialised MLP-7-Linear has mean JSV 1 (Table 1)",
        "kind": "close",
        "metric": "jsv/mean",
        "a": {"model.name": "mlp7_linear"},
        "value": 1.0,
        "tol": 1e-3,
      },
      {
        "id": "wang2021_di.lenet_linear_not_isometric",
        "text": "orthogonal init does not make LeNet-5-Linear exactly isometric:"
        " its JSVs spread more than MLP-7-Linear's (Table 1)",
        "kind": "greater",
        "metric": "jsv/std",
        "a": {"model.name": "lenet5_linear"},
        "b": {"model.name": "mlp7_linear"},
      },
      {
        "id": "wang2021_di.jsv_falls_with_ratio",
        "text": "the mean JSV of the pretrained MLP-7-Linear falls as the L1"
        " pruning ratio grows (Fig. 1)",
        "kind": "decreasing",
        "metric": "jsv/mean",
        "a": {"orthp": False},
        "x": "pruning.ratio",
      },
      {
        "id": "wang2021_di.orthp_restores_isometry",
        "text": "OrthP restores mean JSV 1 at every pruning ratio (Sec. 3.2)",
        "kind": "close",
        "metric": "jsv/mean",
        "a": {"orthp": True},
        "value": 1.0,
        "tol": 1e-3,
        "for_each": ["pruning.ratio"],
      },
    ],
  },
}


def get_config(arg=None):
  name, is_smoke = base.smoke(arg)
  if name not in EXPERIMENTS:
    raise ValueError(f"experiment must be one of {sorted(EXPERIMENTS)}, got {name!r}")
  config = base.mlp7(model="mlp7_linear", spec=SPEC_001)
  config.model.init = "orthogonal"
  config.pruning.name = "structured"
  config.pruning.criterion = "l1"
  config.pruning.groups = "all"
  config.pruning.rounding = "prune_ceil"
  config.retrain.schedule = "piecewise"
  config.retrain.num_epochs = 15
  config.analysis.jsv_every_epochs = 1
  # Smoke keeps the 15 retraining epochs: the specs (and the claims that
  # select by them) stay valid, and 15 epochs of 512 examples take seconds.
  return base.finalize(config, is_smoke)


def get_sweep(arg=None):
  name, is_smoke = base.smoke(arg)
  if name == "jsv":
    return []  # Analysis of table3's pretrained networks only.
  specs = (SPEC_001, SPEC_0001)
  points = [
    {"pruning.ratio": r, "retrain.spec": spec, "retrain.orthp": orthp}
    for r in RATIOS
    for orthp in (False, True)
    for spec in specs
  ]
  points += [{"pruning.ratio": r, "protocol": "scratch"} for r in RATIOS]
  return base.seeded(points, is_smoke)
