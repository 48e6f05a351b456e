r"""Liu et al. 2019, Table 11: Soft Filter Pruning from pretrained models vs scratch.

"Pruned": SFP from a pretrained model (protocol `sfp` with `sfp.pretrained`,
`common.sfp_pretrained`): CIFAR-10 ResNet-56 (PR 0.3, 0.4) and ResNet-110 (PR
0.3) are first trained dense with the Rethinking CIFAR schedule (the shared
dense cache that `prune_retrain` uses), then soft-pruned for
`sfp.num_epochs` (the lowest-L2 `ratio` of the first conv of every block
zeroed after every epoch, free to regrow), then hard-pruned with surgery, no
fine-tuning. Scratch-E / Scratch-B: the same small architecture (`scratch`
with `source="uniform"`: the per-layer counts do not depend on the weights)
trained from a fresh initialisation for the same epochs / the same FLOPs.
5 seeds. The soft phase's length and LR are assumptions (docs/provenance.md
F19).

Run:
  python -m jaxprune.sweeps --config=configs/liu2019/table11.py --workdir=workdirs/liu2019_table11
  python -m jaxprune.report --results=workdirs/liu2019_table11/results.jsonl \
      --out=workdirs/liu2019_table11/report --hue=protocol
Expected: third_party/paper_results/liu2019.csv, table "Table 11": Scratch-E or
Scratch-B beats the SFP-pruned model in every row (ResNet-56 PR 0.3: 93.51
pruned vs 94.45 Scratch-E, 93.77 Scratch-B; ResNet-110 PR 0.3: 93.46 vs 94.37
Scratch-B).
Smoke (seconds): --config=configs/liu2019/table11.py:smoke
"""

from configs import common

RATIOS = {"resnet56": (0.3, 0.4), "resnet110": (0.3,)}
METHODS = [
  {"protocol": "sfp"},
  {**common.SCRATCH_E, "scratch.source": "uniform"},
  {**common.SCRATCH_B, "scratch.source": "uniform"},
]


def get_config(arg=None):
  config = common.rethinking_cifar(common.base("sfp"), "resnet56")
  return common.finalize(common.sfp_pretrained(config, 0.3), arg)


def get_sweep(arg=None):
  archs = common.arch_points(RATIOS)
  points = [{**a, **m} for a in archs for m in METHODS]
  return common.sweep(points, range(5), arg)


def paper_cell(setting):
  """The Table 11 accuracy cell a sweep setting reproduces (--paper_config)."""
  method = common.method_label(setting, "pruned")
  arch = f"cifar10_{setting['model.name']}_pr{setting['pruning.ratio']}"
  return {"paper": "liu2019", "row_id": f"t11_{arch}_{method}"}
