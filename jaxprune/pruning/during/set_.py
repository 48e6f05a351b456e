"""SET (Mocanu et al. 2018): sparse evolutionary training, method "set".

Sparse from the first step; every `delta_t` steps until `t_end` each prunable
layer drops the `floor(alpha_t * n)` active weights of smallest magnitude and
regrows as many at random among its then inactive positions, with the cosine
drop fraction `alpha_t` and the initial ERK / uniform random masks of RigL.
The whole rule, its options (`during.set.*`: delta_t, alpha, t_end,
init_scale; the initial distribution is `pruning.allocation`) and its choices (grown weights start at zero; sources in
docs/provenance.md) are those of `jaxprune.pruning.during.rigl`; SET differs
only in the grow score: a uniform random number per position, from a key
folded from the run's state rng, the update step and the layer, so a run's
growth is reproducible and differs between updates, layers and seeds.
"""

from __future__ import annotations

from typing import Any

import jax

from jaxprune.pruning.during.base import Context, Method, register
from jaxprune.pruning.during.rigl import DEFAULTS, build_drop_grow, validate_options

# Keeps SET's growth keys apart from the step's augmentation and dropout keys
# (`train_step` folds the step into the same state rng).
SET_SALT = 0x5E7


def random_score(
  state: Any, grad: jax.Array, index: int, weight: jax.Array
) -> jax.Array:
  """SET's grow score: uniform noise, fresh per update step and layer."""
  del grad
  key = jax.random.fold_in(jax.random.fold_in(state.rng, SET_SALT), state.step)
  return jax.random.uniform(jax.random.fold_in(key, index), weight.shape)


@register(
  "set",
  defaults=DEFAULTS,
  validate=lambda config: validate_options(config, "set"),
)
def set_method(context: Context) -> Method:
  return build_drop_grow(context, "set", random_score)
