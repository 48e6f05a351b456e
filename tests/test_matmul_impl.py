"""The Dense matmul with XLA:CPU's faster kernel-gradient layout (`matmul_impl`).

Its values, input and kernel gradients and forward-mode Jacobian equal the
plain ``x @ k`` to float32 rounding; the rule picks the swap only on CPU and
only for the shapes it names; the compiled kernel gradient really is the
[N, K] dot plus a transpose (not folded back by XLA); a whole MLP-7 trains to
the same gradients either way.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxprune import models
from jaxprune.models import matmul_impl

DIMS = (((1,), (0,)), ((), ()))


def _operands(m, k, n, seed=0):
  rng = np.random.default_rng(seed)
  x = jnp.asarray(rng.normal(size=(m, k)), jnp.float32)
  w = jnp.asarray(rng.normal(size=(k, n)) / np.sqrt(k), jnp.float32)
  dy = jnp.asarray(rng.normal(size=(m, n)), jnp.float32)
  return x, w, dy


def _close(a, b, rtol=1e-5):
  a, b = np.asarray(a), np.asarray(b)
  assert a.shape == b.shape
  np.testing.assert_allclose(a, b, atol=rtol * np.abs(b).max(), rtol=0)


@pytest.mark.parametrize("m,k,n", [(100, 1024, 10), (128, 144, 16), (100, 1024, 100)])
def test_values_gradients_and_jacfwd_equal_the_plain_matmul(m, k, n):
  x, w, dy = _operands(m, k, n)
  ours = lambda x, w: matmul_impl.dot_general(x, w, DIMS)  # noqa: E731
  plain = lambda x, w: x @ w  # noqa: E731
  _close(jax.jit(ours)(x, w), plain(x, w))
  got = jax.jit(lambda x, w: jax.vjp(ours, x, w)[1](dy))(x, w)
  want = (dy @ w.T, x.T @ dy)  # The two gradients written out.
  for g, h in zip(got, want):
    _close(g, h)
  # Forward mode (the Jacobian analysis uses jax.jacfwd) works through it.
  _close(jax.jacfwd(lambda x: ours(x, w))(x[:2]), jax.jacfwd(lambda x: x @ w)(x[:2]))


def test_the_rule_swaps_narrow_outputs_only_and_only_on_cpu(monkeypatch):
  assert matmul_impl.prefer_swapped(1024, 10)  # MLP-7's first layer, pruned.
  assert matmul_impl.prefer_swapped(1024, 50)  # ... at ratio 0.5 (Le & Hua).
  assert not matmul_impl.prefer_swapped(1024, 100)  # Dense: the forward loses.
  assert matmul_impl.prefer_swapped(25, 6)  # LeNet-5's first conv (N <= 8).
  assert not matmul_impl.prefer_swapped(100, 100)  # Square hidden layers.
  assert not matmul_impl.prefer_swapped(144, 32)  # K = 4.5 N.
  assert not matmul_impl.prefer_swapped(10, 512)

  def barriers(m, k, n):
    x, w, _ = _operands(m, k, n)
    jaxpr = jax.make_jaxpr(lambda x, w: matmul_impl.dot_general(x, w, DIMS))(x, w)
    return str(jaxpr).count("optimization_barrier")

  monkeypatch.setattr(jax, "default_backend", lambda: "cpu")
  assert barriers(4, 1024, 10) == 1
  assert barriers(4, 100, 100) == 0
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  assert barriers(4, 1024, 10) == 0


def test_compiled_kernel_gradient_is_the_swapped_dot():
  """The point of the module: XLA keeps the [N, K] dot (it would otherwise
  fold the transpose back into a [K, N] one, the slow kernel)."""
  x, w, dy = _operands(100, 1024, 10)

  def kernel_grad(ours):
    f = (lambda x, w: matmul_impl.dot_general(x, w, DIMS)) if ours else jnp.matmul
    return jax.jit(lambda x, w: jax.vjp(lambda w: f(x, w), w)[1](dy)[0])

  def dots(ours):
    hlo = kernel_grad(ours).lower(x, w).compile().as_text()
    return [line for line in hlo.splitlines() if " dot(" in line]

  assert any("f32[10,1024]" in line for line in dots(ours=True)), dots(True)
  assert not any("f32[10,1024]" in line for line in dots(ours=False)), dots(False)


def test_mlp7_gradients_equal_with_and_without_the_swap(monkeypatch):
  model = models.create("mlp7_linear", widths=(10,) * 6)
  rng = np.random.default_rng(1)
  x = jnp.asarray(rng.normal(size=(16, 32, 32, 1)), jnp.float32)
  labels = jnp.asarray(rng.integers(0, 10, 16))
  params = model.init(jax.random.PRNGKey(0), x, train=False)["params"]

  def grads():
    def loss(p):
      logits = model.apply({"params": p}, x, train=True)
      return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(16), labels])

    jaxpr = str(jax.make_jaxpr(jax.grad(loss))(params))
    return jax.jit(jax.grad(loss))(params), jaxpr.count("optimization_barrier")

  swapped, n_swapped = grads()
  monkeypatch.setattr(matmul_impl, "prefer_swapped", lambda k, n: False)
  plain, n_plain = grads()
  assert n_swapped >= 1 and n_plain == 0  # The first layer (1024 -> 10) swaps.
  flat_s, flat_p = jax.tree_util.tree_leaves(swapped), jax.tree_util.tree_leaves(plain)
  for a, b in zip(flat_s, flat_p):
    _close(a, b)
