"""jaxprune: neural-network pruning research in JAX.

Subpackages, lowest layer first (a module imports only from layers below it;
`tests/test_import_graph.py` checks that there is no cycle):
  config_utils, config_schema -- the base config, its hash and diff (a leaf).
  data       -- TFDS-backed input pipelines (resident scanned epochs, streaming).
  models     -- Flax linen model zoo with configurable layer widths.
  schedules  -- learning-rate schedules for training and every retraining variant.
  pruning    -- masks, scores, allocations, structured surgery, counting.
  analysis   -- Jacobian singular values, OrthP, weight and training statistics.
  train      -- explicit train state, jitted data-parallel steps,
                train_and_evaluate, checkpointing, metric writers.
  protocols  -- experiment protocols (prune-retrain, BIMP, GMP, lottery,
                scratch, prune-at-epoch-k) over the train loop.
  results    -- sweeps, reports, figures, verdicts, reproduction suites.
Launchers: main, sweeps, reproduce, report, inspect_model, cluster, data,
schedules (`python -m jaxprune.<name>`).
"""

__version__ = "0.1.0"
