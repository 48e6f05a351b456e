r"""Le & Hua 2021, Table 7: HRank filter pruning on CIFAR-10, original fine-tuning vs CLR.

Dense: Le & Hua's NPTM CIFAR recipe (160 epochs, 0.1 x0.1 at 80/120, shared).
Pruning: HRank (Lin et al. 2020), every filter scored by the average rank of
its (post-ReLU) feature maps over `pruning.score_batches` training batches (0
= 5, `data_scores.DEFAULT_BATCHES`), the lowest-rank filters of every pruned
layer removed (surgery). Retraining 30 epochs: FT = HRank's original
fine-tuning (0.01, x0.1 at epochs 5 and 10) vs CLR restarting at 0.1 (NPTM
1-cycle). One seed (Le & Hua run HRank once).

Assumptions: HRank's per-layer compression-rate lists are not recorded in
docs/provenance.md, so one uniform ratio per model over the inner groups
(every hidden layer of VGG/DenseNet) is used; Le & Hua prune and retrain layer
by layer, we prune once. Compare the summaries' params/FLOPs with the table's
reductions before comparing accuracies.

Run:
  python -m jaxprune.sweeps --config=configs/le2021/table7.py --workdir=workdirs/le2021_table7
  python -m jaxprune.report --results=workdirs/le2021_table7/results.jsonl \
      --out=workdirs/le2021_table7/report --hue=retrain.schedule
Expected: third_party/paper_results/le2021.csv, table "Table 7": CLR matches or
beats FT (ResNet-56 93.16 vs 92.97, VGG-16 92.53 vs 91.97).
"""

from configs import common

# model -> (uniform ratio, paper row prefix)
MODELS = {
  "vgg16": (0.6, "vgg16bn"),
  "resnet56": (0.5, "resnet56"),
  "resnet110": (0.4, "resnet110"),
  "densenet40": (0.4, "densenet40"),
}
RETRAINS = [
  {"retrain.schedule": "piecewise", "retrain.spec": "0:0.01,5:0.001,10:0.0001"},
  {"retrain.schedule": "clr", "retrain.flavor": "le2021"},
]


def get_config(arg=None):
  config = common.nptm_cifar(common.base("prune_retrain"), "resnet56")
  p = config.pruning
  p.name, p.criterion, p.groups = "structured", "hrank", "inner"
  p.ratio = MODELS["resnet56"][0]
  config.retrain.num_epochs = 30
  config.retrain.schedule, config.retrain.spec = (
    "piecewise",
    RETRAINS[0]["retrain.spec"],
  )
  return common.finalize(config, arg)


def get_sweep(arg=None):
  models = [{"model.name": m, "pruning.ratio": r} for m, (r, _) in MODELS.items()]
  points = [{**m, **r} for m in models for r in RETRAINS]
  flavor = get_config(arg).retrain.flavor
  return common.sweep(common.nptm_onecycle(points, flavor), [0], arg)


def paper_cell(setting):
  """The Table 7 accuracy cell a sweep setting reproduces (--paper_config)."""
  row = MODELS[setting["model.name"]][1]
  method = "clr" if setting["retrain.schedule"] == "clr" else "ft"
  return {"paper": "le2021", "row_id": f"t7_{row}_{method}"}
