"""Budgets (Scratch-E/B, BIMP split), Wang et al. Table 4 protocols, Table 2
setup labels, and the figure command."""

import importlib
import os
import runpy

import ml_collections
import pytest

from jaxprune.protocols import budget
from jaxprune.results import setups
from jaxprune.schedules import core

# Wang et al. 2023 Table 4 scratch schedule (ImageNet100, 120 epochs).
SCRATCH = ml_collections.ConfigDict(
  dict(name="piecewise", spec="0:0.1,30:0.01,60:0.001,90:1e-4,105:1e-5", epochs=120)
)


def test_scratch_e():
  assert budget.scratch_e_epochs(160, 72) == 160  # Liu et al.: same epochs
  assert budget.scratch_e_epochs(160, 72, "le2021") == 232  # Le & Hua: 160 + 72


def test_scratch_b_resnet56():
  # ResNet-56, pr 0.5 on every block's conv1: speedup 1.99x (Wang et al. Tab. 6,
  # dense 0.251 GFLOPs). Wang: K1 * F1/F2 + K2 = 200 * 1.99 + 120 = 518.
  f1 = 0.251e9
  f2 = f1 / 1.99
  assert budget.scratch_b_epochs(200, f1, f2, retrain_epochs=120) == 518
  # Liu et al. CIFAR: int(160 * 1.99) = int(318.4) = 318.
  assert budget.scratch_b_epochs(160, f1, f2) == 318
  # Liu et al. ImageNet: speedup 3.59 > 2, so just double 90 epochs.
  assert budget.scratch_b_epochs(90, f1, f1 / 3.59, max_speedup=2) == 180
  # Exact ratio: 200 * 2 must not round down to 399.
  assert budget.scratch_b_epochs(200, 0.251, 0.251 / 2) == 400


def test_stretch_milestones_proportionally():
  base = ml_collections.ConfigDict(
    dict(name="piecewise", spec="0:0.1,80:0.01,120:0.001", epochs=160)
  )
  # Liu et al. main_B: decays at int(0.5 E) = 159 and int(0.75 E) = int(238.5) = 238.
  stretched = budget.stretch(base, 318)
  assert stretched.spec == "0:0.1,159:0.01,238:0.001" and stretched.epochs == 318
  step = ml_collections.ConfigDict(
    dict(name="step", lr=0.1, epochs=160, milestones=[80, 120])
  )
  assert list(budget.stretch(step, 320).milestones) == [160, 240]


def test_split_epochs_bimp():
  assert core.split_epochs(100, 3) == [33, 33, 34]
  assert core.split_epochs(100, 4) == [25, 25, 25, 25]
  with pytest.raises(ValueError, match="cannot split"):
    core.split_epochs(2, 3)


@pytest.mark.parametrize(
  ("k", "spec", "label"),
  [
    # Table 4 S4.2 rows: the initial fine-tune LR is the scratch LR at epoch k.
    (15, "0:0.1,15:0.01,45:0.001,75:0.0001,90:1e-05", "P15F105, 1e-1"),
    (30, "0:0.01,30:0.001,60:0.0001,75:1e-05", "P30F90, 1e-2"),
    (45, "0:0.01,15:0.001,45:0.0001,60:1e-05", "P45F75, 1e-2"),
    (60, "0:0.001,30:0.0001,45:1e-05", "P60F60, 1e-3"),
    (75, "0:0.001,15:0.0001,30:1e-05", "P75F45, 1e-3"),
    (90, "0:0.0001,15:1e-05", "P90F30, 1e-4"),
  ],
)
def test_pkfn_continues_scratch_schedule(k, spec, label):
  proto = budget.pkfn(SCRATCH, k)
  assert (proto.setup, proto.finetune.spec, proto.label) == ("S4.2", spec, label)
  assert proto.total_epochs == 120


