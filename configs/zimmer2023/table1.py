r"""Zimmer et al. 2023, Table 1: ResNet-50 on ImageNet, One Shot, retraining schedules.

Dense ResNet-50 (torchvision recipe, 90 epochs; Nesterov as in BIMP whenever
wd > 0), one-shot global magnitude pruning of all conv/dense kernels (BIMP's
`global_unstructured`, docs/provenance.md F5) to 70 / 80 / 90 %, retrained
2 / 5 / 10 epochs (2.22 / 5.55 / 11.11 % of the budget: the surviving caption)
with FT, LRW, SLR, CLR, LLR and ALLR (per-iteration BIMP translations). Two
seeds (the paper's ImageNet runs average two seeds).

Run:
  python -m jaxprune.sweeps --config=configs/zimmer2023/table1.py --workdir=workdirs/zimmer2023_table1
  python -m jaxprune.report --results=workdirs/zimmer2023_table1/results.jsonl \
      --out=workdirs/zimmer2023_table1/report
Expected: Table 1 of the paper is lost in the text copy (not typed; see
third_party/paper_results/README.md): ALLR best or on par at every budget.
"""

from configs import common
from jaxprune.results import sweeps


def get_config(arg=None):
  config = common.imagenet(common.base("prune_retrain"), "resnet50", nesterov=True)
  common.magnitude(config, 0.9)
  config.retrain.num_epochs = 5
  config.retrain.schedule = "allr"
  return common.finalize(config, arg)


def get_sweep(arg=None):
  points = sweeps.product(
    **{
      "pruning.sparsity": [0.7, 0.8, 0.9],
      "retrain.num_epochs": [2, 5, 10],
      "retrain.schedule": ["ft", "lrw", "slr", "clr", "llr", "allr"],
    }
  )
  return common.sweep(points, range(2), arg)
