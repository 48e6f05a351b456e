"""Labels the comparison setup of two runs per Wang et al. 2023 Table 2.

A run is a dict / ConfigDict (or `Run`) describing the pruning pipeline:

  dataset, network, target        what is compared (target: speedup/sparsity)
  base_model                      id of a reused pretrained model, or None when
                                  the run trains everything itself (scratch
                                  training, or pretraining counted in the run)
  pretrain_epochs, pretrain_lr    dense training counted in this run
  prune_epochs, prune_lr          cost of the pruning algorithm (0 = one-shot)
  finetune_epochs, finetune_lr    retraining of the pruned model
  scratch_epochs, scratch_lr      training the pruned architecture from scratch
  dense_flops, pruned_flops       per-example FLOPs (SX-B only)

LRs are piecewise specs ("0:0.1,30:0.01") or staircase schedule configs.

Strictness S1 < S2 < S3.1 < S3.2 < S4.1 < S4.2. With the same base model the
strictest satisfied of S2 ... S4.2 is returned. When at least one run has no
base model (e.g. pruning vs. scratch training, Table 4): S4.2 if the overall
per-epoch LR schedules coincide, SX-A if the total epochs do, SX-B if the total
FLOPs do (within one epoch of the dense model, the rounding of k / speedup),
else S1. Runs that differ in dataset, network or target are not comparable.

Which phases count toward the SX budgets (`budget`): Table 2 sums
"pretraining + pruning + finetuning" ("wang2023", the default). Liu et al.
2019, whom Wang et al. name as the origin of SX-A / SX-B, leave fine-tuning
out: "our evaluations use the same computation as large model training
without considering the computation in fine-tuning" ("liu2019"). Le & Hua's
Scratch-E counts it (160 + 40 epochs), their Scratch-B follows Liu et al.
"""

from __future__ import annotations

from typing import Any

from jaxprune import checks
from jaxprune.schedules import core, training

SETUPS = ("S1", "S2", "S3.1", "S3.2", "S4.1", "S4.2", "SX-A", "SX-B")
_PHASES = ("pretrain", "prune", "finetune", "scratch")
# Phases whose epochs / FLOPs make up the SX budgets, per convention.
BUDGETS = {
  "wang2023": _PHASES,
  "liu2019": ("pretrain", "prune", "scratch"),
}
_FIELDS = (
  "dataset",
  "network",
  "target",
  "base_model",
  *(f"{p}_{k}" for p in _PHASES for k in ("epochs", "lr")),
  "dense_flops",
  "pruned_flops",
)


def _get(run: Any, key: str) -> Any:
  return run.get(key) if hasattr(run, "get") else getattr(run, key, None)


def _check(run: Any, name: str) -> None:
  keys = set(run.keys()) if hasattr(run, "keys") else set()
  if extra := sorted(keys - set(_FIELDS)):
    raise ValueError(f"{name}: unknown field(s) {extra}; allowed: {list(_FIELDS)}")


def _epochs(run: Any, phase: str) -> int:
  return int(_get(run, f"{phase}_epochs") or 0)


def _per_epoch_lrs(run: Any, phase: str, name: str) -> tuple[float, ...] | None:
  epochs, lr = _epochs(run, phase), _get(run, f"{phase}_lr")
  if epochs == 0:
    return ()
  if lr is None:
    return None  # unknown schedule: never "the same"
  if isinstance(lr, str):
    starts, values = core.parse_spec(lr, f"{name}.{phase}_lr")
  else:
    starts, values, _ = training.staircase(lr, f"{name}.{phase}_lr")
  return tuple(values[sum(s <= e for s in starts) - 1] for e in range(epochs))


def _same(a: Any, b: Any) -> bool:
  return a is not None and b is not None and a == b


def _total_flops(run: Any, phases: tuple[str, ...]) -> float | None:
  dense, pruned = _get(run, "dense_flops"), _get(run, "pruned_flops")
  if dense is None or pruned is None:
    return None
  dense_epochs = sum(_epochs(run, p) for p in ("pretrain", "prune") if p in phases)
  small_epochs = sum(_epochs(run, p) for p in ("finetune", "scratch") if p in phases)
  return dense_epochs * dense + small_epochs * pruned


def comparison_setup(a: Any, b: Any, budget: str = "wang2023") -> str:
  """Returns the strictest setup of Table 2 ("S1" ... "S4.2", "SX-A", "SX-B");
  `budget` names the phases the SX budgets count (module docstring)."""
  checks.choice(budget, "budget", BUDGETS)
  phases = BUDGETS[budget]
  _check(a, "a")
  _check(b, "b")
  for key in ("dataset", "network", "target"):
    if _get(a, key) != _get(b, key):
      raise ValueError(
        f"runs are not comparable (not even S1): {key} differs "
        f"({_get(a, key)!r} vs {_get(b, key)!r})"
      )
  lrs = {
    (r, p): _per_epoch_lrs(run, p, r)
    for r, run in (("a", a), ("b", b))
    for p in _PHASES
  }
  base_a, base_b = _get(a, "base_model"), _get(b, "base_model")
  if base_a is not None and base_a == base_b:
    same_ft_lr = _same(lrs["a", "finetune"], lrs["b", "finetune"])
    if same_ft_lr and _same(lrs["a", "prune"], lrs["b", "prune"]):
      return "S4.2"
    if same_ft_lr and _epochs(a, "prune") == _epochs(b, "prune"):
      return "S4.1"
    if same_ft_lr:
      return "S3.2"
    if _epochs(a, "finetune") == _epochs(b, "finetune"):
      return "S3.1"
    return "S2"
  if base_a is not None and base_b is not None:
    return "S1"  # different base models
  overall = []
  for r in ("a", "b"):
    parts = [lrs[r, p] for p in _PHASES]
    overall.append(None if None in parts else sum(parts, ()))
  if _same(overall[0], overall[1]):
    return "S4.2"
  total_a = sum(_epochs(a, p) for p in phases)
  if total_a == sum(_epochs(b, p) for p in phases):
    return "SX-A"
  flops_a, flops_b = _total_flops(a, phases), _total_flops(b, phases)
  if flops_a is not None and flops_b is not None:
    tolerance = max(_get(a, "dense_flops"), _get(b, "dense_flops"))
    if abs(flops_a - flops_b) <= tolerance:
      return "SX-B"
  return "S1"
