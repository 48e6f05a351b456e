"""Retraining schedules after pruning: FT, LRW, SLR, CLR, LLR, ALLR and friends.

Every variant is derived from `base` (the original training schedule config)
and a budget of `retrain_epochs`; T = retrain_epochs * steps_per_epoch steps.
eta_max / eta_min are the largest / smallest non-zero LR of the base schedule
per step (eta_min is taken after the base's own warm-up, as BIMP does).

`flavor` picks whose code to follow where Le & Hua (NPTM, "le2021") and
Zimmer et al. (BIMP, "zimmer2023") differ; the default is "zimmer2023":

| variant | zimmer2023 (BIMP, per step)                 | le2021 (NPTM)                          |
|---------|---------------------------------------------|----------------------------------------|
| ft      | constant eta_min                            | same                                   |
| lrw     | last T steps of the base schedule           | same (the base's last E epochs)        |
| slr     | cosine warm-up 0 -> eta_max over int(0.1 T) | per epoch: cosine warm-up eta_min ->   |
|         | steps, then the whole base compressed into  | eta_max over W = int(0.1 E) epochs,    |
|         | the rest by index subsampling               | base drops at W + int(m/E0 * 0.9 E)    |
| clr     | same warm-up, then cosine eta_max -> eta_min| OneCycleLR(eta_max, div 100, final div |
|         |                                             | 100, pct 0.1): ends at eta_max / 1e4   |
| llr ... | warm-up, then linear eta0 -> 0              | (not in NPTM: zimmer2023 is used)      |

ALLR (Zimmer et al. 2023 Sec. 2.1): eta0 = d * eta_max, d = clip(max(d1, d2),
0, 1), d1 = relative_norm_change / sqrt(sparsity), d2 = min(E / E0, 1) with E0
the base epochs. AccALLR (App. C.1): d1 = clip((acc_before - acc_after) /
acc_before, 0, 1). allr_d1 / allr_d2 use only d1 / d2. The tuned baselines
(`constant`, `step`, `cosine`, `linear` *with* a `base`) start at an explicit
`lr` after an optional warm-up (default none); `cosine` / `linear` end at
`min_lr` (default 0 as in BIMP; Wang et al. 2023 App. C: their minimum LR);
`step` is the base compressed into the budget (BIMP's "stepped (BAC)")
rescaled to start at `lr`.

`warmup_fraction` None means the variant's default (10 %, tuned: 0); 0 means
no warm-up (OneCycle with pct_start=0 for le2021 CLR, as in Le & Hua Fig. 8).
le2021 SLR always uses NPTM's per-epoch cosine warm-up (`warmup_shape` is
ignored there); le2021 CLR's warm-up is OneCycle's own cosine phase.
NPTM's OneCycle also cycles momentum 0.95 -> 0.85 -> 0.95 (PyTorch's
`cycle_momentum=True`; BIMP's CLR does not): with `cycle_momentum=True` (le2021
CLR only) :func:`momentum_schedule` returns that curve for the optimizer.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxprune import checks
from jaxprune.schedules import core, training
from jaxprune.schedules.core import Schedule, get_field, positive

FLAVORS = ("zimmer2023", "le2021")
DEFAULT_FLAVOR = "zimmer2023"
VARIANTS = ("ft", "lrw", "slr", "clr", "llr", "allr", "acc_allr", "allr_d1", "allr_d2")
TUNED = ("constant", "step", "cosine", "linear")
ADAPTIVE = ("allr", "acc_allr", "allr_d1", "allr_d2")
VALIDATING = object()  # `pruning` sentinel used by `validate`: skip the stats.


@dataclasses.dataclass(frozen=True)
class PruningStats:
  """What ALLR needs from one pruning step (one prune-retrain cycle).

  relative_norm_change: ||W - W_p|| / ||W|| over the pruned parameters.
  sparsity: fraction s in (0, 1] of the remaining weights pruned in this cycle.
  train_accuracy_before/after: train accuracy of the dense / pruned model
    (AccALLR only).
  """

  relative_norm_change: float
  sparsity: float
  train_accuracy_before: float | None = None
  train_accuracy_after: float | None = None


def as_stats(pruning: Any, path: str = "pruning") -> PruningStats:
  """Accepts a PruningStats, a dict or a ConfigDict."""
  if isinstance(pruning, PruningStats):
    return pruning
  if isinstance(pruning, Mapping) or hasattr(pruning, "to_dict"):
    data = dict(pruning.to_dict() if hasattr(pruning, "to_dict") else pruning)
    fields = {f.name for f in dataclasses.fields(PruningStats)}
    if extra := sorted(set(data) - fields):
      raise ValueError(f"{path}: unknown field(s) {extra}; allowed: {sorted(fields)}")
    try:
      return PruningStats(**data)
    except TypeError as e:
      raise ValueError(f"{path}: {e}") from None
  raise ValueError(f"{path} must be a PruningStats or a dict, got {pruning!r}")


@dataclasses.dataclass(frozen=True)
class Base:
  """The original training schedule, evaluated once per step."""

  schedule: Schedule
  epochs: int
  lrs: np.ndarray  # LR at every base step
  warmup_steps: int
  eta_max: float
  eta_min: float


# The built-in training schedules a retraining schedule can derive from.
BASES = (*training.STAIRCASES, "cosine", "linear", "cyclic_linear", "onecycle")


def describe_base(cfg: Any, spe: int, path: str) -> Base:
  if cfg is None or not hasattr(cfg, "get"):
    raise ValueError(f"{path} must be a schedule ConfigDict, got {cfg!r}")
  if cfg.get("name") not in BASES:
    raise ValueError(
      f"{path}.name must be a training schedule {list(BASES)}, got {cfg.get('name')!r}"
    )
  schedule, epochs = training.build(cfg, spe, path)
  if epochs is None:
    raise ValueError(f"{path}.epochs is required to derive a retraining schedule")
  warm = core.epochs_to_steps(cfg.get("warmup_epochs", 0) or 0, spe)
  if cfg.name in training.STAIRCASES and not warm:
    # Fast path (no per-step jnp evaluation): one value per epoch, repeated.
    starts, values, _ = training.staircase(cfg, path)
    per_epoch = [values[sum(s <= e for s in starts) - 1] for e in range(epochs)]
    lrs = np.repeat(np.asarray(per_epoch, np.float32), spe)
  else:
    lrs = np.asarray(jax.jit(jax.vmap(schedule))(jnp.arange(epochs * spe)))
  after = lrs[warm:]
  positive_lrs = after[after > 0]
  eta_min = float(positive_lrs.min()) if positive_lrs.size else 0.0
  return Base(schedule, epochs, lrs, warm, float(lrs.max()), eta_min)


def _d_factor(name: str, stats: PruningStats, d2: float, path: str) -> Any:
  """ALLR's discount d in [0, 1]; jnp ops so stats may also be traced arrays."""
  if name == "allr_d2":
    return jnp.float32(d2)
  if name == "acc_allr":
    before, after = stats.train_accuracy_before, stats.train_accuracy_after
    if before is None or after is None:
      raise ValueError(
        f"{path}.train_accuracy_before and .train_accuracy_after are required "
        "for acc_allr"
      )
    d1 = jnp.clip((before - after) / before, 0.0, 1.0)
  else:
    s, change = stats.sparsity, stats.relative_norm_change
    if isinstance(s, int | float) and not 0 < s <= 1:
      raise ValueError(f"{path}.sparsity must be in (0, 1], got {s!r}")
    if isinstance(change, int | float) and change < 0:
      raise ValueError(f"{path}.relative_norm_change must be >= 0, got {change!r}")
    d1 = change / jnp.sqrt(s)
  d = d1 if name == "allr_d1" else jnp.maximum(d1, d2)
  return jnp.clip(d, 0.0, 1.0).astype(jnp.float32)