def test_sx_a_uses_halving_rule_to_scratch_final_lr():
  # App. A: P30F90 @1e-1 and P60F60 @1e-2; P90F30 @1e-2: stages 15, 8, 4, 3.
  assert (
    budget.sx_a(SCRATCH, 30, 1e-1).finetune.spec
    == "0:0.1,30:0.01,60:0.001,75:0.0001,83:1e-05"
  )
  assert (
    budget.sx_a(SCRATCH, 60, 1e-2).finetune.spec == "0:0.01,30:0.001,45:0.0001,53:1e-05"
  )
  p90 = budget.sx_a(SCRATCH, 90, 1e-2)
  assert (
    p90.finetune.spec == "0:0.01,15:0.001,23:0.0001,27:1e-05"
    and p90.total_epochs == 120
  )


def test_sx_b_squeezes_pruning_epoch():
  # Sec. 4 (3): speedup 1.11 -> 30 / 1.11 = 27.03 -> prune at 27; 12.06x -> 2.
  proto = budget.sx_b(SCRATCH, 30, 1.11, 1e-1)
  assert (proto.setup, proto.prune_epoch, proto.finetune.epochs) == ("SX-B", 27, 90)
  assert proto.label == "P30/kF90, 1e-1"
  assert budget.sx_b(SCRATCH, 30, 12.06, 1e-1).prune_epoch == 2


def test_extra_epochs_lengthen_the_first_finetune_stage():
  # Table 8: P90F30, 1e-4 (+1485 epochs) has a first stage of 15 + 1485 = 1500
  # epochs ("exactly 100 times" the 15 of P90F30, 1e-2), then 1e-5 for 15.
  proto = budget.extend_first_stage(budget.pkfn(SCRATCH, 90), 1485)
  assert proto.finetune.spec == "0:0.0001,1500:1e-05"
  assert (proto.finetune.epochs, proto.total_epochs) == (1515, 1605)
  assert proto.label == "P90F30, 1e-4 (+1485 epochs)"
  # Table 5: P30F90, 1e-2 (+30 epochs) = 120 fine-tuning epochs.
  p30 = budget.extend_first_stage(budget.pkfn(SCRATCH, 30), 30)
  assert p30.finetune.spec == "0:0.01,60:0.001,90:0.0001,105:1e-05"
  assert budget.extend_first_stage(p30, 0) is p30
  with pytest.raises(ValueError, match=r"prune_epoch\.extra_epochs must be"):
    budget.extend_first_stage(p30, -1)
  from jaxprune.protocols import common as protocol_common

  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  module = runpy.run_path(os.path.join(root, "configs", "protocols", "prune_epoch.py"))
  config = module["get_config"]()
  config.prune_epoch.extra_epochs = -2
  with pytest.raises(ValueError, match=r"prune_epoch\.extra_epochs must be"):
    protocol_common.validate(config)


def test_budget_errors():
  with pytest.raises(ValueError, match="train_epochs must be a non-negative integer"):
    budget.scratch_b_epochs(-1, 2.0, 1.0)
  with pytest.raises(ValueError, match=r"pruned_flops=3\.0 must be <= dense_flops"):
    budget.scratch_b_epochs(10, 2.0, 3.0)
  with pytest.raises(ValueError, match="prune_epoch=130 must be in"):
    budget.pkfn(SCRATCH, 130)


# ------------------------------------------------------------ Table 2 labels
COMMON = dict(dataset="imagenet100", network="resnet34", target=0.1)
DENSE, PRUNED = 3.66e9, 3.30e9  # Table 4, pruning ratio 10 %


def scratch_run():
  return dict(
    COMMON,
    scratch_epochs=120,
    scratch_lr=SCRATCH.spec,
    dense_flops=DENSE,
    pruned_flops=PRUNED,
  )


def pruning_run(proto):
  return dict(
    COMMON,
    pretrain_epochs=proto.prune_epoch,
    pretrain_lr=SCRATCH.spec,
    finetune_epochs=proto.finetune.epochs,
    finetune_lr=proto.finetune.spec,
    dense_flops=DENSE,
    pruned_flops=PRUNED,
  )


