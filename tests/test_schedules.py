"""Training schedules: values worked out by hand, jit, monotonicity, errors."""

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxprune import schedules
from jaxprune.schedules import training


def cfg(**kw):
  return ml_collections.ConfigDict(kw)


def values(schedule, steps):
  return np.asarray(jax.jit(jax.vmap(schedule))(jnp.asarray(steps)))


def test_piecewise_is_constant_within_epochs_and_uses_last_key():
  # Training-loop usage: epochs is a FieldReference to num_epochs.
  config = cfg(num_epochs=90)
  config.schedule = cfg(name="piecewise", spec="0:0.01,30:0.001,60:0.0001")
  config.schedule.epochs = config.get_ref("num_epochs")
  f = schedules.create(config.schedule, steps_per_epoch=10)
  # epoch = step // 10: step 299 is epoch 29 (0.01), step 300 epoch 30 (0.001).
  got = [float(f(s)) for s in (0, 299, 300, 599, 600, 899, 5000)]
  np.testing.assert_allclose(
    got, [0.01, 0.01, 0.001, 0.001, 1e-4, 1e-4, 1e-4], rtol=1e-6
  )


def test_step_equals_the_papers_piecewise_spec():
  # lr 0.1, x0.1 at 80 and 120 == "0:0.1,80:0.01,120:0.001" (Le & Hua base).
  step = schedules.create(cfg(name="step", lr=0.1, epochs=160, milestones=[80, 120]), 3)
  spec = schedules.create(
    cfg(name="piecewise", spec="0:0.1,80:0.01,120:0.001", epochs=160), 3
  )
  steps = np.arange(0, 480, 7)
  np.testing.assert_allclose(values(step, steps), values(spec, steps), rtol=1e-6)
  assert float(step(3 * 80 - 1)) == pytest.approx(0.1)
  assert float(step(3 * 80)) == pytest.approx(0.01)


def test_constant():
  f = schedules.create(cfg(name="constant", lr=0.001), 5)
  assert float(f(0)) == float(f(10**6)) == pytest.approx(0.001)


@pytest.mark.parametrize(
  ("lr", "final", "epochs", "cap", "expected"),
  [
    # Wang et al. 2023 App. A: P30F90 @1e-1 -> 45 capped to 30, 30, 15, ceil(7.5)=8, 7.
    (1e-1, 1e-5, 90, 30, "0:0.1,30:0.01,60:0.001,75:0.0001,83:1e-05"),
    # P60F60 @1e-2 -> 30, 15, 8, 7.
    (1e-2, 1e-5, 60, 30, "0:0.01,30:0.001,45:0.0001,53:1e-05"),
    # Dynamical Isometry Table 2, initial LR 0.01: thirds of 90 / 900 epochs
    # are exactly the halving rule capped at 30 / 300 epochs per stage.
    (1e-2, 1e-4, 90, 30, "0:0.01,30:0.001,60:0.0001"),
    (1e-2, 1e-4, 900, 300, "0:0.01,300:0.001,600:0.0001"),
    # DI Table 2, initial LR 0.001, same last LR 1e-4 (the paper's rule (2)):
    # halves of 90 / 900 epochs. (The extracted table text reads
    # "0:0.001,45:0.001", which contradicts that rule; see the report.)
    (1e-3, 1e-4, 90, None, "0:0.001,45:0.0001"),
    (1e-3, 1e-4, 900, None, "0:0.001,450:0.0001"),
  ],
)
def test_halving_rule(lr, final, epochs, cap, expected):
  assert (
    schedules.format_spec(*schedules.halving_spec(lr, final, epochs, cap)) == expected
  )
  f = schedules.create(
    cfg(name="halving", lr=lr, final_lr=final, epochs=epochs, max_stage_epochs=cap), 1
  )
  ref = schedules.create(cfg(name="piecewise", spec=expected, epochs=epochs), 1)
  np.testing.assert_allclose(
    values(f, np.arange(epochs)), values(ref, np.arange(epochs))
  )


