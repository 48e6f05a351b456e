"""Training schedules built from config: constant, piecewise, step, halving,
cosine, linear and onecycle (see `jaxprune.schedules` for the config fields).

Epoch-wise staircases follow Wang et al.'s `PresetLRScheduler` (TPP) and
PyTorch `MultiStepLR` stepped once per epoch (rethinking, NPTM). `halving`
implements Wang et al. 2023 App. A Rules 1-3. `cosine`/`linear`/`onecycle`
change every step; `onecycle` matches PyTorch `OneCycleLR` (cosine annealing in
both phases, peak at step `warmup_fraction * T - 1`), which NPTM uses for CLR.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxprune import checks
from jaxprune.schedules import core
from jaxprune.schedules.core import Schedule, get_field, positive

_WARMUP_FIELDS = ("warmup_epochs", "warmup_shape", "warmup_init_lr")


def check_fields(cfg: Any, path: str, allowed: Sequence[str]) -> None:
  """Rejects misspelt fields (e.g. `warmup_epoch`) instead of ignoring them."""
  allowed = {"name", *allowed}
  extra = sorted(set(cfg.keys()) - allowed)
  if extra:
    raise ValueError(
      f"{path}: unknown field(s) {extra} for {path}.name={cfg.name!r}; "
      f"allowed: {sorted(allowed)}"
    )


def get_epochs(cfg: Any, path: str, required: bool = True) -> int | None:
  epochs = get_field(cfg, "epochs", path, core.REQUIRED if required else None)
  if epochs is None:
    return None
  if int(epochs) != epochs or epochs <= 0:
    raise ValueError(f"{path}.epochs must be a positive integer, got {epochs!r}")
  return int(epochs)


def get_warmup(cfg: Any, path: str, spe: int, epochs: int | None) -> tuple:
  """Returns (warmup_steps, shape, init_lr) from the optional warm-up fields."""
  w_epochs = positive(cfg.get("warmup_epochs", 0), f"{path}.warmup_epochs", True)
  if epochs is not None and w_epochs >= epochs:
    raise ValueError(
      f"{path}.warmup_epochs={w_epochs} must be < {path}.epochs={epochs}"
    )
  shape = cfg.get("warmup_shape", "linear")
  checks.choice(shape, f"{path}.warmup_shape", core.WARMUP_SHAPES)
  init = positive(cfg.get("warmup_init_lr", 0.0), f"{path}.warmup_init_lr", True)
  return core.epochs_to_steps(w_epochs, spe), shape, init


# ------------------------------------------------------------ staircases
def staircase(cfg: Any, path: str) -> tuple[list[int], list[float], int | None]:
  """(start epochs, LRs, total epochs) of an epoch-wise schedule config."""
  name = cfg.name
  if name == "constant":
    check_fields(cfg, path, ("lr", "epochs", *_WARMUP_FIELDS))
    lr = positive(get_field(cfg, "lr", path), f"{path}.lr", True)
    return [0], [lr], get_epochs(cfg, path, required=False)
  epochs = get_epochs(cfg, path)
  if name == "piecewise":
    check_fields(cfg, path, ("spec", "epochs", *_WARMUP_FIELDS))
    starts, values = core.parse_spec(get_field(cfg, "spec", path), path, epochs)
    relative = ",".join(
      f"{i}/{len(values)}:{v:g}" if i else f"0:{v:g}" for i, v in enumerate(values)
    )
    fix = (
      f"change {path}.spec with the epochs, e.g. --config.{path}.spec={relative} "
      "(fractions of the epochs keep the shape for any num_epochs)"
    )
    core.check_milestones(starts, epochs, f"{path}.spec", fix)
    return starts, values, epochs
  if name == "step":
    check_fields(cfg, path, ("lr", "epochs", "milestones", "gamma", *_WARMUP_FIELDS))
    lr = positive(get_field(cfg, "lr", path), f"{path}.lr")
    gamma = positive(cfg.get("gamma", 0.1), f"{path}.gamma")
    milestones = [int(m) for m in get_field(cfg, "milestones", path)]
    core.check_milestones(
      milestones, epochs, f"{path}.milestones", f"change {path}.milestones too"
    )
    if any(b <= a for a, b in itertools.pairwise(milestones)) or 0 in milestones:
      raise ValueError(
        f"{path}.milestones must be strictly increasing epochs > 0, got {milestones}"
      )
    return (
      [0, *milestones],
      [_clean(lr * gamma**i) for i in range(len(milestones) + 1)],
      epochs,
    )
  if name == "halving":
    check_fields(
      cfg,
      path,
      ("lr", "final_lr", "epochs", "max_stage_epochs", "gamma", *_WARMUP_FIELDS),
    )
    lr = positive(get_field(cfg, "lr", path), f"{path}.lr")
    final_lr = positive(get_field(cfg, "final_lr", path), f"{path}.final_lr")
    max_stage = cfg.get("max_stage_epochs", 30)
    if max_stage is not None:
      max_stage = int(positive(max_stage, f"{path}.max_stage_epochs"))
    gamma = positive(cfg.get("gamma", 0.1), f"{path}.gamma")
    if gamma >= 1 or final_lr > lr:
      raise ValueError(f"{path}: halving needs gamma < 1 and final_lr <= lr")
    try:
      starts, values = halving_spec(lr, final_lr, epochs, max_stage, gamma)
    except ValueError as e:
      raise ValueError(f"{path}: {e}") from None
    return starts, values, epochs
  raise ValueError(f"{path}.name={name!r} is not an epoch-wise schedule")


STAIRCASES = ("constant", "piecewise", "step", "halving")


def _clean(x: float) -> float:
  # 0.1 * 0.1**2 is 0.0010000000000000002; keep specs/logs readable.
  return float(f"{x:.12g}")


def halving_stages(
  epochs: int, num_stages: int, max_stage_epochs: int | None
) -> list[int]:
  """Stage lengths of Wang et al.'s halving rule (2023 App. A, Rules 2-3).

  Each stage takes half of the remaining epochs, rounded up (P60F60: 30,15,8,7),
  capped at `max_stage_epochs` (Rule 3); the last stage takes the remainder so
  that the schedule ends at the final LR (Rule 1 wins if the rules clash).
  """
  lengths, remaining = [], epochs
  for _ in range(num_stages - 1):
    length = math.ceil(remaining / 2)
    if max_stage_epochs is not None:
      length = min(length, max_stage_epochs)
    lengths.append(length)
    remaining -= length
  lengths.append(remaining)
  if min(lengths) <= 0:
    raise ValueError(
      f"halving rule: {epochs} epochs are too few for {num_stages} LR stages"
    )
  return lengths


def halving_spec(
  lr: float,
  final_lr: float,
  epochs: int,
  max_stage_epochs: int | None = 30,
  gamma: float = 0.1,
) -> tuple[list[int], list[float]]:
  """Start epochs and LRs from `lr` down to `final_lr` by factors of `gamma`.

  90 epochs, 0.1 -> 1e-5 gives `0:1e-1,30:1e-2,60:1e-3,75:1e-4,83:1e-5`.
  """
  ratio = math.log(final_lr / lr) / math.log(gamma)
  if abs(ratio - round(ratio)) > 1e-6:
    raise ValueError(
      f"final_lr={final_lr} must be lr={lr} times a power of gamma={gamma}"
    )
  num_stages = round(ratio) + 1
  lengths = halving_stages(epochs, num_stages, max_stage_epochs)
  starts = [int(x) for x in np.cumsum([0, *lengths[:-1]])]
  return starts, [_clean(lr * gamma**i) for i in range(num_stages)]


# ------------------------------------------------------------ builders
def build(cfg: Any, spe: int, path: str = "schedule") -> tuple[Schedule, int | None]:
  """Builds a training schedule; returns it and its length in epochs."""
  name = cfg.name
  if name in STAIRCASES:
    starts, values, epochs = staircase(cfg, path)
    sched = core.stepwise(starts, values, spe)
  elif name in ("cosine", "linear"):
    end_field = "min_lr" if name == "cosine" else "final_lr"
    check_fields(cfg, path, ("lr", "epochs", end_field, *_WARMUP_FIELDS))
    epochs = get_epochs(cfg, path)
    lr = positive(get_field(cfg, "lr", path), f"{path}.lr")
    end = positive(cfg.get(end_field, 0.0), f"{path}.{end_field}", True)
    if end > lr:
      raise ValueError(f"{path}.{end_field}={end} must be <= {path}.lr={lr}")
    total = epochs * spe
    warm, shape, init = get_warmup(cfg, path, spe, epochs)
    decay = core.anneal(lr, end, total - warm, name)
    ramp = core.warmup_ramp(init, lr, warm, shape)
    return (core.join([ramp, decay], [warm]) if warm else decay), epochs
  elif name == "cyclic_linear":
    return cyclic_linear(cfg, spe, path)
  elif name == "onecycle":
    check_fields(
      cfg, path, ("max_lr", "epochs", "initial_lr", "final_lr", "warmup_fraction")
    )
    epochs = get_epochs(cfg, path)
    max_lr = positive(get_field(cfg, "max_lr", path), f"{path}.max_lr")
    initial = positive(cfg.get("initial_lr", max_lr / 100), f"{path}.initial_lr", True)
    final = positive(cfg.get("final_lr", initial / 100), f"{path}.final_lr", True)
    frac = positive(cfg.get("warmup_fraction", 0.1), f"{path}.warmup_fraction", True)
    if frac >= 1:
      raise ValueError(f"{path}.warmup_fraction must be in [0, 1), got {frac}")
    return onecycle(max_lr, epochs * spe, initial, final, frac), epochs
  else:
    raise ValueError(f"{path}.name={name!r} is not a training schedule")
  warm, shape, init = get_warmup(cfg, path, spe, epochs)
  return core.with_warmup(sched, warm, shape, init), epochs


def cyclic_linear(cfg: Any, spe: int, path: str) -> tuple[Schedule, int]:
  """Linear decay from `lr` to `final_lr` (default 0) restarted at every epoch
  of `restarts`: BIMP's cyclic linear schedule over fixed cycles, and the
  "cyclic" LR of Zimmer et al.'s GMP variants (App. C.3, Tables 28-29), whose
  cycles end at GMP's pruning epochs. Each cycle reaches `final_lr` at its
  last step."""
  check_fields(cfg, path, ("lr", "epochs", "restarts", "final_lr"))
  epochs = get_epochs(cfg, path)
  lr = positive(get_field(cfg, "lr", path), f"{path}.lr")
  end = positive(cfg.get("final_lr", 0.0), f"{path}.final_lr", True)
  if end > lr:
    raise ValueError(f"{path}.final_lr={end} must be <= {path}.lr={lr}")
  restarts = list(cfg.get("restarts", ()) or ())
  if any(not isinstance(r, int) or isinstance(r, bool) for r in restarts) or (
    restarts != sorted(set(restarts)) or not all(0 < r < epochs for r in restarts)
  ):
    raise ValueError(
      f"{path}.restarts must be increasing integer epochs in (0, {epochs}), "
      f"got {tuple(restarts)}"
    )
  bounds = [0, *restarts, epochs]
  pieces = [
    core.anneal(lr, end, (b - a) * spe, "linear") for a, b in itertools.pairwise(bounds)
  ]
  return core.join(pieces, [r * spe for r in restarts]), epochs


def onecycle(
  max_lr: float, total_steps: int, initial_lr: float, final_lr: float, frac: float
) -> Schedule:
  """PyTorch `OneCycleLR` LR curve (anneal_strategy='cos', two phases).

  Phase 1 ends at step `frac * T - 1` (float, as PyTorch), phase 2 at `T - 1`.
  frac = 0 (pct_start=0) has no warm-up: phase 2 starts at step -1, so step 0
  is already one step into the cosine from max_lr, exactly as PyTorch steps it.
  """
  peak = frac * total_steps - 1.0
  last = float(total_steps - 1)
  if peak == 0 or last <= peak:
    raise ValueError(f"onecycle: {total_steps} steps are too few for warmup {frac}")

  def cos(start: float, end: float, pct: jnp.ndarray) -> jnp.ndarray:
    return end + (start - end) / 2.0 * (jnp.cos(jnp.pi * pct) + 1.0)

  def schedule(step: Any) -> jnp.ndarray:
    t = jnp.asarray(step, dtype=jnp.float32)
    up = cos(initial_lr, max_lr, jnp.clip(t / peak, 0.0, 1.0))
    down = cos(max_lr, final_lr, jnp.clip((t - peak) / (last - peak), 0.0, 1.0))
    return jnp.where(t <= peak, up, down).astype(jnp.float32)

  return schedule