def allr_initial_lr(
  base_eta_max: float,
  retrain_epochs: float,
  base_epochs: float,
  pruning: PruningStats | Mapping,
  name: str = "allr",
) -> float:
  """eta0 of ALLR and its variants, for logging (Zimmer et al. 2023 Sec. 2.1)."""
  d2 = min(retrain_epochs / base_epochs, 1.0)
  return float(_d_factor(name, as_stats(pruning), d2, "pruning")) * base_eta_max


def _warmup_then(
  warm: int, target: Any, init: float, shape: str, main: Schedule
) -> Schedule:
  if warm <= 0:
    return main
  return core.join([core.warmup_ramp(init, target, warm, shape), main], [warm])


def _table(lrs: np.ndarray) -> Schedule:
  table = jnp.asarray(lrs, dtype=jnp.float32)

  def schedule(step: Any) -> jnp.ndarray:
    return table[jnp.clip(jnp.asarray(step, jnp.int32), 0, len(lrs) - 1)]

  return schedule


def _compressed(base: Base, n: int) -> np.ndarray:
  """The base per-step LRs squeezed into n steps (Li et al. 2020's BAC).

  BIMP subsamples orig[int(j * len(orig) / n)] and replaces the base's own
  warm-up iterations by eta_max.
  """
  lrs = base.lrs.copy()
  lrs[: base.warmup_steps] = base.eta_max
  idx = (np.arange(n, dtype=np.int64) * len(lrs)) // n
  return lrs[idx]


