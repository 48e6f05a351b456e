"""Shared pieces of the per-paper sweep configs in `configs/<paper>/`.

The papers reuse a handful of training recipes (Le & Hua's NPTM CIFAR recipe,
Liu et al.'s Rethinking recipe, Wang et al.'s 200-epoch CIFAR recipe, the
ImageNet step recipe, the Dynamical Isometry MNIST nets), so each sweep file
only states what its table changes. Sources for every number:
docs/provenance.md (entries F1-F11, cited per function).

`configs` is a package installed with jaxprune, so sweep files loaded by path
(`jaxprune.config_args.load_module`, ml_collections `config_flags` in
`jaxprune.main`) import this one as `from configs import common`. Their config
argument is read by `args` (`jaxprune.config_args.parse_arg`): `smoke` and
`data=fashion_mnist`, comma-separated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ml_collections

from jaxprune import config_args, config_utils
from jaxprune.results import sweeps

# Override keys that would undo the smoke shrinking of `finalize`; the smoke
# sweep drops them from its single point.
_SMOKE_DROPPED = (
  "num_epochs",
  "schedule",
  "retrain.num_epochs",
  "retrain.spec",
  "bimp.budget_epochs",
  "prune_epoch.epoch",
  "prune_epoch.extra_epochs",
  "pruning.gmp_start",
  "pruning.gmp_end",
  "pruning.imp_cycles",
)


# Li et al.'s CIFAR presets as (model, preset), the rows of Rethinking Tables
# 1 and 8 and Le & Hua Table 2.
LI_PRESETS = (
  ("vgg16", "vgg16_a"),
  ("resnet56", "resnet56_a"),
  ("resnet56", "resnet56_b"),
  ("resnet110", "resnet110_a"),
  ("resnet110", "resnet110_b"),
)
# Liu et al.'s training-from-scratch baselines of a pruned architecture: the
# same epochs (Scratch-E) or the same FLOPs budget (Scratch-B).
SCRATCH_E = {"protocol": "scratch", "scratch.budget": "E"}
SCRATCH_B = {"protocol": "scratch", "scratch.budget": "B"}


def base(protocol: str) -> ml_collections.ConfigDict:
  """The base config with `protocol` set and progress bars off (sweeps log)."""
  config = config_utils.base_config()
  config.protocol = protocol
  config.progress = False
  return config


def fashion_mnist(
  protocol: str, model: str = "mlp7_relu", epochs: int = 20, lr: float = 0.05
) -> ml_collections.ConfigDict:
  """The CPU recipe of the protocol examples and the mini-reproduction.

  `model` on the offline Fashion-MNIST at 32x32 (MLP-7 takes 1024 inputs, as
  the Dynamical Isometry MNIST nets), `epochs` epochs of SGD (momentum 0.9,
  weight decay 1e-4, batch 128) with the LR decaying linearly from `lr` to 0.
  """
  config = config_utils.base_config()
  config.protocol = protocol
  config.model.name = model
  config.data.name = "fashion_mnist_local"
  config.data.image_size = (32, 32)
  config.num_epochs = epochs
  config.schedule = ml_collections.ConfigDict(
    dict(name="linear", lr=lr, epochs=config.get_ref("num_epochs"))
  )
  return config


def _schedule(
  spec: str, epochs: int | ml_collections.FieldReference
) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(name="piecewise", spec=spec, epochs=epochs))


def _cifar(
  config: ml_collections.ConfigDict, model: str, dataset: str
) -> ml_collections.ConfigDict:
  """What every CIFAR recipe shares: the net, the data with pad-crop-flip, SGD
  momentum 0.9."""
  config.model.name = model
  config.data.name = dataset
  config.data.augment = "cifar"
  config.optimizer.momentum = 0.9
  return config


def rethinking_cifar(
  config: ml_collections.ConfigDict, model: str, dataset: str = "cifar10"
) -> ml_collections.ConfigDict:
  """Liu et al.'s Rethinking recipe (docs/provenance.md F8): 160 epochs, LR 0.1
  x0.1 at 80/120, batch 64, wd 1e-4, the whole training set."""
  _cifar(config, model, dataset)
  config.num_epochs, config.batch_size = 160, 64
  config.optimizer.weight_decay = 1e-4
  config.schedule = _schedule("0:0.1,80:0.01,120:0.001", 160)
  return config


def nptm_cifar(
  config: ml_collections.ConfigDict, model: str, dataset: str = "cifar10"
) -> ml_collections.ConfigDict:
  """Le & Hua's NPTM recipe (`main.py`; docs/provenance.md F6): Rethinking's
  schedule and batch, plus a 90/10 train/val split with the best-validation
  model (Le & Hua Sec. 4), the split drawn per run (Sec. 3.4: "randomly (and
  independently between each run)"), and Nesterov momentum (App. A Table 6;
  NPTM's code uses plain momentum: docs/provenance.md)."""
  rethinking_cifar(config, model, dataset)
  config.data.validation_fraction = 0.1
  config.data.split_seed = -1  # A split per run seed.
  config.optimizer.nesterov = True
  return config


