"""Tests for the model registry in ``jaxprune.models``.

Parameter counts are checked against PyTorch re-statements of the seed
repositories' models (conv + BN affine + fc; BN running statistics excluded).
Shapes use ``jax.eval_shape`` where only shapes matter, to keep the file fast.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxprune import models
from jaxprune.models import resnet_cifar

MNIST_SHAPE = (2, 32, 32, 1)
CIFAR_SHAPE = (2, 32, 32, 3)
SMALL_CIFAR_SHAPE = (2, 8, 8, 3)  # ResNets are size-agnostic; keeps CPU time low.

# Counts of trainable parameters (10 classes), confirmed by building the
# PyTorch models with torch 2.13 in a throwaway script.
PARAM_COUNTS = {
  # MingSun-Tse/TPP:model/mlp.py FCNet(d_image=1024, width=100, n_fc=7).
  "mlp7_linear": 154_010,
  "mlp7_relu": 154_010,
  # MingSun-Tse/TPP:model/lenet5.py lenet5 / lenet5_linear at 32x32x1.
  "lenet5_linear": 61_706,
  "lenet5_relu": 61_706,
  # Option A (parameter-free shortcut):
  # Eric-mingjie/rethinking-network-pruning:cifar/l1-norm-pruning/models/resnet.py
  # and akamaster-style MingSun-Tse/TPP:model/resnet_cifar10.py agree.
  "resnet20": 269_722,
  "resnet32": 464_154,
  "resnet44": 658_586,
  "resnet56": 853_018,
  "resnet110": 1_727_962,
}
# Option B (1x1 conv + BN projection on the two downsampling blocks),
# facebookresearch/open_lth:models/cifar_resnet.py and TPP ``resnet56_B``.
# (These, e.g. 272,474 for ResNet-20, are often misquoted as option-A counts.)
PARAM_COUNTS_B_CONV = {
  "resnet20": 272_474,
  "resnet32": 466_906,
  "resnet44": 661_338,
  "resnet56": 855_770,
  "resnet110": 1_730_714,
}
RESNETS = ["resnet20", "resnet32", "resnet44", "resnet56", "resnet110"]
FIRST_WAVE = ["mlp7_relu", "mlp7_linear", "lenet5_relu", "lenet5_linear", *RESNETS]


def _input_shape(name: str, small: bool = False) -> tuple[int, ...]:
  if name.startswith(("mlp", "lenet")):
    return MNIST_SHAPE
  return SMALL_CIFAR_SHAPE if small else CIFAR_SHAPE


@functools.cache  # Flax modules are hashable; tracing ResNet-110 is not free.
def _abstract_variables(model, shape):
  return jax.eval_shape(
    lambda: model.init(jax.random.key(0), jnp.zeros(shape), train=False)
  )


# XLA:CPU spends most test time optimising code that runs once; with these
# options a ResNet-20 init compiles ~5x faster.
FAST_COMPILE = {
  "xla_backend_optimization_level": 0,
  "xla_llvm_disable_expensive_passes": True,
}


def _jit(fn):
  return jax.jit(fn, compiler_options=FAST_COMPILE)


def _init(model, x, train: bool = False):
  """Jitted init: one compile instead of many eager per-op compiles on CPU."""
  return _jit(lambda key, x: model.init(key, x, train=train))(jax.random.key(0), x)


def _tiny_resnet(shortcut: str = "A_stride_pad") -> resnet_cifar.CifarResNet:
  """Depth-8 (one block per stage) net for tests that must execute a ResNet."""
  widths = models.ResNetWidths((4, 7, 12), ((3,), (4,), (5,)))
  return resnet_cifar.CifarResNet(widths=widths, shortcut=shortcut)


def _count(tree) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def _shapes(tree):
  return jax.tree.map(lambda x: x.shape, tree)


def test_names():
  assert models.names()[:9] == [
    "mlp7_relu",
    "mlp7_linear",
    "lenet5_relu",
    "lenet5_linear",
    "resnet20",
    "resnet32",
    "resnet44",
    "resnet56",
    "resnet110",
  ]


@pytest.mark.parametrize("name", FIRST_WAVE)
def test_param_counts(name):
  variables = _abstract_variables(models.create(name), _input_shape(name))
  assert _count(variables["params"]) == PARAM_COUNTS[name]
  assert ("batch_stats" in variables) == name.startswith("resnet")


@pytest.mark.parametrize("name", RESNETS)
def test_param_counts_b_conv(name):
  model = models.create(name, shortcut="B_conv")
  variables = _abstract_variables(model, CIFAR_SHAPE)
  assert _count(variables["params"]) == PARAM_COUNTS_B_CONV[name]


def _pytorch_basic_resnet_count(n: int, shortcut_conv: bool, classes: int = 10) -> int:
  """Trainable params of a 6n+2 BasicBlock CIFAR ResNet, summed over the
  PyTorch layer list (Rethinking's weight-level `resnet(depth)`: stem conv 3->16
  + BN, n blocks per stage of widths 16/32/64, a 1x1 conv + BN projection where
  the stride or width changes, Linear head); BN running stats excluded."""
  layers = [("conv", 3, 3, 16), ("bn", 16)]
  in_w = 16
  for s, w in enumerate((16, 32, 64)):
    for b in range(n):
      layers += [("conv", 3, in_w, w), ("bn", w), ("conv", 3, w, w), ("bn", w)]
      if shortcut_conv and ((s > 0 and b == 0) or in_w != w):
        layers += [("conv", 1, in_w, w), ("bn", w)]
      in_w = w
  layers.append(("fc", in_w, classes))
  sizes = {
    "conv": lambda k, i, o: k * k * i * o,
    "bn": lambda c: 2 * c,
    "fc": lambda i, o: i * o + o,
  }
  return sum(sizes[kind](*dims) for kind, *dims in layers)


def test_resnet50_cifar_is_rethinkings_basic_block_resnet50():
  # The layer-list count reproduces the torch-confirmed ResNet-56 (option B).
  assert _pytorch_basic_resnet_count(9, True) == PARAM_COUNTS_B_CONV["resnet56"]
  model = models.create("resnet50_cifar")
  variables = _abstract_variables(model, CIFAR_SHAPE)
  assert _count(variables["params"]) == _pytorch_basic_resnet_count(8, True)
  assert model.shortcut == "B_conv"
  assert model.widths == resnet_cifar.default_widths(50)
  assert [len(b) for b in model.widths.blocks] == [8, 8, 8]
  params = variables["params"]
  assert "shortcut_conv" in params["stage2_block0"]
  assert "shortcut_conv" not in params["stage0_block0"]
  assert models.read_widths("resnet50_cifar", params) == model.widths


def test_param_names():
  params = _abstract_variables(models.create("resnet20"), CIFAR_SHAPE)["params"]
  assert sorted(params["stage1_block0"]) == ["bn1", "bn2", "conv1", "conv2"]
  assert {"stem_conv", "stem_bn", "head", "stage2_block2"} <= set(params)
  params = _abstract_variables(
    models.create("resnet20", shortcut="B_conv"), CIFAR_SHAPE
  )["params"]
  assert "shortcut_conv" in params["stage1_block0"]
  assert "shortcut_conv" not in params["stage0_block0"]
  params = _abstract_variables(models.create("lenet5_relu"), MNIST_SHAPE)["params"]
  assert sorted(params) == ["conv0", "conv1", "conv2", "fc0", "head"]
  params = _abstract_variables(models.create("mlp7_relu"), MNIST_SHAPE)["params"]
  assert sorted(params) == [f"fc{i}" for i in range(6)] + ["head"]


@pytest.mark.parametrize("name", FIRST_WAVE)
def test_forward_shape(name):
  model = models.create(name, num_classes=7)
  x = jax.ShapeDtypeStruct(_input_shape(name), jnp.float32)
  variables = _abstract_variables(model, x.shape)
  for train in (False, True):
    out = jax.eval_shape(
      lambda v, x, train=train: model.apply(v, x, train=train, mutable=["batch_stats"]),
      variables,
      x,
    )
    assert out[0].shape == (2, 7)
    assert out[0].dtype == jnp.float32


@pytest.mark.parametrize("name", ["mlp7_relu", "lenet5_linear"])
def test_forward_without_bn_is_deterministic_and_ignores_train(name):
  model = models.create(name)
  x = jax.random.normal(jax.random.key(1), MNIST_SHAPE)
  variables = _init(model, x, train=True)
  assert list(variables) == ["params"]
  apply = _jit(
    lambda v, x: (model.apply(v, x, train=False), model.apply(v, x, train=True))
  )
  logits, train_logits = apply(variables, x)
  assert logits.shape == (2, 10)
  assert bool(jnp.all(jnp.isfinite(logits)))
  np.testing.assert_array_equal(logits, train_logits)
  np.testing.assert_array_equal(logits, apply(variables, x)[0])


@pytest.fixture(scope="module")
def tiny_resnet_variables():
  """Init of ``_tiny_resnet()``; valid for both option-A variants (no params)."""
  return _init(_tiny_resnet(), jnp.zeros(SMALL_CIFAR_SHAPE))


def test_batch_norm_train_updates_stats_eval_does_not(tiny_resnet_variables):
  model = _tiny_resnet()
  x = jax.random.normal(jax.random.key(1), SMALL_CIFAR_SHAPE) + 3.0
  variables = tiny_resnet_variables

  def train_and_eval(v, x):
    _, train_updates = model.apply(
      v,
      x,
      train=True,
      mutable=["batch_stats", "intermediates"],
      capture_intermediates=lambda mdl, _: mdl.name == "stem_conv",
    )
    _, eval_updates = model.apply(v, x, train=False, mutable=["batch_stats"])
    return train_updates, eval_updates

  updates, eval_updates = _jit(train_and_eval)(variables, x)
  conv_out = updates["intermediates"]["stem_conv"]["__call__"][0]
  stats = updates["batch_stats"]["stem_bn"]
  # PyTorch momentum 0.1: running = 0.9 * running + 0.1 * batch statistic,
  # starting from mean 0 and var 1. (Flax uses the biased batch variance.)
  np.testing.assert_allclose(
    stats["mean"], 0.1 * conv_out.mean(axis=(0, 1, 2)), rtol=1e-5, atol=1e-6
  )
  np.testing.assert_allclose(
    stats["var"], 0.9 + 0.1 * conv_out.var(axis=(0, 1, 2)), rtol=1e-5, atol=1e-6
  )
  changed = jax.tree.map(
    lambda a, b: not np.allclose(a, b), updates["batch_stats"], variables["batch_stats"]
  )
  assert all(jax.tree.leaves(changed))
  same = jax.tree.map(
    np.array_equal, eval_updates["batch_stats"], variables["batch_stats"]
  )
  assert all(jax.tree.leaves(same))


@pytest.fixture(scope="module")
def resnet20_and_variables():
  """ResNet-20 (default init) on 8x8 inputs, shared to compile its init once."""
  model = models.create("resnet20")
  return model, _init(model, jnp.zeros((8, 8, 8, 3)))


def _sgd_losses(model, variables, x, num_steps: int = 4) -> list[float]:
  labels = jnp.arange(x.shape[0]) % 10
  params = variables["params"]
  state = {k: v for k, v in variables.items() if k != "params"}

  def loss_fn(params, state):
    logits, new_state = model.apply(
      {"params": params, **state}, x, train=True, mutable=list(state)
    )
    onehot = jax.nn.one_hot(labels, 10)
    loss = -jnp.mean(jnp.sum(onehot * jax.nn.log_softmax(logits), axis=-1))
    return loss, new_state

  @_jit
  def step(params, state):
    (loss, new_state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, state)
    params = jax.tree.map(lambda p, g: p - 0.05 * g, params, grads)
    return params, new_state, loss

  losses = []
  for _ in range(num_steps):
    params, state, loss = step(params, state)
    losses.append(float(loss))
  return losses


def test_sgd_reduces_loss_mlp7():
  model = models.create("mlp7_relu")
  x = jax.random.normal(jax.random.key(1), (8, 32, 32, 1))
  losses = _sgd_losses(model, _init(model, x), x)
  assert losses[-1] < losses[0], losses


def test_sgd_reduces_loss_resnet20(resnet20_and_variables):
  model, variables = resnet20_and_variables
  x = jax.random.normal(jax.random.key(1), (8, 8, 8, 3))
  losses = _sgd_losses(model, variables, x)
  assert losses[-1] < losses[0], losses


# Reduced widths: every layer changed, stage widths non-decreasing (option A).
REDUCED_RESNET20 = models.ResNetWidths((4, 7, 12), ((3, 2, 5), (4, 1, 6), (7, 8, 2)))


@pytest.mark.parametrize(
  "name,widths",
  [
    ("mlp7_relu", (7, 8, 9, 10, 11, 12)),
    ("mlp7_linear", (1, 2, 3, 4, 5, 6)),
    ("lenet5_relu", (3, 5, 7, 9)),
    ("lenet5_linear", (2, 4, 6, 8)),
  ],
)
def test_reduced_widths_round_trip_flat(name, widths):
  model = models.create(name, widths=list(widths))
  params = _abstract_variables(model, MNIST_SHAPE)["params"]
  read = models.read_widths(name, params)
  assert read == widths
  rebuilt = _abstract_variables(models.create(name, widths=read), MNIST_SHAPE)
  assert _shapes(rebuilt["params"]) == _shapes(params)
  assert params["head"]["kernel"].shape == (widths[-1], 10)


@pytest.mark.parametrize("shortcut", resnet_cifar.SHORTCUTS)
def test_reduced_widths_round_trip_resnet(shortcut):
  # A dict with lists, as it would come from a config file.
  as_dict = {
    "stages": list(REDUCED_RESNET20.stages),
    "blocks": [list(b) for b in REDUCED_RESNET20.blocks],
  }
  model = models.create("resnet20", shortcut=shortcut, widths=as_dict)
  variables = _abstract_variables(model, SMALL_CIFAR_SHAPE)
  read = models.read_widths("resnet20", variables)
  assert read == REDUCED_RESNET20
  assert read._asdict() == {"stages": (4, 7, 12), "blocks": REDUCED_RESNET20.blocks}
  rebuilt = models.create("resnet20", shortcut=shortcut, widths=read)
  rebuilt_vars = _abstract_variables(rebuilt, SMALL_CIFAR_SHAPE)
  assert _shapes(rebuilt_vars) == _shapes(variables)
  block = variables["params"]["stage1_block2"]
  assert block["conv1"]["kernel"].shape == (3, 3, 7, 6)
  assert block["conv2"]["kernel"].shape == (3, 3, 6, 7)


def test_b_conv_allows_shrinking_stages():
  widths = ((8, 6, 5), ((2, 2, 2), (3, 3, 3), (4, 4, 4)))
  model = models.create("resnet20", shortcut="B_conv", widths=widths)
  params = _abstract_variables(model, SMALL_CIFAR_SHAPE)["params"]
  assert params["stage1_block0"]["shortcut_conv"]["kernel"].shape == (1, 1, 8, 6)
  assert models.read_widths("resnet20", params) == widths
  with pytest.raises(ValueError, match="non-decreasing"):
    models.create("resnet20", widths=widths)


def _expected_shortcut(x: np.ndarray, out_width: int, variant: str) -> np.ndarray:
  """Independent numpy statement of the two option-A layouts (stride 2)."""
  n, h, w, c = x.shape
  if variant == "A_stride_pad":
    sub = x[:, 0::2, 0::2, :]
    first = (out_width - c) // 2  # extra zero channel goes after when odd
  else:
    sub = x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))
    first = 0
  out = np.zeros((*sub.shape[:3], out_width), x.dtype)
  out[..., first : first + c] = sub
  return out


@pytest.mark.parametrize("variant", ["A_stride_pad", "A_avgpool_append"])
def test_option_a_shortcut_layout(variant, tiny_resnet_variables):
  # With zero block convs every block computes ReLU(shortcut(x)) (its BN of
  # zeros is zero), so stage outputs expose the shortcut's padding layout.
  model = _tiny_resnet(variant)
  x = jax.random.normal(jax.random.key(1), SMALL_CIFAR_SHAPE)
  variables = tiny_resnet_variables

  def zero_block_convs(path, leaf):
    keys = [p.key for p in path]
    is_block_conv = keys[1].startswith("stage") and keys[2].startswith("conv")
    return jnp.zeros_like(leaf) if keys[0] == "params" and is_block_conv else leaf

  variables = jax.tree_util.tree_map_with_path(zero_block_convs, variables)
  _, state = _jit(
    lambda v, x: model.apply(
      v, x, train=False, capture_intermediates=True, mutable=["intermediates"]
    )
  )(variables, x)
  inter = state["intermediates"]
  h = np.maximum(np.asarray(inter["stem_bn"]["__call__"][0]), 0.0)
  assert h.min() == 0.0 and h.max() > 0.0  # a non-trivial input to the stages
  np.testing.assert_allclose(inter["stage0_block0"]["__call__"][0], h, atol=1e-6)
  for s, width in [(1, 7), (2, 12)]:
    h = _expected_shortcut(h, width, variant)
    got = np.asarray(inter[f"stage{s}_block0"]["__call__"][0])
    np.testing.assert_allclose(got, h, rtol=1e-6, atol=1e-6)


def test_option_a_stride_one_width_change_pads_channels():
  x = jnp.arange(2 * 3 * 3 * 3, dtype=jnp.float32).reshape(2, 3, 3, 3) + 1.0
  sym = resnet_cifar.pad_shortcut(x, 8, 1, "A_stride_pad")
  app = resnet_cifar.pad_shortcut(x, 8, 1, "A_avgpool_append")
  np.testing.assert_array_equal(sym[..., 2:5], x)  # 5 extra: 2 before, 3 after
  assert not np.any(sym[..., :2]) and not np.any(sym[..., 5:])
  np.testing.assert_array_equal(app[..., :3], x)
  assert not np.any(app[..., 3:])
  with pytest.raises(ValueError, match="B_conv"):
    resnet_cifar.pad_shortcut(x, 2, 1, "A_stride_pad")


def test_b_conv_stride_one_width_change_projects():
  block = resnet_cifar.BasicBlock(inner=4, out=6, stride=1, shortcut="B_conv")
  params = _abstract_variables(block, (1, 4, 4, 3))["params"]
  assert params["shortcut_conv"]["kernel"].shape == (1, 1, 3, 6)
  same = resnet_cifar.BasicBlock(inner=4, out=3, stride=1, shortcut="B_conv")
  assert "shortcut_conv" not in _abstract_variables(same, (1, 4, 4, 3))["params"]


def test_default_init_distributions(resnet20_and_variables):
  params = resnet20_and_variables[1]["params"]
  kernel = params["stage2_block1"]["conv1"]["kernel"]  # 3x3x64x64
  np.testing.assert_allclose(np.std(kernel), np.sqrt(2.0 / (9 * 64)), rtol=0.03)
  np.testing.assert_allclose(np.mean(kernel), 0.0, atol=1e-3)
  np.testing.assert_array_equal(params["stage2_block1"]["bn1"]["scale"], 1.0)
  np.testing.assert_array_equal(params["stage2_block1"]["bn1"]["bias"], 0.0)
  head_bound = 1.0 / np.sqrt(64)
  assert np.abs(params["head"]["kernel"]).max() <= head_bound
  assert np.abs(params["head"]["bias"]).max() <= head_bound
  lenet = models.create("lenet5_relu")
  params = _init(lenet, jnp.zeros(MNIST_SHAPE))["params"]
  bound = 1.0 / np.sqrt(5 * 5 * 16)  # conv2 fan_in
  for leaf in (params["conv2"]["kernel"], params["conv2"]["bias"]):
    assert np.abs(leaf).max() <= bound
    assert np.abs(leaf).max() > 0.9 * bound  # uniform over the full range
  # U(-b, b) has std b / sqrt(3).
  np.testing.assert_allclose(
    np.std(params["conv2"]["kernel"]), bound / np.sqrt(3), rtol=0.03
  )


def test_orthogonal_mlp7_linear_is_exactly_isometric():
  model = models.create("mlp7_linear", init="orthogonal")
  x = jax.random.normal(jax.random.key(1), (1, 32, 32, 1))
  variables = _init(model, x)
  assert all(not np.any(p["bias"]) for p in variables["params"].values())

  def logits(flat):
    return model.apply(variables, flat.reshape(1, 32, 32, 1), train=False)[0]

  jacobian = _jit(jax.jacfwd(logits))(x.reshape(-1))  # (10, 1024)
  singular_values = np.linalg.svd(np.asarray(jacobian, np.float64), compute_uv=False)
  assert singular_values.shape == (10,)
  np.testing.assert_allclose(singular_values, 1.0, atol=1e-5)
  # Independent check: the product of the kernel matrices is the Jacobian.
  product = np.eye(1024)
  for layer in [f"fc{i}" for i in range(6)] + ["head"]:
    product = product @ np.asarray(variables["params"][layer]["kernel"], np.float64)
  np.testing.assert_allclose(product.T, jacobian, atol=1e-5)


def _assert_scaled_orthogonal(conv, gain: float) -> None:
  kernel = np.asarray(conv["kernel"], np.float64)
  matrix = kernel.reshape(-1, kernel.shape[-1]) / gain  # [kh*kw*in, out]
  np.testing.assert_allclose(matrix.T @ matrix, np.eye(kernel.shape[-1]), atol=1e-5)
  if "bias" in conv:
    assert not np.any(conv["bias"])


def test_orthogonal_conv_kernels_lenet():
  model = models.create("lenet5_relu", init="orthogonal")
  params = _init(model, jnp.zeros(MNIST_SHAPE))["params"]
  for layer in ("conv0", "conv1", "conv2"):  # [25, 6], [150, 16], [400, 120]
    _assert_scaled_orthogonal(params[layer], np.sqrt(2.0))
  assert not np.any(params["head"]["bias"])


def test_orthogonal_conv_kernels_resnet():
  # The registry only forwards the scheme; a depth-8 net compiles faster.
  assert models.create("resnet20", init="orthogonal").init_scheme == "orthogonal"
  model = _tiny_resnet().clone(init_scheme="orthogonal")
  params = _init(model, jnp.zeros(SMALL_CIFAR_SHAPE))["params"]
  _assert_scaled_orthogonal(params["stem_conv"], np.sqrt(2.0))  # [27, 4]
  _assert_scaled_orthogonal(params["stage1_block0"]["conv2"], np.sqrt(2.0))  # [36, 7]
  _assert_scaled_orthogonal(params["stage2_block0"]["conv1"], np.sqrt(2.0))  # [63, 5]
  np.testing.assert_array_equal(params["stage2_block0"]["bn1"]["scale"], 1.0)
  assert not np.any(params["head"]["bias"])


@pytest.mark.parametrize(
  "name,overrides,match",
  [
    ("resnet21", {}, "must be one of .*resnet20"),
    ("resnet20", {"shortcut": "C"}, r"shortcut must be one of \['A_stride_pad'"),
    (
      "resnet20",
      {"init": "xavier"},
      r"init must be one of \['default', 'orthogonal'\]",
    ),
    (
      "mlp7_relu",
      {"activation": "tanh"},
      r"activation must be one of \['relu', 'linear'\]",
    ),
    ("mlp7_relu", {"shortcut": "B_conv"}, r"unknown override.*'shortcut'.*allowed"),
    ("lenet5_relu", {"depth": 3}, r"unknown override.*'depth'"),
    ("mlp7_relu", {"widths": (100,) * 5}, "widths .* 6 entries"),
    ("lenet5_relu", {"widths": (6, 16, 0, 84)}, "widths .* positive"),
    (
      "resnet20",
      {"widths": {"stages": (16, 32, 64)}},
      "widths must have exactly the keys",
    ),
    (
      "resnet20",
      {"widths": models.default_widths("resnet32")},
      r"widths\['blocks'\]\[0\] must have 3",
    ),
    ("resnet20", {"widths": ((16, 32), ((16,) * 3,) * 2)}, r"widths\['stages'\].*3"),
  ],
)
def test_bad_names_and_overrides(name, overrides, match):
  with pytest.raises(ValueError, match=match):
    models.create(name, **overrides)


def test_bad_num_classes_and_read_widths_mismatch():
  with pytest.raises(ValueError, match="num_classes"):
    models.create("resnet20", num_classes=0)
  params = _abstract_variables(models.create("resnet32"), SMALL_CIFAR_SHAPE)["params"]
  with pytest.raises(ValueError, match="must have 3 entries"):
    models.read_widths("resnet20", params)
