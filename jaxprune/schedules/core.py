"""Schedule primitives (step -> LR), config readers and the spec parser.

Conventions shared by every schedule in this package:

* A schedule is a function of the integer optimizer step (Python int or traced
  array) returning a float32 LR; it uses only `jnp` ops, so it works under
  `jax.jit` and with `optax` (`optax.sgd(learning_rate=schedule)`).
* Epoch-wise schedules (`constant`, `piecewise`, `step`, `halving`) evaluate at
  `epoch = step // steps_per_epoch`, i.e. the LR is constant within an epoch, as
  Wang et al.'s `PresetLRScheduler` (TPP) and PyTorch `MultiStepLR` stepped per
  epoch (rethinking / NPTM) do.
* Continuous schedules (`cosine`, `linear`, `onecycle`, warm-ups) change every
  step. Decays reach their end value exactly at the *last* step `T - 1`
  (like PyTorch `OneCycleLR`); warm-ups reach their target at step `W`, the first
  step of the main phase (both NPTM's `WarmupLR` and BIMP's cosine warm-up).
* Steps past the end hold the final value.

The piecewise notation is the papers' `"epoch:lr,epoch:lr,..."` (Wang et al.
2023 App. A, TPP): the LR is the value of the last key <= the current epoch.
"""

from __future__ import annotations

import fractions
import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import jax.numpy as jnp

from jaxprune import checks

Schedule = Callable[[Any], jnp.ndarray]
REQUIRED = object()
WARMUP_SHAPES = ("linear", "cosine")


def get_field(cfg: Any, field: str, path: str, default: Any = REQUIRED) -> Any:
  """Reads `cfg.field` (resolving FieldReferences), or fails naming the field."""
  value = cfg.get(field, default) if hasattr(cfg, "get") else default
  if value is REQUIRED or (value is None and default is REQUIRED):
    raise ValueError(f"{path}.{field} is required for {path}.name={cfg.name!r}")
  return value


def positive(value: Any, name: str, allow_zero: bool = False) -> float:
  """Checks a numeric config value is > 0 (or >= 0) and returns it as float."""
  try:
    value = float(value)
  except (TypeError, ValueError):
    raise ValueError(f"{name} must be a number, got {value!r}") from None
  if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
    bound = ">= 0" if allow_zero else "> 0"
    raise ValueError(f"{name} must be {bound}, got {value!r}")
  return value


def epochs_to_steps(epochs: float, steps_per_epoch: int) -> int:
  """Rounds a (possibly fractional) epoch count to whole steps."""
  return round(epochs * steps_per_epoch)


# ---------------------------------------------------------------- primitives
def _step_array(step: Any) -> jnp.ndarray:
  return jnp.asarray(step, dtype=jnp.int32)


def stepwise(
  boundaries: Sequence[int], values: Sequence[float], steps_per_epoch: int
) -> Schedule:
  """Epoch-wise staircase: `values[i]` from epoch `boundaries[i]` on.

  `boundaries[0]` must be 0; the LR only changes at epoch boundaries.
  """
  bounds = jnp.asarray(boundaries, dtype=jnp.int32)
  vals = jnp.asarray(values, dtype=jnp.float32)

  def schedule(step: Any) -> jnp.ndarray:
    epoch = _step_array(step) // steps_per_epoch
    # Index of the last boundary <= epoch (boundaries sorted, first is 0).
    idx = jnp.sum(epoch >= bounds) - 1
    return vals[jnp.clip(idx, 0, len(values) - 1)]

  return schedule


def anneal(start: float, end: float, num_steps: int, shape: str) -> Schedule:
  """`start` -> `end` over steps 0..num_steps-1 (inclusive), then hold `end`."""

  def schedule(step: Any) -> jnp.ndarray:
    t = _step_array(step).astype(jnp.float32)
    frac = jnp.clip(t / max(num_steps - 1, 1), 0.0, 1.0)
    if shape == "cosine":
      frac = 0.5 * (1.0 - jnp.cos(jnp.pi * frac))
    value = jnp.float32(start) + (jnp.float32(end) - jnp.float32(start)) * frac
    # XLA turns t / n into t * (1 / n), so frac can miss 1 by an ulp; pin the
    # end exactly (LLR must reach 0 at the last step).
    return jnp.where(t >= num_steps - 1, jnp.float32(end), value)

  return schedule


def warmup_ramp(init: float, target: float, num_steps: int, shape: str) -> Schedule:
  """Ramp `init` -> `target` that reaches `target` at step `num_steps`."""
  return anneal(init, target, num_steps + 1, shape)