def wang_cifar(
  config: ml_collections.ConfigDict, model: str, dataset: str = "cifar10"
) -> ml_collections.ConfigDict:
  """Wang et al.'s recipe (TPP/GReg READMEs; docs/provenance.md F7, F10): 200
  epochs, LR 0.1 x0.1 at 100/150, wd 5e-4, batch 128 (256 for VGG), ImageNet
  mean/std normalisation."""
  _cifar(config, model, dataset)
  config.num_epochs = 200
  config.batch_size = 256 if model.startswith("vgg") else 128
  config.optimizer.weight_decay = 5e-4
  config.schedule = _schedule("0:0.1,100:0.01,150:0.001", 200)
  config.data.mean = (0.485, 0.456, 0.406)
  config.data.std = (0.229, 0.224, 0.225)
  return config


def zimmer_cifar(
  config: ml_collections.ConfigDict, model: str, dataset: str = "cifar10"
) -> ml_collections.ConfigDict:
  """BIMP's recipe: 200 epochs stepped (assumed LR 0.1
  x0.1 at 100/150 as in configs/figures/zimmer2023_fig1.py: Table 3 is
  garbled), batch 128, wd 1e-4, Nesterov (BIMP uses Nesterov whenever wd > 0),
  90/10 split."""
  _cifar(config, model, dataset)
  config.num_epochs, config.batch_size = 200, 128
  config.optimizer.weight_decay = 1e-4
  config.optimizer.nesterov = True
  config.schedule = _schedule("0:0.1,100:0.01,150:0.001", 200)
  config.data.validation_fraction = 0.1
  return config


def imagenet(
  config: ml_collections.ConfigDict, model: str, nesterov: bool = False
) -> ml_collections.ConfigDict:
  """torchvision ImageNet recipe: 90 epochs, 0.1 x0.1 every 30, batch 256, wd 1e-4."""
  config.model.name = model
  config.data.name = "imagenet2012"
  config.num_epochs, config.batch_size = 90, 256
  config.eval_batch_size = 250
  config.optimizer.weight_decay = 1e-4
  config.optimizer.nesterov = nesterov
  config.schedule = _schedule("0:0.1,30:0.01,60:0.001", 90)
  return config


def wang_imagenet100(
  config: ml_collections.ConfigDict, model: str = "resnet34"
) -> ml_collections.ConfigDict:
  """Wang et al. 2023's ImageNet100 recipe (Table 4 caption, App. A;
  docs/provenance.md "ImageNet100"): the PyTorch ImageNet example (batch 256,
  wd 1e-4, momentum 0.9, random-resized crop + flip) trained 120 epochs, LR
  0.1 x0.1 at 30/60/90/105 (final LR 1e-5), on the 100-class subset."""
  imagenet(config, model)
  config.data.name = "imagenet100"
  config.data.augment = "flip"  # The example's RandomHorizontalFlip.
  config.num_epochs = 120
  # The schedule's length follows num_epochs, so that the smoke variant's
  # prune_epoch protocols derive P1F1 from a 2-epoch S, not P1F119.
  spec = "0:0.1,30:0.01,60:0.001,90:1e-4,105:1e-5"
  config.schedule = _schedule(spec, config.get_ref("num_epochs"))
  return config


