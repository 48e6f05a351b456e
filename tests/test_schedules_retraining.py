"""Retraining variants against values worked out by hand from the papers.

Setting (Le & Hua 2021 Fig. 1): base "0:0.1,80:0.01,120:0.001" over 160
epochs, 72 retraining epochs; 10 steps per epoch, so T = 720 retraining steps
and the base has 1600 steps. eta_max = 0.1, eta_min = 0.001.
"""

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxprune import schedules
from jaxprune.schedules import PruningStats

SPE = 10
BASE = dict(name="piecewise", spec="0:0.1,80:0.01,120:0.001", epochs=160)


def retrain(name, epochs=72, pruning=None, **kw):
  config = ml_collections.ConfigDict(
    dict(name=name, base=BASE, retrain_epochs=epochs, **kw)
  )
  return schedules.create(config, SPE, pruning)


def curve(schedule, steps=720):
  return np.asarray(jax.jit(jax.vmap(schedule))(jnp.arange(steps)))


@pytest.mark.parametrize("flavor", ["zimmer2023", "le2021"])
def test_ft_is_last_lr_throughout(flavor):
  np.testing.assert_allclose(curve(retrain("ft", flavor=flavor)), 0.001, rtol=1e-6)


@pytest.mark.parametrize("flavor", ["zimmer2023", "le2021"])
def test_lrw_replays_last_72_epochs(flavor):
  # Epochs 88..159 of the base: 88..119 at 0.01 (32 epochs), then 0.001.
  lrs = curve(retrain("lrw", flavor=flavor))
  np.testing.assert_allclose(lrs[:320], 0.01, rtol=1e-6)
  np.testing.assert_allclose(lrs[320:], 0.001, rtol=1e-6)


def test_slr_zimmer_warmup_then_compressed_base():
  lrs = curve(retrain("slr"))
  # Warm-up: int(0.1 * 720) = 72 steps, cosine from 0; half way (36) = 0.05.
  assert lrs[0] == 0.0 and lrs[36] == pytest.approx(0.05, rel=1e-5)
  assert lrs.max() == pytest.approx(0.1) and lrs[72] == pytest.approx(0.1)
  # Remaining 648 steps: base index j * 1600 // 648 reaches 800 (epoch 80)
  # at j = 324 (step 396) and 1200 at j = 486 (step 558).
  np.testing.assert_allclose(
    lrs[[395, 396, 557, 558, 719]], [0.1, 0.01, 0.01, 0.001, 0.001], rtol=1e-6
  )


def test_slr_le2021_epochwise_drops():
  lrs = curve(retrain("slr", flavor="le2021"))[::SPE]  # constant within epochs
  # W = int(0.1 * 72) = 7 warm-up epochs, cosine 0.001 -> 0.1 (NPTM WarmupLR):
  # e = 3: 0.1 + (0.001 - 0.1) * (1 + cos(3 pi / 7)) / 2 = 0.0394852.
  assert lrs[0] == pytest.approx(0.001)
  assert lrs[3] == pytest.approx(
    0.1 - 0.099 * (1 + math.cos(3 * math.pi / 7)) / 2, rel=1e-5
  )
  # Drops at W + int(0.45 * 72) = 39 and W + int(0.675 * 72) = 55.
  np.testing.assert_allclose(
    lrs[[7, 38, 39, 54, 55, 71]], [0.1, 0.1, 0.01, 0.01, 0.001, 0.001], rtol=1e-6
  )


def test_slr_le2021_nptm_example_40_epochs():
  # docs/provenance.md F6: E = 40 -> 0.1 for e = 4..21, 0.01 for 22..30, 0.001 for 31..39.
  lrs = curve(retrain("slr", epochs=40, flavor="le2021"), 400)[::SPE]
  np.testing.assert_allclose(lrs[4:22], 0.1, rtol=1e-6)
  np.testing.assert_allclose(lrs[22:31], 0.01, rtol=1e-6)
  np.testing.assert_allclose(lrs[31:], 0.001, rtol=1e-6)


def test_clr_zimmer_cosine_to_eta_min():
  lrs = curve(retrain("clr"))
  assert int(np.argmax(lrs)) == 72 and lrs[72] == pytest.approx(0.1)
  assert lrs[-1] == pytest.approx(0.001, rel=1e-5)
  assert np.all(np.diff(lrs[72:]) <= 0)


