"""Pruning protocols end to end on the tiny dataset, with their invariants.

Every run shares one cache directory, so the dense MLP-7 pretraining runs once
for the whole module (which also tests the reuse). Invariants are checked
against independent computations: zeros counted in the final checkpoints,
IMP targets and Scratch-B epochs computed by formula, masks compared across
the winning-ticket and random-init runs.
"""

from __future__ import annotations

import glob
import importlib.util
import itertools
import math
import os
import threading
import time

import jax
import ml_collections
import numpy as np
import pytest
from step_helpers import tiny_protocol_config

from jaxprune import io_utils, models, protocols
from jaxprune.analysis import architecture
from jaxprune.protocols import budget, common, prune_retrain
from jaxprune.pruning import rewind as rewind_lib
from jaxprune.results import sweeps
from jaxprune.train import checkpointing

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WIDTH = 32  # MLP-7 hidden width in these tests.


pytestmark = pytest.mark.usefixtures("fast_compiles")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
  return str(tmp_path_factory.mktemp("protocol_cache"))


@pytest.fixture
def base(tiny_fmnist, cache_dir):
  """MLP-7 (width 32), 256 examples, 2 dense epochs of linear LR 0.05."""
  c = tiny_protocol_config(tiny_fmnist, WIDTH, cache_dir)
  c.lock()
  return c


def _final(workdir):
  with checkpointing.Checkpointer(os.path.join(workdir, "checkpoints")) as ckpt:
    return jax.device_get(ckpt.restore("final")[0])


def _kernel_sparsity(params):
  """Zeros over all kernels (every kernel is prunable by default)."""
  kernels = [np.asarray(v["kernel"]) for v in params.values()]
  return sum(int(np.sum(k == 0)) for k in kernels) / sum(k.size for k in kernels)


def _rows(workdir):
  return io_utils.read_jsonl(os.path.join(workdir, "metrics.jsonl"))


def test_imp_reaches_target_in_j_cycles_and_resumes(base, tmp_path, monkeypatch):
  base.protocol = "prune_retrain"
  base.pruning.schedule, base.pruning.imp_cycles = "imp", 2
  base.retrain.schedule = "allr"
  workdir = str(tmp_path / "imp")
  summary = protocols.run(base, workdir)

  # Exponential schedule: per-cycle rate p = 1 - (1 - 0.8)^(1/2).
  p = 1 - 0.2**0.5
  want = [1 - (1 - p), 0.8]
  assert [c["target"] for c in summary["cycles"]] == pytest.approx(want)
  for k, cycle in enumerate(summary["cycles"], start=1):
    got = _kernel_sparsity(_final(f"{workdir}/cycle{k}")["params"])
    assert got == pytest.approx(want[k - 1], abs=1e-3)  # Per-layer rounding.
    assert cycle["pruned_fraction"] == pytest.approx(p, abs=1e-3)
    assert 0 < cycle["relative_norm_change"] < 1
    assert 0 <= cycle["accuracy_before"] <= 1  # Evaluated right after pruning.
    assert (
      io_utils.read_json(f"{workdir}/cycle{k}/config.json")["schedule"]["name"]
      == "allr"
    )
  assert summary["sparsity"] == pytest.approx(0.8, abs=1e-3)
  assert summary["nonzero_params"] < 0.25 * summary["params"]
  assert summary["speedup"] == pytest.approx(5.0, rel=0.01)
  assert summary["total_epochs"] == 2 + 2 * 1
  assert io_utils.read_json(f"{workdir}/summary.json")["status"] == "completed"

  # A finished run returns its summary without training.
  calls = []
  real = common.train_and_evaluate
  monkeypatch.setattr(
    common, "train_and_evaluate", lambda *a, **k: calls.append(a[1]) or real(*a, **k)
  )
  assert protocols.run(base, workdir)["test/accuracy"] == summary["test/accuracy"]
  assert calls == []
  # Killed after cycle 1: only cycle 2 is trained again, to the same result.
  os.remove(f"{workdir}/summary.json")
  before = _final(f"{workdir}/cycle2")["params"]
  import shutil

  shutil.rmtree(f"{workdir}/cycle2")
  again = protocols.run(base, workdir)
  assert calls == [f"{workdir}/cycle2"]
  assert again["sparsity"] == summary["sparsity"]
  after = _final(f"{workdir}/cycle2")["params"]
  jax.tree_util.tree_map(np.testing.assert_array_equal, before, after)


