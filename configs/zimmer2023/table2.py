r"""Zimmer et al. 2023, Table 2 / Table 23: BIMP vs the pruning-stable methods,
ResNet-56 on CIFAR-10 and ResNet-50 on ImageNet, at an equal epoch budget.

BIMP (ResNet-56, CIFAR-10): budget 200 epochs from a random init, goal
sparsity 90 / 95 / 99 %. T0 epochs with an LR decaying linearly from 0.1 to 0
(Sec. 2.2: "train a network for some T0 < T epochs using a linearly decaying
learning rate schedule"; App. B: "The initial training follows a linearly
decaying learning rate schedule which starts from 0.1"), then ALLR
retraining, T0 and the number of cycles tuned (grid T0 in {100, 150}, 1-4
cycles, Sec. 3.3); GMP (protocol `gmp`): global cubic schedule pruning every
5 or 10 epochs from epoch 10 to 150, stepped LR (App. C.3). Weight decay tuned
over 1e-4 / 5e-4 / 1e-3 (App. B.1 grid, CIFAR-10). Two seeds.

The pruning-stable methods (protocol `during`, one method per point,
`during.method`; grids in the dicts below, App. B.4.1 for CIFAR-10): every
method gets the whole budget T (200 epochs CIFAR-10, 90 ImageNet) from a
random init, weight decay over 1e-4 / 5e-4 / 1e-3 / 5e-3 and the initial LR
over 0.05 / 0.1 / 0.15 / 0.2 of the stepped schedule (Table 3's decay; CS keeps
the schedule fixed), and on CIFAR 30 epochs of FT retraining with the masks
fixed, the better of the two accuracies counting (Sec. 3.3). GMP, GSM, DPF,
DNW and LC get the goal sparsity; CS, STR and DST reach a sparsity that
their own hyperparameters set (one sweep for all goal columns; the report
lists the achieved sparsity, mean and std over seeds). GMP variants (App.
C.3, Tables 28-29): global or uniform selection, hard or soft, stepped,
linear or cyclic linear LR (restarted at the pruning epochs), pruning every
5 or 10 epochs, wd 1e-4, LR 0.1.

ImageNet (ResNet-50, 90 epochs, goal sparsity 70 / 80 / 90 %): the text copy
has no ImageNet grids, so every method runs at Table 3's recipe (stepped LR
from 0.1, wd 1e-4; App. C.3 states both for ImageNet) over its own grid, no
FT; CS is left out (Sec. 3.3: "For CS in the case of ImageNet, we were
unable to tune the hyperparameters"); BIMP with T0 60 or 75 and 1-4 cycles,
GMP hard only (Table 29).

LC and GSM also start from pretrained nets (Sec. 3.3: "we applied LC and
GSM to both randomly initialized as well as pretrained models and chose the
best results for each sparsity"): the same grids again with
`during.pretrained=True`, the method's T epochs (+ FT) after a dense
pretraining of the point's own recipe (T epochs; the shared dense phase of
prune_retrain and bimp). A table cell of LC / GSM is the better of the two
starts (docs/provenance.md F18 for what is assumed).

Not covered: LC's grid (lost in the text copy: the method's defaults with
the common grids).

Run:
  python -m jaxprune.sweeps --config=configs/zimmer2023/table2.py --workdir=workdirs/zimmer2023_table2
  python -m jaxprune.report --results=workdirs/zimmer2023_table2/results.jsonl \
      --out=workdirs/zimmer2023_table2/report
Expected: Table 2 / 23 of the paper are lost in the text copy (not typed):
BIMP above GMP at every sparsity; BIMP on par with or above most pruning-stable
methods, DPF a strong and fast competitor, DNW on par on ImageNet at about
half BIMP's images/s (Sec. 3.3).
"""

import ml_collections

from configs import common
from jaxprune.results import sweeps

# ------------------------------------------------------------------ grids
# One dict per pruning-stable method: its own axes (App. B.4.1, ResNet-56 on
# CIFAR-10), dotted config keys (`during.<method>.<field>`: the options the
# method modules define). The common axes below multiply them.
CIFAR_WEIGHT_DECAYS = [1e-4, 5e-4, 1e-3, 5e-3]  # Every method (B.4.1).
CIFAR_INITIAL_LRS = [0.05, 0.1, 0.15, 0.2]  # Every method except CS.
CIFAR_SPARSITIES = [0.9, 0.95, 0.99]
IMAGENET_SPARSITIES = [0.7, 0.8, 0.9]
CIFAR_FT_EPOCHS = 30  # FT retraining of the pruning-stable methods (Sec. 3.3).