def _le2021_slr(
  base: Base, cfg: Any, epochs: int, spe: int, frac: float, path: str
) -> Schedule:
  """NPTM's epoch-wise SLR: WarmupLR(cos) around MultiStepLR, stepped per epoch."""
  if cfg.base.name not in training.STAIRCASES:
    raise ValueError(
      f"{path}: flavor 'le2021' SLR needs a step-wise base "
      f"{list(training.STAIRCASES)}, got {cfg.base.name!r}; use flavor 'zimmer2023'"
    )
  starts, values, _ = training.staircase(cfg.base, f"{path}.base")
  warm = int(frac * epochs)
  init = cfg.get("warmup_init_lr", base.eta_min)
  # Drop points: the base's milestone fractions of the (1 - frac) * E epochs
  # after warm-up, offset by W because MultiStepLR only counts after warm-up.
  drops = [warm + int(s / base.epochs * (1 - frac) * epochs + 1e-9) for s in starts[1:]]
  table = []
  for e in range(epochs):
    if e < warm:
      table.append(
        values[0] + (init - values[0]) * (1 + math.cos(math.pi * e / warm)) / 2
      )
    else:
      table.append(values[sum(e >= d for d in drops)])
  return core.stepwise(list(range(epochs)), table, spe)


# PyTorch OneCycleLR's momentum bounds (base_momentum, max_momentum).
ONECYCLE_MOMENTUM = (0.85, 0.95)


def momentum_schedule(cfg: Any, spe: int, path: str = "schedule") -> Schedule | None:
  """NPTM's OneCycle momentum for le2021 CLR with `cycle_momentum`, else None.

  Mirrors the LR: 0.95 -> 0.85 (cosine) while the LR warms up, then back to
  0.95 while it anneals, over the same steps and warm-up fraction.
  """
  if not cfg.get("cycle_momentum", False):
    return None
  if cfg.get("name") != "clr" or cfg.get("flavor", DEFAULT_FLAVOR) != "le2021":
    raise ValueError(
      f"{path}.cycle_momentum is NPTM's OneCycle setting: it needs name 'clr' with "
      f"flavor 'le2021', got {cfg.get('name')!r} / {cfg.get('flavor')!r}"
    )
  steps = core.epochs_to_steps(cfg.retrain_epochs, spe)
  frac = cfg.get("warmup_fraction", None)
  low, high = ONECYCLE_MOMENTUM
  return training.onecycle(low, steps, high, high, 0.1 if frac is None else frac)


