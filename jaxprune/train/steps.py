"""Pure train/eval steps and their compiled, data-parallel drivers.

`train_step(state, images, labels)` is the one place a gradient step happens:
preprocessing and augmentation on device, forward in train mode, cross-entropy,
gradients masked, optimizer update, params masked again (so pruned weights stay
exactly zero through momentum and weight decay), BatchNorm statistics updated.

`Steps` binds the static pieces (model, optimizer, schedule, preprocessing, mesh)
and compiles:
  * `train_epoch`: a whole epoch over resident data, driven by one of two
    drivers with the same data order and the same step (see `epoch_driver`):
    "scan", the epoch as one `lax.scan` (`scan_epoch`), or "loop", a Python loop
    of one jitted step per batch over the device-resident data, each step
    gathering its batch from the on-device permutation (`indexed_step`);
  * `train_batch`: one step on a host batch, for streamed data;
  * `evaluate_resident` / `evaluate_batch`: weighted sums of loss and correct
    predictions, so padded examples do not count.
The state argument is donated; shapes never change during a run, so each
function compiles once.

Why two epoch drivers: XLA:CPU rewrites convolutions that its Eigen kernels
cannot run as they stand (the gradient convolutions autodiff emits have
transposed dimension orders) into a runnable form only in the entry computation
of a program (`xla::cpu::ConvCanonicalization` walks `entry_computation()`
alone). Inside a `lax.scan` (a while-loop body) they stay as they are and fall
back to a naive loop nest, measured 4x slower for LeNet-5 and 12x for ResNet-20
per step (experiments/benchmarks/RESULTS.md). Dense nets have no convolutions
and keep the scan (no per-step dispatch); conv nets on CPU loop over steps.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh

from jaxprune.data import pipeline
from jaxprune.pruning.step_hooks import StepHooks
from jaxprune.train import hyper as hyper_lib
from jaxprune.train import precision as precision_lib
from jaxprune.train import sharding
from jaxprune.train.hyper import Hyper, MakeTx
from jaxprune.train.state import TrainState, apply_masks

PLAIN = StepHooks(name="plain")  # Masked training, nothing else.


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels)


def train_step(
  state: TrainState,
  hyper: Hyper,
  images: jax.Array,
  labels: jax.Array,
  *,
  model: nn.Module,
  make_tx: MakeTx,
  preprocess: pipeline.Preprocess,
  hooks: StepHooks | None = None,
  precision: str = "float32",
) -> tuple[TrainState, dict[str, jax.Array]]:
  """One SGD step of the run whose hyperparameters are `hyper` (see `hyper.py`).

  `make_tx(hyper)` builds the optimizer from the run's data (its LR table,
  weight decay, momentum), so runs that differ only in those share one program.

  Without `hooks` the masks are hard: gradients and params are masked, so
  pruned weights stay exactly zero. A pruning method's `hooks` (`jaxprune.pruning.step_hooks`)
  change the forward weights, add a penalty, select gradients, update masks
  after the step, carry trainable variables of their own (`state.aux`,
  optimized with the params) or make the masks soft (the dense params keep
  training; pruned weights get no loss gradient through `params * masks`, only
  weight decay and momentum, so a later mask recomputation may let them regrow).

  `precision` is the compute dtype of the forward and backward passes
  (`jaxprune.train.precision`): params, grads, optimizer state, BatchNorm
  statistics and the loss stay float32; float16 scales the loss by the
  optimizer's dynamic loss scale and unscales the grads.
  """
  rng = jax.random.fold_in(state.rng, state.step)
  aug_rng, dropout_rng = jax.random.split(rng)
  x = preprocess(images, aug_rng, train=True)

  hooks = hooks or PLAIN
  tx = make_tx(hyper)
  with_aux = bool(jax.tree_util.tree_leaves(state.aux))
  dtype = precision_lib.compute_dtype(precision)
  scale = precision_lib.loss_scale(state.opt_state)  # None: no loss scaling.

  def loss_fn(trained):
    params, aux = trained
    forward = hooks.forward_params(params, aux, state.masks, state.step)
    logits, updates = model.apply(
      {"params": precision_lib.cast(forward, dtype), "batch_stats": state.batch_stats},
      x.astype(dtype),
      train=True,
      mutable=["batch_stats"],
      rngs={"dropout": dropout_rng},
    )
    logits = logits.astype(jnp.float32)
    loss = cross_entropy(logits, labels).mean()
    total = loss
    if hooks.penalty is not None:
      total = loss + hooks.penalty(params, aux, state.step)
    if scale is not None:
      total = total * scale
    return total, (loss, logits, updates)

  (grads, aux_grads), (loss, logits, updates) = jax.grad(loss_fn, has_aux=True)(
    (state.params, state.aux)
  )
  grads, aux_grads = precision_lib.unscale((grads, aux_grads), scale)
  if hooks.select_grads is not None:
    grads = hooks.select_grads(grads, state.params, state.masks, state.step)
  # `after_step` sees the gradients before the hard masks: RigL grows pruned
  # weights by the gradient they would get.
  unmasked_grads = grads
  if hooks.hard_masks:
    grads = apply_masks(grads, state.masks)
  # Aux variables are optimized with the params; a state without them keeps
  # the optimizer state of the params alone (checkpoints stay as they were).
  if with_aux:
    trained, trained_grads = (state.params, state.aux), (grads, aux_grads)
  else:
    trained, trained_grads = state.params, grads
  param_updates, opt_state = tx.update(trained_grads, state.opt_state, trained)
  trained = optax.apply_updates(trained, param_updates)
  params, aux = trained if with_aux else (trained, state.aux)
  if hooks.hard_masks:
    params = apply_masks(params, state.masks)
  metrics = {
    "loss": loss,
    "accuracy": jnp.mean(jnp.argmax(logits, -1) == labels),
    "lr": hyper_lib.learning_rate(hyper, state.step),
  }
  new_state = state.replace(
    step=state.step + 1,
    params=params,
    aux=aux,
    batch_stats=updates.get("batch_stats", state.batch_stats),
    opt_state=opt_state,
  )
  if hooks.after_step is not None:
    new_state = hooks.after_step(new_state, unmasked_grads)
  return new_state, metrics


def eval_sums(
  variables: dict[str, Any],
  images: jax.Array,
  labels: jax.Array,
  weights: jax.Array,
  *,
  model: nn.Module,
  preprocess: pipeline.Preprocess,
  precision: str = "float32",
) -> dict[str, jax.Array]:
  dtype = precision_lib.compute_dtype(precision)
  x = preprocess(images, jax.random.PRNGKey(0), train=False)
  variables = {**variables, "params": precision_lib.cast(variables["params"], dtype)}
  logits = model.apply(variables, x.astype(dtype), train=False)
  logits = logits.astype(jnp.float32)
  correct = (jnp.argmax(logits, -1) == labels).astype(jnp.float32)
  return {
    "loss_sum": jnp.sum(cross_entropy(logits, labels) * weights),
    "correct_sum": jnp.sum(correct * weights),
    "count": jnp.sum(weights),
  }


def eval_variables(state: TrainState, hooks: StepHooks | None = None) -> dict[str, Any]:
  """The variables evaluation uses: the weights the hooks' forward pass uses,
  masked, so soft-pruned (dense-kept) params evaluate as the sparse net (a
  no-op for hard masks, whose params are already zero where pruned)."""
  params = (hooks or PLAIN).forward_params(
    state.params, state.aux, state.masks, state.step
  )
  return {"params": apply_masks(params, state.masks), "batch_stats": state.batch_stats}


EPOCH_DRIVERS = ("auto", "scan", "loop")


def has_conv_kernels(params: Any) -> bool:
  """True if any param has 3 or more dims (a convolution kernel; Dense is 2-D)."""
  return any(np.ndim(leaf) >= 3 for leaf in jax.tree_util.tree_leaves(params))


def resolve_epoch_driver(driver: str, params: Any, backend: str) -> str:
  """ "scan" or "loop" for `driver` ("auto": loop for conv nets on CPU only)."""
  if driver not in EPOCH_DRIVERS:
    raise ValueError(f"epoch_driver={driver!r}; allowed: {', '.join(EPOCH_DRIVERS)}")
  if driver != "auto":
    return driver
  return "loop" if backend == "cpu" and has_conv_kernels(params) else "scan"


@dataclasses.dataclass
class Steps:
  """Compiled train/eval functions for one model, optimizer kind and mesh.

  Every train function takes the run's `hyper` (its LR table, weight decay,
  momentum; `jaxprune.train.hyper`) as data, so runs with other values reuse
  the compiled program. `runs` > 0 compiles the same functions vmapped over a
  leading run axis of that many runs (state, hyper, data key and epoch per run;
  the resident data shared).
  """

  model: nn.Module
  make_tx: MakeTx
  preprocess: pipeline.Preprocess
  mesh: Mesh
  batch_size: int
  eval_batch_size: int
  hooks: StepHooks | None = None  # A pruning method's changes to the step.
  epoch_driver: str = "auto"  # "auto" | "scan" | "loop"; see the module docstring.
  vmapped: bool = False  # True: every function takes a leading run axis.
  precision: str = "float32"  # Compute dtype; see `jaxprune.train.precision`.

  def __post_init__(self):
    resolve_epoch_driver(self.epoch_driver, {}, "cpu")  # Fails early on a typo.
    repl = sharding.replicated(self.mesh)
    self._step = functools.partial(
      train_step,
      model=self.model,
      make_tx=self.make_tx,
      preprocess=self.preprocess,
      hooks=self.hooks,
      precision=self.precision,
    )
    self._eval_sums = functools.partial(
      eval_sums,
      model=self.model,
      preprocess=self.preprocess,
      precision=self.precision,
    )
    run = jax.vmap if self.vmapped else (lambda f, **_: f)
    self.scan_epoch = jax.jit(
      run(self._train_epoch, in_axes=(0, 0, None, None, 0, 0)),
      donate_argnums=0,
      out_shardings=(repl, repl),
    )
    self.epoch_order = jax.jit(
      run(self._epoch_order, in_axes=(0, 0, None)), static_argnums=2
    )
    self.indexed_step = jax.jit(
      run(self._indexed_step, in_axes=(0, 0, None, None, 0, None)),
      donate_argnums=0,
      out_shardings=(repl, repl),
    )
    self.train_batch = jax.jit(
      run(self._step, in_axes=(0, 0, None, None)),
      donate_argnums=0,
      out_shardings=(repl, repl),
    )
    self.evaluate_batch = jax.jit(
      run(self._eval_sums, in_axes=(0, None, None, None)),
      out_shardings=repl,
    )
    self.evaluate_resident = jax.jit(
      run(self._evaluate_resident, in_axes=(0, None, None)), out_shardings=repl
    )

  def _constrain(self, x):
    return jax.lax.with_sharding_constraint(x, sharding.batch_sharded(self.mesh))

  def _epoch_order(self, data_rng, epoch, num_examples: int):
    return pipeline.epoch_permutation(
      jax.random.fold_in(data_rng, epoch), num_examples, self.batch_size
    )

  def _gathered_step(self, state, hyper, images, labels, idx):
    return self._step(
      state, hyper, self._constrain(images[idx]), self._constrain(labels[idx])
    )

  def _train_epoch(self, state, hyper, images, labels, data_rng, epoch):
    order = self._epoch_order(data_rng, epoch, labels.shape[0])

    def body(state, idx):
      return self._gathered_step(state, hyper, images, labels, idx)

    return jax.lax.scan(body, state, order)

  def _indexed_step(self, state, hyper, images, labels, order, i):
    return self._gathered_step(state, hyper, images, labels, order[i])

  def driver_for(self, state: TrainState) -> str:
    """The epoch driver `train_epoch` uses for `state` on this backend."""
    params = state.params
    if self.vmapped:  # Judge one run's params, not the stacked ones.
      params = jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype), params
      )
    return resolve_epoch_driver(self.epoch_driver, params, jax.default_backend())

  def train_epoch(
    self, state: TrainState, hyper: Hyper, images, labels, data_rng, epoch
  ):
    """One epoch over resident data -> (state, per-step metrics [steps]).

    Vmapped: `data_rng` and `epoch` have a leading run axis (runs may be at
    different epochs) and the metrics are [runs, steps].
    """
    epoch = jnp.asarray(epoch, jnp.int32)
    if self.driver_for(state) == "scan":
      return self.scan_epoch(state, hyper, images, labels, data_rng, epoch)
    order = self.epoch_order(data_rng, epoch, labels.shape[0])
    per_step = []
    for i in range(order.shape[-2]):
      state, metrics = self.indexed_step(state, hyper, images, labels, order, i)
      per_step.append(metrics)
    axis = 1 if self.vmapped else 0
    return state, jax.tree_util.tree_map(
      lambda *xs: jnp.stack(xs, axis=axis), *per_step
    )

  def _evaluate_resident(self, variables, images, labels):
    n = labels.shape[0]
    b = self.eval_batch_size
    num_batches = -(-n // b)
    pad = num_batches * b - n
    weights = jnp.concatenate([jnp.ones(n), jnp.zeros(pad)])
    images = jnp.concatenate(
      [images, jnp.zeros((pad, *images.shape[1:]), images.dtype)]
    )
    labels = jnp.concatenate([labels, jnp.zeros(pad, labels.dtype)])
    batches = (
      images.reshape(num_batches, b, *images.shape[1:]),
      labels.reshape(num_batches, b),
      weights.reshape(num_batches, b),
    )

    def body(totals, batch):
      x, y, w = (self._constrain(t) for t in batch)
      sums = self._eval_sums(variables, x, y, w)
      return jax.tree_util.tree_map(jnp.add, totals, sums), None

    zeros = {"loss_sum": 0.0, "correct_sum": 0.0, "count": 0.0}
    zeros = jax.tree_util.tree_map(jnp.float32, zeros)
    totals, _ = jax.lax.scan(body, zeros, batches)
    return totals

  def evaluate(self, state: TrainState, split) -> dict[str, float]:
    """Mean loss and accuracy of `state` on a resident or streaming split
    (vmapped: lists of one value per run)."""
    variables = eval_variables(state, self.hooks)
    if isinstance(split, pipeline.ResidentSplit):
      totals = self.evaluate_resident(
        variables, split.device_images, split.device_labels
      )
    else:
      totals = None
      size = self.eval_batch_size
      for images, labels, weights in split.batches(
        size, train=False, seed=0, epoch=0, rows=sharding.host_rows(self.mesh, size)
      ):
        batch = sharding.shard_batch((images, labels, weights), self.mesh, size)
        sums = self.evaluate_batch(variables, *batch)
        totals = (
          sums if totals is None else jax.tree_util.tree_map(jnp.add, totals, sums)
        )
    totals = jax.device_get(totals)
    count = np.maximum(np.asarray(totals["count"], np.float64), 1.0)
    loss = np.asarray(totals["loss_sum"], np.float64) / count
    accuracy = np.asarray(totals["correct_sum"], np.float64) / count
    if self.vmapped:
      return {"loss": loss.tolist(), "accuracy": accuracy.tolist()}
    return {"loss": float(loss), "accuracy": float(accuracy)}


def summarize_epoch(metrics: dict[str, Any]) -> dict[str, float]:
  """Per-step metric arrays of an epoch -> epoch means (lr: last value)."""
  host = jax.device_get(metrics)
  return {
    "loss": float(np.mean(host["loss"])),
    "accuracy": float(np.mean(host["accuracy"])),
    "lr": float(np.asarray(host["lr"]).reshape(-1)[-1]),
    "finite": bool(np.all(np.isfinite(host["loss"]))),
  }