def test_table4_setups_against_scratch():
  scratch = scratch_run()
  # Pretrain 30 epochs of the scratch schedule + its last 90: same overall LR.
  assert (
    setups.comparison_setup(pruning_run(budget.pkfn(SCRATCH, 30)), scratch) == "S4.2"
  )
  # Same 120 epochs, larger fine-tuning LR.
  assert (
    setups.comparison_setup(pruning_run(budget.sx_a(SCRATCH, 30, 1e-1)), scratch)
    == "SX-A"
  )
  # 27 * 3.66 + 90 * 3.30 = 395.8 vs 120 * 3.30 = 396 GFLOPs: within one dense epoch.
  assert (
    setups.comparison_setup(pruning_run(budget.sx_b(SCRATCH, 30, 1.11, 1e-1)), scratch)
    == "SX-B"
  )
  # 20 pretraining epochs: neither epochs nor FLOPs match.
  short = pruning_run(budget.sx_b(SCRATCH, 30, 1.5, 1e-1))
  assert setups.comparison_setup(short, scratch) == "S1"


def test_liu2019_budget_leaves_fine_tuning_out():
  """Liu et al. 2019 Sec. 4: "our evaluations use the same computation as large
  model training without considering the computation in fine-tuning"; Wang et
  al. 2023 name that comparison the origin of SX-A / SX-B."""
  dense = dict(COMMON, pretrain_epochs=160, pretrain_lr="0:0.1,80:0.01,120:0.001")
  ft = dict(dense, finetune_epochs=40, finetune_lr="0:0.001", dense_flops=4.0)
  ft["pruned_flops"] = 1.0
  scratch_e = dict(COMMON, scratch_epochs=160, dense_flops=4.0, pruned_flops=1.0)
  scratch_b = dict(scratch_e, scratch_epochs=640)  # 160 * F1 / F2
  assert setups.comparison_setup(ft, scratch_e) == "S1"  # 200 vs 160 epochs
  assert setups.comparison_setup(ft, scratch_e, "liu2019") == "SX-A"
  assert setups.comparison_setup(ft, scratch_b, "liu2019") == "SX-B"
  with pytest.raises(ValueError, match="budget must be one of"):
    setups.comparison_setup(ft, scratch_e, "le2021")


def test_same_base_model_setups():
  a = dict(
    COMMON, base_model="torchvision", finetune_epochs=90, finetune_lr="0:0.01,30:0.001"
  )
  assert (
    setups.comparison_setup(a, dict(a)) == "S4.2"
  )  # both one-shot, same fine-tuning
  greg = dict(a, prune_epochs=5, prune_lr="0:0.001")
  assert setups.comparison_setup(greg, dict(greg)) == "S4.2"
  assert setups.comparison_setup(greg, dict(greg, prune_lr="0:0.01")) == "S4.1"
  assert setups.comparison_setup(greg, a) == "S3.2"  # pruning epochs differ
  assert setups.comparison_setup(a, dict(a, finetune_lr="0:0.001")) == "S3.1"
  assert (
    setups.comparison_setup(a, dict(a, finetune_epochs=120, finetune_lr="0:0.01"))
    == "S2"
  )
  assert setups.comparison_setup(a, dict(a, base_model="own")) == "S1"
  with pytest.raises(ValueError, match="network differs"):
    setups.comparison_setup(a, dict(a, network="resnet50"))
  with pytest.raises(ValueError, match="unknown field"):
    setups.comparison_setup(a, dict(a, finetune_lrs="0:0.1"))


# ------------------------------------------------------------ figure command
@pytest.mark.parametrize("name", ["le2021_fig1", "zimmer2023_fig1"])
def test_figure_command_writes_png(tmp_path, name):
  main = importlib.import_module("jaxprune.schedules.figure")
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  config = runpy.run_path(os.path.join(root, "configs", "figures", f"{name}.py"))[
    "get_config"
  ]()
  out = tmp_path / "fig.png"
  main.draw(config, 5, str(out))
  assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  assert os.listdir(tmp_path) == ["fig.png"]  # no temp file left behind
