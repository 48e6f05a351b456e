"""Experiment config schema: the base ConfigDict every config file starts from.

Config files under `configs/` define `get_config(arg=None)`, start from
`base_config()`, set their fields, and call `finalize(config, arg)`, which
applies the `smoke` variant (a seconds-long run of the same code path).
`config_hash` / `diff` say whether two configs compute the same thing.

A leaf of the package: it imports only `config_schema` and the `pruning`
section's defaults (`pruning.default_config`, owned by the pruning engine).
Values are checked by the layer that reads them: `jaxprune.train.validate`
(what the loop reads) and `jaxprune.protocols.validate` (that plus the
protocol's sections); unknown fields are rejected by the locked ConfigDict.
"""

from __future__ import annotations

import ast
import difflib
import functools
import hashlib
import json
from collections.abc import Sequence
from typing import Any

import ml_collections
from ml_collections import config_dict

from jaxprune import config_args, config_schema, pruning

# Fields that do not change what a run computes: a resumed run may differ in them.
RESUME_SAFE_FIELDS = (
  "progress",
  "eval_every_epochs",
  "checkpoint_every_epochs",
  "analysis",
  "cache_dir",  # Where shared phases are stored, not what they compute.
  # How streamed batches are read; the batches are the same with any loader
  # (tests/test_grain_loader.py).
  "data.loader",
  "data.loader_workers",
)


def base_config() -> ml_collections.ConfigDict:
  """All fields of a training run, with defaults."""
  c = ml_collections.ConfigDict()
  c.protocol = "train"  # See jaxprune.protocols.
  c.seed = 0
  c.num_epochs = 30
  c.batch_size = 128
  c.eval_batch_size = 1000
  c.eval_every_epochs = 1
  c.checkpoint_every_epochs = 1
  c.keep_checkpoints = 2
  c.progress = True
  # Compute dtype of the forward/backward passes (float32 | bfloat16 | float16;
  # params, optimizer state, BatchNorm statistics and the loss stay float32)
  # and jax.default_matmul_precision (default | high | highest: TF32 on GPUs
  # or not). See jaxprune.train.precision.
  c.precision = "float32"
  c.matmul_precision = "default"

  c.model = ml_collections.ConfigDict()
  c.model.name = "mlp7_relu"
  c.model.init = "default"
  # Scales the model's default widths (every family; `models.create`). Smoke
  # runs set SMOKE_WIDTH_MULTIPLIER; 1.0 is the paper's net.
  c.model.width_multiplier = 1.0
  # Kernel of the zoo's convolutions: auto (slices + matmul where measured
  # faster on CPU, XLA's elsewhere) | xla | matmul; see jaxprune.models.conv_impl.
  # Same params either way; a later field, so hashed only when not "auto".
  c.model.conv_impl = "auto"

  c.data = ml_collections.ConfigDict()
  c.data.name = "fashion_mnist_local"
  c.data.data_dir = config_dict.placeholder(str)
  c.data.manual_dir = config_dict.placeholder(str)
  c.data.image_size = config_dict.placeholder(tuple)  # (H, W); None = native.
  c.data.mean = config_dict.placeholder(tuple)  # None = the dataset's constants.
  c.data.std = config_dict.placeholder(tuple)
  c.data.augment = "none"  # none | cifar (pad 4 + crop + flip) | flip.
  c.data.validation_fraction = 0.0  # e.g. 0.1 for Le & Hua's 90/10 split.
  c.data.split_seed = 42  # -1: the run's seed (a different split per seed).
  c.data.train_limit = 0  # 0 = all examples.
  c.data.test_limit = 0
  c.data.resident = config_dict.placeholder(bool)  # None = dataset default.
  # Class-list file of a class-subset dataset (imagenet100); None: its default.
  c.data.class_list = config_dict.placeholder(str)
  # Streamed datasets: "thread" (a background thread pool) or "grain" (grain's
  # workers, `pip install jaxprune[grain]`); loader_workers: grain worker
  # processes, 0 = grain's threads in this process. Same batches either way.
  c.data.loader = "thread"
  c.data.loader_workers = 0

  c.optimizer = ml_collections.ConfigDict()
  c.optimizer.name = "sgd"
  c.optimizer.momentum = 0.9
  c.optimizer.nesterov = False
  c.optimizer.weight_decay = 1e-4

  c.schedule = ml_collections.ConfigDict()
  c.schedule.name = "piecewise"
  # Stage starts as fractions of the epochs: any num_epochs keeps the shape.
  c.schedule.spec = "0:0.01,1/2:0.001,5/6:0.0001"
  c.schedule.epochs = c.get_ref("num_epochs")

  # Measurements taken during training (logged with the metrics).
  c.analysis = ml_collections.ConfigDict()
  c.analysis.jsv_every_epochs = 0  # Mean Jacobian singular value; 0 = off.
  c.analysis.jsv_num_examples = 256  # Fixed training examples used for it.
  c.pruning = pruning.default_config()  # Dense unless pruning.name is set.
  _protocol_sections(c)
  return c


