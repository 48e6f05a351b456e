"""The fast 2x2 max pool equals `nn.max_pool` exactly: values, gradients, ties."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxprune.models.pooling import max_pool_2x2


def _reference(x):
  return nn.max_pool(x, (2, 2), strides=(2, 2))


@pytest.mark.parametrize("shape", [(3, 8, 6, 4), (2, 5, 7, 3), (1, 2, 2, 1)])
def test_values_and_gradients_equal_reduce_window_exactly(shape):
  rng = np.random.default_rng(0)
  # Small integers after a ReLU: many windows hold tied maxima (zeros).
  x = jnp.asarray(np.maximum(rng.integers(-3, 4, shape), 0), jnp.float32)
  g = jnp.asarray(rng.normal(size=_reference(x).shape), jnp.float32)
  np.testing.assert_array_equal(max_pool_2x2(x), _reference(x))
  want = jax.vjp(_reference, x)[1](g)[0]
  got = jax.vjp(max_pool_2x2, x)[1](g)[0]
  np.testing.assert_array_equal(got, want)
  # Each window's gradient lands on one element only (the first maximum).
  assert int(jnp.sum(got != 0)) <= g.size


def test_gradient_under_jit_and_vmap():
  x = jax.random.normal(jax.random.key(1), (4, 2, 6, 6, 3))
  f = lambda pool: jax.jit(jax.vmap(jax.grad(lambda v: jnp.sum(pool(v) ** 2))))  # noqa: E731
  np.testing.assert_array_equal(f(max_pool_2x2)(x), f(_reference)(x))


def test_forward_mode_jacobian_equals_reduce_window():
  x = jax.random.normal(jax.random.key(2), (1, 4, 4, 2))
  np.testing.assert_array_equal(jax.jacfwd(max_pool_2x2)(x), jax.jacfwd(_reference)(x))
