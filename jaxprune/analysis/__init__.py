"""Analysis toolkit: dynamical isometry, OrthP, trainability, pruning patterns.

Interactive use (a Python shell or notebook, on a finished run's workdir)::

  from jaxprune import analysis, models
  from jaxprune.train import checkpointing
  state = checkpointing.Checkpointer(workdir + "/checkpoints").restore("final")[0]
  model = models.create("mlp7_linear", widths=models.read_widths("mlp7_linear", state["params"]))
  apply_fn = analysis.apply_fn_from(model, state["params"], state["batch_stats"])
  print(analysis.jsv_summary(apply_fn, inputs))  # mean, std, max, min

where ``inputs`` are normalised images, e.g. ``data.preprocess(images, rng,
train=False)`` of a ``jaxprune.data.pipeline.Data``. Then
``analysis.orthp(state["params"], model_name="mlp7_linear")`` orthogonalises
the weights (OrthP) and ``analysis.mean_jsv`` of the result is 1 again for a
(uniformly) pruned linear MLP.

Modules:
  jacobian        Jacobian singular values per example (jit + vmap(jacrev)),
                  ``jsv_summary`` (min/max via SVD), ``apply_fn_from`` (Dynamical Isometry Eq. 1).
  orthp           OrthP, QR orthogonalisation of every kernel (Eq. 2).
  callbacks       ``make_callbacks(config.analysis, model, data)``: mean-JSV
                  tracking during training, logged as ``jsv/mean``, ``jsv/std``.
  training_stats  trainability accuracy (Wang et al. 2023 Eq. 1), pruning
                  stability (Zimmer et al. Def. A.1).
  weights         weight histograms, per-layer/per-stage kept widths and mask
                  patterns (Rethinking Fig. 8, Tables 7, 18-21), markdown.
  architecture    pruning as architecture search (Rethinking Sec. 5): kept
                  channel / weight ratios per layer and stage, guided and
                  transferred widths, a finished run's final state
                  (``from jaxprune.analysis import architecture``).
  transfer        Transferred Guided Sparsification: a mask's kept-weight
                  ratio per stage given to another net's stages
                  (``from jaxprune.analysis import transfer``).
  plots           matplotlib figures of the above, atomic PNG writes (import
                  ``jaxprune.analysis.plots`` explicitly; not loaded here so
                  training does not pay for matplotlib).
"""

from __future__ import annotations

from jaxprune.analysis.callbacks import fixed_inputs, jsv_callback, make_callbacks
from jaxprune.analysis.jacobian import (
  ApplyFn,
  apply_fn_from,
  jacobian_singular_values,
  jsv_stats,
  jsv_summary,
  mean_jsv,
)
from jaxprune.analysis.orthp import (
  gain_for,
  kernel_to_matrix,
  matrix_to_kernel,
  orthogonality_error,
  orthogonalize,
  orthp,
)
from jaxprune.analysis.training_stats import (
  first_stage_epochs,
  pruning_stability,
  trainability_accuracy,
  trainability_from_workdir,
)
from jaxprune.analysis.weights import (
  kept_fractions,
  kernel_position_keep,
  layer_widths,
  stage_keep_table,
  weight_histograms,
  width_table,
)

__all__ = [
  "ApplyFn",
  "apply_fn_from",
  "first_stage_epochs",
  "fixed_inputs",
  "gain_for",
  "jacobian_singular_values",
  "jsv_callback",
  "jsv_stats",
  "jsv_summary",
  "kept_fractions",
  "kernel_position_keep",
  "kernel_to_matrix",
  "layer_widths",
  "make_callbacks",
  "matrix_to_kernel",
  "mean_jsv",
  "orthogonality_error",
  "orthogonalize",
  "orthp",
  "pruning_stability",
  "stage_keep_table",
  "trainability_accuracy",
  "trainability_from_workdir",
  "weight_histograms",
  "width_table",
]