def _protocol_sections(c: ml_collections.ConfigDict) -> None:
  """Fields of the pruning protocols (see `jaxprune.protocols`); unused by "train"."""
  # Shared store of dense pretrainings, keyed by their config hash. None:
  # <workdir>/../cache (a sweep's run <sweep>/runs/<hash> uses <sweep>/cache).
  c.cache_dir = config_dict.placeholder(str)

  # Retraining after pruning (prune_retrain, bimp, slimming).
  c.retrain = ml_collections.ConfigDict()
  c.retrain.num_epochs = 10  # Per prune-retrain cycle (bimp: split of the budget).
  # A retraining variant (ft lrw slr clr llr allr allr_d1 allr_d2 and the tuned
  # constant/step/cosine/linear, which need `lr`) derived from `config.schedule`,
  # or "piecewise" with `spec` over the retraining epochs.
  c.retrain.schedule = "llr"
  c.retrain.lr = config_dict.placeholder(float)
  # End LR of the tuned cosine/linear variants; None: 0 (BIMP's tuned ones).
  c.retrain.min_lr = config_dict.placeholder(float)
  c.retrain.spec = ""
  c.retrain.flavor = "zimmer2023"  # zimmer2023 | le2021
  c.retrain.warmup_fraction = config_dict.placeholder(float)  # None: the variant's.
  c.retrain.warmup_shape = "cosine"
  c.retrain.warmup_init_lr = 0.0
  # NPTM's OneCycle momentum 0.95 -> 0.85 -> 0.95 (flavor le2021 clr only).
  c.retrain.cycle_momentum = False
  # ALLR's ||W - W_p|| / ||W||: "all" params (BIMP's code) | "kernels" (the
  # paper's "weight vector W").
  c.retrain.allr_norm_params = "all"
  c.retrain.orthp = False  # OrthP after pruning (and surgery), before retraining.
  c.retrain.orthp_gain = 0.0  # 0: from the model's activation (sqrt 2 for ReLU).
  c.retrain.dense_workdir = config_dict.placeholder(str)  # Use this finished run.

  # BIMP: config.num_epochs is T0; the rest of the budget is split over cycles.
  c.bimp = ml_collections.ConfigDict()
  c.bimp.budget_epochs = 0  # T, total epochs (training + all retraining).
  # BIMP trains its T0 epochs with a linear LR (Zimmer et al. Sec. 2.2); any
  # other `schedule` is refused unless this is set (an ablation, not BIMP).
  c.bimp.allow_nonlinear_t0 = False

  # Pruning during training (protocol "during"): the method and the options
  # of every registered method, `config.during.<method>.*`.
  # Imported here, not at the top: the methods' registry imports the method
  # modules, which need the whole pruning package loaded first.
  from jaxprune.pruning import during

  c.during = during.default_config()

  # Lottery: rewinding point from pruning.rewind / pruning.rewind_epoch.
  c.lottery = ml_collections.ConfigDict()
  c.lottery.random_control = True  # Also train the same mask from a random init.

  # Training a pruned architecture from scratch (Liu et al. 2019).
  c.scratch = ml_collections.ConfigDict()
  c.scratch.budget = "B"  # E | B
  c.scratch.source = "pruned"  # pruned | uniform | guided | transferred
  # "transferred": the model / data the per-stage pattern is found on ("": this run's).
  c.scratch.transfer_model = ""
  c.scratch.transfer_data = ""
  c.scratch.e_convention = "rethinking2019"  # rethinking2019 | le2021
  c.scratch.b_extra_epochs = 0  # K2 of K1 * F1 / F2 + K2.
  c.scratch.max_speedup = 0.0  # Cap on F1 / F2 (Liu et al.'s ImageNet: 2); 0: none.

  # Soft Filter Pruning (protocol "sfp"). pretrained=False: soft pruning while
  # training from scratch (num_epochs, schedule). True: the dense model of the
  # normal schedule (shared cache, as prune_retrain) is soft-pruned for
  # sfp.num_epochs with the piecewise LR sfp.schedule_spec.
  c.sfp = ml_collections.ConfigDict()
  c.sfp.pretrained = False
  c.sfp.num_epochs = 0  # Soft phase length with pretrained=True (must be > 0).
  c.sfp.schedule_spec = ""  # "epoch:lr,..." over the soft phase; "": required.

  # Wang et al. 2023's prune-at-epoch-k protocols over the scratch schedule.
  c.prune_epoch = ml_collections.ConfigDict()
  c.prune_epoch.setup = "pkfn"  # pkfn | sx_a | sx_b
  c.prune_epoch.epoch = 30  # k
  c.prune_epoch.finetune_lr = 0.01  # SX-A / SX-B.
  c.prune_epoch.max_stage_epochs = 30  # Halving rule 3; 0: no limit.
  c.prune_epoch.speedup = config_dict.placeholder(float)  # SX-B; None: counted.
  # Epochs added to the fine-tuning's first LR stage (Tables 5, 8: "+N epochs").
  c.prune_epoch.extra_epochs = 0


