# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Dynamical isometry of a pruned MLP-7-Linear
#
# A walkthrough of Wang et al. 2021, "Dynamical Isometry: The Missing
# Ingredient for Neural Network Pruning", Sec. 3.1-3.3, with `jaxprune.analysis`:
#
# 1. train MLP-7-Linear (orthogonal init, so it starts exactly isometric:
#    mean JSV 1, Table 1 row 1) on Fashion-MNIST, tracking the mean Jacobian
#    singular value (JSV) with the training callback;
# 2. L1-prune the hidden neurons at several ratios: the mean JSV drops more
#    the more is pruned (Fig. 1);
# 3. apply OrthP (Eq. 2) to the pruned net: the mean JSV is exactly 1 again;
# 4. retrain the pruned net with LR 0.01 and 0.001, with and without OrthP,
#    tracking mean JSV and test accuracy (Fig. 2), and compare the
#    trainability accuracy (Wang et al. 2023, Eq. 1).
#
# Open with jupytext (`jupytext --to notebook dynamical_isometry.py`) or run
# as a script: `python experiments/notebooks/dynamical_isometry.py`.
# Environment: `JAXPRUNE_SMOKE=1` (seconds-long run), `JAXPRUNE_DATA_DIR` /
# `JAXPRUNE_MANUAL_DIR` (dataset location; default: the prepared
# `fashion_mnist_local`), `JAXPRUNE_OUT` (figures and `summary.json`; default
# `workdirs/dynamical_isometry`).

# %%
import os
import shutil

import jax
import ml_collections

from jaxprune import analysis, config_utils, io_utils, models, pruning, schedules
from jaxprune.analysis import plots
from jaxprune.data import pipeline
from jaxprune.train import checkpointing, sharding, train_and_evaluate
from jaxprune.train import hyper as hyper_lib
from jaxprune.train.state import state_from_params
from jaxprune.train.steps import Steps

SMOKE = os.environ.get("JAXPRUNE_SMOKE", "") == "1"
OUT = os.environ.get("JAXPRUNE_OUT", "workdirs/dynamical_isometry")
DENSE_EPOCHS = 2 if SMOKE else 30
RETRAIN_EPOCHS = 2 if SMOKE else 30
RATIOS = (0.0, 0.5, 0.9) if SMOKE else (0.0, 0.3, 0.5, 0.7, 0.9)  # Fig. 1.
RATIO = 0.8  # Fig. 2 / Table 3.
JSV_EXAMPLES = 64 if SMOKE else 256

config = config_utils.base_config()
config.model.name = "mlp7_linear"
config.model.init = "orthogonal"
config.data.image_size = (32, 32)  # MNIST-style 32x32 -> 1024 inputs.
config.data.data_dir = os.environ.get("JAXPRUNE_DATA_DIR") or None
config.data.manual_dir = os.environ.get("JAXPRUNE_MANUAL_DIR") or None
config.num_epochs = DENSE_EPOCHS
config.batch_size = 64 if SMOKE else 128
config.eval_batch_size = 64 if SMOKE else 1000
config.progress = False
# The paper's "90 epochs, 0:0.01,30:0.001,60:0.0001", compressed 3x.
config.schedule.spec = "0:0.01,1:0.001" if SMOKE else "0:0.01,10:0.001,20:0.0001"
config.analysis.jsv_num_examples = JSV_EXAMPLES
config.lock()

# %% [markdown]
# ## 1. Train the dense MLP-7-Linear, tracking mean JSV every epoch
#
# The callback measures the mean JSV of the first `JSV_EXAMPLES` training
# images (eval-mode preprocessing) at epoch 0 and after every epoch. It is
# passed explicitly here; in a config-driven run, `config.analysis.
# jsv_every_epochs = 1` asks for the same.

