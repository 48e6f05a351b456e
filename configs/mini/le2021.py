"""Le & Hua 2021 on the CPU: FT vs LRW vs SLR vs CLR at two retraining budgets.

MLP-7-ReLU on Fashion-MNIST (`configs/mini/base.py`), pretrained 15 epochs,
then one-shot pruning by L1 neuron norm (structured, 50 % of every hidden
layer, removed by surgery) or global weight magnitude (unstructured, 90 %),
then retraining for 2 or 6 epochs with the four variants of Le & Hua (flavor
le2021: FT = the last LR; LRW = the original schedule's last epochs; SLR =
the original schedule scaled to the budget; CLR = one cosine cycle from the
original initial LR). Control: random neuron pruning + CLR vs L1 + FT.
Note: with a 2-epoch budget LRW replays the last 2 pretraining epochs, which
lie in the last LR stage (epochs 12-15), so LRW and FT are the same schedule
there; Le & Hua's 40-of-160-epoch budgets reach further back.

  python -m jaxprune.sweeps --config=configs/mini/le2021.py:retrain \
      --workdir=workdirs/mini/le2021/retrain

`criteria`: the criteria Le & Hua also retrain with CLR (Tables 1 and 8):
Taylor-FO-BN (on MLP-7, without BN, the first-order gate on every hidden
layer's output; 10 training batches) + FT vs + CLR; Soft Filter Pruning (L2,
50 % of every hidden layer zeroed after each of the 15 training epochs, then
surgery) without retraining vs + CLR, and vs hard L2 pruning of the dense net
+ CLR at the same total budget (15 + k epochs); Fisher channel pruning (Theis
et al. 2018, the criterion of Dynamical Isometry Table 6; 100 training
batches) + FT vs + CLR.

`hrank`: HRank filter pruning (Lin et al. 2020; Le & Hua Table 7) needs
feature maps, so this one experiment prunes LeNet-5-ReLU (pretrained with the
same 15-epoch recipe): 50 % of the filters of its conv layers that feed
another conv (`groups=inner`), scored by the average rank of their maps over
5 training batches, removed by surgery, then FT vs CLR for 2 or 6 epochs.
"""

from configs import common
from configs.mini import base
from jaxprune.results import testability

L1 = common.MLP_L1_HALF
RANDOM = {**L1, "pruning.criterion": "random"}
MAGNITUDE = common.MLP_MAGNITUDE_90
BUDGETS = (2, 6)
VARIANTS = ("ft", "lrw", "slr", "clr")

TAYLOR = {**L1, "pruning.criterion": "taylor_fo_bn", "pruning.score_batches": 10}
FISHER = {**L1, "pruning.criterion": "fisher"}
SOFT = {**L1, "pruning.criterion": "l2"}
HRANK = {
  "pruning.name": "structured",
  "pruning.criterion": "hrank",
  "pruning.groups": "inner",
  "pruning.ratio": 0.5,
}
HRANK_MODEL = "lenet5_relu"


def _greater(claim_id, text, a, b, for_each=("retrain.num_epochs",)):
  """A "test accuracy of `a` > `b`" claim (in every `for_each` group)."""
  claim = {"id": claim_id, "text": text, "kind": "greater", "metric": "test/accuracy"}
  claim.update(a=a, b=b)
  return {**claim, "for_each": list(for_each)} if for_each else claim