def test_imp_rate_schedule_by_formula(base):
  base.pruning.schedule, base.pruning.imp_rate = "imp", 0.5
  # 20%-style IMP: 1 - 0.5^k until the target, last cycle clipped: 3 cycles.
  assert prune_retrain.cycle_targets(base) == pytest.approx([0.5, 0.75, 0.8])
  n = math.ceil(math.log(1 - 0.8) / math.log(1 - 0.5))
  assert len(prune_retrain.cycle_targets(base)) == n


def test_bimp_total_epochs_equal_budget(base, tmp_path, cache_dir):
  base.protocol = "bimp"
  base.bimp.budget_epochs = 5
  base.pruning.schedule, base.pruning.imp_cycles = "imp", 2
  base.retrain.schedule = "allr"
  workdir = str(tmp_path / "bimp")
  summary = protocols.run(base, workdir)
  epochs = [
    io_utils.read_json(f"{workdir}/cycle{k}/summary.json")["epoch"] for k in (1, 2)
  ]
  assert epochs == [1, 2]  # (5 - 2) // 2, the rest to the last cycle.
  dense = io_utils.read_json(os.path.join(summary["dense_workdir"], "summary.json"))
  assert dense["epoch"] + sum(epochs) == 5 == summary["total_epochs"]
  assert _kernel_sparsity(_final(f"{workdir}/cycle2")["params"]) == pytest.approx(
    0.8, abs=1e-3
  )
  # T0 = 2 epochs of the same linear schedule: the same shared pretraining.
  assert len(glob.glob(os.path.join(cache_dir, "train", "*", "summary.json"))) >= 1
  assert summary["dense_workdir"].startswith(cache_dir)


@pytest.mark.parametrize("mode", ["hard", "soft"])
def test_gmp_reaches_target_with_cubic_schedule(base, tmp_path, mode):
  base.protocol = "gmp"
  base.num_epochs = 3
  base.pruning.schedule, base.pruning.mode = "gmp", mode
  base.pruning.gmp_start, base.pruning.gmp_end = 1, 2
  workdir = str(tmp_path / "gmp")
  summary = protocols.run(base, workdir)
  final = _final(f"{workdir}/train")
  masked = jax.tree_util.tree_map(lambda p, m: p * m, final["params"], final["masks"])
  assert _kernel_sparsity(masked) == pytest.approx(0.8, abs=1e-3)
  assert summary["sparsity"] == pytest.approx(0.8, abs=1e-3)
  logged = {r["epoch"]: r["pruning/sparsity"] for r in _rows(f"{workdir}/train")}
  # s(t) = s_f (1 - (1 - (t - 1) / (2 - 1))^3): 0 after epoch 1, s_f after 2.
  assert logged[1] == 0.0
  assert logged[2] == pytest.approx(0.8, abs=1e-3) and logged[3] == logged[2]
  dense_zeros = _kernel_sparsity(final["params"])
  if mode == "hard":
    assert dense_zeros == pytest.approx(0.8, abs=1e-3)
  else:  # Soft pruning keeps (and trains) the dense weights.
    assert dense_zeros < 0.01