def finalize(
  config: ml_collections.ConfigDict, arg: str | None
) -> ml_collections.ConfigDict:
  """Applies the config argument: none (as is) or `smoke` (`is_smoke`)."""
  return smoke(config) if is_smoke(arg) else config


def is_smoke(arg: str | None) -> bool:
  """Whether the config argument asks for the smoke variant; the argument's
  only key (`jaxprune.config_args.parse_arg`: anything else raises)."""
  return config_args.parse_arg(arg, smoke=False).smoke


def _rescale_spec(spec: str, old_epochs: int, new_epochs: int) -> str:
  """'0:0.1,80:0.01' over 160 epochs -> same shape over `new_epochs`."""
  pairs = []
  for item in spec.split(","):
    epoch, lr = item.split(":")
    if "/" in epoch:  # A fraction of the epochs rescales itself.
      pairs.append((epoch, lr))
      continue
    scaled = int(int(epoch) * new_epochs / old_epochs)
    if pairs and isinstance(pairs[-1][0], int) and scaled <= pairs[-1][0]:
      continue  # Stages shorter than one epoch collapse.
    pairs.append((scaled, lr))
  return ",".join(f"{e}:{lr}" for e, lr in pairs)


# Smoke runs build every net at this fraction of its widths: VGG-16 and
# ResNet-110 then compile and train in seconds on a CPU (at full width the
# first VGG-16 point of le2021/table2.py took over 9 minutes).
SMOKE_WIDTH_MULTIPLIER = 0.125


def smoke(
  config: ml_collections.ConfigDict, epochs: int = 2
) -> ml_collections.ConfigDict:
  """Shrinks a config to a seconds-long run on a few hundred examples, with
  the model at `SMOKE_WIDTH_MULTIPLIER` of its widths."""
  old_epochs = int(config.num_epochs)
  with config.unlocked():
    config.num_epochs = epochs
    config.model.width_multiplier = SMOKE_WIDTH_MULTIPLIER
    config.data.train_limit = 512
    config.data.test_limit = 256
    # 16 steps per epoch: enough for a smoke run to learn an easy task.
    config.batch_size = min(config.batch_size, 32)
    config.eval_batch_size = 128
    if "spec" in config.schedule:
      config.schedule.spec = _rescale_spec(config.schedule.spec, old_epochs, epochs)
    if "milestones" in config.schedule:
      scaled = {int(m * epochs / old_epochs) for m in config.schedule.milestones}
      config.schedule.milestones = tuple(sorted(m for m in scaled if 0 < m < epochs))
  return config


def field_names(config: ml_collections.ConfigDict, prefix: str = "") -> list[str]:
  """Every dotted field of `config`, sections included."""
  out = []
  for key, value in config.items():
    out.append(prefix + key)
    if isinstance(value, ml_collections.ConfigDict):
      out.extend(field_names(value, f"{prefix}{key}."))
  return out


def check_field(config: ml_collections.ConfigDict, dotted: str, what: str) -> None:
  """ValueError naming `dotted` and the nearest valid fields unless it exists
  (or the field that replaced it, `config_schema.REPLACED_FIELDS`)."""
  if dotted in config_schema.REPLACED_FIELDS:
    new = config_schema.REPLACED_FIELDS[dotted]
    raise ValueError(f"{what}: field {dotted!r} was removed; set {new!r} instead")
  node = config
  for part in dotted.split("."):
    if not isinstance(node, ml_collections.ConfigDict) or part not in node:
      names = field_names(config)
      leaf = dotted.rsplit(".", 1)[-1]
      # Same leaf elsewhere first (optimizer.lr -> schedule.lr), then look-alikes.
      near = [n for n in names if n.rsplit(".", 1)[-1] == leaf]
      near += difflib.get_close_matches(dotted, names, n=4, cutoff=0.6)
      near = list(dict.fromkeys(near))[:4]
      hint = f"; nearest valid fields: {', '.join(near)}" if near else ""
      raise ValueError(f"{what}: unknown field {dotted!r}{hint}")
    node = node[part]


