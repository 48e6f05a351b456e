"""One allocation field for every pruning-during-training method.

Each method that selects weights (GMP, DNW, DPF, GSM, LC) or draws initial
masks (SET, RigL) reads `pruning.allocation`: "uniform" leaves every prunable
layer with exactly its share of the target, "global" one magnitude threshold
over all layers (checked on a tiny MLP whose layers are scaled so that the
two differ). A value a method cannot use, and each removed per-method field,
gets a one-line error naming what to set instead.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from step_helpers import tiny_mlp

from jaxprune import config_schema, config_utils
from jaxprune import main as main_lib
from jaxprune.pruning import during
from jaxprune.results import sweeps
from jaxprune.train.state import state_from_params

SPARSITY = 0.6
SPE = 16  # Steps per epoch: DPF's default update_every divides its end step.
TOP_K = ("gmp", "dnw", "dpf", "gsm", "lc")


@pytest.fixture(scope="module")
def setup():
  """Params whose layer i is scaled by 3**i (global then differs from
  uniform), kernels prunable, and a dense state."""
  _, params, _, _ = tiny_mlp()
  layers = sorted(params)
  params = {
    name: {k: v * 3.0**i for k, v in params[name].items()}
    for i, name in enumerate(layers)
  }
  prunable = jax.tree_util.tree_map(lambda p: p.ndim == 2, params)
  state = state_from_params(params, {}, optax.sgd(0.1), jax.random.key(0))
  return params, prunable, state


def _config(method: str, allocation: str):
  c = config_utils.base_config()
  c.protocol, c.during.method, c.num_epochs = "during", method, 4
  c.pruning.name, c.pruning.sparsity = "unstructured", SPARSITY
  c.pruning.allocation = allocation
  c.pruning.gmp_frequency, c.pruning.gmp_start, c.pruning.gmp_end = 1, 0, 2
  c.optimizer.weight_decay = 1e-4  # GSM requires it.
  return c


def _selections(method: str, allocation: str, setup) -> list:
  """Every set of masks `method` chooses at the target from the setup's
  weights: its in-step selection and its `final`."""
  params, prunable, state = setup
  config = _config(method, allocation)
  during.validate(config)
  built = during.build(during.Context(config, prunable, SPE))
  hooks = built.hooks
  if method == "gmp":  # The last event (end of epoch 2) is at the target.
    return [hooks.after_step(state.replace(step=2 * SPE), None).masks]
  if method in ("set", "rigl"):
    return [built.init_sparse(params, jax.random.key(1))[1]]
  out = [built.final(state)[1]]
  if method == "dpf":  # Step 48 = end_epoch 3: an update at the target.
    out.append(hooks.after_step(state.replace(step=3 * SPE), None).masks)
  if method == "lc":  # A C-step after every step.
    out.append(hooks.after_step(state.replace(step=1), None).masks)
  if method == "gsm":  # With unit gradients the active set is the top |w|.
    ones = jax.tree_util.tree_map(jnp.ones_like, params)
    out.append(hooks.select_grads(ones, params, state.masks, 0))
  return out


def _kernels(tree) -> list[np.ndarray]:
  return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree) if np.ndim(x) == 2]


@pytest.mark.parametrize("method", (*TOP_K, "set", "rigl"))
def test_uniform_gives_every_layer_exactly_its_ratio(method, setup):
  for masks in _selections(method, "uniform", setup):
    for m in _kernels(masks):
      assert int((m == 0).sum()) == math.floor(SPARSITY * m.size + 0.5)
    for leaf in jax.tree_util.tree_leaves(masks):  # Biases are not pruned.
      if np.ndim(leaf) == 1:
        assert np.all(np.asarray(leaf) == 1)


@pytest.mark.parametrize("method", TOP_K)
def test_global_keeps_the_largest_magnitudes_over_all_layers(method, setup):
  magnitudes = np.concatenate([np.abs(w).ravel() for w in _kernels(setup[0])])
  for masks in _selections(method, "global", setup):
    kept = np.concatenate([m.ravel() for m in _kernels(masks)]) > 0
    assert int((~kept).sum()) == round(SPARSITY * kept.size)
    assert magnitudes[kept].min() >= magnitudes[~kept].max()  # One threshold.
    ratios = [float((m == 0).mean()) for m in _kernels(masks)]
    assert max(ratios) - min(ratios) > 0.3  # Not uniform in disguise.


@pytest.mark.parametrize(
  "method,value,allowed",
  [
    ("dnw", "erk", "['global', 'uniform']"),
    ("gmp", "lamp", "['global', 'uniform']"),
    ("set", "global", "['erk', 'uniform']"),
    ("rigl", "uniform_plus", "['erk', 'uniform']"),
    # Learned sparsity has no allocation to choose: only the default passes.
    ("str", "uniform", "['global']"),
    ("cs", "erk", "['global']"),
    ("dst", "uniform", "['global']"),
  ],
)
def test_a_value_the_method_cannot_use_is_refused(method, value, allowed):
  message = (
    f"pruning.allocation must be one of {allowed} for during.method={method!r}, "
    f"got {value!r}"
  )
  with pytest.raises(ValueError, match=f"^{message}$".replace("[", r"\[")):
    during.validate(_config(method, value))


@pytest.mark.parametrize("old", sorted(config_schema.REPLACED_FIELDS))
def test_a_removed_field_says_which_field_replaced_it(old):
  config = _config("dnw", "uniform")
  want = "was removed; set 'pruning.allocation' instead"
  with pytest.raises(ValueError, match=want):
    config_utils.parse_overrides([f"--config.{old}=uniform"], config)
  with pytest.raises(ValueError, match=want):
    sweeps.apply_overrides(config, {old: "uniform"})


def test_the_launcher_names_the_replacement_of_a_removed_flag():
  argv = [
    "main",
    "--config=configs/protocols/during.py:method=dnw",
    "--config.during.dnw.allocation=uniform",
  ]
  message = main_lib._unknown_override(argv)
  assert message == (
    "--config.during.dnw.allocation=uniform: field 'during.dnw.allocation' was "
    "removed; set 'pruning.allocation' instead"
  )