def di_mnist(
  config: ml_collections.ConfigDict, model: str
) -> ml_collections.ConfigDict:
  """Dynamical Isometry MNIST nets: 32x32 MNIST (TPP `data/mnist.py` resizes),
  batch 100 (Smile-Pruning quick start), wd 1e-4, 90 epochs 0.01 x0.1 at 30/60
  (DI Table 2's scratch schedule), and the author's count of pruned neurons
  or filters, ceil(r * n) (docs/provenance.md F3)."""
  config.model.name = model
  # Not the default int(n * (1 - r)) kept: in floats that keeps 9 of 100 at
  # r = 0.9 (and 19 at 0.8), where the paper prunes exactly r.
  config.pruning.rounding = "prune_ceil"
  config.data.name = "mnist"
  config.data.image_size = (32, 32)
  config.num_epochs, config.batch_size = 90, 100
  config.optimizer.weight_decay = 1e-4
  config.schedule = _schedule("0:0.01,30:0.001,60:0.0001", 90)
  # An epoch of these nets takes a fraction of a second on a CPU, about what a
  # checkpoint save costs; the 900-epoch runs would spend a third of their time
  # saving. A resume-safe field: it changes neither hashes nor results.
  config.checkpoint_every_epochs = 10
  # DI tracks the mean JSV during (re)training (its Fig. 2); epoch 0 of a
  # retraining is the net right after pruning (and OrthP). Resume-safe too.
  config.analysis.jsv_every_epochs = 5
  return config


def l1_filters(
  config: ml_collections.ConfigDict, preset: str = "", ratio: float = 0.0
) -> ml_collections.ConfigDict:
  """Li et al.'s L1-norm filter pruning (first conv of every block), with surgery."""
  p = config.pruning
  p.name, p.criterion, p.groups = "structured", "l1", "inner"
  p.group_allocation, p.preset, p.ratio = "per_group", preset, ratio
  return config


def network_slimming(
  config: ml_collections.ConfigDict, ratio: float, strength: float
) -> ml_collections.ConfigDict:
  """Network slimming (Liu et al. 2017): sparsity training with `strength` *
  sum|gamma|, then one global BN-scale threshold removing `ratio` of all
  channels, with surgery (docs/provenance.md F4)."""
  p = config.pruning
  p.name, p.criterion, p.groups, p.group_allocation = (
    "structured",
    "bn_scale",
    "all",
    "global",
  )
  p.ratio, p.slimming_strength = ratio, strength
  return config


def slimming_scratch(model: str, strength: float) -> ml_collections.ConfigDict:
  """Rethinking Sec. 5: an architecture (`scratch.source`) trained from scratch
  for as many epochs as the large model (Scratch-E), the `pruned` one found by
  network slimming with sparsity `strength` at `pruning.ratio` (default 0.4)."""
  config = rethinking_cifar(base("scratch"), model)
  # Tied to num_epochs: `:smoke` rescales the spec to 2 epochs but leaves a
  # literal `schedule.epochs` at 160, which Scratch's stretch would misread.
  config.schedule.epochs = config.get_ref("num_epochs")
  network_slimming(config, 0.4, strength)
  config.scratch.budget = "E"
  return config


def sfp(config: ml_collections.ConfigDict, ratio: float) -> ml_collections.ConfigDict:
  """Soft Filter Pruning (protocol `sfp`): L2 filter norms, `ratio` of the first
  conv of every block zeroed each epoch, trained 200 epochs with SFP's
  schedule (0.1, x0.2 at 60/120/160; assumed: not printed in the seeds)."""
  config.protocol = "sfp"
  config.num_epochs = 200
  config.schedule = _schedule("0:0.1,60:0.02,120:0.004,160:0.0008", 200)
  p = config.pruning
  p.name, p.criterion, p.groups, p.ratio = "structured", "l2", "inner", ratio
  config.retrain.num_epochs = 0
  return config


