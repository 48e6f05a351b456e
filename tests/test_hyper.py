"""Schedules as data (`jaxprune.train.hyper`): the LR tables a train step reads
equal the schedule functions step for step, bit for bit, and hold their last
value past the end; the optimizer built from the traced values is the one the
config describes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxprune import schedules
from jaxprune.train import hyper as hyper_lib
from jaxprune.train import optim

SPE = 7
BASE = dict(name="piecewise", spec="0:0.1,5:0.01,10:0.001", epochs=15)
CASES = [
  dict(name="onecycle", max_lr=0.1, epochs=6),
  dict(name="cosine", lr=0.1, epochs=6, warmup_epochs=1, min_lr=0.001),
  dict(name="linear", lr=0.05, epochs=6, warmup_epochs=2, warmup_shape="cosine"),
  dict(name="piecewise", spec="0:0.1,3:0.01", epochs=6),
  *[
    dict(name=v, base=BASE, retrain_epochs=6, flavor=f)
    for v in ("ft", "lrw", "slr", "clr")
    for f in ("zimmer2023", "le2021")
  ],
  dict(name="allr", base=BASE, retrain_epochs=6),
]


@pytest.mark.parametrize(
  "case", CASES, ids=lambda c: f"{c['name']}-{c.get('flavor', '')}"
)
def test_table_equals_the_schedule_inside_a_scan(case):
  schedule = schedules.create(
    ml_collections.ConfigDict(case), SPE, schedules.PruningStats(0.3, 0.5)
  )
  steps = 6 * SPE
  table = hyper_lib.table(schedule, steps)
  # What the old train step computed: the schedule at each step inside a scan.
  _, scanned = jax.jit(
    lambda: jax.lax.scan(lambda c, i: (c, schedule(i)), 0, jnp.arange(steps))
  )()
  np.testing.assert_array_equal(table, np.asarray(scanned))
  # Past the end the lookup holds the last value, as the schedules do.
  assert float(hyper_lib.lookup(table, steps + 100)) == float(table[-1])


def test_build_pads_to_a_power_of_two_and_pad_holds_the_last_value():
  cfg = ml_collections.ConfigDict(dict(name="sgd", momentum=0.9, weight_decay=5e-4))
  h = hyper_lib.build(cfg, lambda s: 0.1 - 0.001 * s, 37)
  assert h["lr"].shape == (64,) and hyper_lib.bucket(64) == 64
  assert h["weight_decay"] == np.float32(5e-4) and h["momentum"] == np.float32(0.9)
  longer = hyper_lib.pad(h, 100)
  assert longer["lr"].shape == (100,) and np.all(longer["lr"][64:] == h["lr"][-1])


def test_make_tx_equals_the_optimizer_with_constants():
  cfg = ml_collections.ConfigDict(dict(name="sgd", momentum=0.9, weight_decay=5e-4))
  lr = lambda s: 0.1 / (1 + s)  # noqa: E731
  h = hyper_lib.build(cfg, lr, 8)
  params = {"w": jnp.arange(6.0).reshape(2, 3)}
  grads = {"w": jnp.ones((2, 3)) * 0.5}
  want_tx, got_tx = optim.create(cfg, lr), hyper_lib.make_tx(cfg)(h)
  want_s, got_s = want_tx.init(params), got_tx.init(params)
  for _ in range(3):
    want_u, want_s = want_tx.update(grads, want_s, params)
    got_u, got_s = jax.jit(got_tx.update)(grads, got_s, params)
    np.testing.assert_allclose(got_u["w"], want_u["w"], rtol=1e-6)