GSM = {"optimizer.momentum": [0.9, 0.95, 0.99]}  # "GSM Momentum".
LC = {}  # The text copy lost LC's grid: the method's defaults.
# "As for GMP, we tune the number of pruning steps, i.e., {20, 100}": the
# sparsity grows at the end of every k epochs, k = T // steps (at least 1),
# `during.dpf.pruning_interval`.
DPF = {"dpf_steps": [20, 100]}
# "We only tune the weight decay, since there are no additional
# hyperparameters" (and the initial LR, as every method but CS).
DNW = {}
CS = {
  "during.cs.beta_final": [300.0],  # "we fix the temperature beta at 300"
  "during.cs.s_init": [-0.3, -0.25, -0.2, -0.1, -0.05, 0.0, 0.05, 0.1, 0.2, 0.25, 0.3],
  "during.cs.penalty": [1e-8, 1e-7],
}
STR = {"during.str.s_init": [-100.0, -50.0, -5.0, -2.0, -1.0, 0.0, 5.0, 50.0, 100.0]}
STR_EXTENDED = {  # "In an extended grid search": its own weight decays.
  "optimizer.weight_decay": [5e-5, 1e-4],
  "during.str.s_init": [-40.0, -30.0, -20.0, -10.0],
}
DST = {"during.dst.alpha": [5e-6, 1e-5, 5e-5, 1e-4, 5e-4]}
DST_EXTENDED = {  # "In an extended grid search": its own weight decays.
  "optimizer.weight_decay": [0.0, 1e-4],
  "during.dst.alpha": [1e-7, 5e-7, 1e-6],
}
# App. C.3's GMP variants (Table 28 CIFAR-100, Table 29 ImageNet hard only),
# as the `during` method "gmp", wd 1e-4 and LR 0.1 (`lr_schedule` picks the
# schedule's shape).
GMP_VARIANTS = {
  "pruning.allocation": ["global", "uniform"],
  "pruning.mode": ["hard", "soft"],
  "lr_schedule": ["stepped", "linear", "cyclic"],
  "pruning.gmp_frequency": [5, 10],
}
# The methods given the goal sparsity (the others set their own, Sec. 3.3).
TARGETED = ("gmp", "gsm", "lc", "dpf", "dnw")
# The methods the paper also starts from a pretrained net (Sec. 3.3).
PRETRAINED_STARTS = ("gsm", "lc")
# Options of the `during` method "gmp": Zimmer et al.'s code convention
# (events every f epochs from f, the last leaving f epochs at s_f).
GMP_CODE_EVENTS = {"pruning.gmp_start": 0, "pruning.gmp_end": 0}


def linear_t0(t0) -> dict:
  """BIMP's initial training: LR 0.1 decaying linearly to 0 over T0 epochs."""
  return {"name": "linear", "lr": 0.1, "epochs": t0}


def stepped(lr: float, epochs: int = 200) -> dict:
  """The stepped schedule of Table 3 (garbled in the text copy; as
  `common.zimmer_cifar` and `common.imagenet` assume it: x0.1 at epochs 100
  and 150 of CIFAR's 200, at 30 and 60 of ImageNet's 90) from the initial LR
  `lr`."""
  marks = (100, 150) if epochs == 200 else (30, 60)
  spec = ",".join(f"{e}:{lr / 10**i:g}" for i, e in enumerate((0, *marks)))
  return {"name": "piecewise", "spec": spec, "epochs": epochs}


