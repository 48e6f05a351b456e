r"""Zimmer et al. 2023, Table 24 and Table 28: WRN-28-10 on CIFAR-100, BIMP vs
the pruning-stable methods (Table 24) and vs GMP variants (Table 28).

Recipe: `common.zimmer_cifar` on `wrn28_10` / `cifar100` (200 epochs, batch
128, wd 1e-4, Nesterov, stepped LR 0.1 x0.1 at 100 / 150: Table 3 is garbled
in the text copy, the same assumption as the ResNet-56 configs), WRN-28-10
with dropout 0.3 as BIMP's CIFAR-100 model (36.5M parameters,
`tests/test_models_zoo.py`). Two seeds (App. B: averaged over two).

Table 24 (App. B.4.2 grids): every method tunes the weight decay over 1e-4 /
2e-4 / 5e-4 and its LR schedule over Table 3's stepped schedule from 0.05 /
0.1 / 0.15 plus a linear schedule from 0.1 (CS keeps the stepped 0.1, as in
`table2.py`). BIMP: T0 in {20, 60, 100} of the 200 epochs (linear LR from
0.1), 1-4 cycles of equal length, ALLR. GMP: the `gmp` protocol, global cubic
schedule pruning every 5 or 10 epochs (App. C.3 gives this spacing for this
net). GSM: momentum 0.9 / 0.95 / 0.99. The pruning-stable methods run in the
`during` protocol followed by 30 FT epochs, as in `table2.py`; LC and GSM
run their grids a second time from a pretrained net (`during.pretrained`,
`table2.pretrained`; Sec. 3.3 keeps the better start per sparsity).

Table 28 (App. C.3): wd 1e-4, LR 0.1, goal sparsity 90 / 95 %; GMP variants
(`table2.GMP_VARIANTS`: global / uniform, hard / soft, stepped / linear /
cyclic LR, pruning every 5 or 10 epochs); BIMP with T0 = 100 and 1-4 cycles
(those points are already in Table 24's BIMP grid).

Assumptions (docs/provenance.md F15): the goal sparsities of Table 24 (the
caption gives the range 90-98 %: 90 / 95 / 98 %); the grids of LC, DPF, DNW,
CS, STR and DST, which the text copy loses for this net (`table2.py`'s
CIFAR-10 grids, App. B.4.1, with B.4.2's weight decays and schedules); no
RandomRotation(15) augmentation (BIMP's CIFAR-100 loader has it, jaxprune's
CIFAR pipeline does not).

Run:
  python -m jaxprune.sweeps --config=configs/zimmer2023/table24.py --workdir=workdirs/zimmer2023_table24
  python -m jaxprune.report --results=workdirs/zimmer2023_table24/results.jsonl \
      --out=workdirs/zimmer2023_table24/report
Expected: the tables' numbers are lost in the text copy (not typed). App.
C.3: little difference between hard and soft GMP; a linear LR slightly
better at 90 %, stepped better at high sparsity; cyclic LR hurts GMP at 90 %.
The paper notes its dense WRN-28-10 stays below the commonly reported ~80 %.
"""

import ml_collections

from configs import common
from configs.zimmer2023 import table2
from jaxprune.results import sweeps

WEIGHT_DECAYS = [1e-4, 2e-4, 5e-4]  # App. B.4.2.
INITIAL_LRS = [0.05, 0.1, 0.15]  # Stepped schedule of Table 3 (B.4.2).
SPARSITIES = [0.9, 0.95, 0.98]  # Table 24 caption: 90-98 % (assumed columns).
TABLE28_SPARSITIES = [0.9, 0.95]  # Table 28 caption.
EPOCHS = 200


def schedules(method: str) -> list[dict]:
  """B.4.2's schedules: stepped from each initial LR plus linear from 0.1
  (CS: the stepped 0.1 only)."""
  if method == "cs":
    return [table2.stepped(0.1, EPOCHS)]
  linear = {"name": "linear", "lr": 0.1, "epochs": EPOCHS}
  return [table2.stepped(lr, EPOCHS) for lr in INITIAL_LRS] + [linear]