EXPERIMENTS = {
  "retrain": {
    "title": "Le & Hua 2021: retraining variants at two budgets",
    "metrics": ["test/accuracy", "sparsity"],
    "figures": [("test/accuracy", "retrain.num_epochs", "retrain.schedule")],
    "claims": [
      *common.variant_claims(),
      {
        "id": "le2021.random_clr_beats_l1_ft",
        "text": "random pruning + CLR beats L1 pruning + FT (Le & Hua Sec. 4.3)",
        "kind": "greater",
        "metric": "test/accuracy",
        "a": {"retrain.schedule": "clr", "pruning.criterion": "random"},
        "b": {"retrain.schedule": "ft", "pruning.criterion": "l1"},
        "for_each": ["retrain.num_epochs"],
      },
    ],
  },
  "criteria": {
    "title": "Le & Hua 2021: Taylor-FO-BN, Fisher and SFP with FT / CLR retraining",
    "metrics": ["test/accuracy", "sparsity"],
    "figures": [("test/accuracy", "retrain.num_epochs", "retrain.schedule")],
    "claims": [
      _greater(
        "le2021.taylor_fo_bn_clr_beats_ft",
        "Taylor-FO-BN pruning + CLR beats Taylor-FO-BN + FT at every retraining "
        "budget (Le & Hua Table 8)",
        {"pruning.criterion": "taylor_fo_bn", "retrain.schedule": "clr"},
        {"pruning.criterion": "taylor_fo_bn", "retrain.schedule": "ft"},
      ),
      _greater(
        "le2021.fisher_clr_beats_ft",
        "Fisher pruning + CLR (from the large initial LR) beats Fisher + FT (the "
        "small last LR) at every retraining budget (Dynamical Isometry Table 6: "
        "LR 0.01 beats 8e-4 after Fisher pruning)",
        {"pruning.criterion": "fisher", "retrain.schedule": "clr"},
        {"pruning.criterion": "fisher", "retrain.schedule": "ft"},
      ),
      _greater(
        "le2021.sfp_clr_beats_no_retraining",
        "SFP + CLR retraining beats SFP without retraining (Le & Hua Table 1)",
        {"protocol": "sfp", "retrain.num_epochs": 6},
        {"protocol": "sfp", "retrain.num_epochs": 0},
        for_each=None,
      ),
      _greater(
        "le2021.sfp_beats_hard_l2",
        "SFP + CLR beats hard L2 filter pruning of the dense net + CLR at the same "
        "total epochs (He et al. 2018)",
        {"protocol": "sfp", "retrain.schedule": "clr"},
        {"protocol": "prune_retrain", "pruning.criterion": "l2"},
      ),
    ],
  },
  "hrank": {
    "title": "Le & Hua 2021: HRank filter pruning of LeNet-5 with FT / CLR retraining",
    "metrics": ["test/accuracy", "sparsity"],
    "figures": [("test/accuracy", "retrain.num_epochs", "retrain.schedule")],
    "claims": [
      _greater(
        "le2021.hrank_clr_beats_ft",
        "HRank filter pruning + CLR beats HRank + FT at every retraining budget "
        "(Le & Hua Table 7)",
        {"pruning.criterion": "hrank", "retrain.schedule": "clr"},
        {"pruning.criterion": "hrank", "retrain.schedule": "ft"},
      ),
    ],
  },
}


def get_config(arg=None):
  name, is_smoke = base.smoke(arg)
  if name not in EXPERIMENTS:
    raise ValueError(f"experiment must be one of {sorted(EXPERIMENTS)}, got {name!r}")
  config = base.mlp7(model=HRANK_MODEL) if name == "hrank" else base.mlp7()
  config.retrain.flavor = "le2021"
  return base.finalize(config, is_smoke)


def get_claims(arg=None):
  """The experiment's claims; a group whose compared settings retrain with the
  same learning rates (LRW = FT when the budget lies in the last LR stage) is
  marked untestable, computed from the schedules (`results.testability`)."""
  name, is_smoke = base.smoke(arg)
  if is_smoke:  # Shrunk schedules: the budgets below do not apply.
    return EXPERIMENTS[name]["claims"]
  config = get_config(arg)
  budgets = [{"retrain.num_epochs": e} for e in BUDGETS]
  claims = []
  for claim in EXPERIMENTS[name]["claims"]:
    if claim.get("for_each") == ["retrain.num_epochs"]:
      untestable = testability.untestable_groups(
        config, claim["a"], claim["b"], budgets
      )
      claim = {**claim, "untestable": untestable} if untestable else claim
    claims.append(claim)
  return claims


def get_sweep(arg=None):
  name, is_smoke = base.smoke(arg)
  if name == "hrank":
    points = [
      {**HRANK, "retrain.schedule": v, "retrain.num_epochs": e}
      for v in ("ft", "clr")
      for e in BUDGETS
    ]
    return base.seeded(points, is_smoke)
  if name == "criteria":
    points = [
      {**criterion, "retrain.schedule": v, "retrain.num_epochs": e}
      for criterion in (TAYLOR, FISHER)
      for v in ("ft", "clr")
      for e in BUDGETS
    ]
    points += [{"protocol": "sfp", **SOFT, "retrain.num_epochs": 0}]
    points += [
      {"protocol": p, **SOFT, "retrain.schedule": "clr", "retrain.num_epochs": e}
      for p in ("sfp", "prune_retrain")
      for e in BUDGETS
    ]
    return base.seeded(points, is_smoke)
  points = [
    {**pruning, "retrain.schedule": variant, "retrain.num_epochs": epochs}
    for pruning in (L1, MAGNITUDE)
    for epochs in BUDGETS
    for variant in VARIANTS
  ]
  points += [
    {**RANDOM, "retrain.schedule": "clr", "retrain.num_epochs": e} for e in BUDGETS
  ]
  return base.seeded(points, is_smoke)
