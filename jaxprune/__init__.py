"""jaxprune: neural-network pruning research in JAX.

Subpackages:
  data       -- TFDS-backed input pipelines (resident scanned epochs, streaming).
  models     -- Flax linen model zoo with configurable layer widths.
  schedules  -- learning-rate schedules for training and every retraining variant.
  train      -- explicit train state, jitted data-parallel steps, train_and_evaluate.
"""

__version__ = "0.1.0"
