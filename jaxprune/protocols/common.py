"""Building blocks of the pruning protocols: phases, the shared cache, counting.

A protocol is a chain of *phases*; each phase is one `train_and_evaluate` call
in its own directory, so a killed protocol resumes phase by phase: a phase
whose `summary.json` says "completed" (for the same config hash) is not run
again, its final checkpoint is loaded instead. Pruning between phases is
deterministic given the config (its rng is derived from `config.seed`); the
first pruning after the dense phase is stored in the shared cache (below),
later IMP cycles are recomputed on resume.

Sharing. Dense training that several runs need (the pretraining of a
prune-retrain sweep, the first k epochs of a prune-at-epoch-k run, ...) runs in
`<cache>/train/<config hash>-<code fingerprint>/` (`jaxprune.fingerprint`: a
change to the training code is a new entry), where the hash covers only the
fields that determine that training: the protocol sections are reset to their defaults
(`training_config`). A file lock (fcntl) around each cached phase makes
concurrent shards wait for one producer instead of training it twice. `<cache>`
is `config.cache_dir`, or `<workdir>/../cache` (for a sweep's run
`<sweep>/runs/<hash>`: `<sweep>/cache`). The pruning of a dense phase (masks and pruned
weights, before retraining) is shared the same way in `<cache>/pruned/<key>/`
(`jaxprune.protocols.pruned_cache`), so is not recomputed on resume either.

Counting convention (`measure`, via `jaxprune.pruning.counting`): `params` are all
parameters of the model as it is stored (the small-dense model after surgery,
the full-size model for masks; BatchNorm statistics excluded), `flops` are
2 x MACs of its convs/dense layers per example, `nonzero_*` scale each layer by
the density of its kernel (ShrinkBench), and `speedup` is the dense original's
FLOPs over the pruned model's nonzero FLOPs; `sparsity` is
`counting.sparsity` (the prunable weights' mask sparsity for unstructured
pruning, else the fraction of all dense params removed or masked).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import shutil
import time
from collections.abc import Callable
from typing import Any

import jax
import ml_collections
import numpy as np

from jaxprune import checks, config_utils, fingerprint, io_utils, models, pruning
from jaxprune.data import datasets
from jaxprune.models import init_variables
from jaxprune.protocols import registry
from jaxprune.pruning import counting
from jaxprune.pruning import masks as masks_lib
from jaxprune.train import Start, checkpointing, loop, sharding, train_and_evaluate
from jaxprune.train import validation as train_validation

# Config sections that only protocols read; reset for a shared training phase.
PROTOCOL_SECTIONS = (
  "pruning",
  "retrain",
  "bimp",
  "lottery",
  "scratch",
  "prune_epoch",
  "during",
  "sfp",
)


# ------------------------------------------------------------------ configs
def validate(config: ml_collections.ConfigDict) -> None:
  """`train.validate` plus the protocol name and its own checks (no training)."""
  train_validation.validate(config)
  check = registry.spec(config.protocol).validate
  if check is not None:
    check(config)


def choice(config: ml_collections.ConfigDict, field: str, allowed) -> Any:
  """The value of dotted `field`; ValueError naming it and `allowed` otherwise."""
  return checks.field_choice(config, field, allowed)


def resolved(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """An unlocked copy without field references (so schedule.epochs stays put
  when a phase changes num_epochs)."""
  return ml_collections.ConfigDict(config.copy_and_resolve_references().to_dict())


def phase_config(
  config: ml_collections.ConfigDict,
  num_epochs: int,
  schedule: ml_collections.ConfigDict | dict | None = None,
) -> ml_collections.ConfigDict:
  """`config` for one phase of `num_epochs` with `schedule` (default: as is)."""
  c = resolved(config)
  c.num_epochs = int(num_epochs)
  if schedule is not None:
    c.schedule = ml_collections.ConfigDict(dict(schedule))
  return c


def training_config(
  config: ml_collections.ConfigDict, keep_pruning: tuple[str, ...] = ()
) -> ml_collections.ConfigDict:
  """`config` as a plain training run: protocol sections reset to defaults.

  `keep_pruning` names pruning fields that do change training (network
  slimming's `slimming_strength`) and so stay in the key.
  """
  c = resolved(config)
  defaults = config_utils.base_config()
  c.protocol = "train"
  c.cache_dir = None
  for section in PROTOCOL_SECTIONS:
    kept = {k: c.pruning[k] for k in keep_pruning} if section == "pruning" else {}
    c[section] = ml_collections.ConfigDict(defaults[section].to_dict())
    c[section].update(kept)
  return c


def input_shape(config: ml_collections.ConfigDict) -> tuple[int, int, int]:
  spec = datasets.get_spec(config.data.name)
  size = tuple(config.data.image_size or spec.image_shape[:2])
  return (*size, spec.image_shape[2])


def num_classes(config: ml_collections.ConfigDict) -> int:
  return datasets.get_spec(config.data.name).num_classes


def overrides_without_widths(config: ml_collections.ConfigDict) -> dict[str, Any]:
  o = config_utils.model_overrides(config)
  o.pop("widths", None)
  return o


def init_params(
  config: ml_collections.ConfigDict, model_overrides: dict | None = None
) -> tuple[Any, Any]:
  """(params, batch_stats) a fresh `train_and_evaluate` run of `config` starts
  from (the same key derivation as the loop and `create_train_state`)."""
  model = models.create(
    config.model.name,
    num_classes(config),
    **{**config_utils.model_overrides(config), **(model_overrides or {})},
  )
  init_rng, _ = loop.seed_keys(config.seed)
  params_rng = jax.random.split(init_rng)[0]  # As `create_train_state` splits it.
  return jax.device_get(init_variables(model, params_rng, input_shape(config)))


# Keys of a run's random choices, all folded from its seed: pruning at cycle k
# (or GMP/SFP event at epoch k) uses PRUNING_SALT + k; the random re-inits of
# the lottery control and of Scratch start far above any cycle or epoch count.
PRUNING_SALT = 7919
LOTTERY_REINIT_SALT = 10_000
SCRATCH_REINIT_SALT = 20_000


def pruning_rng(config: ml_collections.ConfigDict, salt: int) -> jax.Array:
  return jax.random.fold_in(jax.random.PRNGKey(config.seed), PRUNING_SALT + salt)


def prune_kwargs(config: ml_collections.ConfigDict, salt: int) -> dict[str, Any]:
  """The keyword arguments every `pruning.prune` call of a protocol passes:
  the model (without the widths a structured run changes), its input shape and
  the random key of cycle/epoch `salt`."""
  return dict(
    model_name=config.model.name,
    rng=pruning_rng(config, salt),
    model_overrides=overrides_without_widths(config),
    input_shape=input_shape(config),
  )


# ------------------------------------------------------------------ workdirs
def cache_root(config: ml_collections.ConfigDict, workdir: str) -> str:
  if config.get("cache_dir"):
    return os.path.abspath(config.cache_dir)
  parent = os.path.dirname(os.path.abspath(workdir))
  if os.path.basename(parent) == "runs":  # jaxprune.results.sweeps layout.
    parent = os.path.dirname(parent)
  return os.path.join(parent, "cache")


def completed(workdir: str, config: ml_collections.ConfigDict) -> dict | None:
  """The summary of a completed run of this very config in `workdir`, or None."""
  path = os.path.join(workdir, "summary.json")
  if not os.path.exists(path):
    return None
  summary = io_utils.read_json(path)
  ok = summary.get("status") == "completed"
  if ok and summary.get("config_hash") == config_utils.config_hash(config):
    return summary
  return None


@dataclasses.dataclass
class Phase:
  """A finished phase: its directory and summary."""

  workdir: str
  summary: dict[str, Any]

  def final_tree(self) -> dict[str, Any]:
    """The phase's final checkpoint as host arrays (every state field)."""
    ckpt_dir = os.path.join(self.workdir, "checkpoints")
    with checkpointing.Checkpointer(ckpt_dir) as ckpt:
      restored = ckpt.restore("final")
    if restored is None:
      raise FileNotFoundError(f"no final checkpoint in {ckpt_dir}")
    return jax.device_get(restored[0])

  def final(self) -> Start:
    """The phase's final params, batch stats and masks (host arrays)."""
    state = self.final_tree()
    return Start(state["params"], state.get("batch_stats") or {}, state["masks"])

  def start_row(self) -> dict[str, Any]:
    """The epoch-0 metrics row (with `evaluate_start`), or {}."""
    rows = io_utils.read_jsonl(os.path.join(self.workdir, "metrics.jsonl"))
    return next((r for r in rows if r.get("epoch") == 0), {})


def run_phase(config: ml_collections.ConfigDict, workdir: str, **kwargs) -> Phase:
  """`train_and_evaluate(config, workdir, **kwargs)` unless already completed."""
  summary = completed(workdir, config)
  if summary is None:
    summary = train_and_evaluate(config, workdir, **kwargs)
  return Phase(workdir, summary)


def dense_cache_dir(root: str, train_config: ml_collections.ConfigDict) -> str:
  """`<root>/train/<config hash>-<code fingerprint>`: a dense phase is reused
  only by runs of the same config and the same training code."""
  digest = config_utils.config_hash(train_config)
  return os.path.join(root, "train", f"{digest}-{fingerprint.code('train')}")


# Cache entries last written before this time (unix seconds) are recomputed
# and overwritten; 0 = reuse every entry. Set by `refreshing_caches` (the
# sweeps' --force) for its duration: a process-wide setting of the cache, not
# a field of any run's config (its hash and resume checks stay the same).
_STALE_BEFORE = 0.0


@contextlib.contextmanager
def refreshing_caches(since: float | None = None):
  """Within: every shared dense / pruned cache entry written before entering
  (or before the time `since`: when a forced sweep began, for its tasks in
  other processes) is recomputed on first use (and overwritten); entries
  written since are reused, so the points of one forced sweep still share
  them."""
  global _STALE_BEFORE
  old, _STALE_BEFORE = _STALE_BEFORE, time.time() if since is None else since
  try:
    yield
  finally:
    _STALE_BEFORE = old


def drop_if_stale(path: str) -> None:
  """Removes the cache entry directory `path` if `refreshing_caches` is on and
  nothing in it was written since it began (call it under the entry's lock)."""
  if not _STALE_BEFORE or not os.path.isdir(path):
    return
  newest = max(
    (os.path.getmtime(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs),
    default=os.path.getmtime(path),
  )
  if newest < _STALE_BEFORE:
    shutil.rmtree(path, ignore_errors=True)


def cached_phase(
  config: ml_collections.ConfigDict, run_workdir: str, run_config=None, **kwargs
) -> Phase:
  """`run_phase` in the shared cache, keyed by `config`'s hash, under a lock."""
  workdir = dense_cache_dir(cache_root(run_config or config, run_workdir), config)
  with io_utils.file_lock(workdir + ".lock"):
    drop_if_stale(workdir)
    return run_phase(config, workdir, **kwargs)


def dense_phase(config: ml_collections.ConfigDict, workdir: str, **kwargs) -> Phase:
  """The dense pretraining of `config` (shared), or `retrain.dense_workdir`."""
  given = config.retrain.dense_workdir
  if given:
    path = os.path.join(given, "summary.json")
    summary = io_utils.read_json(path) if os.path.exists(path) else {}
    if summary.get("status") != "completed":
      raise ValueError(f"retrain.dense_workdir={given!r} holds no completed run")
    return Phase(given, summary)
  return cached_phase(training_config(config), workdir, config, **kwargs)


# ------------------------------------------------------------------ measuring
def sq_norm(tree: Any) -> float:
  return float(
    sum(
      np.sum(np.square(np.asarray(x, np.float64)))
      for x in jax.tree_util.tree_leaves(tree)
    )
  )


# Which params ALLR's norm change covers: BIMP's code takes every parameter
# (`get_model_norm_square`), the paper's text "the weight vector W".
NORM_PARAMS = ("all", "kernels")


def _kernels(tree: Any) -> list[Any]:
  flat = jax.tree_util.tree_flatten_with_path(tree)[0]
  return [x for path, x in flat if getattr(path[-1], "key", None) == "kernel"]


def relative_norm_change(before: Any, after: Any, which: str = "all") -> float:
  """||W - W_p|| / ||W|| over `which` params: "all" (kernels, biases, BN scale
  and bias) or "kernels".

  As BIMP's `get_model_norm_square`: sqrt(| ||W||^2 - ||W_p||^2 |) / ||W||,
  exact when W_p is W with entries removed or zeroed (masks or surgery).
  """
  if which not in NORM_PARAMS:
    raise ValueError(f"which must be one of {list(NORM_PARAMS)}, got {which!r}")
  if which == "kernels":
    before, after = _kernels(before), _kernels(after)
  nb, na = sq_norm(before), sq_norm(after)
  return math.sqrt(abs(nb - na)) / math.sqrt(nb) if nb > 0 else 0.0


def measure(
  config: ml_collections.ConfigDict,
  params: Any,
  masks: Any = None,
  widths: Any = None,
  prunable: Any = None,
) -> dict[str, Any]:
  """Sparsity, params and FLOPs of the pruned model vs the dense one.

  ``prunable`` (unstructured pruning) makes ``sparsity`` the prunable weights'
  mask sparsity; see the module docstring.
  """
  name, shape, ncls = config.model.name, input_shape(config), num_classes(config)
  base = config_utils.model_overrides(config)
  dense = counting.count(models.create(name, ncls, **base), shape)
  small = {**base, **({"widths": widths} if widths is not None else {})}
  model = models.create(name, ncls, **small)
  variables = None
  if params is not None:
    # BatchNorm models need their batch_stats to be traced (shapes suffice).
    x = jax.ShapeDtypeStruct((1, *shape), jax.numpy.float32)
    abstract = jax.eval_shape(
      lambda x: model.init(jax.random.key(0), x, train=False), x
    )
    variables = {**abstract, "params": params}
  pruned = counting.count(model, shape, variables, masks)
  nnz_flops = pruned.nonzero_flops
  return {
    "sparsity": counting.sparsity(dense, pruned, masks, prunable),
    "params": pruned.total_params,
    "nonzero_params": pruned.total_nonzero_params,
    "flops": pruned.flops,
    "nonzero_flops": nnz_flops,
    "dense_params": dense.total_params,
    "dense_flops": dense.flops,
    "speedup": dense.flops / nnz_flops if nnz_flops else math.inf,
    "compression": dense.total_params / max(pruned.total_nonzero_params, 1),
  }


def measure_at_init(
  config: ml_collections.ConfigDict,
  pruning_inputs: Callable[[Any, Any], dict[str, Any]] | None = None,
) -> dict[str, Any]:
  """:func:`measure` of `config.pruning` applied to the initial weights;
  `pruning_inputs(params, batch_stats)` adds data-dependent scores (e.g.
  `protocols.scoring.pruning_inputs`) to the `pruning.prune` call."""
  params, batch_stats = init_params(config)
  extra = pruning_inputs(params, batch_stats) if pruning_inputs else {}
  res = pruning.prune(
    config.pruning, params, batch_stats, **prune_kwargs(config, 1), **extra
  )
  return measure(config, res.params, res.masks, res.widths, res.prunable)


def mask_sparsity(masks: Any, prunable: Any) -> float:
  """Fraction of the prunable weights that are pruned."""
  return masks_lib.sparsity(masks, prunable).sparsity


def final_metrics(summary: dict[str, Any], prefix: str = "") -> dict[str, Any]:
  """The metric entries ("test/accuracy", ...) of a phase summary."""
  return {
    prefix + k: v for k, v in summary.items() if "/" in k and not k.startswith("time/")
  }


def widths_json(widths: Any) -> Any:
  if widths is None:
    return None
  if hasattr(widths, "_asdict"):  # ResNetWidths
    widths = widths._asdict()
  return jax.tree_util.tree_map(int, widths)


def finish(
  config: ml_collections.ConfigDict, workdir: str, summary: dict[str, Any]
) -> dict[str, Any]:
  """Adds status/hash, writes the run's summary.json, returns it."""
  summary = {
    "status": "completed",
    "protocol": config.protocol,
    **summary,
    "config_hash": config_utils.config_hash(config),
  }
  if sharding.is_primary():
    io_utils.atomic_write_json(os.path.join(workdir, "summary.json"), summary)
  return summary


def record_divergence(
  config: ml_collections.ConfigDict, workdir: str, error: loop.TrainingDivergedError
) -> dict[str, Any]:
  """Writes the run's summary.json for a run that diverged in one of its phases
  (`error` from `train_and_evaluate`); returns it.

  `phase` names the phase: its directory relative to the run ("cycle2",
  "finetune", ...), "run" for the run itself, "dense" for the shared training in
  the cache; `epoch` and `lr` are where the loss stopped being finite.
  """
  phase_dir = os.path.abspath(error.workdir or workdir)
  relative = os.path.relpath(phase_dir, os.path.abspath(workdir))
  name = {".": "run"}.get(relative, relative)
  if relative.startswith(".."):
    name = "dense"
  summary = {
    "status": "diverged",
    "protocol": config.get("protocol", "train"),
    "phase": name,
    "phase_workdir": phase_dir,
    **{k: v for k, v in error.summary.items() if k != "status"},
    "config_hash": config_utils.config_hash(config),
  }
  if name.startswith("cycle") and name[5:].isdigit():
    summary["cycle"] = int(name[5:])
  if sharding.is_primary():
    io_utils.atomic_write_json(os.path.join(workdir, "summary.json"), summary)
  return summary