def parse_overrides(
  args: Sequence[str], config: ml_collections.ConfigDict
) -> dict[str, Any]:
  """`["--config.pruning.sparsity=0.9", ...]` -> `{"pruning.sparsity": 0.9}`.

  The same `--config.FIELD=VALUE` syntax as `jaxprune.main`, for the argparse
  commands (sweeps, inspect). A value is read as a Python literal where that
  fits the field's current type (numbers, booleans, tuples, None); a string
  field takes the text as is. Anything else raises ValueError naming it.
  """
  out = {}
  for arg in args:
    key, eq, text = arg.partition("=")
    if not key.startswith("--config.") or not eq:
      raise ValueError(
        f"unrecognised argument {arg!r}; overrides: --config.FIELD=VALUE"
      )
    key = key[len("--config.") :]
    check_field(config, key, f"--config.{key}")
    current = config
    for part in key.split("."):
      current = current[part]
    out[key] = _literal(text) if not isinstance(current, str) else text
    if isinstance(current, float) and isinstance(out[key], int):
      out[key] = float(out[key])
  return out


def _literal(text: str) -> Any:
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def model_overrides(config: ml_collections.ConfigDict) -> dict[str, Any]:
  """`config.model` minus `name`, as keyword arguments for `models.create`."""
  overrides = config.model.to_dict()
  overrides.pop("name")
  return overrides


def to_json_dict(config: ml_collections.ConfigDict) -> dict[str, Any]:
  return json.loads(config.to_json_best_effort(sort_keys=True))


def config_hash(config: ml_collections.ConfigDict) -> str:
  """Stable short hash of everything that determines a run's results.

  Fields of `config_schema.HASHED_ALWAYS` are always hashed (hashes computed
  before that list existed stay valid); a field added later is hashed only
  when it differs from its `base_config()` default.
  """
  fields = without_new_defaults(to_json_dict(config), _defaults())
  for key in RESUME_SAFE_FIELDS:
    section, _, leaf = key.rpartition(".")
    (fields.get(section, {}) if section else fields).pop(leaf, None)
  return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def _defaults() -> dict[str, Any]:
  """`base_config()` as JSON (read only; cached: hashing runs per sweep point)."""
  return to_json_dict(base_config())


def without_new_defaults(
  fields: dict[str, Any], defaults: dict[str, Any], prefix: str = ""
) -> dict[str, Any]:
  """`fields` minus the fields outside `HASHED_ALWAYS` that equal their default."""
  out = {}
  for key, value in fields.items():
    name, known = prefix + key, key in defaults
    if isinstance(value, dict) and isinstance(defaults.get(key), dict):
      value = without_new_defaults(value, defaults[key], name + ".")
      if not value and name not in config_schema.HASHED_ALWAYS:
        continue  # A new section left at its defaults.
    elif known and name not in config_schema.HASHED_ALWAYS and value == defaults[key]:
      continue
    out[key] = value
  return out


def hashed_section(fields: dict[str, Any], section: str) -> dict[str, Any]:
  """A section's JSON dict (e.g. `pruning`) as `config_hash` counts it: fields
  added after the hashed schema was frozen are left out at their defaults."""
  return without_new_defaults(fields, _defaults()[section], section + ".")


def diff(saved: dict[str, Any], current: dict[str, Any], prefix: str = "") -> list[str]:
  """Dotted names of fields that differ between two config dicts (a field
  added to the schema after `saved` was written counts only off its default)."""
  if not prefix:
    defaults = _defaults()
    saved = without_new_defaults(saved, defaults)
    current = without_new_defaults(current, defaults)
  out = []
  for key in sorted(set(saved) | set(current)):
    name = f"{prefix}{key}"
    if name in RESUME_SAFE_FIELDS:  # A resume-safe field or whole section.
      continue
    a, b = saved.get(key), current.get(key)
    if isinstance(a, dict) and isinstance(b, dict):
      out.extend(diff(a, b, name + "."))
    elif a != b:
      out.append(name)
  return out
