"""Tests for the VGG, PreResNet, WRN, DenseNet and ImageNet-ResNet families.

Parameter counts (10 classes unless noted; trainable params incl. BN affine,
no running stats) were confirmed by building PyTorch restatements of the
cited definitions with torch 2.13 in throwaway scripts.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxprune import models
from jaxprune.models import densenet, preresnet, resnet_imagenet, vgg, wide_resnet

PARAM_COUNTS = {
  # Eric-mingjie/rethinking-network-pruning cifar/network-slimming/models/vgg.py
  # (single Linear); gap (TPP vgg19_C) has the same shapes.
  "vgg11": 9_228_362,
  "vgg19": 20_035_018,
  # Same repo, cifar/l1-norm-pruning/models/vgg.py (Linear-BN1d-ReLU-Linear).
  "vgg16": 14_987_722,
  # rethinking cifar/weight-level/models/cifar/preresnet.py (bottleneck,
  # n=(depth-2)//9); network-slimming/models/preresnet.py for 164 gives
  # 1,711,338 with its 8,080 channel_selection entries, 1,703,258 without.
  "preresnet56": 590_426,
  "preresnet110": 1_146_842,
  "preresnet164": 1_703_258,
  # ZIB-IOL/BIMP models/cifar100.py WideResNet (biased convs).
  "wrn28_10": 36_489_290,
  "wrn40_2": 2_246_474,
  # rethinking weight-level models/cifar/densenet.py (bearpaw); slimming's
  # densenet40 adds 9,360 channel_selection entries.
  "densenet40": 1_059_298,
  "densenet_bc100": 769_162,
  # BIMP/kuangliu CIFAR ResNet-18 (3x3 stem, no max pool, option B).
  "resnet18_cifar": 11_173_962,
}
# torchvision layouts, 1000 classes.
IMAGENET_COUNTS = {
  "resnet18": 11_689_512,
  "resnet34": 21_797_672,
  "resnet50": 25_557_032,
  "vgg11_bn": 132_868_840,
  "vgg16_bn": 138_365_992,
}
ZOO = list(PARAM_COUNTS) + list(IMAGENET_COUNTS)

FAST_COMPILE = {
  "xla_backend_optimization_level": 0,
  "xla_llvm_disable_expensive_passes": True,
}


def _count(tree) -> int:
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


@functools.cache
def _abstract(model, shape):
  return jax.eval_shape(
    lambda: model.init(jax.random.key(0), jnp.zeros(shape), train=False)
  )


def _small_shape(name: str) -> tuple[int, ...]:
  """Smallest input each architecture accepts (it pools 4-5 times)."""
  if name in ("vgg11_bn", "vgg16_bn"):
    return (2, 32, 32, 3)
  if name.startswith("vgg"):
    return (2, 16, 16, 3)
  return (2, 8, 8, 3)


def test_zoo_is_registered():
  assert set(ZOO) <= set(models.names())
  for name in IMAGENET_COUNTS:
    assert models.input_shape(name) == (224, 224, 3)
  assert models.input_shape("wrn28_10") == (32, 32, 3)


@pytest.mark.parametrize("name", list(PARAM_COUNTS))
def test_param_counts_cifar(name):
  variables = _abstract(models.create(name), (1, 32, 32, 3))
  assert _count(variables["params"]) == PARAM_COUNTS[name]


@pytest.mark.parametrize("name", list(IMAGENET_COUNTS))
def test_param_counts_imagenet(name):
  # Counts do not depend on the input size (VGG pools adaptively to 7x7).
  variables = _abstract(models.create(name, num_classes=1000), (1, 32, 32, 3))
  assert _count(variables["params"]) == IMAGENET_COUNTS[name]


@pytest.mark.parametrize(
  "name,overrides,count",
  [
    # rethinking l1-norm-pruning VGG-16-A (Li et al.: 5.4M).
    ("vgg16", {"widths": (*vgg.VGG16_CFGS["A"], 512)}, 5_397_034),
    ("vgg19", {"classifier": "l1"}, 20_298_698),
    ("vgg16", {"classifier": "slimming"}, 14_724_042),
    # bearpaw/He et al. BasicBlock PreResNets (n = (depth-2)//6).
    ("preresnet56", {"block": "basic"}, 855_578),
    ("preresnet110", {"block": "basic"}, 1_730_522),
  ],
)
def test_param_counts_variants(name, overrides, count):
  variables = _abstract(models.create(name, **overrides), (1, 32, 32, 3))
  assert _count(variables["params"]) == count


def _wrn_hand_count(depth: int, widen: int, classes: int = 10) -> int:
  """WRN-depth-widen parameters from its layer list (biased convs, BIMP)."""
  n = (depth - 4) // 6
  total = 3 * 3 * 3 * 16 + 16  # stem conv
  c_in = 16
  for c in (16 * widen, 32 * widen, 64 * widen):
    for b in range(n):
      total += 2 * c_in  # bn1 scale + bias
      total += 9 * c_in * c + c  # conv1 3x3
      total += 2 * c  # bn2
      total += 9 * c * c + c  # conv2 3x3
      if b == 0:
        total += c_in * c + c  # 1x1 projection
      c_in = c
  return total + 2 * c_in + c_in * classes + classes  # final bn, head


@pytest.mark.parametrize("depth", [16, 22, 28, 40])
def test_wrn_depth_override_param_counts(depth):
  # DI Table 6's "varying depth" WRN-d-2: 0.69M / 1.08M / 1.47M (and 2.24M).
  variables = _abstract(models.create("wrn40_2", depth=depth), (1, 32, 32, 3))
  assert _count(variables["params"]) == _wrn_hand_count(depth, 2)
  assert (
    round(_wrn_hand_count(depth, 2) / 1e6, 2)
    == {16: 0.69, 22: 1.08, 28: 1.47, 40: 2.25}[depth]
  )
  assert models.default_widths("wrn40_2", depth=depth).blocks[0] == (32,) * (
    (depth - 4) // 6
  )


def test_default_widths_and_presets():
  assert models.default_widths("densenet_bc100").transitions == (108, 150)
  assert models.default_widths("densenet40").transitions == (168, 312)
  assert len(models.default_widths("vgg16")) == 14  # 13 convs + fc0
  assert len(models.default_widths("vgg19")) == 16
  assert len(models.default_widths("vgg19", classifier="l1")) == 17
  w = models.default_widths("resnet50")
  assert (w.stem, w.stages) == (64, (256, 512, 1024, 2048))
  assert models.default_widths("preresnet164").blocks[2] == ((64, 64),) * 18
  assert models.default_widths("wrn28_10").stages == (160, 320, 640)


# Reduced widths for every family (every entry changed).
REDUCED = {
  "vgg16": (3, 4, 5, 6, 7, 8, 9, 3, 4, 5, 6, 7, 8, 10),
  "vgg11_bn": (3, 4, 5, 6, 7, 8, 9, 3, 11, 12),
  "preresnet164": (
    5,
    (7, 9, 11),
    (((2, 3),) * 18, ((3, 4),) * 18, ((4, 2),) * 18),
  ),
  "wrn40_2": (5, (6, 7, 8), ((2, 3, 4, 5, 2, 3),) * 3),
  "densenet40": (5, ((2, 3) * 6,) * 3, (9, 10)),
  "densenet_bc100": (5, (((4, 2), (3, 3)) * 8,) * 3, (9, 10)),
  "resnet34": ((5, 6, 7, 8), ((2, 3, 4), (3,) * 4, (4,) * 6, (2, 3, 4))),
  "resnet50": (
    6,
    (8, 9, 10, 11),
    (((3, 4),) * 3, ((2, 3),) * 4, ((4, 2),) * 6, ((3, 3),) * 3),
  ),
  "resnet18_cifar": ((5, 6, 7, 8), ((2, 3),) * 4),
}


@pytest.mark.parametrize("name", list(REDUCED))
def test_reduced_widths_round_trip(name):
  widths = REDUCED[name]
  model = models.create(name, widths=widths)
  variables = _abstract(model, _small_shape(name))
  read = models.read_widths(name, variables)
  assert read == widths
  rebuilt = _abstract(models.create(name, widths=read), _small_shape(name))
  assert jax.tree.map(lambda a: a.shape, rebuilt) == jax.tree.map(
    lambda a: a.shape, variables
  )


def test_round_trip_with_structure_overrides():
  model = models.create("preresnet56", block="basic")
  params = _abstract(model, (1, 8, 8, 3))["params"]
  assert models.read_widths("preresnet56", params, block="basic") == model.widths
  with pytest.raises(ValueError, match="widths"):
    models.read_widths("preresnet56", params)  # bottleneck by default


@pytest.mark.parametrize(
  "name,overrides,match",
  [
    ("vgg16", {"classifier": "fc"}, "classifier must be one of"),
    ("vgg16", {"widths": (64,) * 13}, r"widths must have 14 entries"),
    ("vgg16_bn", {"classifier": "l1"}, r"unknown override.*'classifier'"),
    ("wrn28_10", {"dropout": 1.5}, r"dropout must be a float in \[0, 1\)"),
    ("preresnet164", {"block": "wide"}, "block must be one of"),
    ("resnet50", {"widths": models.default_widths("resnet34")}, "widths must have 3"),
    ("densenet40", {"widths": (24, ((12,) * 12,) * 3, (168, 0))}, "positive int"),
    ("resnet18", {"shortcut": "A_stride_pad"}, r"unknown override.*'shortcut'"),
    ("wrn40_2", {"depth": 17}, r"depth must be an int 6n \+ 4"),
    ("wrn40_2", {"depth": 4}, r"depth must be an int 6n \+ 4"),
  ],
)
def test_bad_overrides(name, overrides, match):
  with pytest.raises(ValueError, match=match):
    models.create(name, **overrides)


# --- Execution: forward in both modes and a few SGD steps per family -----------


@pytest.mark.parametrize("name", ZOO)
def test_forward_shapes_every_model(name):
  model = models.create(name, num_classes=7)
  shape = _small_shape(name)
  variables = _abstract(model, shape)
  x = jax.ShapeDtypeStruct(shape, jnp.float32)
  for train in (False, True):
    out, _ = jax.eval_shape(
      lambda v, x, train=train: model.apply(
        v, x, train=train, mutable=["batch_stats"], rngs={"dropout": jax.random.key(0)}
      ),
      variables,
      x,
    )
    assert out.shape == (shape[0], 7) and out.dtype == jnp.float32
  # Params: the instance built at the small input is the counted architecture;
  # only the classifier changes with num_classes (kernel + bias per class).
  head_in, head_out = variables["params"]["head"]["kernel"].shape
  ref, ref_classes = (
    (PARAM_COUNTS[name], 10) if name in PARAM_COUNTS else (IMAGENET_COUNTS[name], 1000)
  )
  assert head_out == 7
  assert _count(variables["params"]) == ref - (ref_classes - 7) * (head_in + 1)


# Executing every registered depth would take minutes of XLA compilation on a
# 2-core CPU; one shallow instance per family runs the same module code (the
# registered depths are covered by the parameter counts and shape tests).
def _shallow_models():
  rw = resnet_imagenet.ResidualWidths
  basic = models.ResNetWidths((5, 6, 7, 8), ((3,), (4,), (2,), (3,)))
  bottleneck = rw(6, (8, 9, 10, 11), (((3, 4),), ((2, 3),), ((4, 2),), ((3, 3),)))
  return {
    "vgg11": models.create("vgg11", widths=(4, 5, 6, 7, 8, 9, 5, 6)),
    "vgg16_l1": models.create("vgg16", widths=REDUCED["vgg16"]),
    # Dropout off: losses of 3 steps with fresh masks are too noisy to compare.
    "vgg11_bn": models.create("vgg11_bn", widths=REDUCED["vgg11_bn"], dropout=0.0),
    "preresnet_bottleneck": preresnet.PreResNet(
      rw(5, (7, 9, 11), (((2, 3),), ((3, 4),), ((4, 2),))), bn_init=0.5
    ),
    "preresnet_basic": preresnet.PreResNet(
      models.ResNetWidths((5, 6, 7), ((3,), (4,), (2,)))
    ),
    "wrn": wide_resnet.WideResNet(rw(5, (6, 7, 8), ((3,), (4,), (2,))), dropout=0.0),
    "densenet": densenet.DenseNet(densenet.DenseNetWidths(5, ((2, 3),) * 3, (6, 7))),
    "densenet_bc": densenet.DenseNet(
      densenet.DenseNetWidths(5, (((4, 2), (3, 3)),) * 3, (6, 7)), bn_init=1.0
    ),
    "resnet_basic": resnet_imagenet.ResNet(basic),  # torchvision stem
    "resnet_bottleneck": resnet_imagenet.ResNet(bottleneck),
    "resnet_cifar_stem": resnet_imagenet.ResNet(basic, cifar_stem=True),
  }


SHALLOW = _shallow_models()


def _train_steps(model, x, labels, num_steps=3):
  """Init, SGD steps (a scan: one step compiled) in train mode, eval twice."""

  def loss_fn(params, state, rng):
    logits, new_state = model.apply(
      {"params": params, **state},
      x,
      train=True,
      mutable=list(state),
      rngs={"dropout": rng},
    )
    onehot = jax.nn.one_hot(labels, logits.shape[-1])
    return -jnp.mean(jnp.sum(onehot * jax.nn.log_softmax(logits), -1)), new_state

  def step(carry, rng):
    params, state = carry
    (loss, state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, state, rng)
    params = jax.tree.map(lambda p, g: p - 0.01 * g, params, grads)
    return (params, state), loss

  def run(variables, key):
    state = {k: v for k, v in variables.items() if k != "params"}
    rngs = jax.random.split(key, num_steps)
    (params, state), losses = jax.lax.scan(step, (variables["params"], state), rngs)
    final = {"params": params, **state}
    eval_a = model.apply(final, x, train=False)
    eval_b = model.apply(final, x, train=False)
    train_out, _ = model.apply(
      final, x, train=True, mutable=["batch_stats"], rngs={"dropout": key}
    )
    eval_one = model.apply(final, x[:1], train=False)
    return losses, variables, state, eval_a, eval_b, train_out, eval_one

  # Compiling the random init costs as much as a train step; the init itself
  # is covered by the shape and count tests, so start from numpy values.
  variables = _numpy_init(_abstract(model, x.shape))
  return jax.jit(run, compiler_options=FAST_COMPILE)(variables, jax.random.key(0))


def _numpy_init(abstract):
  rng = np.random.default_rng(0)

  def init(path, leaf):
    name = path[-1].key
    if name in ("scale", "var"):
      return np.ones(leaf.shape, np.float32)
    if name in ("bias", "mean"):
      return np.zeros(leaf.shape, np.float32)
    fan_in = int(np.prod(leaf.shape[:-1]))
    return (rng.standard_normal(leaf.shape) / np.sqrt(fan_in)).astype(np.float32)

  return jax.tree_util.tree_map_with_path(init, abstract)


@pytest.mark.parametrize("name", list(SHALLOW))
def test_forward_and_training_steps(name):
  model = SHALLOW[name].clone(num_classes=5)
  # VGG and ImageNet stems downsample 16-32x; 32x32 keeps a non-empty map.
  side = 32 if name.startswith(("vgg", "resnet_b")) else 16
  shape = (8, side, side, 3)
  x = jax.random.normal(jax.random.key(1), shape)
  labels = jnp.arange(shape[0]) % 5
  out = _train_steps(model, x, labels)
  losses, init_vars, state, eval_a, eval_b, train_out, eval_one = out
  assert eval_a.shape == train_out.shape == (shape[0], 5)
  assert np.all(np.isfinite(losses)) and np.all(np.isfinite(eval_a))
  # SGD on one small batch must reduce its loss.
  assert losses[-1] < losses[0], losses
  # Eval is deterministic; train mode (batch statistics) differs from it.
  np.testing.assert_array_equal(eval_a, eval_b)
  # Eval mode uses running statistics: an example's logits do not depend on
  # the rest of the batch.
  np.testing.assert_allclose(eval_one[0], eval_a[0], rtol=1e-4, atol=1e-5)
  assert not np.allclose(eval_a, train_out, atol=1e-5)
  # Training updated every BN's running statistics.
  changed = jax.tree.map(
    lambda a, b: not np.allclose(a, b), state["batch_stats"], init_vars["batch_stats"]
  )
  assert all(jax.tree.leaves(changed))


def test_dropout_is_used_in_training_only():
  model = SHALLOW["wrn"].clone(dropout=0.5)
  x = jax.random.normal(jax.random.key(1), (2, 8, 8, 3))
  variables = _abstract(model, (2, 8, 8, 3))
  variables = jax.tree.map(lambda a: jnp.full(a.shape, 0.1, a.dtype), variables)

  def outs(v, x):
    train = [
      model.apply(v, x, train=True, mutable=["batch_stats"], rngs={"dropout": k})[0]
      for k in (jax.random.key(0), jax.random.key(1))
    ]
    return train, model.apply(v, x, train=False)

  (t0, t1), _ = jax.jit(outs, compiler_options=FAST_COMPILE)(variables, x)
  assert not np.allclose(t0, t1)


def test_adaptive_avg_pool_matches_pytorch_bins():
  x = jnp.arange(2 * 10 * 3 * 1, dtype=jnp.float32).reshape(2, 10, 3, 1)
  out = np.asarray(vgg.adaptive_avg_pool(x, 7))
  assert out.shape == (2, 7, 7, 1)
  # PyTorch bins on 10 rows: [0,2),[1,3),[2,5),[4,6),[5,8),[7,9),[8,10).
  rows = [(0, 2), (1, 3), (2, 5), (4, 6), (5, 8), (7, 9), (8, 10)]
  cols = [(0, 1), (0, 1), (0, 2), (1, 2), (1, 3), (2, 3), (2, 3)]
  xn = np.asarray(x)
  for i, (a, b) in enumerate(rows):
    for j, (c, d) in enumerate(cols):
      np.testing.assert_allclose(out[:, i, j], xn[:, a:b, c:d].mean(axis=(1, 2)))


def test_bottleneck_structure_is_fixed_by_the_architecture():
  params = _abstract(models.create("resnet50"), (1, 32, 32, 3))["params"]
  assert params["stage0_block0"]["shortcut_conv"]["kernel"].shape == (1, 1, 64, 256)
  assert "shortcut_conv" not in params["stage0_block1"]
  assert params["stage1_block0"]["conv2"]["kernel"].shape == (3, 3, 128, 128)
  params = _abstract(models.create("resnet18"), (1, 32, 32, 3))["params"]
  assert "shortcut_conv" not in params["stage0_block0"]
  assert params["stem_conv"]["kernel"].shape == (7, 7, 3, 64)
  assert isinstance(models.default_widths("resnet50"), resnet_imagenet.ResidualWidths)
  dn = _abstract(models.create("densenet_bc100"), (1, 8, 8, 3))["params"]
  assert dn["block2_layer15_conv1"]["kernel"].shape == (1, 1, 150 + 15 * 12, 48)
  assert dn["head"]["kernel"].shape == (150 + 16 * 12, 10)
  assert densenet.default_widths(40, False).stem == 24