# SFP's soft phase from a pretrained model (assumed, docs/provenance.md F19:
# neither Liu et al. 2019 nor the seeds print it): SFP's own 200-epoch schedule.
SFP_PRETRAINED_EPOCHS = 200
SFP_PRETRAINED_SPEC = "0:0.1,60:0.02,120:0.004,160:0.0008"


def sfp_pretrained(
  config: ml_collections.ConfigDict, ratio: float
) -> ml_collections.ConfigDict:
  """`sfp` from a pretrained model (`sfp.pretrained`): the dense model of the
  config's own schedule, then `SFP_PRETRAINED_EPOCHS` of soft pruning with
  `SFP_PRETRAINED_SPEC`, no fine-tuning after the hard prune."""
  dense_epochs, dense_schedule = config.num_epochs, config.schedule
  config = sfp(config, ratio)
  config.num_epochs, config.schedule = dense_epochs, dense_schedule
  config.sfp.pretrained = True
  config.sfp.num_epochs = SFP_PRETRAINED_EPOCHS
  config.sfp.schedule_spec = SFP_PRETRAINED_SPEC
  return config


def magnitude(
  config: ml_collections.ConfigDict, sparsity: float, allocation: str = "global"
) -> ml_collections.ConfigDict:
  """Unstructured magnitude pruning of every conv/dense kernel."""
  p = config.pruning
  p.name, p.criterion, p.allocation, p.sparsity = (
    "unstructured",
    "magnitude",
    allocation,
    sparsity,
  )
  return config


# `data=` values of the config argument: "" (the config's own data) or the
# offline Fashion-MNIST in place of MNIST.
DATA_CHOICES = ("", "fashion_mnist")


def args(arg: str | None) -> ml_collections.ConfigDict:
  """The config argument of a paper config: `smoke` (bool), `data` (one of
  `DATA_CHOICES`), e.g. `"smoke,data=fashion_mnist"` (or `"fashion_mnist,smoke"`)."""
  parsed = config_args.parse_arg(arg, smoke=False, data="")
  if parsed.data not in DATA_CHOICES:
    raise ValueError(
      f"config argument data must be one of {list(DATA_CHOICES)}, got {parsed.data!r}"
    )
  return parsed


def finalize(
  config: ml_collections.ConfigDict, arg: str | None
) -> ml_collections.ConfigDict:
  """`config_utils.finalize` plus the protocol fields the smoke run must shrink.

  `arg` (see `args`): `smoke`, and `data=fashion_mnist`, which runs an MNIST
  config on the offline Fashion-MNIST (`fashion_mnist_local`), e.g. the
  Dynamical Isometry tables on this CPU (`smoke,data=fashion_mnist`: both).
  """
  parsed = args(arg)
  if parsed.data == "fashion_mnist":
    if config.data.name != "mnist":
      raise ValueError(
        f"config argument data=fashion_mnist applies to MNIST configs only, this "
        f"one trains on {config.data.name!r}"
      )
    config.data.name = "fashion_mnist_local"
  smoke = parsed.smoke
  config = config_utils.finalize(config, "smoke" if smoke else None)
  if smoke:
    config.retrain.num_epochs = 1
    if config.retrain.spec:  # A piecewise retraining spec: its first stage only.
      config.retrain.spec = "0:" + config.retrain.spec.split(",")[0].split(":")[1]
    config.bimp.budget_epochs = config.num_epochs + 2
    config.prune_epoch.epoch = 1
    config.prune_epoch.max_stage_epochs = 0
    config.pruning.gmp_start, config.pruning.gmp_end = 0, 1
    config.pruning.imp_cycles = min(config.pruning.imp_cycles, 2)
    config.pruning.rewind_epoch = min(config.pruning.rewind_epoch, 1)
    config.scratch.b_extra_epochs = 0
    if config.sfp.pretrained:  # The soft phase: 1 epoch at its first LR.
      config.sfp.num_epochs = 1
      config.sfp.schedule_spec = (
        "0:" + config.sfp.schedule_spec.split(",")[0].split(":")[1]
      )
    if config.data.name in ("imagenet2012", "imagenet100"):
      config.data.image_size = (32, 32)  # ImageNet nets run on 32x32 in smoke.
  return config