def test_clr_le2021_is_onecycle():
  # OneCycleLR(max 0.1, div 100, final div 100, pct 0.1), T = 720: peak at
  # step 0.1 * 720 - 1 = 71, start 0.001, end 1e-5.
  lrs = curve(retrain("clr", flavor="le2021"))
  assert int(np.argmax(lrs)) == 71 and lrs[71] == pytest.approx(0.1)
  assert lrs[0] == pytest.approx(0.001, rel=1e-4) and lrs[-1] == pytest.approx(
    1e-5, rel=1e-4
  )


def test_llr_reaches_zero_at_last_step():
  lrs = curve(retrain("llr"))
  assert lrs[72] == pytest.approx(0.1) and lrs[-1] == 0.0
  np.testing.assert_allclose(np.diff(lrs[72:]), -0.1 / 647, rtol=1e-3)


@pytest.mark.parametrize(
  ("name", "stats", "eta0"),
  [
    # d1 = 0.6 / sqrt(0.9) = 0.632456 > d2 = 72 / 160 = 0.45.
    ("allr", PruningStats(0.6, 0.9), 0.0632456),
    # d1 = 0.3 / sqrt(0.9) = 0.316228 < d2 = 0.45.
    ("allr", dict(relative_norm_change=0.3, sparsity=0.9), 0.045),
    # d1 = 1 / sqrt(0.25) = 2 -> clipped to 1.
    ("allr", PruningStats(1.0, 0.25), 0.1),
    ("allr_d1", PruningStats(0.3, 0.9), 0.0316228),
    ("allr_d2", PruningStats(0.6, 0.9), 0.045),
    # AccALLR: d1 = (0.95 - 0.38) / 0.95 = 0.6 > 0.45.
    ("acc_allr", PruningStats(0.0, 0.9, 0.95, 0.38), 0.06),
    # Accuracy went up: d1 clipped to 0, d = d2.
    ("acc_allr", PruningStats(0.0, 0.9, 0.90, 0.91), 0.045),
  ],
)
def test_allr_initial_lr(name, stats, eta0):
  lrs = curve(retrain(name, pruning=stats))
  assert lrs[72] == pytest.approx(eta0, rel=1e-5)  # first LR after the warm-up
  assert lrs.max() == pytest.approx(eta0, rel=1e-5) and lrs[-1] == 0.0


def test_allr_with_traced_stats_under_jit():
  config = ml_collections.ConfigDict(dict(name="allr", base=BASE, retrain_epochs=72))

  @jax.jit
  def first_lr(change, sparsity):
    return schedules.create(config, SPE, PruningStats(change, sparsity))(72)

  assert float(first_lr(0.6, 0.9)) == pytest.approx(0.0632456, rel=1e-5)


def test_tuned_baselines():
  np.testing.assert_allclose(curve(retrain("constant", lr=0.05)), 0.05, rtol=1e-6)
  # Stepped (BAC) at 0.05, no warm-up: base compressed into 720 steps, the
  # drop to 0.005 at j * 1600 // 720 >= 800, i.e. step 360.
  step = curve(retrain("step", lr=0.05))
  np.testing.assert_allclose(
    step[[0, 359, 360, 540, 719]], [0.05, 0.05, 0.005, 0.0005, 0.0005], rtol=1e-5
  )
  cos = curve(retrain("cosine", lr=0.05, warmup_fraction=0.1))
  assert cos[72] == pytest.approx(0.05) and cos[-1] == pytest.approx(0.0, abs=1e-8)
  lin = curve(retrain("linear", lr=0.05))
  assert lin[0] == pytest.approx(0.05) and lin[-1] == 0.0


def test_cyclic_allr_restarts_each_cycle_with_its_own_stats():
  config = ml_collections.ConfigDict(dict(name="allr", base=BASE, retrain_epochs=100))
  stats = [PruningStats(0.3, 0.5), PruningStats(0.2, 0.5), PruningStats(0.1, 0.5)]
  f, epochs = schedules.cyclic(config, SPE, stats)
  assert epochs == [33, 33, 34]  # BIMP: 100 // 3, remainder to the last cycle
  lrs = curve(f, 1000)
  # Cycle starts at steps 0, 330, 660; warm-ups int(0.1 * 330) = 33 and 34 steps.
  # d1 = 0.3/sqrt(.5) = 0.424264, 0.2/sqrt(.5) = 0.282843, 0.1/sqrt(.5) = 0.141421;
  # d2 = 33/160 = 0.20625 and 34/160 = 0.2125 for the last cycle.
  np.testing.assert_allclose(
    lrs[[33, 363, 694]], [0.0424264, 0.0282843, 0.02125], rtol=1e-5
  )
  assert lrs[330] == 0.0 and lrs[660] == 0.0 and lrs[999] == 0.0