def build(cfg: Any, spe: int, pruning: Any, path: str = "schedule") -> Schedule:
  """Builds the retraining schedule `cfg.name` for one prune-retrain cycle."""
  name = cfg.name
  tuned = name in TUNED
  training.check_fields(
    cfg,
    path,
    (
      "base",
      "retrain_epochs",
      "flavor",
      "warmup_fraction",
      "warmup_shape",
      "warmup_init_lr",
      *(("lr",) if tuned else ()),
      *(("min_lr",) if name in ("cosine", "linear") else ()),
      "cycle_momentum",
    ),
  )
  flavor = cfg.get("flavor", DEFAULT_FLAVOR)
  checks.choice(flavor, f"{path}.flavor", FLAVORS)
  epochs = positive(get_field(cfg, "retrain_epochs", path), f"{path}.retrain_epochs")
  steps = core.epochs_to_steps(epochs, spe)
  base = describe_base(get_field(cfg, "base", path), spe, f"{path}.base")
  # None (or absent) means the variant's default; 0 means no warm-up at all
  # (Le & Hua Fig. 8 has a 0 % point distinct from the 10 % one).
  frac = cfg.get("warmup_fraction", None)
  frac = positive(
    (0.0 if tuned else 0.1) if frac is None else frac, f"{path}.warmup_fraction", True
  )
  if frac >= 1:
    raise ValueError(f"{path}.warmup_fraction must be in [0, 1), got {frac}")
  shape = cfg.get("warmup_shape", "cosine")
  checks.choice(shape, f"{path}.warmup_shape", core.WARMUP_SHAPES)
  init = positive(cfg.get("warmup_init_lr", 0.0), f"{path}.warmup_init_lr", True)
  warm = int(frac * steps)  # BIMP: first 10 % of the retraining iterations
  rest = steps - warm
  if rest < 2:
    raise ValueError(f"{path}.retrain_epochs={epochs} gives too few steps ({steps})")

  if name == "ft":
    return _table(np.array([base.eta_min]))
  if name == "lrw":
    if steps > len(base.lrs):
      raise ValueError(
        f"{path}.retrain_epochs={epochs} must be <= {path}.base.epochs={base.epochs} "
        "for lrw (it replays the base's last epochs)"
      )
    return _table(base.lrs[len(base.lrs) - steps :])
  if name == "slr":
    if flavor == "le2021":
      if int(epochs) != epochs:
        raise ValueError(f"{path}.retrain_epochs must be an integer for le2021 slr")
      return _le2021_slr(base, cfg, int(epochs), spe, frac, path)
    main = _table(_compressed(base, rest))
    return _warmup_then(warm, base.eta_max, init, shape, main)
  if name == "clr":
    if flavor == "le2021":
      peak = base.eta_max
      return training.onecycle(peak, steps, peak / 100, peak / 1e4, frac)
    main = core.anneal(base.eta_max, base.eta_min, rest, "cosine")
    return _warmup_then(warm, base.eta_max, init, shape, main)
  if tuned:
    lr = positive(get_field(cfg, "lr", path), f"{path}.lr")
    if name == "constant":
      main = _table(np.array([lr]))
    elif name == "step":
      main = _table(_compressed(base, rest) * (lr / base.eta_max))
    else:  # Wang et al. 2023 App. C's cosine ends at its minimum LR, not 0.
      end = positive(cfg.get("min_lr", 0.0), f"{path}.min_lr", True)
      if end > lr:
        raise ValueError(f"{path}.min_lr={end} must be <= {path}.lr={lr}")
      main = core.anneal(lr, end, rest, name)
    return _warmup_then(warm, lr, init, shape, main)
  # llr and the adaptive variants: warm-up, then linear eta0 -> 0.
  eta0: Any = base.eta_max
  if name in ADAPTIVE and pruning is not VALIDATING:
    if pruning is None and name != "allr_d2":
      raise ValueError(f"{path}.name={name!r} needs the pruning stats (pruning=...)")
    stats = as_stats(pruning) if pruning is not None else PruningStats(0.0, 1.0)
    d2 = min(epochs / base.epochs, 1.0)
    eta0 = _d_factor(name, stats, d2, "pruning") * base.eta_max
  main = core.anneal(eta0, 0.0, rest, "linear")
  return _warmup_then(warm, eta0, init, shape, main)
