"""The slices + matmul convolution (`jaxprune.models.conv_impl`) against XLA's.

Every distinct conv signature (kernel, stride, padding, input size) of one
model per conv family is checked: output, input gradient and kernel gradient
of `matmul_conv` equal ``lax.conv_general_dilated`` to 1e-5 (relative to the
largest value). The families' other members repeat these signatures (deeper
ResNets/PreResNets, VGG-11/19, WRN and DenseNet use 3x3 stride 1/2 pad 1 and
1x1 convs on the same CIFAR sizes); the ImageNet ResNet runs at 64x64 instead
of 224x224, and channels are capped at 4 (the code path does not depend on
them), to keep this fast. Then whole models, masks, the ``auto`` rule and the
config field.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from step_helpers import jitted_step

from jaxprune import config_utils, models
from jaxprune.models import conv_impl, native_conv
from jaxprune.train import state as state_lib
from jaxprune.train import steps as steps_lib
from jaxprune.train import validation

# (model, overrides, per-example input): LeNet-5's 5x5 convs down to a 1x1
# output; ResNet-20 with 1x1 stride-2 shortcut convs; VGG-16 down to 2x2;
# the ImageNet bottleneck ResNet's 7x7 stride-2 stem and strided 1x1/3x3.
FAMILY_MODELS = (
  ("lenet5_relu", {}, (32, 32, 1)),
  ("resnet20", {"shortcut": "B_conv"}, (32, 32, 3)),
  ("vgg16", {}, (32, 32, 3)),
  ("resnet50", {}, (64, 64, 3)),
)
DN = ("NHWC", "HWIO", "NHWC")
MAX_CHANNELS = 4
# Numerical checks of short programs: compile time dominates (conftest).
pytestmark = pytest.mark.usefixtures("fast_compiles")


@pytest.fixture(scope="module")
def signatures() -> list[conv_impl.ConvShape]:
  """One conv per (kernel, stride, padding, input size) over FAMILY_MODELS."""
  out = {}
  for name, overrides, shape in FAMILY_MODELS:
    model = models.create(name, width_multiplier=0.125, **overrides)
    for conv in conv_impl.conv_layers(model, (2, *shape)).values():
      # Sizes up to 8 each (2x2 and 4x4 outputs are cases of the rule), larger
      # ones by parity (what strided slicing depends on).
      h = conv.input_shape[1]
      key = (conv.kernel_shape[:2], conv.strides, conv.padding, h if h <= 8 else h % 2)
      n, h, w, c = conv.input_shape
      kh, kw, _, o = conv.kernel_shape
      cin, cout = min(c, MAX_CHANNELS), min(o, MAX_CHANNELS)
      out.setdefault(
        key, conv._replace(input_shape=(n, h, w, cin), kernel_shape=(kh, kw, cin, cout))
      )
  return list(out.values())


def _close(got, want, tol=1e-5):
  got, want = np.asarray(got), np.asarray(want)
  scale = max(1.0, float(np.max(np.abs(want))))
  np.testing.assert_allclose(got, want, rtol=0, atol=tol * scale)


def _call(fn, conv: conv_impl.ConvShape):
  return lambda a, b: fn(a, b, conv.strides, conv.padding, dimension_numbers=DN)


def test_every_conv_signature_matches_xla(signatures):
  # 1x1/3x3/5x5/7x7, stride 1/2, padding 0/1/3, inputs from 2x2 to 64x64.
  assert len(signatures) >= 12
  rng = np.random.default_rng(0)
  xs = [
    jnp.asarray(rng.standard_normal(c.input_shape), jnp.float32) for c in signatures
  ]
  ks = [
    jnp.asarray(rng.standard_normal(c.kernel_shape), jnp.float32) for c in signatures
  ]
  out = [
    jax.eval_shape(_call(jax.lax.conv_general_dilated, c), x, k)
    for c, x, k in zip(signatures, xs, ks)
  ]
  cts = [jnp.asarray(rng.standard_normal(o.shape), jnp.float32) for o in out]

  def all_convs(fn):
    def run(xs, ks, cts):  # One program per impl: one compile for all convs.
      results = []
      for conv, x, k, ct in zip(signatures, xs, ks, cts):
        y, vjp = jax.vjp(_call(fn, conv), x, k)
        results.append((y, *vjp(ct)))
      return results

    return jax.jit(run)(xs, ks, cts)

  want = all_convs(jax.lax.conv_general_dilated)
  got = all_convs(conv_impl.matmul_conv)
  for conv, g, w in zip(signatures, got, want, strict=True):
    for name, a, b in zip(("output", "input grad", "kernel grad"), g, w):
      try:
        _close(a, b)
      except AssertionError as e:
        raise AssertionError(f"{conv}: {name}") from e


def test_same_padding_string_matches_xla():
  x = jax.random.normal(jax.random.key(0), (2, 9, 8, 3))
  k = jax.random.normal(jax.random.key(1), (3, 3, 3, 4))
  for strides in ((1, 1), (2, 2)):
    conv = conv_impl.ConvShape(x.shape, k.shape, strides, "SAME")
    want = jax.jit(_call(jax.lax.conv_general_dilated, conv))(x, k)
    _close(jax.jit(_call(conv_impl.matmul_conv, conv))(x, k), want)


def random_variables(model, input_shape):
  """Variables of `model`'s shapes filled from numpy (a compiled init would
  cost more than the checks)."""
  shapes = jax.eval_shape(
    lambda: model.init(jax.random.key(0), jnp.zeros((1, *input_shape)), train=False)
  )
  rng = np.random.default_rng(0)
  return jax.tree_util.tree_map(
    lambda a: jnp.asarray(0.3 * rng.standard_normal(a.shape) + 0.1, a.dtype), shapes
  )


@pytest.fixture(scope="module")
def resnet20():
  """Narrow ResNet-20 (B_conv shortcuts: 1x1 stride-2 convs too) per impl."""
  nets = {
    impl: models.create(
      "resnet20", width_multiplier=0.25, shortcut="B_conv", conv_impl=impl
    )
    for impl in ("xla", "matmul")
  }
  variables = random_variables(nets["xla"], (32, 32, 3))
  x = jax.random.normal(jax.random.key(1), (2, 32, 32, 3))
  y = jnp.arange(2)
  return nets, variables, x, y


def test_params_do_not_depend_on_the_impl(resnet20):
  # Same names, shapes and dtypes (masks, surgery, checkpoints see no change).
  nets, variables, *_ = resnet20
  shapes = jax.eval_shape(
    lambda: nets["matmul"].init(
      jax.random.key(0), jnp.zeros((1, 32, 32, 3)), train=False
    )
  )
  assert jax.tree_util.tree_map(lambda a: (a.shape, a.dtype), shapes) == (
    jax.tree_util.tree_map(lambda a: (a.shape, a.dtype), variables)
  )


def test_whole_resnet20_forward_and_grads_match(resnet20):
  nets, variables, x, y = resnet20

  def loss(params, net):
    logits, _ = net.apply(
      {**variables, "params": params}, x, train=True, mutable=["batch_stats"]
    )
    return steps_lib.cross_entropy(logits, y).mean(), logits

  results = {
    impl: jax.jit(jax.value_and_grad(loss, has_aux=True), static_argnums=1)(
      variables["params"], net
    )
    for impl, net in nets.items()
  }
  (_, logits_x), grads_x = results["xla"]
  (_, logits_m), grads_m = results["matmul"]
  _close(logits_m, logits_x, 1e-4)
  jax.tree_util.tree_map(lambda a, b: _close(a, b, 1e-4), grads_m, grads_x)


def test_masked_lenet_stays_exactly_masked_under_matmul():
  model = models.create("lenet5_relu", conv_impl="matmul", widths=(4, 8, 16, 12))
  tx = optax.sgd(0.1, momentum=0.9)
  params = random_variables(model, (32, 32, 1))["params"]
  state = state_lib.state_from_params(params, {}, tx, jax.random.key(0))
  masks = jax.tree_util.tree_map(
    lambda p: (jax.random.uniform(jax.random.key(3), p.shape) < 0.5).astype(p.dtype),
    state.params,
  )
  state = state.replace(params=state_lib.apply_masks(state.params, masks), masks=masks)
  x = jax.random.normal(jax.random.key(1), (8, 32, 32, 1))
  y = jnp.arange(8) % 10
  step = jitted_step(model, tx, steps_lib.PLAIN, 0.1)
  state, _ = step(state, x, y)
  for path in (("conv0", "kernel"), ("conv1", "kernel"), ("conv2", "kernel")):
    kernel, mask = state.params, masks
    for part in path:
      kernel, mask = kernel[part], mask[part]
    assert np.all(np.asarray(kernel)[np.asarray(mask) == 0] == 0)
    assert np.any(np.asarray(kernel)[np.asarray(mask) == 1] != 0)


def _uses_xla_conv(fn, conv: conv_impl.ConvShape) -> bool:
  x = jnp.zeros(conv.input_shape)
  k = jnp.zeros(conv.kernel_shape)
  jaxpr = jax.make_jaxpr(
    lambda a, b: fn(a, b, conv.strides, conv.padding, dimension_numbers=DN)
  )(x, k)
  return "conv_general_dilated" in str(jaxpr)


LENET_CONV0 = conv_impl.ConvShape(
  (2, 32, 32, 1), (5, 5, 1, 6), (1, 1), ((0, 0), (0, 0))
)
RESNET_CONV = conv_impl.ConvShape(
  (2, 32, 32, 16), (3, 3, 16, 16), (1, 1), ((1, 1), (1, 1))
)


def test_auto_follows_the_rule_on_cpu_and_picks_xla_elsewhere(monkeypatch):
  auto = conv_impl.function("auto")
  # Without the native kernels (tests/test_native_conv.py covers them): the
  # matmul rule.
  monkeypatch.setattr(native_conv, "usable", lambda: False)
  for conv in (LENET_CONV0, RESNET_CONV):
    rule = conv_impl.prefer_matmul(
      conv.input_shape, conv.kernel_shape, conv.strides, conv.padding
    )
    monkeypatch.setattr(jax, "default_backend", lambda: "cpu")
    assert _uses_xla_conv(auto, conv) == (not rule)
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert _uses_xla_conv(auto, conv)
  # The measured table: LeNet-5's first conv is faster as a matmul, ResNet's
  # 16-channel 3x3 convs are not (experiments/benchmarks/conv_shapes.md).
  assert conv_impl.prefer_matmul(*LENET_CONV0[:2], (1, 1), "VALID")
  assert not conv_impl.prefer_matmul(*RESNET_CONV[:2], (1, 1), "SAME")
  vgg_2x2 = ((2, 2, 2, 512), (3, 3, 512, 512))  # A dense layer in disguise.
  assert conv_impl.prefer_matmul(*vgg_2x2, (1, 1), ((1, 1), (1, 1)))
  # VGG-16's 32x32 64-channel conv: XLA's filter gradient is 3.8x slower there.
  vgg_conv1 = ((2, 32, 32, 64), (3, 3, 64, 64))
  assert conv_impl.prefer_matmul(*vgg_conv1, (1, 1), ((1, 1), (1, 1)))
  assert not _uses_xla_conv(conv_impl.function("matmul"), RESNET_CONV)
  assert _uses_xla_conv(conv_impl.function("xla"), LENET_CONV0)


def test_bad_conv_impl_is_a_one_line_error():
  with pytest.raises(
    ValueError,
    match=r"^model.conv_impl must be one of \['auto', 'xla', 'matmul', 'native'\], "
    r"got 'fast'$",
  ):
    models.create("resnet20", conv_impl="fast")
  config = config_utils.base_config()
  config.model.conv_impl = "cudnn"
  with pytest.raises(
    ValueError, match=r"^model.conv_impl must be one of .*got 'cudnn'$"
  ):
    validation.validate(config)


def test_conv_impl_moves_no_existing_config_hash():
  config = config_utils.base_config()
  before = config_utils.config_hash(config)
  with config.unlocked():
    del config.model["conv_impl"]  # A config written before the field existed.
  assert config_utils.config_hash(config) == before
  config = config_utils.base_config()
  config.model.conv_impl = "xla"
  assert config_utils.config_hash(config) != before  # A chosen impl is recorded.


def test_matmul_refuses_what_it_does_not_implement():
  x, k = jnp.zeros((1, 8, 8, 4)), jnp.zeros((3, 3, 2, 4))
  with pytest.raises(ValueError, match="feature_group_count=1"):
    conv_impl.matmul_conv(
      x, k, (1, 1), "SAME", dimension_numbers=DN, feature_group_count=2
    )
  # auto falls back to XLA there (no zoo model has grouped convs).
  out = conv_impl.function("auto")(
    x, k, (1, 1), "SAME", dimension_numbers=DN, feature_group_count=2
  )
  assert out.shape == (1, 8, 8, 4)


def test_materialized_is_the_identity_bit_for_bit():
  special = [0.0, -0.0, 1.5, -2.25, 1e-40, -1e38, np.inf, -np.inf, np.nan]
  x = jnp.asarray(special + list(np.random.default_rng(0).normal(size=23)), "float32")
  y = np.asarray(jax.jit(conv_impl.materialized)(x))
  xs = np.asarray(x)
  number = ~np.isnan(xs)
  # XLA:CPU flushes subnormals to zero in every arithmetic op (the ReLU that
  # produced a conv input already did), so 1e-40 may come back as 0.
  normal = number & (np.abs(xs) != np.float32(1e-40))
  assert np.array_equal(y[normal].view(np.int32), xs[normal].view(np.int32))
  assert y[4] in (xs[4], 0.0)
  assert np.all(np.isnan(y[~number]))
  # Its derivative is the identity, forward and reverse, under vmap too.
  w = jnp.arange(32.0)
  grad = jax.grad(lambda v: jnp.sum(conv_impl.materialized(v) * w))(jnp.ones(32))
  np.testing.assert_array_equal(grad, w)
  _, tangent = jax.jvp(conv_impl.materialized, (x,), (w,))
  np.testing.assert_array_equal(tangent, w)
  batched = jax.vmap(conv_impl.materialized)(x.reshape(4, 8))
  np.testing.assert_array_equal(np.isnan(batched).ravel(), ~number)


def _conv_chain_filter_grad_hlo() -> str:
  """Compiled HLO of the kernel gradient of three 16-channel convs joined by
  scale/residual/ReLU chains (the pattern of a ResNet stage), under `auto`."""
  auto = conv_impl.function("auto")
  x = jax.random.normal(jax.random.key(0), (8, 16, 16, 16))

  def loss(w):
    y = x
    for _ in range(3):
      z = auto(y, w, (1, 1), ((1, 1), (1, 1)), dimension_numbers=DN)
      y = jnp.maximum(z * 1.5 + y, 0)
    return jnp.sum(y**2)

  w = jnp.ones((3, 3, 16, 16)) * 0.01
  return jax.jit(jax.grad(loss)).lower(w).compile().as_text()


def _recomputed_transposes(hlo: str) -> list[str]:
  """The [C, H, W, N] transposes of conv inputs (the filter gradient's lhs)
  whose operand is not a stored array (a fusion parameter) but recomputed."""
  found = []
  for line in hlo.splitlines():
    if "transpose(" in line and "dimensions={3,1,2,0}" in line:
      operand = line.split("transpose(", 1)[1].split(")", 1)[0]
      if not operand.startswith("%param"):
        found.append(line.strip())
  return found


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="XLA:CPU fusion")
def test_conv_inputs_are_transposed_from_memory_not_recomputed(monkeypatch):
  # XLA:CPU fuses the producers of a conv input into the transpose its filter
  # gradient needs (strided reads, recomputation); `materialized` stops it.
  # (XLA's kernel: the native one, where built, has no such transposes.)
  monkeypatch.setattr(native_conv, "usable", lambda: False)
  hlo = _conv_chain_filter_grad_hlo()
  assert "dimensions={3,1,2,0}" in hlo  # The test looks at the right thing.
  assert _recomputed_transposes(hlo) == []
  monkeypatch.setattr(conv_impl, "materialized", lambda x: x)
  assert _recomputed_transposes(_conv_chain_filter_grad_hlo())  # Can fail.