# %%
data = pipeline.load(config.data)
model = models.create("mlp7_linear", **config_utils.model_overrides(config))
tracking = ml_collections.ConfigDict(config.analysis.to_dict())
tracking.jsv_every_epochs = 1
dense_dir = os.path.join(OUT, "dense")
shutil.rmtree(dense_dir, ignore_errors=True)  # A fresh run each time.
dense_summary = train_and_evaluate(
  config, dense_dir, callbacks=analysis.make_callbacks(tracking, model, data)
)
dense_rows = io_utils.read_jsonl(os.path.join(dense_dir, "metrics.jsonl"))
dense_jsv = [(r["epoch"], r["jsv/mean"]) for r in dense_rows if "jsv/mean" in r]
print(f"dense test accuracy {dense_summary['test/accuracy']:.4f}")
print("mean JSV per epoch:", [f"{e}: {v:.4f}" for e, v in dense_jsv])

# %% [markdown]
# ## 2. Pruning damages dynamical isometry (Fig. 1)
#
# L1-norm neuron pruning: in each of the 6 hidden layers, the `ceil(n r)`
# neurons with the smallest L1 norm (PyTorch rows = Flax kernel columns) are
# removed and the next layer's input rows sliced, giving a small-dense
# MLP-7-Linear with `widths = (n - ceil(n r),) * 6`.

# %%
with checkpointing.Checkpointer(os.path.join(dense_dir, "checkpoints")) as ckpt:
  dense_params = ckpt.restore("final")[0]["params"]
inputs = analysis.fixed_inputs(data, JSV_EXAMPLES)


def l1_prune_mlp(params, ratio):
  """L1 neuron pruning with the pruning engine, Wang et al.'s rounding."""
  cfg = pruning.default_config()
  cfg.name, cfg.criterion, cfg.ratio = "structured", "l1", ratio
  cfg.rounding = "prune_ceil"  # ceil(n r) pruned per layer.
  return pruning.prune(cfg, params, model_name="mlp7_linear").params


def small_model(params):
  return models.create("mlp7_linear", widths=models.read_widths("mlp7_linear", params))


def jsv(params):
  apply_fn = analysis.apply_fn_from(small_model(params), params)
  return analysis.jsv_stats(analysis.jacobian_singular_values(apply_fn, inputs))


fig1 = {r: jsv(l1_prune_mlp(dense_params, r))["mean"] for r in RATIOS}
print("mean JSV vs pruning ratio:", {r: round(v, 4) for r, v in fig1.items()})
plots.plot_jsv_vs_ratio(
  {"MLP-7-Linear": (list(fig1), list(fig1.values()))},
  os.path.join(OUT, "jsv_vs_ratio.png"),
)

# %% [markdown]
# ## 3. OrthP recovers exact isometry
#
# OrthP replaces each kernel's `[out, in]` matrix by its QR factor with the
# sign of `diag(R)` restored (gain 1 for a linear net). With equal hidden
# widths >= 10 classes the Jacobian `W_7 ... W_1` has orthonormal rows again.

# %%
pruned = l1_prune_mlp(dense_params, RATIO)
orth = analysis.orthp(pruned, model_name="mlp7_linear")
jsv_pruned, jsv_orthp = jsv(pruned), jsv(orth)
print(f"widths {models.read_widths('mlp7_linear', pruned)}")
print(
  f"mean JSV: dense {jsv(dense_params)['mean']:.4f}, pruned {jsv_pruned['mean']:.4f},"
)
print(f"          pruned + OrthP {jsv_orthp['mean']:.6f} (std {jsv_orthp['std']:.1e})")

# %% [markdown]
# ## 4. Retraining: LR 0.01 vs 0.001, with and without OrthP (Fig. 2)
#
# Same total epochs and the same last LR, as in the paper's Table 2. Mean JSV
# and test accuracy are measured after every epoch (epoch 0: right after
# pruning / OrthP).

# %%
if SMOKE:  # One schedule (one compilation) is enough to exercise the code.
  retrain_specs = {"LR 0.01": "0:0.01,1:0.001"}
else:
  retrain_specs = {
    "LR 0.01": "0:0.01,10:0.001,20:0.0001",
    "LR 0.001": "0:0.001,15:0.001",
  }
mesh = sharding.make_mesh()
for split in (data.train, *data.evals.values()):
  split.place(sharding.replicated(mesh))
steps_per_epoch = data.train.num_examples // config.batch_size
test_split = data.evals["test"]


