"""The native stride-1 convolutions (`jaxprune.models.native_conv`) against XLA's.

Output, input gradient and kernel gradient equal ``lax.conv_general_dilated``
to 1e-5 (relative to the largest value) for every conv signature the kernels
support in LeNet-5 and the CIFAR families at their real channel counts, for
channel counts that exercise every lane tile (16, 8, a masked tail, fewer
than 4 input channels) and for other kernel sizes and uneven pads, under
``vmap`` (batched input, batched kernel, both: the
C++ side broadcasts leading dims) and in whole models (a ResNet-20 train step
with masks, the Jacobian singular values in both autodiff modes).
Skipped, with the reason, where the kernels cannot be built.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax import lax
from step_helpers import jitted_step

from jaxprune import analysis, models
from jaxprune.models import conv_impl, native_conv
from jaxprune.train import state as state_lib
from jaxprune.train import steps as steps_lib

WHY = native_conv.unavailable()
pytestmark = [
  pytest.mark.skipif(bool(WHY), reason=f"native convs unavailable: {WHY}"),
  pytest.mark.usefixtures("fast_compiles"),
]
DN = ("NHWC", "HWIO", "NHWC")


SAME3 = ((1, 1), (1, 1))


def _xla(x, k, padding=SAME3):
  return lax.conv_general_dilated(x, k, (1, 1), padding, dimension_numbers=DN)


def _native(x, k, padding=SAME3):
  return native_conv.conv(x, k, padding)


def _rel(a, b) -> float:
  a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
  return float(np.max(np.abs(a - b)) / max(1.0, np.max(np.abs(b))))


def _random(shape, seed):
  return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


def _value_and_grads(conv, x, k, g):
  y, pullback = jax.vjp(conv, x, k)
  return (y, *pullback(g))


def _signatures() -> list[tuple]:
  """(H, W, Cin, Cout, kernel size, pads) of every conv of LeNet-5, ResNet-20,
  VGG-16 and PreResNet-56 (full width) that the native kernels support."""
  found = set()
  for name, shape in (
    ("lenet5_relu", (32, 32, 1)),
    ("resnet20", (32, 32, 3)),
    ("vgg16", (32, 32, 3)),
    ("preresnet56", (32, 32, 3)),
  ):
    model = models.create(name)
    for conv in conv_impl.conv_layers(model, (1, *shape)).values():
      _, h, w, cin = conv.input_shape
      if native_conv.supports(
        conv.input_shape, conv.kernel_shape, conv.strides, conv.padding, jnp.float32
      ):
        kernel = tuple(conv.kernel_shape[:2])
        found.add((h, w, cin, conv.kernel_shape[3], kernel, conv.padding))
  return sorted(found)


SIGNATURES = _signatures()
# Lane tiles: 16 + 8 + a masked tail of 3 output channels, a tail alone, an
# input-channel count that is not a multiple of 4, one output channel; other
# kernels and uneven pads.
ODD = [
  (5, 7, 3, 5, (3, 3), SAME3),
  (6, 13, 13, 27, (3, 3), SAME3),
  (4, 4, 9, 8, (3, 3), SAME3),
  (8, 9, 4, 1, (3, 3), SAME3),
  (3, 3, 1, 16, (3, 3), SAME3),
  (9, 11, 5, 10, (5, 5), ((0, 0), (0, 0))),
  (9, 11, 5, 10, (5, 3), ((2, 1), (0, 2))),
  (7, 7, 6, 9, (1, 1), ((0, 0), (0, 0))),
  (6, 8, 4, 12, (2, 4), ((1, 0), (3, 1))),
  # Few output channels (forward or input gradient): row dot products
  # (`UseRowDot`), also with uneven pads and packed weights too big for the
  # kernel's stack buffer.
  (6, 10, 16, 5, (5, 5), ((2, 1), (0, 3))),
  (5, 6, 7, 2, (3, 2), ((1, 1), (1, 0))),
  (9, 9, 64, 2, (7, 7), ((3, 3), (3, 3))),
]


def test_the_families_have_native_convs():
  resnet = [(32, 32, 3, 16, (3, 3), SAME3), (8, 8, 64, 64, (3, 3), SAME3)]
  assert all(s in SIGNATURES for s in resnet)
  assert (2, 2, 512, 512, (3, 3), SAME3) in SIGNATURES  # VGG-16's last stage.
  assert (14, 14, 6, 16, (5, 5), ((0, 0), (0, 0))) in SIGNATURES  # LeNet-5's conv2.


@pytest.mark.parametrize("h, w, cin, cout, kernel, padding", SIGNATURES + ODD, ids=str)
def test_output_and_both_gradients_equal_xla(h, w, cin, cout, kernel, padding):
  n = 2 if h * w * cin * cout < 2**20 else 1
  x, k = _random((n, h, w, cin), 0), _random((*kernel, cin, cout), 1)
  out = _xla(x, k, padding)
  g = _random(out.shape, 2)

  def run(conv):
    return _value_and_grads(lambda x, k: conv(x, k, padding), x, k, g)

  ours, theirs = jax.jit(lambda: run(_native))(), run(_xla)
  for name, a, b in zip(("output", "input grad", "kernel grad"), ours, theirs):
    assert a.shape == b.shape
    assert _rel(a, b) < 1e-5, name


@pytest.mark.parametrize(
  "axes", [(0, None), (None, 0), (0, 0)], ids=["x", "kernel", "both"]
)
def test_vmap_broadcasts_leading_dims(axes):
  x, k = _random((3, 2, 6, 6, 5), 0), _random((3, 3, 3, 5, 9), 1)
  g = _random((3, 2, 6, 6, 9), 2)
  x_in = x if axes[0] == 0 else x[0]
  k_in = k if axes[1] == 0 else k[0]

  def both(conv):
    return jax.vmap(lambda x, k, g: _value_and_grads(conv, x, k, g), (*axes, 0))(
      x_in, k_in, g
    )

  for a, b in zip(jax.jit(lambda: both(_native))(), both(_xla)):
    assert a.shape == b.shape and _rel(a, b) < 1e-5
  # Nested vmap (2 leading dims).
  nested = jax.vmap(jax.vmap(_native, (0, None)), (None, 0))
  want = jax.vmap(jax.vmap(_xla, (0, None)), (None, 0))
  assert _rel(nested(x, k), want(x, k)) < 1e-5


def test_auto_picks_native_for_resnet_convs_and_xla_inside_xla_only():
  x, k = jnp.zeros((2, 32, 32, 16)), jnp.zeros((3, 3, 16, 16))
  auto = conv_impl.function("auto")

  def jaxpr():
    return str(
      jax.make_jaxpr(lambda a, b: auto(a, b, (1, 1), "SAME", dimension_numbers=DN))(
        x, k
      )
    )

  assert "jaxprune_conv_forward" in jaxpr()
  with native_conv.xla_only():
    assert "conv_general_dilated" in jaxpr()
  # 4x4 outputs waste the 6-pixel tile: the rule leaves them to matmul / XLA.
  assert not conv_impl.prefer_native((2, 4, 4, 16), (3, 3, 16, 16), (1, 1), "SAME")
  assert not conv_impl.prefer_native((2, 32, 32, 16), (3, 3, 16, 16), (2, 2), "SAME")


def test_explicit_native_names_why_it_cannot_run(monkeypatch):
  monkeypatch.setattr(native_conv, "unavailable", lambda: "no C++ compiler (test)")
  model = models.create("resnet20", conv_impl="native", width_multiplier=0.125)
  with pytest.raises(ValueError, match=r"model.conv_impl='native' cannot run here: no"):
    model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)), train=False)


def test_masked_resnet_step_matches_xla_and_stays_masked():
  tx = optax.sgd(0.1, momentum=0.9)
  x = _random((8, 32, 32, 3), 3)
  y = jnp.arange(8) % 10
  results = {}
  for impl in ("native", "xla"):
    model = models.create("resnet20", conv_impl=impl, width_multiplier=0.5)
    variables = model.init(jax.random.key(0), x, train=False)
    state = state_lib.state_from_params(
      variables["params"], variables.get("batch_stats", {}), tx, jax.random.key(0)
    )
    masks = jax.tree_util.tree_map(
      lambda p: (jax.random.uniform(jax.random.key(5), p.shape) < 0.6).astype(p.dtype),
      state.params,
    )
    state = state.replace(
      params=state_lib.apply_masks(state.params, masks), masks=masks
    )
    step = jitted_step(model, tx, steps_lib.PLAIN, 0.1)
    for _ in range(2):
      state, metrics = step(state, x, y)
    results[impl] = (state.params, metrics, masks)
  (p_native, m_native, masks), (p_xla, m_xla, _) = results["native"], results["xla"]
  for a, b, m in zip(
    jax.tree_util.tree_leaves(p_native),
    jax.tree_util.tree_leaves(p_xla),
    jax.tree_util.tree_leaves(masks),
  ):
    assert _rel(a, b) < 1e-4
    assert np.all(np.asarray(a)[np.asarray(m) == 0] == 0)
  assert abs(float(m_native["loss"]) - float(m_xla["loss"])) < 1e-4


@pytest.mark.parametrize("method", ["jacrev", "jacfwd"])
def test_jacobian_analysis_runs_jacfwd_on_xla_convs_and_jacrev_on_native(
  method, monkeypatch
):
  # jacfwd cannot differentiate a custom VJP, so the analysis traces XLA's
  # convs for it; jacrev keeps the native kernels (faster: one call per conv
  # for all examples and cotangents). Either way the values equal XLA's.
  x = _random((3, 32, 32, 3), 4)
  nets = {}
  for impl in ("native", "xla"):
    model = models.create("resnet20", conv_impl=impl, width_multiplier=0.25)
    nets[impl] = (model, model.init(jax.random.key(0), x, train=False))

  calls = []
  forward = native_conv._forward

  def counted(*args):
    if method == "jacfwd":
      raise AssertionError("jacfwd traced a native kernel")
    calls.append(args[0].shape)
    return forward(*args)

  monkeypatch.setattr(native_conv, "_forward", counted)
  out = {}
  for impl, (model, variables) in nets.items():

    def apply_fn(z, model=model, variables=variables):
      return model.apply(variables, z, train=False)

    out[impl] = analysis.jacobian_singular_values(apply_fn, x, method=method)
  assert bool(calls) == (method == "jacrev")
  assert _rel(out["native"], out["xla"]) < 1e-5