ALL_RETRAINING = [
  ("ft", {}),
  ("lrw", {}),
  ("slr", {}),
  ("slr", {"flavor": "le2021"}),
  ("clr", {}),
  ("clr", {"flavor": "le2021"}),
  ("llr", {}),
  ("allr", {}),
  ("step", {"lr": 0.05}),
]


@pytest.mark.parametrize(("name", "kw"), ALL_RETRAINING)
def test_retraining_jit_and_monotone_after_peak(name, kw):
  f = retrain(name, epochs=20, pruning=PruningStats(0.5, 0.8), **kw)
  lrs = np.asarray(jax.jit(jax.vmap(f))(jnp.arange(200)))
  np.testing.assert_allclose(
    [float(f(s)) for s in (0, 57, 199)], lrs[[0, 57, 199]], rtol=1e-6
  )
  peak = int(np.argmax(lrs))
  assert np.all(np.diff(lrs[: peak + 1]) >= -1e-9)
  assert np.all(np.diff(lrs[peak:]) <= 1e-9)


@pytest.mark.parametrize(
  ("kw", "pruning", "message"),
  [
    (dict(name="allr"), None, "needs the pruning stats"),
    (dict(name="allr"), PruningStats(0.3, 0.0), "sparsity must be in (0, 1]"),
    (dict(name="acc_allr"), PruningStats(0.3, 0.5), "train_accuracy_before"),
    (dict(name="lrw", retrain_epochs=200), None, "must be <= schedule.base.epochs=160"),
    (dict(name="llr", retrain_epochs=-3), None, "retrain_epochs must be > 0"),
    (dict(name="llr", flavor="nptm"), None, "flavor must be one of"),
    (dict(name="llr", base=dict(name="bogus")), None, "schedule.base.name must be"),
    (
      dict(name="constant", lr=0.1, base=BASE, retrain_epochs=10, bogus=1),
      None,
      "unknown field",
    ),
    (
      dict(name="slr", flavor="le2021", base=dict(name="cosine", lr=0.1, epochs=100)),
      None,
      "needs a step-wise base",
    ),
  ],
)
def test_invalid_retraining_configs(kw, pruning, message):
  config = ml_collections.ConfigDict(dict(dict(base=BASE, retrain_epochs=72), **kw))
  with pytest.raises(ValueError) as err:
    schedules.create(config, SPE, pruning)
  assert message in str(err.value)


def test_validate_accepts_allr_without_stats():
  # Validation runs before any pruning, so ALLR's stats cannot exist yet; the
  # schedule itself still refuses to be built without them.
  config = ml_collections.ConfigDict(dict(name="allr", base=BASE, retrain_epochs=72))
  schedules.validate(config)
  with pytest.raises(ValueError, match=r"schedule\.name='allr' needs the pruning"):
    schedules.create(config, SPE, None)
  # Leniency is only about the stats: the other fields are still checked.
  config.retrain_epochs = -1
  with pytest.raises(ValueError, match="retrain_epochs"):
    schedules.validate(config)


def test_le2021_zero_warmup_means_no_warmup():
  """Le & Hua App. F: "Figure 8 presents the results of pruned networks obtained
  with fine-tuning and CLR while varying number of warmup epochs namely 0, 5, 10,
  15% of total retraining." The 0 % point must not be the 10 % one; None keeps
  the default (10 %)."""
  zero = curve(retrain("clr", flavor="le2021", warmup_fraction=0.0))
  # PyTorch OneCycleLR(pct_start=0): phase 2 starts at step -1, so
  # lr_t = 1e-5 + (0.1 - 1e-5) / 2 * (1 + cos(pi * (t + 1) / 720)).
  t = np.arange(720)
  want = 1e-5 + (0.1 - 1e-5) / 2 * (1 + np.cos(np.pi * (t + 1) / 720))
  np.testing.assert_allclose(zero, want, rtol=1e-4)
  default = curve(retrain("clr", flavor="le2021", warmup_fraction=None))
  np.testing.assert_array_equal(default, curve(retrain("clr", flavor="le2021")))
  assert int(np.argmax(default)) == 71
  # NPTM-style SLR without warm-up: 0.1 at once, drops at 50 % / 75 % of 72.
  slr = curve(retrain("slr", flavor="le2021", warmup_fraction=0.0))
  assert slr[0] == pytest.approx(0.1) and slr[36 * SPE - 1] == pytest.approx(0.1)
  assert slr[36 * SPE] == pytest.approx(0.01) and slr[54 * SPE] == pytest.approx(1e-3)