def join(schedules: Sequence[Schedule], boundaries: Sequence[int]) -> Schedule:
  """Runs `schedules[i]` from step `boundaries[i-1]`, each with a local step.

  Like `optax.join_schedules` but evaluates all pieces with `jnp.where`, so it
  stays jit-safe and also accepts plain Python ints.
  """
  if len(boundaries) != len(schedules) - 1:
    raise ValueError("join needs len(schedules) - 1 boundaries")

  def schedule(step: Any) -> jnp.ndarray:
    step = _step_array(step)
    out = schedules[0](step)
    for start, piece in zip(boundaries, schedules[1:]):
      out = jnp.where(step >= start, piece(step - start), out)
    return out

  return schedule


def with_warmup(
  main: Schedule, warmup_steps: int, shape: str, init_lr: float
) -> Schedule:
  """Replaces the first `warmup_steps` of `main` by a ramp to `main(warmup_steps)`.

  `main` keeps its absolute step axis (milestones stay at the epochs written in
  the config); only the warm-up part is overwritten.
  """
  if warmup_steps <= 0:
    return main
  target = float(main(warmup_steps))
  ramp = warmup_ramp(init_lr, target, warmup_steps, shape)

  def schedule(step: Any) -> jnp.ndarray:
    step = _step_array(step)
    return jnp.where(step < warmup_steps, ramp(step), main(step))

  return schedule


# ---------------------------------------------------------------- parsing
def parse_spec(
  spec: str, path: str = "schedule", epochs: int | None = None
) -> tuple[list[int], list[float]]:
  """Parses `"0:0.1,80:0.01,120:0.001"` into ([0, 80, 120], [0.1, 0.01, 0.001]).

  A start written as a fraction `p/q` is that fraction of `epochs` (floored),
  so `"0:0.01,1/3:0.001,2/3:0.0001"` keeps its shape whatever `num_epochs` is;
  stages that shrink to nothing collapse (the later LR wins at a shared start).
  """
  if not isinstance(spec, str) or not spec.strip():
    raise ValueError(f"{path}.spec must be a string like '0:0.1,80:0.01', got {spec!r}")
  starts, values = [], []
  for item in spec.replace(" ", "").split(","):
    try:
      epoch_s, lr_s = item.split(":")
      lr = float(lr_s)
      fraction = _fraction(epoch_s)
      epoch = int(epoch_s) if fraction is None else None
    except (ValueError, ZeroDivisionError):
      raise ValueError(
        f"{path}.spec entry {item!r} is not 'epoch:lr' or 'p/q:lr' "
        "(e.g. '0:0.1,80:0.01' or '0:0.1,1/2:0.01')"
      ) from None
    if fraction is not None:
      if epochs is None:
        raise ValueError(
          f"{path}.spec entry {item!r} is a fraction of the epochs; absolute "
          "epochs are needed here"
        )
      if not 0 < fraction < 1:
        raise ValueError(f"{path}.spec fraction in {item!r} must be in (0, 1)")
      epoch = int(fraction * epochs)
      if starts and starts[-1] == epoch:  # A stage shorter than one epoch.
        starts.pop(), values.pop()
    starts.append(epoch)
    values.append(positive(lr, f"{path}.spec learning rate at epoch {epoch}", True))
  if starts[0] != 0:
    raise ValueError(f"{path}.spec must start at epoch 0, got {spec!r}")
  if any(b <= a for a, b in itertools.pairwise(starts)):
    raise ValueError(f"{path}.spec epochs must be strictly increasing, got {spec!r}")
  return starts, values


def _fraction(text: str) -> fractions.Fraction | None:
  """`"1/3"` -> Fraction(1, 3); an integer epoch -> None; else ValueError."""
  if "/" not in text:
    return None
  p, q = text.split("/")
  return fractions.Fraction(int(p), int(q))


def format_spec(epochs: Sequence[int], values: Sequence[float]) -> str:
  """Inverse of `parse_spec`, e.g. for logging a derived halving schedule."""
  return ",".join(f"{e}:{v:g}" for e, v in zip(epochs, values))


def check_milestones(
  milestones: Sequence[int], epochs: int, path: str, fix: str = ""
) -> None:
  """Milestones must lie in [0, epochs); `fix` says how to change them."""
  for m in milestones:
    if m < 0 or m >= epochs:
      raise ValueError(
        f"{path} milestone {m} is beyond {path.rsplit('.', 1)[0]}.epochs={epochs} "
        f"(milestones must lie in [0, {epochs}))" + (f"; {fix}" if fix else "")
      )


nonneg_int = checks.nonneg_int  # One check for every layer (jaxprune.checks).


def split_epochs(total_epochs: int, num_cycles: int) -> list[int]:
  """BIMP's split of a retraining budget: total // n per cycle, rest to the last."""
  total = nonneg_int(total_epochs, "retrain_epochs")
  n = nonneg_int(num_cycles, "num_cycles")
  if n == 0 or total < n:
    raise ValueError(f"cannot split {total} epochs into {n} cycles of >= 1 epoch")
  each = total // n
  return [each] * (n - 1) + [total - each * (n - 1)]
