"""In-step top-k masks and the cubic schedule of `pruning.during.common`,
checked against numpy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxprune.pruning.during import common


def _tree(seed=0):
  rng = np.random.default_rng(seed)
  return {
    "a": {"kernel": jnp.asarray(rng.normal(size=(6, 5)), jnp.float32)},
    "b": {"kernel": jnp.asarray(rng.normal(size=(5, 3)), jnp.float32)},
    "b_bias": jnp.asarray(rng.normal(size=(3,)), jnp.float32),
  }


PRUNABLE = {"a": {"kernel": True}, "b": {"kernel": True}, "b_bias": False}


@pytest.mark.parametrize("traced", [False, True])
def test_global_masks_keep_exactly_the_largest(traced):
  params = _tree()
  s = 0.6
  fn = jax.jit(lambda p, s: common.magnitude_masks(p, PRUNABLE, s)) if traced else None
  masks = (
    fn(params, jnp.float32(s))
    if traced
    else common.magnitude_masks(params, PRUNABLE, s)
  )
  flat = np.concatenate(
    [np.abs(params["a"]["kernel"]).ravel(), np.abs(params["b"]["kernel"]).ravel()]
  )
  keep = flat.size - round(s * flat.size)
  threshold = np.sort(flat)[::-1][keep - 1]
  got = np.concatenate(
    [np.asarray(masks["a"]["kernel"]).ravel(), np.asarray(masks["b"]["kernel"]).ravel()]
  )
  assert got.sum() == keep
  np.testing.assert_array_equal(got, (flat >= threshold).astype(np.float32))
  assert np.all(np.asarray(masks["b_bias"]) == 1)
  np.testing.assert_allclose(
    common.mask_sparsity(masks, PRUNABLE), 1 - keep / flat.size, rtol=1e-6
  )


def test_uniform_masks_prune_every_layer_at_the_ratio():
  params = _tree(1)
  masks = common.magnitude_masks(params, PRUNABLE, 0.4, "uniform")
  for name in ("a", "b"):
    w = np.abs(np.asarray(params[name]["kernel"])).ravel()
    keep = w.size - round(0.4 * w.size)
    m = np.asarray(masks[name]["kernel"]).ravel()
    assert m.sum() == keep
    assert w[m == 1].min() >= w[m == 0].max()


def test_ties_still_keep_an_exact_count():
  params = {"w": jnp.ones((4, 4))}
  for traced in (False, True):
    s = jnp.float32(0.25) if traced else 0.25
    m = common.magnitude_masks(params, {"w": True}, s)
    assert float(jnp.sum(m["w"])) == 12


def test_cubic_schedule_matches_zhu_gupta():
  t0, t1, sf = 10, 110, 0.9
  for t in (0, 10, 35, 60, 110, 200):
    frac = min(max((t - t0) / (t1 - t0), 0), 1)
    want = sf * (1 - (1 - frac) ** 3)
    np.testing.assert_allclose(
      common.cubic_sparsity(jnp.int32(t), sf, t0, t1), want, rtol=1e-6
    )
  with pytest.raises(ValueError, match="allocation"):
    common.topk_masks(_tree(), PRUNABLE, 0.5, "erk")