def stable_points(method: str, grid: dict, extended: dict | None = None) -> list:
  """One pruning-stable method (`during` protocol, 30 FT epochs) over its
  grid times B.4.2's weight decays and schedules (`extended`'s own weight
  decays replace the common ones) and the goal sparsity where it takes one."""
  base = {
    "protocol": "during",
    "during.method": method,
    "num_epochs": EPOCHS,
    "during.finetune_epochs": table2.CIFAR_FT_EPOCHS,
  }
  axes = {"optimizer.weight_decay": WEIGHT_DECAYS, "schedule": schedules(method)}
  if method in table2.TARGETED:
    axes["pruning.sparsity"] = SPARSITIES
  out = []
  for g in [grid, extended] if extended else [grid]:
    for p in sweeps.product(**{**axes, **g}):
      p = {**base, **p}
      if "dpf_steps" in p:
        p["during.dpf.pruning_interval"] = max(EPOCHS // p.pop("dpf_steps"), 1)
      p["optimizer.nesterov"] = p["optimizer.weight_decay"] > 0  # BIMP's rule.
      out.append(p)
  return out


def gmp_variants() -> list[dict]:
  """Table 28: GMP variants at wd 1e-4, LR 0.1 (App. C.3)."""
  out = []
  for p in sweeps.product(
    **{"pruning.sparsity": TABLE28_SPARSITIES, **table2.GMP_VARIANTS}
  ):
    p = {
      "protocol": "during",
      "during.method": "gmp",
      "num_epochs": EPOCHS,
      "during.finetune_epochs": table2.CIFAR_FT_EPOCHS,
      "optimizer.weight_decay": 1e-4,
      "optimizer.nesterov": True,
      **table2.GMP_CODE_EVENTS,
      **p,
    }
    kind = p.pop("lr_schedule")
    p["schedule"] = table2.lr_schedule(kind, EPOCHS, p["pruning.gmp_frequency"])
    out.append(p)
  return out


def get_config(arg=None):
  config = common.zimmer_cifar(common.base("bimp"), "wrn28_10", "cifar100")
  common.magnitude(config, 0.9)
  config.num_epochs = 100
  config.schedule = ml_collections.ConfigDict(
    table2.linear_t0(config.get_ref("num_epochs"))
  )
  config.bimp.budget_epochs = EPOCHS
  config.pruning.schedule = "imp"
  config.pruning.imp_cycles = 2
  config.retrain.schedule = "allr"
  config.pruning.gmp_start, config.pruning.gmp_end = 10, 150
  return common.finalize(config, arg)


def get_sweep(arg=None):
  bimp = sweeps.product(
    **{
      "num_epochs": [20, 60, 100],
      "pruning.imp_cycles": [1, 2, 3, 4],
      "optimizer.weight_decay": WEIGHT_DECAYS,
      "pruning.sparsity": SPARSITIES,
    }
  )
  for p in bimp:
    p["schedule"] = table2.linear_t0(p["num_epochs"])
  gmp = sweeps.product(
    **{
      "protocol": ["gmp"],
      "pruning.schedule": ["gmp"],
      "num_epochs": [EPOCHS],
      "schedule": [table2.stepped(0.1, EPOCHS)],
      "pruning.gmp_frequency": [5, 10],
      "optimizer.weight_decay": WEIGHT_DECAYS,
      "pruning.sparsity": SPARSITIES,
    }
  )
  stable = common.join(
    stable_points("gsm", table2.GSM),
    stable_points("lc", table2.LC),
    stable_points("dpf", table2.DPF),
    stable_points("dnw", table2.DNW),
    stable_points("cs", table2.CS),
    stable_points("str", table2.STR, table2.STR_EXTENDED),
    stable_points("dst", table2.DST, table2.DST_EXTENDED),
  )
  return common.sweep(
    common.join(bimp, gmp, stable, gmp_variants(), table2.pretrained(stable)),
    range(2),
    arg,
  )