def lr_schedule(kind: str, epochs: int, frequency: int) -> dict:
  """GMP variants' LR from 0.1: stepped, linear to 0, or linear to 0
  restarted at every pruning epoch (f, 2f, ..., f (T // f - 1))."""
  if kind == "stepped":
    return stepped(0.1, epochs)
  if kind == "linear":
    return {"name": "linear", "lr": 0.1, "epochs": epochs}
  restarts = list(range(frequency, frequency * (epochs // frequency), frequency))
  return {"name": "cyclic_linear", "lr": 0.1, "epochs": epochs, "restarts": restarts}


def imagenet_recipe() -> dict:
  """The overrides that turn the CIFAR base into Table 3's ImageNet ResNet-50
  recipe (`common.imagenet`; Nesterov, as BIMP whenever wd > 0)."""
  c = common.imagenet(common.base("during"), "resnet50", nesterov=True)
  keys = (
    "model.name",
    "data.name",
    "data.augment",
    "data.validation_fraction",
    "num_epochs",
    "batch_size",
    "eval_batch_size",
    "optimizer.weight_decay",
    "optimizer.nesterov",
  )
  out = {k: c[k] for k in keys}  # ConfigDict reads dotted keys.
  out["schedule"] = c.schedule.to_dict()
  return out


def method_points(
  method: str, grid: dict, imagenet: bool, extended: dict | None = None
) -> list[dict]:
  """One method's sweep on one dataset: its `grid` (and on CIFAR its
  `extended` grid, whose weight decays replace the common ones) times the
  common axes: the goal sparsity for the methods given one (`TARGETED`); on
  CIFAR the weight decay and the initial LR of the stepped schedule (GMP
  variants: wd 1e-4, LR 0.1 as App. C.3; CS: the fixed schedule)."""
  epochs = 90 if imagenet else 200
  base = {"protocol": "during", "during.method": method, "num_epochs": epochs}
  if imagenet:
    base = {**imagenet_recipe(), **base}
  else:
    base["during.finetune_epochs"] = CIFAR_FT_EPOCHS
  axes = {}
  if method in TARGETED:
    axes["pruning.sparsity"] = IMAGENET_SPARSITIES if imagenet else CIFAR_SPARSITIES
  if not imagenet and method != "gmp":
    axes["optimizer.weight_decay"] = CIFAR_WEIGHT_DECAYS
    axes["lr"] = [0.1] if method == "cs" else CIFAR_INITIAL_LRS
  grids = [grid, extended] if extended and not imagenet else [grid]
  out = []
  for g in grids:
    for p in sweeps.product(**{**axes, **g}):
      p = {**base, **p}
      if method == "gmp":
        p.update(GMP_CODE_EVENTS)
        kind = p.pop("lr_schedule")
        p["schedule"] = lr_schedule(kind, epochs, p["pruning.gmp_frequency"])
      else:
        p["schedule"] = stepped(p.pop("lr", 0.1), epochs)
      if "dpf_steps" in p:
        p["during.dpf.pruning_interval"] = max(epochs // p.pop("dpf_steps"), 1)
      # BIMP's optimizer: Nesterov whenever weight decay > 0.
      p["optimizer.nesterov"] = p.get("optimizer.weight_decay", 1e-4) > 0
      out.append(p)
  return out


def imagenet_bimp() -> list[dict]:
  """Table 29's BIMP on ImageNet: T0 60 or 75 of 90 epochs, 1-4 cycles."""
  points = sweeps.product(
    **{
      "num_epochs": [60, 75],
      "pruning.imp_cycles": [1, 2, 3, 4],
      "pruning.sparsity": IMAGENET_SPARSITIES,
    }
  )
  recipe = imagenet_recipe()
  return [
    {
      **recipe,
      **p,
      "bimp.budget_epochs": 90,
      "schedule": linear_t0(p["num_epochs"]),
    }
    for p in points
  ]


def pretrained(points: list[dict]) -> list[dict]:
  """The `PRETRAINED_STARTS` points of `points` again, started from the dense
  pretraining of their own recipe (`during.pretrained`)."""
  return [
    {**p, "during.pretrained": True}
    for p in points
    if p.get("during.method") in PRETRAINED_STARTS
  ]


def pruning_stable(imagenet: bool) -> list[dict]:
  """Every pruning-stable method of Table 2 on one dataset."""
  gmp = dict(GMP_VARIANTS)
  if imagenet:
    gmp["pruning.mode"] = ["hard"]  # Table 29.
  return common.join(
    method_points("gmp", gmp, imagenet),
    method_points("gsm", GSM, imagenet),
    method_points("lc", LC, imagenet),
    method_points("dpf", DPF, imagenet),
    method_points("dnw", DNW, imagenet),
    [] if imagenet else method_points("cs", CS, imagenet),
    method_points("str", STR, imagenet, STR_EXTENDED),
    method_points("dst", DST, imagenet, DST_EXTENDED),
  )


def get_config(arg=None):
  config = common.zimmer_cifar(common.base("bimp"), "resnet56")
  common.magnitude(config, 0.9)
  config.num_epochs = 150
  config.schedule = ml_collections.ConfigDict(linear_t0(config.get_ref("num_epochs")))
  config.bimp.budget_epochs = 200
  config.pruning.schedule = "imp"
  config.pruning.imp_cycles = 2
  config.retrain.schedule = "allr"
  config.pruning.gmp_start, config.pruning.gmp_end = 10, 150
  return common.finalize(config, arg)


def get_sweep(arg=None):
  bimp = sweeps.product(
    **{
      "num_epochs": [100, 150],
      "pruning.imp_cycles": [1, 2, 3, 4],
      "optimizer.weight_decay": [1e-4, 5e-4, 1e-3],
      "pruning.sparsity": [0.9, 0.95, 0.99],
    }
  )
  for p in bimp:
    p["schedule"] = linear_t0(p["num_epochs"])
  gmp = sweeps.product(
    **{
      "protocol": ["gmp"],
      "pruning.schedule": ["gmp"],
      "num_epochs": [200],
      "schedule": [
        {"name": "piecewise", "spec": "0:0.1,100:0.01,150:0.001", "epochs": 200}
      ],
      "pruning.gmp_frequency": [5, 10],
      "optimizer.weight_decay": [1e-4, 5e-4, 1e-3],
      "pruning.sparsity": [0.9, 0.95, 0.99],
    }
  )
  cifar, imagenet = pruning_stable(False), pruning_stable(True)
  return common.sweep(
    common.join(
      bimp,
      gmp,
      cifar,
      imagenet_bimp(),
      imagenet,
      pretrained(cifar),  # New points last: the earlier ones keep their order.
      pretrained(imagenet),
    ),
    range(2),
    arg,
  )