def test_lottery_ticket_and_random_init_share_mask_differ_in_init(base, tmp_path):
  base.protocol = "lottery"
  base.pruning.rewind, base.pruning.rewind_epoch = "epoch", 1
  workdir = str(tmp_path / "lottery")
  summary = protocols.run(base, workdir)
  ticket, control = _final(f"{workdir}/level1"), _final(f"{workdir}/random")
  jax.tree_util.tree_map(
    np.testing.assert_array_equal, ticket["masks"], control["masks"]
  )
  assert summary["sparsity"] == pytest.approx(0.8, abs=1e-3)
  assert "random/test/accuracy" in summary
  # The ticket starts from the dense run's own epoch-1 weights (its latest
  # checkpoints keep epochs 1 and 2), masked; the control from elsewhere.
  with checkpointing.Checkpointer(
    os.path.join(summary["dense_workdir"], "checkpoints")
  ) as ckpt:
    epoch1 = jax.device_get(ckpt.restore("latest", step=256 // 64)[0])
  want = common.sq_norm(
    jax.tree_util.tree_map(lambda p, m: p * m, epoch1["params"], ticket["masks"])
  )
  start_ticket = _rows(f"{workdir}/level1")[0]
  start_random = _rows(f"{workdir}/random")[0]
  assert start_ticket["epoch"] == 0 == start_random["epoch"]
  assert start_ticket["start/sq_norm"] == pytest.approx(want, rel=1e-5)
  assert start_random["start/sq_norm"] != pytest.approx(want, rel=1e-3)
  # Same schedule (the original's last epoch), same data order and seed.
  lrs = [[r["lr"] for r in _rows(f"{workdir}/{d}")[1:]] for d in ("level1", "random")]
  assert lrs[0] == lrs[1]
  cfgs = [
    io_utils.read_json(f"{workdir}/{d}/config.json") for d in ("level1", "random")
  ]
  assert cfgs[0] == cfgs[1]


def _half_units(base, protocol: str) -> None:
  """`protocol` with L1 pruning of half of every hidden layer's units."""
  base.protocol = protocol
  base.pruning.name, base.pruning.criterion = "structured", "l1"
  base.pruning.groups, base.pruning.ratio = "all", 0.5


def test_structured_ticket_shares_widths_with_random_twin(base, tmp_path):
  # L1 filter (here: unit) pruning with surgery, rewound to init (Liu et al.
  # Table 8): the ticket is the kept units' initial weights, the control the
  # same small architecture from a fresh init.
  from jaxprune.pruning import surgery

  _half_units(base, "lottery")
  base.pruning.rewind = "init"
  workdir = str(tmp_path / "slottery")
  summary = protocols.run(base, workdir)
  assert tuple(summary["widths"]) == (WIDTH // 2,) * 6
  ticket, control = _final(f"{workdir}/level1"), _final(f"{workdir}/random")
  shapes = [jax.tree_util.tree_map(np.shape, t["params"]) for t in (ticket, control)]
  assert shapes[0] == shapes[1]
  # Independent: the top-L1 units of every dense hidden layer, sliced out of
  # the seed's initial weights.
  dense = common.Phase(summary["dense_workdir"], {}).final()
  init_params, init_stats = common.init_params(base)
  keep = {
    g.name: structured_top(np.asarray(dense.params[g.producers[0][0]]["kernel"]), 16)
    for g in models.channel_groups("mlp7_relu", 10, widths=(WIDTH,) * 6)
    if g.prunable
  }
  want = common.sq_norm(
    surgery.shrink("mlp7_relu", init_params, init_stats, keep).params
  )
  rows = [_rows(f"{workdir}/{d}")[0] for d in ("level1", "random")]
  assert rows[0]["start/sq_norm"] == pytest.approx(want, rel=1e-5)
  assert rows[1]["start/sq_norm"] != pytest.approx(want, rel=1e-3)
  assert 0 < summary["sparsity"] < 1 and "random/test/accuracy" in summary


def structured_top(kernel, k):
  """Indices of the k output units with the largest L1 norm (sorted)."""
  return np.sort(np.argsort(-np.abs(kernel).sum(0), kind="stable")[:k])


def _mlp_flops(widths, inputs=32 * 32, classes=10):
  sizes = [inputs, *widths, classes]
  return 2 * sum(a * b for a, b in itertools.pairwise(sizes))


def test_scratch_b_epochs_follow_the_flops_ratio(base, tmp_path):
  _half_units(base, "scratch")
  base.scratch.budget = "B"
  workdir = str(tmp_path / "scratch_b")
  summary = protocols.run(base, workdir)
  f1, f2 = _mlp_flops((WIDTH,) * 6), _mlp_flops((WIDTH // 2,) * 6)
  assert (summary["dense_flops"], summary["flops"]) == (f1, f2)
  epochs = int(2 * f1 / f2)  # K1 * F1 / F2, K2 = 0.
  assert summary["scratch_epochs"] == epochs == 4
  assert io_utils.read_json(f"{workdir}/scratch/summary.json")["epoch"] == epochs
  params = _final(f"{workdir}/scratch")["params"]
  hidden = [v["kernel"].shape[-1] for k, v in params.items() if k != "head"]
  assert hidden == [WIDTH // 2] * 6


def test_scratch_e_large_sparse_keeps_the_mask(base, tmp_path):
  base.protocol = "scratch"
  base.scratch.budget = "E"
  workdir = str(tmp_path / "scratch_e")
  summary = protocols.run(base, workdir)
  final = _final(f"{workdir}/scratch")
  assert summary["scratch_epochs"] == 2 == final["step"] // (256 // 64)
  assert _kernel_sparsity(final["params"]) == pytest.approx(0.8, abs=1e-3)
  assert summary["sparsity"] == pytest.approx(0.8, abs=1e-3)


def test_scratch_large_sparse_honours_reinit_rescale(base, tmp_path, monkeypatch):
  # Without BN a 90 %-sparse MLP from a standard init barely passes a signal;
  # pruning.reinit_rescale (1/sqrt(kept fraction) std) is the fix it needs.
  seen = []
  real = rewind_lib.reinitialize
  monkeypatch.setattr(
    rewind_lib,
    "reinitialize",
    lambda *a, **k: seen.append(k["rescale"]) or real(*a, **k),
  )
  base.protocol = "scratch"
  base.scratch.budget = "E"
  base.num_epochs = 1
  for rescale in (False, True):
    base.pruning.reinit_rescale = rescale
    protocols.run(base, str(tmp_path / f"scratch_{rescale}"))
  assert seen == [False, True]


def test_guided_and_uniform_architectures():
  w = models.ResNetWidths((16, 32, 64), ((10, 12, 14), (20, 21, 22), (40, 50, 60)))
  got = architecture.guided_widths("resnet20", w)
  assert got == models.ResNetWidths((16, 32, 64), ((12,) * 3, (21,) * 3, (50,) * 3))
  assert architecture.guided_widths("mlp7_relu", (10, 20, 30, 40, 50, 60)) == (35,) * 6
  assert budget.scratch_b_epochs(160, 4.0, 1.0, max_speedup=2) == 320


def test_prune_epoch_pkfn(base, tmp_path):
  base.protocol = "prune_epoch"
  base.num_epochs = 3
  base.schedule = ml_collections.ConfigDict(
    dict(name="piecewise", spec="0:0.05,2:0.005", epochs=3)
  )
  base.prune_epoch.setup, base.prune_epoch.epoch = "pkfn", 1
  workdir = str(tmp_path / "p1f2")
  summary = protocols.run(base, workdir)
  assert summary["total_epochs"] == 3 and summary["prune_epoch"] == 1
  assert summary["setup"].startswith("S4.2 P1F2")
  pre = io_utils.read_json(os.path.join(summary["dense_workdir"], "summary.json"))
  assert pre["epoch"] == 1 and pre["lr"] == pytest.approx(0.05)
  # Fine-tuning continues S: epoch 2 of S at 0.05, epoch 3 at 0.005.
  lrs = [r["lr"] for r in _rows(f"{workdir}/finetune") if r["epoch"] > 0]
  assert lrs == pytest.approx([0.05, 0.005])
  assert _kernel_sparsity(_final(f"{workdir}/finetune")["params"]) == pytest.approx(
    0.8, abs=1e-3
  )
  # SX-B squeezes the pretraining by the counted speedup (80% unstructured: 5x).
  base.prune_epoch.setup, base.prune_epoch.epoch = "sx_b", 1
  base.prune_epoch.finetune_lr = 0.05
  from jaxprune.protocols import prune_epoch

  proto = prune_epoch.epoch_protocol(base)
  assert prune_epoch.init_speedup(base) == pytest.approx(5.0, rel=0.01)
  assert proto.prune_epoch == max(1, round(1 / 5.0)) == 1
  assert proto.finetune.spec == "0:0.05,1:0.005"


def test_sweep_rows_carry_counts_and_share_the_pretraining(base, tmp_path):
  base.protocol = "prune_retrain"
  base.cache_dir = None  # Default: <sweep>/cache.
  base.retrain.schedule = "ft"
  sweep = [{"pruning.sparsity": 0.5}, {"pruning.sparsity": 0.9}]
  rows = sweeps.run_sweep(base, sweep, str(tmp_path / "sweep"))
  # Grouped (the default): rows are appended as each point finishes.
  rows = sorted(rows, key=lambda r: r["overrides"]["pruning.sparsity"])
  assert [r["sparsity"] for r in rows] == pytest.approx([0.5, 0.9], abs=1e-3)
  for r in rows:
    for key in ("params", "nonzero_params", "flops", "nonzero_flops", "speedup"):
      assert key in r
    assert "test/accuracy" in r["metrics"]
  pretrainings = glob.glob(
    str(tmp_path / "sweep" / "cache" / "train" / "*" / "summary.json")
  )
  assert len(pretrainings) == 1


def _tiny_resnet20(base, protocol: str, epochs: int) -> None:
  """ResNet-20 with widths 8/8/16 on 128 1-channel 8x8 images."""
  base.protocol = protocol
  base.model.name, base.model.init = "resnet20", "default"
  base.model.widths = models.ResNetWidths((8, 8, 16), ((8,) * 3, (8,) * 3, (16,) * 3))
  base.data.image_size = (8, 8)
  base.data.train_limit = 128
  base.num_epochs = epochs


def test_slimming_resnet20(base, tmp_path):
  # 1-channel 8x8 images: surgery must check shapes at the data's input shape.
  _tiny_resnet20(base, "slimming", 1)
  base.pruning.name, base.pruning.criterion = "structured", "bn_scale"
  base.pruning.group_allocation, base.pruning.groups = "global", "inner"
  base.pruning.ratio, base.pruning.slimming_strength = 0.5, 1e-3
  base.retrain.schedule, base.retrain.lr = "constant", 0.01
  workdir = str(tmp_path / "slim")
  summary = protocols.run(base, workdir)
  widths = summary["widths"]["blocks"]
  inner = sum(sum(b) for b in widths)
  assert inner == (3 * 8 + 3 * 8 + 3 * 16) - int(0.5 * (3 * 8 + 3 * 8 + 3 * 16))
  assert summary["sparsity"] == pytest.approx(
    1 - summary["params"] / summary["dense_params"]
  )
  dense_cfg = io_utils.read_json(os.path.join(summary["dense_workdir"], "config.json"))
  assert dense_cfg["pruning"]["slimming_strength"] == 1e-3  # In the cache key.
  assert dense_cfg["protocol"] == "train"


@pytest.mark.parametrize(
  "protocol, field, value, message",
  [
    ("prune_retrain", "pruning.name", "none", "pruning.name must be one of"),
    ("prune_retrain", "retrain.schedule", "exotic", "retrain.schedule must be one of"),
    ("prune_retrain", "pruning.schedule", "gmp", "pruning.schedule must be one of"),
    ("bimp", "bimp.budget_epochs", 2, "bimp.budget_epochs must be >"),
    ("prune_retrain", "retrain.min_lr", 1e-4, "retrain.min_lr is only for"),
    ("prune_retrain", "retrain.cycle_momentum", True, "needs retrain.schedule 'clr'"),
    ("prune_retrain", "retrain.allr_norm_params", "bias", "allr_norm_params must be"),
    ("gmp", "pruning.schedule", "one_shot", "pruning.schedule must be one of"),
    ("lottery", "pruning.rewind", "none", "pruning.rewind must be one of"),
    ("scratch", "scratch.budget", "C", "scratch.budget must be one of"),
    ("prune_epoch", "prune_epoch.setup", "sx_c", "prune_epoch.setup must be one of"),
    ("sfp", "pruning.name", "unstructured", "pruning.name must be one of"),
    ("sfp", "pruning.criterion", "hrank", "pruning.criterion must be one of"),
  ],
)
def test_invalid_fields_are_named(base, protocol, field, value, message):
  base.protocol = protocol
  base.pruning.schedule = "gmp" if protocol == "gmp" else "one_shot"
  base.pruning.gmp_start, base.pruning.gmp_end = 1, 2
  parent, _, leaf = field.rpartition(".")
  base[parent][leaf] = value
  with pytest.raises(ValueError, match=message):
    common.validate(base)


def test_file_lock_serialises_producers(tmp_path):
  path = str(tmp_path / "x.lock")
  order = []

  def second():
    with io_utils.file_lock(path):
      order.append("second")

  with io_utils.file_lock(path):
    t = threading.Thread(target=second)
    t.start()
    time.sleep(0.2)
    order.append("first")
  t.join()
  assert order == ["first", "second"]


def test_cache_key_ignores_protocol_fields(base):
  other = ml_collections.ConfigDict(base.to_dict())
  other.protocol = "lottery"
  other.pruning.sparsity = 0.3
  other.retrain.num_epochs = 7
  from jaxprune import config_utils

  key = config_utils.config_hash
  assert key(common.training_config(base)) == key(common.training_config(other))
  other.optimizer.momentum = 0.5
  assert key(common.training_config(base)) != key(common.training_config(other))


@pytest.mark.parametrize(
  "path",
  sorted(
    p
    for p in glob.glob(os.path.join(ROOT, "configs", "protocols", "*.py"))
    if not p.endswith("__init__.py")
  ),
  ids=os.path.basename,
)
def test_protocol_configs_build_and_validate(path):
  spec = importlib.util.spec_from_file_location("cfg", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  assert "python -m jaxprune.main" in module.__doc__ and "Expected" in module.__doc__
  for arg in (None, "smoke"):
    config = module.get_config(arg)
    config.lock()
    common.validate(config)
  assert module.get_config("smoke").num_epochs <= 2


def test_pruned_state_is_cached_across_retraining_fields(base, tmp_path, monkeypatch):
  base.protocol = "prune_retrain"
  base.cache_dir = None  # Default: <sweep>/cache.
  calls = []
  real = prune_retrain.prune_once
  monkeypatch.setattr(
    prune_retrain,
    "prune_once",
    lambda *a, **k: calls.append(k["cycle"]) or real(*a, **k),
  )
  sweep = [{"retrain.schedule": "ft"}, {"retrain.schedule": "clr"}]
  rows = sweeps.run_sweep(base, sweep, str(tmp_path / "sweep"))
  assert calls == [1]  # Pruned once, loaded by the second point.
  runs = [str(tmp_path / "sweep" / "runs" / r["config_hash"]) for r in rows]
  first = [_final(f"{run}/cycle1")["masks"] for run in runs]
  jax.tree_util.tree_map(np.testing.assert_array_equal, *first)
  assert rows[0]["sparsity"] == rows[1]["sparsity"]
  stored = glob.glob(str(tmp_path / "sweep" / "cache" / "pruned" / "*" / "meta.json"))
  assert len(stored) == 1
  # The pruning fields are in the key: another sparsity prunes again.
  sweeps.run_sweep(base, [{"pruning.sparsity": 0.5}], str(tmp_path / "sweep"))
  assert calls == [1, 1]


def test_data_criteria_score_on_training_batches(base, tmp_path):
  # Structured Fisher on MLP-7 through prune_retrain: the kept units are the
  # top Fisher scores of the dense weights over `score_batches` batches.
  from jaxprune.protocols import scoring
  from jaxprune.pruning import structured

  base.protocol = "prune_retrain"
  base.pruning.name, base.pruning.criterion = "structured", "fisher"
  base.pruning.groups, base.pruning.ratio, base.pruning.score_batches = "all", 0.5, 2
  base.retrain.schedule = "ft"
  summary = protocols.run(base, str(tmp_path / "fisher"))
  dense = common.Phase(summary["dense_workdir"], {}).final()
  scores = scoring.pruning_inputs(base, dense)["channel_scores"]
  assert tuple(summary["widths"]) == (WIDTH // 2,) * 6
  pruned = prune_retrain.prune_once(base, dense, cycle=1, cumulative=0.5, previous=0.0)
  groups = models.channel_groups("mlp7_relu", 10, widths=(WIDTH,) * 6)
  first = next(g for g in groups if g.producers == (("fc0",),))
  want = structured.top_indices(scores[first.name], WIDTH // 2)
  np.testing.assert_array_equal(
    pruned.start.params["fc0"]["kernel"], dense.params["fc0"]["kernel"][:, want]
  )
  # Unstructured SNIP-style saliency |w * g| also runs end to end.
  base.pruning.name, base.pruning.criterion = "unstructured", "saliency"
  base.pruning.sparsity = 0.8
  summary = protocols.run(base, str(tmp_path / "snip"))
  assert summary["sparsity"] == pytest.approx(0.8, abs=1e-3)


def test_acc_allr_uses_train_accuracy_before_and_after(base, tmp_path, monkeypatch):
  from jaxprune.data import pipeline
  from jaxprune.pruning import masks as masks_lib
  from jaxprune.schedules import retraining

  base.protocol = "prune_retrain"
  base.retrain.schedule = "acc_allr"
  seen = []
  real = common.train_and_evaluate
  monkeypatch.setattr(
    common,
    "train_and_evaluate",
    lambda *a, **k: seen.append(k["schedule"].keywords["stats"]) or real(*a, **k),
  )
  summary = protocols.run(base, str(tmp_path / "acc"))
  cycle = summary["cycles"][0]
  stats = seen[-1]
  assert stats.train_accuracy_before == cycle["train_accuracy_before"]
  assert stats.train_accuracy_after == cycle["train_accuracy_after"]
  # Independent: plain argmax accuracy of the dense and pruned nets on all
  # training examples.
  data = pipeline.load(base.data)
  model = models.create(
    "mlp7_relu", 10, **{"init": "orthogonal", "widths": (WIDTH,) * 6}
  )
  x = data.preprocess(data.train.images, jax.random.PRNGKey(0), train=False)

  def acc(params):
    logits = model.apply({"params": params}, x, train=False)
    return float(np.mean(np.argmax(logits, -1) == data.train.labels))

  dense = common.Phase(summary["dense_workdir"], {}).final()
  assert stats.train_accuracy_before == pytest.approx(acc(dense.params), abs=1e-6)
  pruned = prune_retrain.prune_once(base, dense, cycle=1, cumulative=0.8, previous=0.0)
  after = acc(masks_lib.apply(pruned.start.params, pruned.start.masks))
  assert stats.train_accuracy_after == pytest.approx(after, abs=1e-6)
  assert after < stats.train_accuracy_before
  d = (stats.train_accuracy_before - after) / stats.train_accuracy_before
  eta0 = retraining.allr_initial_lr(0.05, 1, 2, stats, "acc_allr")
  assert eta0 == pytest.approx(0.05 * min(max(d, 0.5), 1.0), rel=1e-5)


def test_sfp_zeroes_exact_counts_every_epoch_and_filters_regrow(base, tmp_path):
  from jaxprune.pruning import structured

  _tiny_resnet20(base, "sfp", 3)
  base.pruning.name, base.pruning.criterion = "structured", "l2"
  base.pruning.groups, base.pruning.ratio = "inner", 0.4
  base.retrain.num_epochs = 0
  summary = protocols.run(base, str(tmp_path / "sfp"))
  sizes = [8] * 3 + [8] * 3 + [16] * 3
  want = sum(n - structured.keep_count(n, 0.4, "keep_floor") for n in sizes)
  events = summary["soft_events"]
  assert [e["epoch"] for e in events] == [1, 2, 3]
  assert all(e["zeroed"] == want for e in events)
  assert events[0]["regrown"] == 0 and sum(e["regrown"] for e in events[1:]) > 0
  # The final model: the kept widths, exactly the soft-pruned net's accuracy.
  kept = [structured.keep_count(n, 0.4, "keep_floor") for n in sizes]
  assert [w for stage in summary["widths"]["blocks"] for w in stage] == kept
  # Whole channels are zeroed (BN too), so the soft-pruned net computes exactly
  # what the small-dense net of the final hard prune computes.
  state = _final(summary["train_workdir"])
  final = state["params"]
  small = models.ResNetWidths(
    (8, 8, 16), tuple(tuple(kept[3 * s : 3 * s + 3]) for s in range(3))
  )
  x = jax.random.normal(jax.random.PRNGKey(0), (4, 8, 8, 1))
  big_out = models.create("resnet20", 10, widths=base.model.widths).apply(
    {"params": final, "batch_stats": state["batch_stats"]}, x, train=False
  )
  from jaxprune.pruning import surgery

  keep = structured.keep_from_masks(
    models.channel_groups("resnet20", 10, widths=base.model.widths), final
  )
  keep = {k: v for k, v in keep.items() if k.endswith("inner")}
  sd = surgery.shrink(
    "resnet20", final, state["batch_stats"], keep, input_shape=(8, 8, 1)
  )
  assert sd.widths == small
  small_out = models.create("resnet20", 10, widths=small).apply(
    {"params": sd.params, "batch_stats": sd.batch_stats}, x, train=False
  )
  np.testing.assert_allclose(small_out, big_out, rtol=1e-4, atol=1e-5)
  zero_filters = sum(
    int(np.sum(~np.any(final[f"stage{s}_block{b}"]["conv1"]["kernel"], (0, 1, 2))))
    for s in range(3)
    for b in range(3)
  )
  assert zero_filters == want


def test_structured_imp_follows_stage_ratios_over_cycles(base, tmp_path):
  # Le & Hua Figs. 4-5: iterative L1 filter pruning towards per-stage ratios,
  # surgery every cycle; the same fraction of the remaining filters per cycle.
  _tiny_resnet20(base, "prune_retrain", 1)
  base.pruning.name, base.pruning.criterion = "structured", "l1"
  base.pruning.groups, base.pruning.stage_ratios = "inner", (0.5, 0.25, 0.75)
  base.pruning.schedule, base.pruning.imp_cycles = "imp", 2
  base.retrain.schedule = "ft"
  summary = protocols.run(base, str(tmp_path / "simp"))
  dense = (8, 8, 16)
  final = [int(n * (1 - r)) for n, r in zip(dense, (0.5, 0.25, 0.75))]  # keep_floor
  halfway = [round(n * (k / n) ** 0.5) for n, k in zip(dense, final)]
  got = summary["widths"]["blocks"]
  assert [list(b) for b in got] == [[k] * 3 for k in final]
  cycle1 = _final(str(tmp_path / "simp" / "cycle1"))["params"]
  inner = [
    [cycle1[f"stage{s}_block{b}"]["conv1"]["kernel"].shape[-1] for b in range(3)]
    for s in range(3)
  ]
  assert inner == [[k] * 3 for k in halfway]
  assert [c["target"] for c in summary["cycles"]] == [0.5, 1.0]


def test_repeated_presets_prune_their_ratios_every_cycle(base):
  # NPTM's ResNet-56-I: 0.1 / 0.15 / 0.2 of the *current* filters per cycle.
  base.model.name = "resnet56"
  with base.unlocked():
    del base.model["widths"]  # The standard widths.
  base.pruning.name, base.pruning.criterion = "structured", "l1"
  base.pruning.preset, base.pruning.schedule, base.pruning.imp_cycles = (
    "resnet56_i",
    "imp",
    3,
  )
  prune_retrain.validate_pruning(base, ("one_shot", "imp"))
  from jaxprune import pruning

  dense = models.channel_groups("resnet56", 10)
  want = {16: 16, 32: 32, 64: 64}
  ratio = {16: 0.1, 32: 0.15, 64: 0.2}
  for cycle in (1, 2, 3):
    want = {n: int(k * (1 - ratio[n])) for n, k in want.items()}
    counts = pruning.imp_keep_counts(base.pruning, dense, cycle)
    assert len(counts) == 27  # Every block's first conv (no skip list).
    for name, k in counts.items():
      stage = int(name[len("stage")])
      assert k == want[(16, 32, 64)[stage]]


def test_scratch_and_lottery_score_data_criteria(base, tmp_path):
  # The data pass also feeds the protocols that prune without retraining.
  _half_units(base, "scratch")
  base.pruning.criterion, base.pruning.score_batches = "hrank", 1
  base.scratch.source = "uniform"
  summary = protocols.run(base, str(tmp_path / "scratch_hrank"))
  assert tuple(summary["widths"]) == (WIDTH // 2,) * 6
  base.protocol, base.pruning.name = "lottery", "unstructured"
  base.pruning.criterion, base.pruning.rewind = "saliency", "init"
  summary = protocols.run(base, str(tmp_path / "lottery_snip"))
  assert summary["sparsity"] == pytest.approx(0.8, abs=1e-3)