def make_steps(params):
  """Compiled train/eval steps for the small-dense net (every LR schedule: a
  run's schedule is data, its `hyper`)."""
  return Steps(
    small_model(params),
    hyper_lib.make_tx(config.optimizer),
    data.preprocess,
    mesh,
    config.batch_size,
    config.eval_batch_size,
  )


def hyper_for(spec):
  """The optimizer data of a retraining run with the piecewise LR `spec`."""
  sched_cfg = ml_collections.ConfigDict(
    {"name": "piecewise", "spec": spec, "epochs": RETRAIN_EPOCHS}
  )
  schedule = schedules.create(sched_cfg, steps_per_epoch)
  return hyper_lib.build(config.optimizer, schedule, steps_per_epoch * RETRAIN_EPOCHS)


def retrain(steps, hyper, params, seed=0):
  """SGD retraining from `params`; per-epoch mean JSV and test accuracy."""
  tx = steps.make_tx(hyper)
  state = state_from_params(params, {}, tx, jax.random.PRNGKey(seed))
  data_rng = jax.random.PRNGKey(seed + 1)
  curve = {"epoch": [0], "jsv": [jsv(params)["mean"]]}
  curve["accuracy"] = [steps.evaluate(state, test_split)["accuracy"]]
  for epoch in range(RETRAIN_EPOCHS):
    state, _ = steps.train_epoch(
      state,
      hyper,
      data.train.device_images,
      data.train.device_labels,
      data_rng,
      epoch,
    )
    curve["epoch"].append(epoch + 1)
    curve["jsv"].append(jsv(state.params)["mean"])
    curve["accuracy"].append(steps.evaluate(state, test_split)["accuracy"])
  return curve


curves = {}
steps = make_steps(pruned)  # Same shapes with and without OrthP.
for label, spec in retrain_specs.items():
  hyper = hyper_for(spec)
  curves[label] = retrain(steps, hyper, pruned)
  curves[f"{label} + OrthP"] = retrain(steps, hyper, orth)

plots.plot_training_curves(
  {k: (c["epoch"], c["jsv"]) for k, c in curves.items()},
  {k: (c["epoch"][1:], c["accuracy"][1:]) for k, c in curves.items()},
  os.path.join(OUT, "retraining.png"),
  title=f"MLP-7-Linear, L1 pruning ratio {RATIO}",
)

# %% [markdown]
# ## 5. Trainability accuracy and pruning stability
#
# Trainability accuracy (Wang et al. 2023, Eq. 1) is the mean accuracy over the
# first LR stage, here on the test curve (the paper's TA values are on the
# training split, `analysis.trainability_accuracy`'s default); it is comparable only between runs with the same
# schedule, so compare each LR with and without OrthP. Pruning stability
# (Zimmer et al. Def. A.1) is the accuracy kept right after pruning.

# %%
trainability = {}
for label, curve in curves.items():
  spec = retrain_specs[label.removesuffix(" + OrthP")]
  trainability[label] = analysis.trainability_accuracy(
    curve["accuracy"][1:], analysis.first_stage_epochs(spec)
  )
stability = analysis.pruning_stability(
  dense_summary["test/accuracy"], curves["LR 0.01"]["accuracy"][0]
)
rows = [
  (k, c["jsv"][0], c["jsv"][-1], trainability[k], c["accuracy"][-1])
  for k, c in curves.items()
]
print(
  analysis.weights.markdown_table(
    ("setup", "JSV start", "JSV end", "trainability acc.", "final test acc."), rows
  )
)
print(f"pruning stability at ratio {RATIO}: {stability:.3f}")

summary = {
  "smoke": SMOKE,
  "dense_test_accuracy": dense_summary["test/accuracy"],
  "dense_jsv": dense_jsv,
  "jsv_vs_ratio": fig1,
  "jsv_pruned": jsv_pruned,
  "jsv_orthp": jsv_orthp,
  "retraining": curves,
  "trainability_accuracy": trainability,
  "pruning_stability": stability,
}
io_utils.atomic_write_json(os.path.join(OUT, "summary.json"), summary)
print(f"figures and summary.json in {OUT}")
