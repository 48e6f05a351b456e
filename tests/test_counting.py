"""Tests for ``jaxprune.pruning.counting`` against hand computations and paper oracles."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from jaxprune import models
from jaxprune.pruning import counting

CIFAR = (32, 32, 3)
MNIST = (32, 32, 1)


def test_mlp7_by_hand():
  c = counting.count(models.create("mlp7_relu"), MNIST)
  # 1024*100 + 5 * 100*100 + 100*10 weight MACs (biases are not MACs).
  assert c.macs == 1024 * 100 + 5 * 100 * 100 + 100 * 10 == 153_400
  assert c.flops == 2 * c.macs
  assert c.params == c.total_params == 154_010
  assert c.norm_params == 0
  assert [r.name for r in c.layers] == [f"fc{i}" for i in range(6)] + ["head"]
  assert c.layers[0].in_shape == (1024,) and c.layers[0].kernel_shape == (1024, 100)


def test_lenet5_by_hand_valid_and_shrinkbench_same_padding():
  c = counting.count(models.create("lenet5_linear"), MNIST)
  by_name = {r.name: r for r in c.layers}
  assert by_name["conv0"].out_shape == (28, 28, 6)
  assert by_name["conv0"].macs == 5 * 5 * 1 * 6 * 28 * 28
  assert by_name["conv1"].macs == 5 * 5 * 6 * 16 * 10 * 10
  assert by_name["conv2"].macs == 5 * 5 * 16 * 120 * 1 * 1
  assert c.macs == 117_600 + 240_000 + 48_000 + 120 * 84 + 84 * 10 == 416_520
  assert c.total_params == 61_706
  # ShrinkBench counts every conv as 'same'-padded: H_out = ceil(H_in/stride).
  sb = counting.count(models.create("lenet5_linear"), MNIST, convention="shrinkbench")
  assert sb.macs == 5 * 5 * 6 * (32 * 32 + 16 * 14 * 14 + 16 * 20 * 5 * 5) + 10_920
  assert sb.total_params == c.total_params


def test_resnet56_macs_and_bn():
  c = counting.count(models.create("resnet56"), CIFAR)
  # Stem 3->16 at 32x32; stage s: 18 convs of 3x3 w_s x w_s at (32/2^s)^2, except
  # the first conv of stages 1, 2 reads w_{s-1} channels; head 64*10.
  stem = 9 * 3 * 16 * 32 * 32
  stage0 = 18 * 9 * 16 * 16 * 32 * 32
  stage1 = (9 * 16 * 32 + 17 * 9 * 32 * 32) * 16 * 16
  stage2 = (9 * 32 * 64 + 17 * 9 * 64 * 64) * 8 * 8
  assert c.macs == stem + stage0 + stage1 + stage2 + 640 == 125_485_696
  assert round(c.flops / 1e9, 2) == 0.25  # Wang et al.: "FLOPs 0.25G"
  # BN scale+bias: stem 16 + per block 2 * width.
  assert c.norm_params == 2 * (16 + 9 * 2 * (16 + 32 + 64))
  assert c.total_params == 853_018
  assert len(c.layers) == 1 + 54 + 1


def _pruned_resnet56_widths(pr: float):
  # Wang et al.: ceil(pr * n) filters pruned from every block's first conv.
  blocks = tuple(tuple(w - math.ceil(pr * w) for _ in range(9)) for w in (16, 32, 64))
  return models.ResNetWidths((16, 32, 64), blocks)


@pytest.mark.parametrize(
  "pr,sparsity,speedup", [(0.3, 31.14, 1.45), (0.5, 49.82, 1.99), (0.7, 70.58, 3.59)]
)
def test_resnet56_pruning_oracle(pr, sparsity, speedup):
  # docs/provenance.md F3: matches Tab. 6 of "Why ... Confusing" (Wang et al.).
  dense = counting.count(models.create("resnet56"), CIFAR)
  small = counting.count(
    models.create("resnet56", widths=_pruned_resnet56_widths(pr)), CIFAR
  )
  assert round(100 * (1 - small.total_params / dense.total_params), 2) == sparsity
  assert round(dense.macs / small.macs, 2) == speedup


def test_masks_give_nonzero_counts_like_the_compact_model():
  # Masking a block's filters and the next conv's input channels (and BN)
  # must count the same nonzeros as the physically smaller model.
  pr = 0.5
  model = models.create("resnet56")
  abstract = jax.eval_shape(
    lambda: model.init(jax.random.key(0), jnp.zeros((1, *CIFAR)), train=False)
  )
  flat = traverse_util.flatten_dict(abstract["params"])
  masks = {k: np.ones(v.shape, np.float32) for k, v in flat.items()}
  for key, m in masks.items():
    if key[0].startswith("stage") and key[1] in ("conv1", "bn1", "conv2"):
      width = m.shape[-1] if key[1] != "conv2" else m.shape[-2]
      pruned = math.ceil(pr * width)
      if key[1] == "conv2":
        m[:, :, :pruned, :] = 0
      else:
        m[..., :pruned] = 0
  masks = traverse_util.unflatten_dict(masks)
  c = counting.count(model, CIFAR, variables=abstract, masks=masks)
  small = counting.count(
    models.create("resnet56", widths=_pruned_resnet56_widths(pr)), CIFAR
  )
  assert c.total_nonzero_params == small.total_params
  assert c.nonzero_macs == pytest.approx(small.macs)
  assert c.theoretical_speedup == pytest.approx(1.99, abs=5e-3)
  assert c.total_params == 853_018


def test_exact_zeros_in_concrete_params_count_as_pruned():
  model = models.create("mlp7_linear")
  params = jax.jit(lambda k: model.init(k, jnp.zeros((1, *MNIST)))["params"])(
    jax.random.key(0)
  )
  params = jax.tree.map(np.array, params)
  params["fc1"]["kernel"][:50] = 0.0  # half of fc1's weights
  c = counting.count(model, MNIST, variables=params)
  row = {r.name: r for r in c.layers}["fc1"]
  assert row.nonzero_params == 100 * 100 // 2 + 100
  assert row.nonzero_macs == pytest.approx(row.macs / 2)
  assert c.total_nonzero_params == 154_010 - 5_000
  assert c.compression == pytest.approx(154_010 / 149_010)


def test_bad_convention():
  with pytest.raises(ValueError, match="convention"):
    counting.count(models.create("mlp7_relu"), MNIST, convention="thop")
