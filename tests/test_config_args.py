"""The one config-argument parser (`jaxprune.config_args`) and the smoke width.

Every spelling README.md, the Makefile and the configs' docstrings use must keep
meaning what it meant (`:smoke`, `:fashion_mnist`, `:NAME,smoke`), bad input
gets a one-line error naming the key, and `width_multiplier` shrinks every
model family by the same rule while leaving explicit widths alone.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import pytest

from jaxprune import config_args, config_utils, models
from jaxprune.pruning import presets

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize(
  "arg, want",
  [
    (None, {"smoke": False, "data": ""}),
    ("smoke", {"smoke": True, "data": ""}),
    ("fashion_mnist", {"smoke": False, "data": "fashion_mnist"}),
    ("fashion_mnist,smoke", {"smoke": True, "data": "fashion_mnist"}),
    ("smoke=false, data=fashion_mnist", {"smoke": False, "data": "fashion_mnist"}),
  ],
)
def test_paper_config_spellings(arg, want):
  assert config_args.parse_arg(arg, smoke=False, data="").to_dict() == want


def test_bare_word_is_the_experiment_and_types_follow_defaults():
  parse = config_args.parse_arg
  assert parse("retrain,smoke", experiment="", smoke=False).to_dict() == {
    "experiment": "retrain",
    "smoke": True,
  }
  assert parse("experiment=pkfn", experiment="", smoke=False).experiment == "pkfn"
  got = parse("epochs=3,lr=0.5", epochs=1, lr=0.1)
  assert (got.epochs, got.lr) == (3, 0.5) and isinstance(got.lr, float)


@pytest.mark.parametrize(
  "arg, message",
  [
    ("smok", r"unknown key 'smok'; allowed \(comma-separated\): smoke, data=STR"),
    ("smoke=maybe", r"'smoke' must be true or false, got 'maybe'"),
    ("data", r"'data' needs a value"),
  ],
)
def test_bad_arguments_name_the_key(arg, message):
  with pytest.raises(ValueError, match=message):
    config_args.parse_arg(arg, smoke=False, data="")


def test_epochs_must_be_an_int():
  with pytest.raises(ValueError, match=r"'epochs' must be int, got 'two'"):
    config_args.parse_arg("epochs=two", epochs=1)


def test_one_loader_for_every_spelling():
  table3 = os.path.join(ROOT, "configs", "wang2021_di", "table3.py")
  old = config_args.load_config(table3 + ":fashion_mnist,smoke")
  new = config_args.load_config(table3 + ":smoke,data=fashion_mnist")
  assert config_utils.config_hash(old) == config_utils.config_hash(new)
  assert new.data.name == "fashion_mnist_local" and new.num_epochs <= 2
  mini = os.path.join(ROOT, "configs", "mini", "le2021.py")
  old_base, old_sweep = config_args.load_sweep(mini + ":retrain,smoke")
  new_base, new_sweep = config_args.load_sweep(mini + ":experiment=retrain,smoke")
  assert old_sweep == new_sweep and len(new_sweep) == 2 * 2 * 4 + 2  # Seed 0 only.
  assert old_base.to_dict() == new_base.to_dict()
  with pytest.raises(FileNotFoundError, match="config file not found"):
    config_args.load_config("configs/nowhere.py:smoke")


def test_width_multiplier_scales_default_widths_only():
  # MLP-7 at 1/8: hidden widths round(100 / 8) = 12; parameters counted by
  # hand: 1024*12+12 + 5*(12*12+12) + 12*10+10 = 13,210.
  model = models.create("mlp7_relu", 10, width_multiplier=0.125)
  variables = model.init(jax.random.key(0), jnp.zeros((1, 32, 32, 1)), train=False)
  assert sum(x.size for x in jax.tree.leaves(variables)) == 13_210
  # ResNet-56 keeps its depth and shares stage widths with its blocks: 16/32/64 -> 2/4/8.
  widths = models.default_widths("resnet56", width_multiplier=0.125)
  assert widths.stages == (2, 4, 8) and widths.blocks[2] == (8,) * 9
  # An explicit `widths` (e.g. read back after surgery) is absolute.
  explicit = models.default_widths("mlp7_relu", widths=(7,) * 6, width_multiplier=0.5)
  assert explicit == (7,) * 6
  with pytest.raises(ValueError, match="width_multiplier must be a positive number"):
    models.create("mlp7_relu", 10, width_multiplier=0)


def test_vgg_preset_keeps_its_fractions_at_a_width_multiplier():
  # VGG-16-A keeps 32 of 64 filters in conv0 and 256 of 512 in conv7-12; at
  # 1/8 width that is 4 of 8 and 32 of 64, nothing else pruned.
  groups = models.channel_groups("vgg16", 10, width_multiplier=0.125)
  _, sizes = presets.preset("vgg16_a", groups)
  assert sizes == {"conv0": 4, **{f"conv{i}": 32 for i in range(7, 13)}}


def test_smoke_sets_the_width_multiplier_and_full_runs_do_not():
  config = config_utils.base_config()
  assert config.model.width_multiplier == 1.0
  assert config_utils.finalize(config, "smoke").model.width_multiplier == 0.125
