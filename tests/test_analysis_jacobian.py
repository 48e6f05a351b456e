"""Jacobian singular values: Table 1 row 1, explicit products, finite differences."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxprune import analysis, models
from jaxprune.analysis import jacobian

SHAPE = (32, 32, 1)


def _init(name, seed=0, shape=SHAPE, **overrides):
  model = models.create(name, **overrides)
  variables = model.init(jax.random.PRNGKey(seed), jnp.zeros((1, *shape)))
  return model, variables


@pytest.mark.parametrize("method", ["jacrev", "jacfwd"])
@pytest.mark.parametrize("solver", ["gram", "svd"])
def test_orthogonal_mlp7_linear_is_exactly_isometric(method, solver):
  """Dynamical Isometry Table 1, row 1: 1.0000 (0.0000), max = min = 1.0000."""
  model, variables = _init("mlp7_linear", init="orthogonal")
  apply_fn = analysis.apply_fn_from(model, variables["params"])
  rng = np.random.default_rng(0)
  # "On any input": the Jacobian of a linear net does not depend on x.
  for x in (
    rng.standard_normal((4, *SHAPE)),
    100.0 * rng.uniform(size=(4, *SHAPE)),
    np.zeros((4, *SHAPE)),
  ):
    sv = analysis.jacobian_singular_values(apply_fn, x, method=method, solver=solver)
    assert sv.shape == (len(x), 10)
    stats = analysis.jsv_stats(sv)
    assert stats["mean"] == pytest.approx(1.0, abs=1e-5)
    assert stats["std"] == pytest.approx(0.0, abs=1e-5)
    assert stats["max"] == pytest.approx(1.0, abs=1e-5)
    assert stats["min"] == pytest.approx(1.0, abs=1e-5)


def test_linear_net_jsv_equals_svd_of_weight_product():
  """J of a linear MLP is the transposed product of its kernels, for any x."""
  widths = (64, 100, 37, 50, 20, 30)
  model, variables = _init("mlp7_linear", seed=3, widths=widths)
  params = variables["params"]
  product = np.eye(1024)
  for layer in [f"fc{i}" for i in range(6)] + ["head"]:
    product = product @ np.asarray(params[layer]["kernel"], np.float64)
  want = np.linalg.svd(product.T, compute_uv=False)  # J = (K0 ... K6)^T, 10 x 1024.
  x = np.random.default_rng(1).standard_normal((5, *SHAPE))
  for method, solver in (("jacrev", "gram"), ("jacfwd", "svd")):
    sv = np.asarray(
      analysis.jacobian_singular_values(
        analysis.apply_fn_from(model, params), x, method=method, solver=solver
      )
    )
    for row in sv:
      np.testing.assert_allclose(row, want, rtol=1e-4, atol=1e-4 * want[0])


def _finite_difference_jacobian(model, variables, x, eps=1e-4):
  """Central differences in float64, one input coordinate at a time."""
  with jax.enable_x64(True):
    v64 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), variables)
    x64 = jnp.asarray(x, jnp.float64).reshape(-1)
    basis = eps * jnp.eye(x64.size, dtype=jnp.float64)

    def logits(flat):
      return model.apply(v64, flat.reshape(-1, *x.shape), train=False)

    jac = (logits(x64 + basis) - logits(x64 - basis)) / (2 * eps)  # [D, C]
    return np.asarray(jac).T


def test_relu_net_matches_finite_differences():
  """MLP-7-ReLU (orthogonal init, JSVs O(1) as in Table 1 row 2) vs float64 FD."""
  model, variables = _init("mlp7_relu", seed=1, init="orthogonal")
  x = np.random.default_rng(2).standard_normal((2, *SHAPE)).astype(np.float32)
  apply_fn = analysis.apply_fn_from(model, variables["params"])
  got = {
    (m, s): np.asarray(
      analysis.jacobian_singular_values(apply_fn, x, method=m, solver=s)
    )
    for m in ("jacrev", "jacfwd")
    for s in ("gram", "svd")
  }
  for i in range(len(x)):
    jac = _finite_difference_jacobian(model, variables, x[i])
    want = np.linalg.svd(jac, compute_uv=False)
    assert want.mean() > 0.1  # O(1) values, so 1e-3 is a real tolerance.
    for key, sv in got.items():
      np.testing.assert_allclose(sv[i], want, atol=1e-3, rtol=1e-3, err_msg=str(key))


class _ConvBN(nn.Module):
  """conv-BN-ReLU-dense: the smallest net whose eval output needs batch_stats."""

  @nn.compact
  def __call__(self, x, train=False):
    x = nn.Conv(4, (3, 3))(x)
    x = nn.relu(nn.BatchNorm(use_running_average=not train)(x))
    return nn.Dense(10)(x.reshape(x.shape[0], -1))


def test_batch_norm_model_uses_running_statistics():
  model = _ConvBN()
  variables = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 6, 6, 2)))
  rng = np.random.default_rng(0)
  stats = jax.tree_util.tree_map(
    lambda a: jnp.asarray(rng.uniform(0.5, 2.0, a.shape), a.dtype),
    variables["batch_stats"],
  )
  x = rng.standard_normal((3, 6, 6, 2)).astype(np.float32)
  apply_fn = analysis.apply_fn_from(model, variables["params"], stats)
  reference = {"params": variables["params"], "batch_stats": stats}
  np.testing.assert_allclose(
    apply_fn(x), model.apply(reference, x, train=False), rtol=1e-6
  )
  sv = analysis.jacobian_singular_values(apply_fn, x, solver="svd")
  jac = jax.vmap(jax.jacfwd(lambda z: model.apply(reference, z[None], train=False)[0]))(
    x
  )
  want = np.linalg.svd(np.asarray(jac).reshape(3, 10, -1), compute_uv=False)
  np.testing.assert_allclose(sv, want, rtol=1e-4, atol=1e-6)
  default = analysis.apply_fn_from(model, variables["params"], variables["batch_stats"])
  assert not np.allclose(analysis.jacobian_singular_values(default, x), sv, rtol=1e-2)


def test_streaming_in_batches_matches_one_batch_and_reuses_compilation():
  model, variables = _init("mlp7_relu")
  x = np.random.default_rng(0).standard_normal((10, *SHAPE))
  apply_fn = analysis.apply_fn_from(model, variables["params"])
  whole = analysis.jacobian_singular_values(apply_fn, x)
  streamed = analysis.jacobian_singular_values(apply_fn, x, batch_size=4)
  assert streamed.shape == (10, 10)
  np.testing.assert_allclose(streamed, whole, rtol=1e-5)
  # New weights of the same model reuse the compiled program (callbacks).
  size = jacobian._batch_singular_values._cache_size()
  other = _init("mlp7_relu", seed=5)[1]["params"]
  analysis.jacobian_singular_values(analysis.apply_fn_from(model, other), x)
  assert jacobian._batch_singular_values._cache_size() == size
  # A plain function gives the same values.
  plain = analysis.jacobian_singular_values(
    lambda z: model.apply(variables, z), x, batch_size=4
  )
  np.testing.assert_allclose(plain, whole, rtol=1e-5)


def test_jsv_stats_pools_all_values():
  sv = np.array([[3.0, 1.0], [2.0, 0.5], [1.5, 1.0]])
  stats = analysis.jsv_stats(sv)
  assert stats == pytest.approx(
    {"mean": 9.0 / 6, "std": np.std(sv.ravel()), "max": 3.0, "min": 0.5}
  )
  # Eq. 1: the mean of per-example means S-bar equals the pooled mean.
  assert stats["mean"] == pytest.approx(np.mean(sv.mean(axis=1)))


def test_invalid_arguments_are_rejected():
  model, variables = _init("mlp7_relu")
  apply_fn = analysis.apply_fn_from(model, variables["params"])
  x = np.zeros((2, *SHAPE))
  with pytest.raises(ValueError, match="method"):
    analysis.jacobian_singular_values(apply_fn, x, method="jvp")
  with pytest.raises(ValueError, match="solver"):
    analysis.jacobian_singular_values(apply_fn, x, solver="eig")
  with pytest.raises(ValueError, match="batch_size"):
    analysis.jacobian_singular_values(apply_fn, x, batch_size=0)
  with pytest.raises(ValueError, match="at least one"):
    analysis.jacobian_singular_values(apply_fn, x[:0])


class _FixedLinear(nn.Module):
  """logits = x @ K: the Jacobian is K^T for every x."""

  kernel: np.ndarray

  @nn.compact
  def __call__(self, x, train=False):
    return x.reshape(x.shape[0], -1) @ jnp.asarray(self.kernel)


def test_min_and_max_jsv_are_exact_for_ill_conditioned_jacobians():
  """Dynamical Isometry Table 1 reports the mean, std, max and min JSV, and its
  isometry is "the singular values of Jacobian matrix being around 1": the min
  is where pruning shows. float32 Gram eigenvalues lose singular values below
  ~1e-4 * s_max, so a reported min must come from the SVD."""
  rng = np.random.default_rng(0)
  u, _ = np.linalg.qr(rng.standard_normal((1024, 10)))
  v, _ = np.linalg.qr(rng.standard_normal((10, 10)))
  want = np.logspace(0, -5, 10)  # Condition number 1e5.
  kernel = (u * want) @ v.T  # [1024, 10], singular values `want`.
  model = _FixedLinear(kernel.astype(np.float32))
  apply_fn = analysis.apply_fn_from(model, {})
  x = rng.standard_normal((3, *SHAPE)).astype(np.float32)
  gram = jacobian.jacobian_singular_values(apply_fn, x, solver="gram")
  assert jacobian.jsv_stats(gram)["min"] < 0.5 * want[-1]  # The bug this fixes.
  summary = analysis.jsv_summary(apply_fn, x)
  assert summary["min"] == pytest.approx(want[-1], rel=1e-2)
  assert summary["max"] == pytest.approx(1.0, rel=1e-5)
  assert summary["mean"] == pytest.approx(want.mean(), rel=1e-5)
  # The per-epoch callback asks for mean and std only: the Gram path is fine
  # for those. Its float32 eigenvalues carry an absolute error of about
  # eps * s_max^2, so every singular value below sqrt(eps) * s_max ~ 3.5e-4
  # (four of the ten here) may be off by up to that much; the mean then by up
  # to 4 * 3.5e-4 / 10. A wrong mean (a missing sqrt, a dropped value) is off
  # by 1e-2 or more.
  quick = analysis.jsv_summary(apply_fn, x, stats=("mean", "std"))
  assert quick["mean"] == pytest.approx(want.mean(), abs=1.5e-4)
  with pytest.raises(ValueError, match="need solver='svd'"):
    analysis.jsv_summary(apply_fn, x, solver="gram")