def sweep(
  points: Sequence[dict[str, Any]], seeds: Sequence[int], arg: str | None
) -> list[dict[str, Any]]:
  """`points` x `seeds`; the smoke variant keeps the first point, seed 0, and
  drops its epoch overrides (they would undo the smoke shrinking)."""
  if args(arg).smoke:
    first = {k: v for k, v in points[0].items() if k not in _SMOKE_DROPPED}
    return sweeps.seeds([first], [seeds[0]])
  return sweeps.seeds(points, seeds)


def arch_points(ratios: dict[str, Sequence[float]]) -> list[dict[str, Any]]:
  """One point per (model, prune ratio) of `{model name: ratios}`."""
  return [{"model.name": m, "pruning.ratio": r} for m, rs in ratios.items() for r in rs]


def method_label(setting: dict[str, Any], otherwise: str) -> str:
  """A published table's method column for a sweep setting: `scratche` /
  `scratchb` for the Scratch-E / Scratch-B rows, `otherwise` for the rest."""
  if setting["protocol"] == "scratch":
    return "scratch" + setting["scratch.budget"].lower()
  return otherwise


def nptm_onecycle(
  points: Sequence[dict[str, Any]], flavor: str = "le2021"
) -> list[dict[str, Any]]:
  """Turns on OneCycle momentum cycling for every le2021 CLR point.

  NPTM's CLR is PyTorch's OneCycleLR with its default cycle_momentum=True
  (0.95 -> 0.85 -> 0.95), and Le & Hua's CLR is "the 1-cycle (Smith & Topin,
  2019)", which cycles momentum too. `flavor` is the base config's.
  """
  out = []
  for p in points:
    le2021_clr = p.get("retrain.schedule") == "clr"
    le2021_clr = le2021_clr and p.get("retrain.flavor", flavor) == "le2021"
    out.append({**p, "retrain.cycle_momentum": True} if le2021_clr else p)
  return out


def join(*groups: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
  """Concatenates point lists (e.g. fine-tuned points, then scratch points)."""
  return [p for g in groups for p in g]


def each(base_point: dict[str, Any], points: Sequence[dict[str, Any]]) -> list:
  """Every point of `points` merged over `base_point`."""
  return [{**base_point, **p} for p in points]


# MLP pruning of the CPU experiments (mini and cpu_full suites): half of every
# hidden layer's neurons by L1 norm (structured, surgery; PFEC on an MLP), or
# 90 % of the weights by global magnitude.
MLP_L1_HALF = {
  "pruning.name": "structured",
  "pruning.criterion": "l1",
  "pruning.ratio": 0.5,
}
MLP_MAGNITUDE_90 = {
  "pruning.name": "unstructured",
  "pruning.criterion": "magnitude",
  "pruning.allocation": "global",
  "pruning.sparsity": 0.9,
}


def variant_claims(id_suffix: str = "", budgets: str = "at every retraining budget"):
  """Le & Hua's claims "LRW / SLR / CLR beats FT" after L1 neuron and global
  magnitude pruning, one per (variant, criterion), checked per budget."""
  return [
    {
      "id": f"le2021.{variant}_beats_ft_{criterion}{id_suffix}",
      "text": f"{variant.upper()} beats FT {budgets} after "
      + ("L1 neuron" if criterion == "l1" else "global magnitude")
      + " pruning (Le & Hua Tables 1-4)",
      "kind": "greater",
      "metric": "test/accuracy",
      "a": {"retrain.schedule": variant, "pruning.criterion": criterion},
      "b": {"retrain.schedule": "ft", "pruning.criterion": criterion},
      "for_each": ["retrain.num_epochs"],
    }
    for variant in ("lrw", "slr", "clr")
    for criterion in ("l1", "magnitude")
  ]
