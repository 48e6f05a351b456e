r"""Le & Hua 2021, Table 8: Taylor-FO-BN filter pruning of ImageNet ResNet-50, FT vs CLR.

Dense: the torchvision ResNet-50 recipe (90 epochs, 0.1 x0.1 every 30, batch
256, wd 1e-4; Le & Hua start from the torchvision model, we train it, shared).
Pruning: Taylor-FO-BN (Molchanov et al. 2019), the per-channel squared sum of
gamma * dL/dgamma + beta * dL/dbeta, accumulated over `pruning.score_batches`
training batches (0 = 10, `data_scores.DEFAULT_BATCHES`), one global
threshold over the bottleneck inner channels (`groups="inner"`), with surgery.
Retraining: 25 epochs (the original budget), FT = constant 0.001 (the original
fine-tuning) vs CLR = cosine warm-up to 0.01 then cosine decay (Le & Hua keep
the budget and raise the LR to 0.01). One seed (single ImageNet runs).

Assumptions (not in the paper): the original prunes iteratively during
fine-tuning; we prune once. "Taylor-FO-BN-X%" is read as X% of the inner
channels kept (pruning.ratio = 1 - X/100); the summary's params/FLOPs give the
reductions to compare with the table's 66.8/44.5/30.1% params kept.

Run:
  python -m jaxprune.sweeps --config=configs/le2021/table8.py --workdir=workdirs/le2021_table8
  python -m jaxprune.report --results=workdirs/le2021_table8/results.jsonl \
      --out=workdirs/le2021_table8/report --hue=retrain.schedule
Expected: third_party/paper_results/le2021.csv, table "Table 8": Prune + CLR
above Prune + FT at every ratio (72.51 vs 71.69 at 56%, 75.22 vs 74.50 at 72%).
"""

from configs import common

KEPT = (0.56, 0.72, 0.81)  # "Taylor-FO-BN-56/72/81%".
RETRAINS = [
  {"retrain.schedule": "ft"},
  {"retrain.schedule": "cosine", "retrain.lr": 0.01, "retrain.warmup_fraction": 0.1},
]


def get_config(arg=None):
  config = common.imagenet(common.base("prune_retrain"), "resnet50")
  p = config.pruning
  p.name, p.criterion, p.groups = "structured", "taylor_fo_bn", "inner"
  p.group_allocation, p.ratio = "global", round(1 - KEPT[1], 2)
  config.retrain.num_epochs = 25
  config.retrain.schedule = "ft"
  return common.finalize(config, arg)


def get_sweep(arg=None):
  ratios = [{"pruning.ratio": round(1 - k, 2)} for k in KEPT]
  points = [{**r, **m} for r in ratios for m in RETRAINS]
  flavor = get_config(arg).retrain.flavor
  return common.sweep(common.nptm_onecycle(points, flavor), [0], arg)


def paper_cell(setting):
  """The Table 8 top-1 cell a sweep setting reproduces (--paper_config)."""
  kept = round(100 * (1 - setting["pruning.ratio"]))
  method = "ft" if setting["retrain.schedule"] == "ft" else "clr"
  return {"paper": "le2021", "row_id": f"t8_taylorfobn{kept}pct_{method}"}
