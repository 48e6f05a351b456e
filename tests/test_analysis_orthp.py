"""OrthP (Dynamical Isometry Eq. 2): orthogonality, the paper's matrix, JSV recovery."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxprune import analysis, models

SHAPE = (32, 32, 1)


def _init(name, seed=0, shape=SHAPE, **overrides):
  model = models.create(name, **overrides)
  # Jitted init: one compilation instead of many eager per-op ones.
  init = jax.jit(model.init)
  return model, init(jax.random.PRNGKey(seed), jnp.zeros((1, *shape)))["params"]


def _random_params(name, seed=0, shape=SHAPE, **overrides):
  """Params of the right shapes, N(0, 0.1) entries; no compilation (eval_shape)."""
  model = models.create(name, **overrides)
  shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, *shape)))
  rng = np.random.default_rng(seed)
  return jax.tree_util.tree_map(
    lambda a: jnp.asarray(rng.normal(0, 0.1, a.shape), a.dtype), shapes["params"]
  )


def l1_prune_mlp(params, ratio):
  """Minimal L1 neuron pruning of an MLP (Wang et al.: ceil(n * r) pruned per layer).

  Neurons of fc0..fc5 are PyTorch rows = Flax kernel columns, ranked by L1
  norm of the unpruned weights; the next layer's input rows are sliced.
  Independent of jaxprune.pruning (checked equal to it below).
  """
  out, keep_prev = {}, None
  for i in range(6):
    layer = params[f"fc{i}"]
    kernel = np.asarray(layer["kernel"])
    n = kernel.shape[1]
    keep = np.sort(np.argsort(-np.abs(kernel).sum(axis=0))[: n - math.ceil(n * ratio)])
    if keep_prev is not None:
      kernel = kernel[keep_prev]
    out[f"fc{i}"] = {"kernel": kernel[:, keep], "bias": np.asarray(layer["bias"])[keep]}
    keep_prev = keep
  head = params["head"]
  out["head"] = {"kernel": np.asarray(head["kernel"])[keep_prev], "bias": head["bias"]}
  return jax.tree_util.tree_map(jnp.asarray, out)


def _paper_matrix_reference(weight_oihw: np.ndarray) -> np.ndarray:
  """Eq. 2 written directly on a PyTorch-layout weight, in float64 numpy."""
  w = weight_oihw.reshape(weight_oihw.shape[0], -1).astype(np.float64)
  wide = w.shape[0] < w.shape[1]
  q, r = np.linalg.qr(w.T if wide else w)
  q = q * np.sign(np.diag(r))[None, :]
  return (q.T if wide else q).reshape(weight_oihw.shape)


def _torch_layout(kernel) -> np.ndarray:
  k = np.asarray(kernel)
  return k.T if k.ndim == 2 else k.transpose(3, 2, 0, 1)


def test_kernel_matrix_is_the_papers_out_by_in_khkw_matrix():
  """Row o of the matrix applied to a patch flattened as (in, kh, kw) is conv output o."""
  params = _random_params("lenet5_relu", seed=1)
  kernel = params["conv1"]["kernel"]  # [5, 5, 6, 16]
  matrix = analysis.kernel_to_matrix(kernel)
  assert matrix.shape == (16, 6 * 25)
  patch = np.random.default_rng(0).standard_normal((1, 5, 5, 6)).astype(np.float32)
  conv = jax.lax.conv_general_dilated(
    patch, kernel, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
  )
  torch_order = patch[0].transpose(2, 0, 1).reshape(-1)  # (in, kh, kw)
  np.testing.assert_allclose(conv.reshape(-1), matrix @ torch_order, rtol=1e-5)
  np.testing.assert_array_equal(analysis.matrix_to_kernel(matrix, kernel.shape), kernel)
  dense = params["fc0"]["kernel"]
  np.testing.assert_array_equal(analysis.kernel_to_matrix(dense), dense.T)


# Wide and tall matrices: LeNet conv0 with 30 filters has out=30 > in*kh*kw=25;
# the MLP widens 20 -> 40 in fc1 and narrows to 10 classes in the head.
CASES = [
  ("lenet5_relu", {"widths": (30, 16, 120, 84)}, math.sqrt(2.0)),
  ("lenet5_linear", {}, 1.0),
  ("mlp7_linear", {"widths": (20, 40, 40, 15, 100, 12)}, 1.0),
  ("mlp7_relu", {"widths": (20, 40, 40, 15, 100, 12)}, math.sqrt(2.0)),
]


@pytest.mark.parametrize(("name", "overrides", "gain"), CASES)
def test_orthp_makes_every_kernel_orthogonal_times_gain(name, overrides, gain):
  params = _random_params(name, **overrides)
  new = analysis.orthp(params, model_name=name)
  assert analysis.gain_for(model_name=name) == pytest.approx(gain)
  for layer in params:
    kernel = new[layer]["kernel"]
    assert kernel.shape == params[layer]["kernel"].shape
    assert kernel.dtype == params[layer]["kernel"].dtype
    w = np.asarray(_torch_layout(kernel), np.float64).reshape(kernel.shape[-1], -1)
    rows, cols = w.shape
    gram = w @ w.T if rows <= cols else w.T @ w
    np.testing.assert_allclose(gram, gain**2 * np.eye(min(rows, cols)), atol=1e-5)
    # Biases are untouched.
    np.testing.assert_array_equal(new[layer]["bias"], params[layer]["bias"])
    # Same matrix as Eq. 2 applied to the PyTorch-layout weight (column order
    # matters for the tall conv0 of the first case).
    want = gain * _paper_matrix_reference(_torch_layout(params[layer]["kernel"]))
    np.testing.assert_allclose(_torch_layout(kernel), want, atol=1e-5)
  errors = analysis.orthogonality_error(new, gain)
  assert len(errors) == len(params) and max(errors.values()) < 1e-5


def test_sign_correction_makes_orthogonal_weights_a_fixed_point():
  """Q * sign(diag(R)) returns an already (semi-)orthogonal W unchanged."""
  _, params = _init("lenet5_relu", init="orthogonal")
  new = analysis.orthp(params, activation="relu")
  for layer in params:
    np.testing.assert_allclose(new[layer]["kernel"], params[layer]["kernel"], atol=2e-6)


def test_orthp_leaves_batch_norm_alone():
  widths = {"stages": (8, 8, 16), "blocks": ((4,) * 3, (8,) * 3, (8,) * 3)}
  params = _random_params("resnet20", shape=(8, 8, 3), widths=widths)
  new = analysis.orthp(params, gain=2.0)
  bn = params["stage0_block0"]["bn1"]
  assert new["stage0_block0"]["bn1"] is not None
  for key in ("scale", "bias"):
    np.testing.assert_array_equal(new["stage0_block0"]["bn1"][key], bn[key])
  errors = analysis.orthogonality_error(new, 2.0)
  assert len(errors) == 1 + 9 * 2 + 1  # stem, 2 convs per block, head.
  assert max(errors.values()) < 1e-5


@pytest.mark.parametrize("ratio", [0.5, 0.8])
def test_orthp_restores_isometry_of_pruned_mlp7_linear(ratio):
  """Pruning drops the mean JSV of MLP-7-Linear below 1; OrthP brings it back."""
  _, params = _init("mlp7_linear", init="orthogonal")
  # Perturb the isometric net as training would (Fig. 1 prunes trained nets).
  rng = np.random.default_rng(0)
  params = jax.tree_util.tree_map(
    lambda p: p * jnp.asarray(1 + 0.3 * rng.standard_normal(p.shape), p.dtype), params
  )
  pruned = l1_prune_mlp(params, ratio)
  widths = models.read_widths("mlp7_linear", pruned)
  assert widths == (100 - math.ceil(100 * ratio),) * 6
  small = models.create("mlp7_linear", widths=widths)
  x = rng.standard_normal((4, *SHAPE))
  before = analysis.jsv_stats(
    analysis.jacobian_singular_values(analysis.apply_fn_from(small, pruned), x)
  )
  assert before["mean"] < 0.9
  fixed = analysis.orthp(pruned, model_name="mlp7_linear")
  after = analysis.jsv_stats(
    analysis.jacobian_singular_values(analysis.apply_fn_from(small, fixed), x)
  )
  assert after["mean"] == pytest.approx(1.0, abs=1e-5)
  assert after["std"] == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("ratio", [0.3, 0.9])
def test_local_l1_helper_matches_the_pruning_engine(ratio):
  """The notebook uses jaxprune.pruning; the tests' helper is an independent twin."""
  from jaxprune import pruning

  params = _random_params("mlp7_linear", seed=2)
  cfg = pruning.default_config()
  cfg.name, cfg.criterion, cfg.ratio, cfg.rounding = (
    "structured",
    "l1",
    ratio,
    "prune_ceil",
  )
  engine = pruning.prune(cfg, params, model_name="mlp7_linear").params
  jax.tree_util.tree_map(
    np.testing.assert_array_equal, engine, l1_prune_mlp(params, ratio)
  )


def test_gain_resolution():
  assert analysis.gain_for(1.5) == 1.5
  assert analysis.gain_for(activation="linear") == 1.0
  assert analysis.gain_for(model_name="lenet5_relu") == pytest.approx(math.sqrt(2))
  assert analysis.gain_for(model_name="resnet56") == pytest.approx(math.sqrt(2))
  with pytest.raises(ValueError, match="needs activation"):
    analysis.gain_for("auto")
  with pytest.raises(ValueError, match="cannot tell"):
    analysis.gain_for(model_name="vgg16")
  with pytest.raises(ValueError, match="positive"):
    analysis.gain_for(-1.0)
  with pytest.raises(ValueError, match="activation must be"):
    analysis.gain_for(activation="tanh")