def test_dynamical_isometry_table2_specs_parse():
  # Table 2: "90 epochs, 0:0.01,30:0.001,60:0.0001" etc.
  for spec, epochs in [
    ("0:0.01,30:0.001,60:0.0001", 90),
    ("0:0.01,300:0.001,600:0.0001", 900),
  ]:
    f = schedules.create(cfg(name="piecewise", spec=spec, epochs=epochs), 1)
    np.testing.assert_allclose(
      [
        float(f(e))
        for e in (0, epochs // 3 - 1, epochs // 3, 2 * epochs // 3, epochs - 1)
      ],
      [0.01, 0.01, 0.001, 0.0001, 0.0001],
      rtol=1e-6,
    )


def test_cosine_and_linear_per_step_values():
  # 1 epoch of 101 steps: progress = step / 100 (the last step, 100, ends the decay).
  cos = schedules.create(cfg(name="cosine", lr=0.1, min_lr=0.01, epochs=1), 101)
  # step 25: 0.1 - 0.09 * (1 - cos(pi/4)) / 2 = 0.0868198
  expected25 = 0.1 - 0.09 * (1 - math.cos(math.pi / 4)) / 2
  np.testing.assert_allclose(
    [float(cos(s)) for s in (0, 25, 50, 100, 150)],
    [0.1, expected25, 0.055, 0.01, 0.01],
    rtol=1e-5,
  )
  lin = schedules.create(cfg(name="linear", lr=0.1, epochs=1), 101)
  np.testing.assert_allclose(
    [float(lin(s)) for s in (0, 50, 100)], [0.1, 0.05, 0.0], atol=1e-7
  )


def test_warmups_linear_and_cosine():
  base = dict(name="piecewise", spec="0:0.1,5:0.01", epochs=10, warmup_epochs=2)
  lin = schedules.create(cfg(**base), 10)
  # 20 warm-up steps from 0: step 10 -> 0.05, step 20 reaches the schedule (0.1).
  np.testing.assert_allclose(
    [float(lin(s)) for s in (0, 10, 20, 49, 50)], [0, 0.05, 0.1, 0.1, 0.01], atol=1e-7
  )
  cos = schedules.create(cfg(**base, warmup_shape="cosine"), 10)
  # step 5: 0.1 * (1 - cos(pi * 5 / 20)) / 2 = 0.0146447
  assert float(cos(5)) == pytest.approx(0.1 * (1 - math.cos(math.pi / 4)) / 2, rel=1e-5)
  warm_cos = schedules.create(
    cfg(name="cosine", lr=0.1, epochs=10, warmup_epochs=1), 10
  )
  assert float(warm_cos(5)) == pytest.approx(0.05) and float(
    warm_cos(10)
  ) == pytest.approx(0.1)
  assert float(warm_cos(99)) == pytest.approx(0.0, abs=1e-8)


def test_onecycle_matches_pytorch_onecycle():
  # T = 100, pct 0.1: peak at step 0.1 * 100 - 1 = 9; start max/100, end start/100.
  f = schedules.create(cfg(name="onecycle", max_lr=0.1, epochs=10), 10)
  # Step 54 is halfway through the down phase (9 -> 99): (0.1 + 1e-5) / 2.
  np.testing.assert_allclose(
    [float(f(s)) for s in (0, 9, 54, 99)], [0.001, 0.1, 0.050005, 1e-5], rtol=1e-5
  )


ALL_TRAINING = [
  dict(name="constant", lr=0.1, epochs=20),
  dict(name="piecewise", spec="0:0.1,10:0.01,15:0.001", epochs=20),
  dict(name="step", lr=0.1, epochs=20, milestones=[10, 15]),
  dict(name="halving", lr=0.1, final_lr=1e-3, epochs=20),
  dict(name="cosine", lr=0.1, epochs=20, warmup_epochs=2),
  dict(name="linear", lr=0.1, epochs=20, warmup_epochs=2, warmup_shape="cosine"),
  dict(name="onecycle", max_lr=0.1, epochs=20),
]


@pytest.mark.parametrize("config", ALL_TRAINING, ids=lambda c: c["name"])
def test_jit_compatible_and_monotone(config):
  f = schedules.create(cfg(**config), 4)
  steps = np.arange(80)
  jitted = values(jax.jit(f), steps)
  eager = np.array([float(f(int(s))) for s in steps[::9]])
  np.testing.assert_allclose(jitted[::9], eager, rtol=1e-6)
  assert jitted.dtype == np.float32
  peak = int(np.argmax(jitted))
  # Non-decreasing during warm-up, non-increasing afterwards.
  assert np.all(np.diff(jitted[: peak + 1]) >= -1e-9)
  assert np.all(np.diff(jitted[peak:]) <= 1e-9)


@pytest.mark.parametrize(
  ("config", "message"),
  [
    (dict(name="foo"), "schedule.name must be one of"),
    (
      dict(name="piecewise", spec="0:0.1,200:0.01", epochs=160),
      "milestone 200 is beyond schedule.epochs=160",
    ),
    (
      dict(name="step", lr=0.1, epochs=100, milestones=[50, 100]),
      "milestone 100 is beyond",
    ),
    (dict(name="piecewise", spec="5:0.1", epochs=10), "must start at epoch 0"),
    (dict(name="piecewise", spec="0:0.1,x", epochs=10), "is not 'epoch:lr'"),
    (
      dict(name="piecewise", spec="0:0.1,5:0.2,3:0.1", epochs=10),
      "strictly increasing",
    ),
    (
      dict(name="piecewise", spec="0:0.1", epochs=-5),
      "schedule.epochs must be a positive integer",
    ),
    (dict(name="step", lr=-0.1, epochs=10, milestones=[5]), "schedule.lr must be > 0"),
    (
      dict(name="cosine", lr=0.1, epochs=10, warmup_epochs=10),
      "warmup_epochs=10.0 must be <",
    ),
    (
      dict(name="cosine", lr=0.1, epochs=10, warmup_shape="exp"),
      "warmup_shape must be one of",
    ),
    (
      dict(name="cosine", lr=0.1, epochs=10, warmup_epoch=1),
      "unknown field(s) ['warmup_epoch']",
    ),
    (dict(name="piecewise", epochs=10), "schedule.spec is required"),
    (dict(name="halving", lr=0.1, final_lr=3e-4, epochs=90), "power of gamma"),
    (dict(name="halving", lr=0.1, final_lr=1e-5, epochs=3), "too few"),
  ],
)
def test_invalid_configs_fail_clearly(config, message):
  with pytest.raises(ValueError, match=None) as err:
    schedules.validate(cfg(**config))
  assert message in str(err.value)


def test_bad_steps_per_epoch():
  with pytest.raises(ValueError, match="steps_per_epoch must be a positive integer"):
    schedules.create(cfg(name="constant", lr=0.1), 0)


def test_halving_stage_lengths():
  assert training.halving_stages(90, 5, 30) == [30, 30, 15, 8, 7]


def test_works_as_optax_learning_rate():
  import optax

  f = schedules.create(cfg(name="piecewise", spec="0:0.1,1:0.01", epochs=2), 2)
  tx = optax.sgd(learning_rate=f)
  params = jnp.ones(())
  state = tx.init(params)

  @jax.jit
  def update(state):
    return tx.update(jnp.ones(()), state, params)

  # Gradient 1: the update is -lr; steps 0, 1 are epoch 0 (0.1), step 2 epoch 1.
  got = []
  for _ in range(3):
    updates, state = update(state)
    got.append(float(updates))
  np.testing.assert_allclose(got, [-0.1, -0.1, -0.01], rtol=1e-6)


@pytest.mark.parametrize(
  "epochs, starts, values",
  [
    (30, [0, 10, 20], [0.01, 0.001, 0.0001]),  # The absolute spec it replaces.
    (10, [0, 3, 6], [0.01, 0.001, 0.0001]),
    (2, [0, 1], [0.001, 0.0001]),  # 1/3 of 2 epochs is 0: that stage wins at 0.
  ],
)
def test_spec_fractions_are_floored_fractions_of_the_epochs(epochs, starts, values):
  spec = "0:0.01,1/3:0.001,2/3:0.0001"
  assert schedules.parse_spec(spec, "schedule", epochs) == (starts, values)


@pytest.mark.parametrize("spec", ["0:0.1,1/0:0.01", "0:0.1,3/2:0.01", "0:0.1,a/b:0.01"])
def test_bad_spec_fractions_are_refused(spec):
  with pytest.raises(ValueError, match=r"schedule\.spec"):
    schedules.parse_spec(spec, "schedule", 10)


def test_spec_fraction_needs_epochs():
  with pytest.raises(ValueError, match="fraction of the epochs"):
    schedules.parse_spec("0:0.1,1/2:0.01")


def test_cyclic_linear_restarts_linear_decay_at_each_restart_epoch():
  # 4 epochs of 2 steps, restarts after epochs 1 and 3: cycles of 2, 4 and 2
  # steps, each linear from 0.1 down to 0 at its last step (as LLR per cycle).
  f = schedules.create(
    cfg(name="cyclic_linear", lr=0.1, epochs=4, restarts=(1, 3)), steps_per_epoch=2
  )
  expected = [0.1, 0.0, 0.1, 0.1 * 2 / 3, 0.1 / 3, 0.0, 0.1, 0.0]
  np.testing.assert_allclose(values(f, np.arange(8)), expected, rtol=1e-6, atol=1e-8)
  # Without restarts it is the linear schedule.
  one = schedules.create(cfg(name="cyclic_linear", lr=0.1, epochs=4), 2)
  lin = schedules.create(cfg(name="linear", lr=0.1, epochs=4), 2)
  np.testing.assert_allclose(values(one, np.arange(8)), values(lin, np.arange(8)))


@pytest.mark.parametrize(
  "restarts", [(0, 2), (2, 1), (4,), (1, 1), (1.5,)], ids=lambda r: repr(r)
)
def test_cyclic_linear_refuses_bad_restarts(restarts):
  config = cfg(name="cyclic_linear", lr=0.1, epochs=4, restarts=restarts)
  with pytest.raises(ValueError, match=r"schedule.restarts must be increasing"):
    schedules.create(config, 2)


def test_retraining_schedules_derive_from_a_cyclic_linear_base():
  # FT retrains at the base's last LR: the end of the last cycle.
  base = cfg(name="cyclic_linear", lr=0.1, epochs=4, restarts=(2,), final_lr=0.002)
  ft = schedules.create(cfg(name="ft", base=base, retrain_epochs=2), 3)
  np.testing.assert_allclose(values(ft, np.arange(6)), [0.002] * 6, rtol=1e-6)
