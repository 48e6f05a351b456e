r"""Le & Hua 2021, Table 14: ResNet-56-B pruned from a CLR- vs a step-trained baseline.

Baseline ResNet-56 on CIFAR-10 trained 160 epochs either with the NPTM step
schedule (0.1 x0.1 at 80/120) or with CLR as the original schedule (1-cycle,
max 0.1, 10% warm-up: `onecycle`), pruned with PFEC (ResNet-56-B) and retrained
40 or 56 epochs with FT, SLR or CLR (NPTM flavour; over the 1-cycle
baseline SLR needs the per-iteration zimmer2023 translation). 3 seeds.

Run:
  python -m jaxprune.sweeps --config=configs/le2021/table14.py --workdir=workdirs/le2021_table14
  python -m jaxprune.report --results=workdirs/le2021_table14/results.jsonl \
      --out=workdirs/le2021_table14/report --hue=retrain.schedule
Expected: third_party/paper_results/le2021.csv, table "Table 14".
"""

from configs import common
from jaxprune.results import sweeps

STEP = {"name": "piecewise", "spec": "0:0.1,80:0.01,120:0.001", "epochs": 160}
# NPTM's OneCycleLR settings (div_factor = final_div_factor = 100, 10% warm-up).
ONECYCLE = {
  "name": "onecycle",
  "max_lr": 0.1,
  "initial_lr": 0.001,
  "final_lr": 1e-5,
  "warmup_fraction": 0.1,
  "epochs": 160,
}


def get_config(arg=None):
  config = common.nptm_cifar(common.base("prune_retrain"), "resnet56")
  common.l1_filters(config, preset="resnet56_b")
  config.retrain.num_epochs = 40
  config.retrain.flavor = "le2021"
  return common.finalize(config, arg)


def get_sweep(arg=None):
  grid = sweeps.product(
    **{"retrain.schedule": ["ft", "slr", "clr"], "retrain.num_epochs": [40, 56]}
  )
  # NPTM's SLR is defined over a step-wise original schedule only; over the
  # 1-cycle baseline we use the per-iteration (zimmer2023) translation.
  onecycle = {"schedule": ONECYCLE, "retrain.flavor": "zimmer2023"}
  points = [{"schedule": STEP, **g} for g in grid] + [{**onecycle, **g} for g in grid]
  return common.sweep(common.nptm_onecycle(points), range(3), arg)


def paper_cell(setting):
  """The Table 14 test-accuracy cell a sweep setting reproduces (--paper_config)."""
  # ResNet-56-B removes 13.7% of the parameters (the "p13.7" rows).
  baseline = {"piecewise": "stepwise", "onecycle": "clr"}[setting["schedule"]["name"]]
  epochs, method = setting["retrain.num_epochs"], setting["retrain.schedule"]
  return {"paper": "le2021", "row_id": f"t14_{epochs}ep_{baseline}_p13.7_{method}"}
