"""Le & Hua 2021 at their CIFAR budget ratios on Fashion-MNIST, with claims.

`configs/le2021/fmnist_ratios.py`: MLP-7-ReLU, 160 pretraining epochs (x0.1 at
50 % / 75 %), L1 neuron (50 %) or global magnitude (90 %) pruning, FT / LRW /
SLR / CLR retraining for 40 and 80 epochs (25 % and 50 % of the schedule), 5
seeds. Claims: each of LRW, SLR, CLR beats FT at every budget (Tables 1-4);
groups where two variants are the same learning rates are marked untestable
from the schedules (`results.testability`), none expected at these ratios.

  python -m jaxprune.reproduce --suite=configs/cpu_full --only=le2021 \
      --workdir=workdirs/cpu_full
"""

from configs import common
from configs.cpu_full import base
from configs.le2021 import fmnist_ratios as paper
from jaxprune.results import testability

CLAIMS = common.variant_claims(
  "_full_ratios", "at budgets of 25 % and 50 % of the original schedule"
)

EXPERIMENTS = {
  "ratios": {
    "title": "Le & Hua 2021: retraining variants at 25 % / 50 % budgets (full "
    "160-epoch schedule, Fashion-MNIST MLP-7)",
    "metrics": ["test/accuracy", "sparsity"],
    "figures": [("test/accuracy", "retrain.num_epochs", "retrain.schedule")],
    "claims": CLAIMS,
    # Groups of 10 (about 3-8 min each on 2 cores): rows arrive, and a saved
    # record keeps them, group by group (README, "At the papers' settings").
    "group_runs": 10,
  }
}


def get_config(arg=None):
  _, is_smoke = base.smoke(arg)
  return paper.get_config("smoke" if is_smoke else None)


def get_sweep(arg=None):
  _, is_smoke = base.smoke(arg)
  return paper.get_sweep("smoke" if is_smoke else None)


def get_claims(arg=None):
  if base.smoke(arg)[1]:  # Shrunk schedules: the budgets below do not apply.
    return CLAIMS
  config = get_config(arg)
  groups = [{"retrain.num_epochs": e} for e in paper.BUDGETS]
  out = []
  for claim in CLAIMS:
    found = testability.untestable_groups(config, claim["a"], claim["b"], groups)
    out.append({**claim, "untestable": found} if found else claim)
  return out
