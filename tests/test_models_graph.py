"""Tests for the channel-group graph (``jaxprune.models.channel_groups``).

The strongest check is functional: zeroing a channel of every prunable group
(producer filters, biases and every norm's scale/bias) must give exactly the
eval outputs of the smaller model built with ``with_widths`` whose params are
the big params with those channels sliced out of producers, norms and
consumers. A missing producer, norm or consumer in the graph breaks either the
shapes or the equality.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from jaxprune import models
from jaxprune.models import densenet, graph, preresnet, resnet_imagenet, wide_resnet

FAST_COMPILE = {
  "xla_backend_optimization_level": 0,
  "xla_llvm_disable_expensive_passes": True,
}

MNIST = (2, 32, 32, 1)
SMALL = (2, 8, 8, 3)
SIXTEEN = (2, 16, 16, 3)  # VGG pools 4 (CIFAR) or 5 (ImageNet) times.
# Small residual widths: stages non-trivial so that projections are exercised.
R18 = ((5, 6, 7, 8), ((3, 4), (2, 3), (4, 2), (3, 3)))
R50 = (
  6,
  (8, 9, 10, 11),
  (((3, 4),) * 3, ((2, 3),) * 4, ((4, 2),) * 6, ((3, 3),) * 3),
)

# (name, overrides, input shape); small widths keep compile and run time low.
CASES = [
  ("mlp7_relu", {"widths": (9, 8, 7, 6, 5, 4)}, MNIST),
  ("lenet5_relu", {}, MNIST),
  (
    "resnet20",
    {"shortcut": "B_conv", "widths": ((6, 5, 4), ((3, 4, 5), (4, 3, 2), (5, 2, 3)))},
    SMALL,
  ),
  (
    "resnet20",
    {
      "shortcut": "A_stride_pad",
      "widths": ((4, 6, 8), ((3, 4, 5), (4, 3, 2), (5, 2, 3))),
    },
    SMALL,
  ),
  (
    "resnet20",
    {
      "shortcut": "A_avgpool_append",
      "widths": ((4, 6, 8), ((3, 4, 5), (4, 3, 2), (5, 2, 3))),
    },
    SMALL,
  ),
]
CASES += [
  ("vgg11", {"widths": (4, 5, 6, 7, 8, 9, 5, 6)}, SIXTEEN),
  ("vgg16", {"widths": (4, 5, 6, 7, 8, 9, 5, 6, 7, 4, 5, 6, 7, 8)}, SIXTEEN),
  ("vgg19", {"classifier": "gap", "widths": tuple(range(3, 19))}, SIXTEEN),
  ("vgg11_bn", {"widths": (4, 5, 6, 7, 8, 9, 5, 6, 7, 5)}, (2, 32, 32, 3)),
  ("resnet18", {"widths": R18}, SIXTEEN),
  ("resnet18_cifar", {"widths": R18}, SMALL),
  ("resnet50", {"widths": R50}, SIXTEEN),
  # Rethinking's CIFAR ResNet-50 (8 BasicBlocks per stage, 1x1-conv shortcuts
  # by default): stage widths that shrink need the projections.
  (
    "resnet50_cifar",
    {"widths": ((6, 5, 4), ((3, 4) * 4, (2, 3) * 4, (4, 2) * 4))},
    SMALL,
  ),
]
IDS = [f"{n}-{o.get('shortcut', '')}" for n, o, _ in CASES]


@functools.cache
def _model_shapes(model, shape):
  abstract = jax.eval_shape(
    lambda: model.init(jax.random.key(0), jnp.zeros(shape), train=False)
  )
  return traverse_util.flatten_dict(jax.tree.map(lambda a: a.shape, abstract))


def _random_variables(flat_shapes, seed=0):
  """Random params and BN statistics (no compile needed)."""
  rng = np.random.default_rng(seed)
  flat = {}
  for key, shape in flat_shapes.items():
    if key[-1] == "var":
      flat[key] = rng.uniform(0.5, 2.0, shape).astype(np.float32)
    elif key[-1] == "scale":
      flat[key] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
    else:
      flat[key] = (0.3 * rng.standard_normal(shape)).astype(np.float32)
  return flat


def _edits(groups, drops):
  """{(key, axis): indices} touched by dropping ``drops[g.name]`` channels."""
  edits = {}

  def add(key, axis, idx):
    edits.setdefault((key, axis), set()).update(int(i) for i in idx)

  for g in groups:
    d = np.asarray(drops.get(g.name, []), int)
    if not len(d):
      continue
    for p in g.producers:
      add(("params", *p, "kernel"), -1, d)
      add(("params", *p, "bias"), 0, d)
    for i, n in enumerate(g.norms):
      off = g.norm_offset(i)
      for coll, leaf in [
        ("params", "scale"),
        ("params", "bias"),
        ("batch_stats", "mean"),
        ("batch_stats", "var"),
      ]:
        add((coll, *n, leaf), 0, off + d)
    for c in g.consumers:
      idx = [s * c.in_channels + c.offset + d for s in range(c.spatial)]
      add(("params", *c.path, "kernel"), -2, np.concatenate(idx))
  return edits


def _zeroed(flat, edits):
  out = dict(flat)
  for (key, axis), idx in edits.items():
    # Only the producer side is zeroed; consumers and BN stats stay intact.
    if key not in out or axis == -2 or key[0] == "batch_stats":
      continue
    arr = np.array(out[key])
    sl = [slice(None)] * arr.ndim
    sl[axis] = sorted(idx)
    arr[tuple(sl)] = 0.0
    out[key] = arr
  return out


def _sliced(flat, edits):
  out = dict(flat)
  for (key, axis), idx in edits.items():
    if key in out:
      out[key] = np.delete(out[key], sorted(idx), axis=axis)
  return out


@functools.cache  # Modules are hashable: one compile per architecture.
def _eval_fn(model):
  return jax.jit(
    lambda v, x: model.apply(v, x, train=False), compiler_options=FAST_COMPILE
  )


def _apply(model, flat, x):
  return np.asarray(_eval_fn(model)(traverse_util.unflatten_dict(flat), x))


def _check_shapes_and_coverage(model, groups, shape):
  flat = _model_shapes(model, shape)
  assert len({g.name for g in groups}) == len(groups)
  produced, normed = [], set()
  for g in groups:
    for p in g.producers:
      assert flat["params", *p, "kernel"][-1] == g.size, (g.name, p)
      if ("params", *p, "bias") in flat:
        assert flat["params", *p, "bias"] == (g.size,)
      produced.append(p)
    for i, n in enumerate(g.norms):
      assert flat["params", *n, "scale"][0] >= g.norm_offset(i) + g.size
      assert flat["batch_stats", *n, "mean"] == flat["params", *n, "scale"]
      normed.add(n)
    for c in g.consumers:
      assert c.in_channels is not None and c.offset + g.size <= c.in_channels
      assert flat["params", *c.path, "kernel"][-2] == c.in_channels * c.spatial
    assert g.prunable == (not g.reason)
    if g.prunable:
      assert graph.get_width(model.widths, g.width_path) == g.size
  kernels = [k[1:-1] for k in flat if k[0] == "params" and k[-1] == "kernel"]
  scales = {k[1:-1] for k in flat if k[0] == "params" and k[-1] == "scale"}
  # Every conv/dense produces exactly one group; every BN belongs to a group.
  assert sorted(produced) == sorted(kernels)
  assert normed == scales


def _check_zeroing_equals_removing(model, groups, make_small, shape):
  """``make_small(sizes)`` builds the model with the new group sizes."""
  flat = _random_variables(_model_shapes(model, shape))
  prunable = [g for g in groups if g.prunable]
  assert prunable
  # Drop the channel at a group-dependent position (and two when possible).
  drops = {
    g.name: sorted({(3 * i + 1) % g.size, (5 * i) % g.size} if g.size > 2 else [0])
    for i, g in enumerate(prunable)
  }
  edits = _edits(groups, drops)
  x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
  full = _apply(model, flat, x)
  zeroed = _apply(model, _zeroed(flat, edits), x)
  # The dropped channels matter: zeroing them changes the outputs.
  assert not np.allclose(full, zeroed, atol=1e-3)
  small = make_small({g.name: g.size - len(drops[g.name]) for g in prunable})
  sliced = _sliced(flat, edits)
  assert {k: v.shape for k, v in sliced.items()} == _model_shapes(small, shape)
  np.testing.assert_allclose(_apply(small, sliced, x), zeroed, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name,overrides,shape", CASES, ids=IDS)
def test_groups_match_param_shapes_and_cover_every_layer(name, overrides, shape):
  groups = models.channel_groups(name, **overrides)
  _check_shapes_and_coverage(models.create(name, **overrides), groups, shape)


@pytest.mark.parametrize("name,overrides,shape", CASES, ids=IDS)
def test_zeroing_a_group_equals_removing_it(name, overrides, shape):
  model = models.create(name, **overrides)
  others = {k: v for k, v in overrides.items() if k != "widths"}

  def make_small(sizes):
    widths = models.with_widths(name, model.widths, sizes, **others)
    return models.create(name, **others, widths=widths)

  groups = models.channel_groups(name, **overrides)
  _check_zeroing_equals_removing(model, groups, make_small, shape)


# Families whose registered depths are deep are checked on shallow instances
# of the same modules (same graph builders), to keep compile time low.
_RW = resnet_imagenet.ResidualWidths
SHALLOW = {
  "preresnet_bottleneck": (
    preresnet.PreResNet,
    preresnet.groups,
    _RW(5, (7, 9, 11), (((2, 3), (3, 4)), ((3, 4),), ((4, 2), (2, 2)))),
  ),
  "preresnet_basic": (
    preresnet.PreResNet,
    preresnet.groups,
    models.ResNetWidths((5, 6, 7), ((3, 4), (4,), (2, 3))),
  ),
  "wrn": (
    wide_resnet.WideResNet,
    wide_resnet.groups,
    _RW(5, (6, 7, 8), ((3, 4), (4,), (2, 3))),
  ),
  "densenet": (
    densenet.DenseNet,
    densenet.groups,
    densenet.DenseNetWidths(5, ((2, 3), (4,), (3, 2)), (6, 7)),
  ),
  "densenet_bc": (
    densenet.DenseNet,
    densenet.groups,
    densenet.DenseNetWidths(5, (((4, 2), (3, 3)), ((3, 4),), ((2, 2), (3, 4))), (6, 7)),
  ),
}


@pytest.mark.parametrize("label", list(SHALLOW))
def test_shallow_families(label):
  cls, groups_fn, widths = SHALLOW[label]
  model = cls(widths=widths)
  groups = groups_fn({"widths": widths}, 10)
  _check_shapes_and_coverage(model, groups, SMALL)

  def make_small(sizes):
    return cls(widths=graph.apply_sizes(groups, widths, sizes))

  _check_zeroing_equals_removing(model, groups, make_small, SMALL)


def test_registered_deep_families_have_consistent_groups():
  # Shapes only (no execution) at the registered depths.
  for name in ("preresnet164", "wrn28_10", "densenet40", "densenet_bc100"):
    model = models.create(name)
    _check_shapes_and_coverage(model, models.channel_groups(name), SMALL)
  groups = {g.name: g for g in models.channel_groups("densenet40")}
  g = groups["block1_layer3/growth"]
  # Layer 3 of block 1 is read after the transition (168) and layers 0-2.
  assert g.consumers[0] == models.Consumer(
    ("block1_layer4_conv1",), offset=168 + 36, in_channels=168 + 48
  )
  assert g.norm_offsets[0] == 168 + 36


def test_worked_examples_from_docstring():
  groups = {g.name: g for g in models.channel_groups("resnet56")}
  g = groups["stage0_block3/inner"]
  assert (g.size, g.width_path) == (16, ("blocks", 0, 3))
  assert g.producers == (("stage0_block3", "conv1"),)
  assert g.norms == (("stage0_block3", "bn1"),)
  assert g.consumers == (models.Consumer(("stage0_block3", "conv2"), in_channels=16),)
  assert not groups["stage1/residual"].prunable  # option A by default
  assert not groups["head"].prunable and groups["head"].width_path == ()
  widths = models.with_widths(
    "resnet56", models.default_widths("resnet56"), {"stage0_block3/inner": 10}
  )
  assert widths.blocks[0] == (16, 16, 16, 10, 16, 16, 16, 16, 16)
  lenet = {g.name: g for g in models.channel_groups("lenet5_linear")}
  assert lenet["conv2"].consumers == (models.Consumer(("fc0",), in_channels=120),)
  mlp = {g.name: g for g in models.channel_groups("mlp7_relu", num_classes=3)}
  assert mlp["fc2"].consumers[0].path == ("fc3",)
  assert mlp["head"].size == 3


def test_with_widths_errors():
  w = models.default_widths("resnet20")
  with pytest.raises(ValueError, match="unknown channel group"):
    models.with_widths("resnet20", w, {"stage9/residual": 3})
  with pytest.raises(ValueError, match="no width"):
    models.with_widths("resnet20", w, {"head": 3})
  # Option A cannot shrink a stage below the previous one; create() says so.
  with pytest.raises(ValueError, match="non-decreasing"):
    models.with_widths("resnet20", w, {"stage1/residual": 8})
  b = models.with_widths("resnet20", w, {"stage1/residual": 8}, shortcut="B_conv")
  assert b.stages == (16, 8, 64)
