"""The one checkpoint wrapper: orbax `CheckpointManager`s for latest, best and final.

Layout under `<workdir>/checkpoints/`:
  latest/<step>/  periodic saves (keeps `max_to_keep`), the resume point;
  best/<step>/    the state with the best validation metric so far (keeps 1);
  final/<step>/   the state at the end of training.
Each save holds the whole `TrainState` (params, batch stats, optimizer state,
masks, step, rng) plus a small JSON `meta` item (epoch, best metric, ...). Orbax
writes into a temporary directory and renames it when complete, so a kill never
leaves a half-written checkpoint that a resume would pick up. Nothing is pickled.

Integrity: `meta` also holds a content checksum of the state (`checksum`: a
hash of every leaf's dtype, shape and bytes), saved in the same atomic write.
`restore` verifies it; when the newest checkpoint is unreadable or its content
does not match, it warns naming the directory, moves it to
`checkpoints/corrupt/` and falls back to the previous kept one, and raises a
one-line `CheckpointError` (the directory, what to do) only when none is good.

Synopsis:
  ckpt = Checkpointer(os.path.join(workdir, "checkpoints"))
  ckpt.save("latest", step, state, {"epoch": 3})
  restored = ckpt.restore("latest", abstract_state)  # None if nothing saved.
  ckpt.close()
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import warnings
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from jaxprune import checks

KINDS = ("latest", "best", "final")


class CheckpointError(RuntimeError):
  """No good checkpoint to restore (one line: the directory and what to do)."""


class CorruptCheckpointWarning(UserWarning):
  """A damaged checkpoint was set aside and an older one restored."""


def _host(leaf: Any) -> np.ndarray:
  if isinstance(leaf, jax.Array):
    if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
      leaf = jax.random.key_data(leaf)
    # Replicated state: this process's first shard is the whole array.
    leaf = leaf if leaf.is_fully_addressable else leaf.addressable_data(0)
  return np.ascontiguousarray(np.asarray(leaf))


def checksum(tree: Any) -> str:
  """Hash of every leaf's dtype, shape and bytes, independent of the tree's
  container types (a restore without a target gives dicts for dataclasses)."""
  digests = []
  for leaf in jax.tree_util.tree_leaves(tree):
    a = _host(leaf)
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    digests.append(h.hexdigest())
  return "sha256:" + hashlib.sha256("".join(sorted(digests)).encode()).hexdigest()


def _reason(error: Exception) -> str:
  text = str(error).strip().splitlines()
  return f"{type(error).__name__}: {text[0][:150] if text else ''}".rstrip(": ")


def _is_late_read_callback(unraisable: Any) -> bool:
  """Whether an unraisable exception is a tensorstore read finishing after a
  failed restore: orbax has closed the event loop it restored on, so the read's
  done-callback cannot schedule onto it. Harmless, but printed as tracebacks
  (at random moments, even inside the one-line error) unless dropped."""
  if not (
    isinstance(unraisable.exc_value, RuntimeError)
    and str(unraisable.exc_value) == "Event loop is closed"
  ):
    return False
  tb = unraisable.exc_traceback
  while tb is not None:
    if tb.tb_frame.f_code.co_name == "call_soon_threadsafe":
      return True
    tb = tb.tb_next
  return False


def _drop_late_read_callbacks() -> None:
  """Installs (once) an unraisable hook that drops `_is_late_read_callback`
  exceptions and hands every other one to the hook it replaces."""
  if getattr(sys.unraisablehook, "_jaxprune_late_reads", False):
    return
  previous = sys.unraisablehook

  def hook(unraisable: Any) -> None:
    if not _is_late_read_callback(unraisable):
      previous(unraisable)

  hook._jaxprune_late_reads = True
  sys.unraisablehook = hook


class _UnretrievedReadErrors(logging.Filter):
  """Drops asyncio's "exception was never retrieved" reports of a failed
  restore's other reads: once the first read of a damaged checkpoint fails,
  orbax stops awaiting the rest, and each of their errors (the same damage) is
  logged with its traceback when the task is collected, around the one-line
  error. Other asyncio reports pass."""

  def filter(self, record: logging.LogRecord) -> bool:
    message = record.getMessage()
    unretrieved = "exception was never retrieved" in message
    return not (
      unretrieved and ("async_deserialize" in message or "tensorstore_spec" in message)
    )


def _drop_unretrieved_read_errors() -> None:
  """Installs (once) `_UnretrievedReadErrors` on the asyncio logger."""
  logger = logging.getLogger("asyncio")
  if not any(isinstance(f, _UnretrievedReadErrors) for f in logger.filters):
    logger.addFilter(_UnretrievedReadErrors())


def abstract_like(tree: Any) -> Any:
  """Shape/dtype/sharding skeleton of `tree`, the restore target."""
  return jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, tree)


class Checkpointer:
  """Latest/best/final checkpoint managers under one directory."""

  def __init__(self, directory: str, *, max_to_keep: int = 2):
    if max_to_keep < 1:
      raise ValueError(f"keep_checkpoints must be >= 1, got {max_to_keep}")
    self.directory = os.path.abspath(directory)
    self._keep = {"latest": max_to_keep, "best": 1, "final": 1}
    self._managers: dict[str, ocp.CheckpointManager] = {}

  def _manager(self, kind: str, create: bool = False) -> ocp.CheckpointManager | None:
    """The kind's manager; None if it has no directory yet and `create` is off
    (so a run without a validation split leaves no empty `best/`)."""
    checks.choice(kind, "checkpoint kind", KINDS)
    path = os.path.join(self.directory, kind)
    if kind not in self._managers:
      if not create and not os.path.isdir(path):
        return None
      self._managers[kind] = ocp.CheckpointManager(
        path,
        item_names=("state", "meta"),
        options=ocp.CheckpointManagerOptions(max_to_keep=self._keep[kind], create=True),
      )
    return self._managers[kind]

  def save(self, kind: str, step: int, state: Any, meta: dict[str, Any]) -> None:
    manager = self._manager(kind, create=True)
    if manager.latest_step() == step:
      return  # Already saved at this step (e.g. final == last periodic).
    meta = {**meta, "checksum": checksum(state)}
    manager.save(
      step,
      args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)
      ),
      force=True,
    )
    # Block so that a checkpoint reported as saved really is on disk.
    manager.wait_until_finished()

  def latest_step(self, kind: str = "latest") -> int | None:
    manager = self._manager(kind)
    return None if manager is None else manager.latest_step()

  def step_dir(self, kind: str, step: int) -> str:
    return os.path.join(self.directory, kind, str(step))

  def restore(
    self, kind: str, abstract_state: Any = None, step: int | None = None
  ) -> tuple[Any, dict[str, Any]] | None:
    """Returns (state, meta) of `step` (default: latest) or None if there is none.

    Without `abstract_state` the state comes back as nested dicts of arrays
    (handy in a notebook: `ckpt.restore("final")[0]["params"]`). The content
    is verified against the saved checksum; without `step`, a damaged newest
    checkpoint is set aside (with a warning) for the previous kept one.
    """
    manager = self._manager(kind)
    if manager is None:
      return None
    _drop_late_read_callbacks()  # A damaged file fails reads still in flight.
    _drop_unretrieved_read_errors()
    steps = [step] if step is not None else sorted(manager.all_steps(), reverse=True)
    for n, s in enumerate(steps):
      try:
        return self._restore_verified(manager, s, abstract_state)
      except Exception as e:  # Orbax/tensorstore raise many types for bad files.
        path, reason = self.step_dir(kind, s), _reason(e)
        if n + 1 == len(steps):
          raise CheckpointError(
            f"checkpoint {path} is unreadable or corrupt ({reason}) and no "
            f"earlier good one is kept; delete {path} to start that run over "
            "(or restore it from a backup)"
          ) from None
        aside = self._set_aside(manager, kind, s)
        warnings.warn(
          f"checkpoint {path} is unreadable or corrupt ({reason}); moved to "
          f"{aside}, resuming from the previous one",
          CorruptCheckpointWarning,
          stacklevel=2,
        )
    return None

  def _restore_verified(
    self, manager: ocp.CheckpointManager, step: int, abstract_state: Any
  ) -> tuple[Any, dict[str, Any]]:
    restored = manager.restore(
      step,
      args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()
      ),
    )
    state, meta = restored["state"], dict(restored["meta"])
    saved = meta.pop("checksum", None)  # None: written before checksums existed.
    if saved is not None and checksum(state) != saved:
      raise ValueError("content checksum mismatch")
    return state, meta

  def _set_aside(self, manager: ocp.CheckpointManager, kind: str, step: int) -> str:
    """Moves a damaged step out of the manager's sight (a resumed run saves
    that step again); returns where it went."""
    aside = os.path.join(self.directory, "corrupt", f"{kind}-{step}")
    if jax.process_index() == 0:
      os.makedirs(os.path.dirname(aside), exist_ok=True)
      suffix = 0
      while os.path.exists(aside + (f".{suffix}" if suffix else "")):
        suffix += 1
      aside += f".{suffix}" if suffix else ""
      os.rename(self.step_dir(kind, step), aside)
    manager.reload()
    return aside

  def close(self) -> None:
    for manager in self._managers.values():
      manager.wait_until_finished()
      manager.close()

  def __enter__(self) -> Checkpointer:
    return self

  def __exit__(self, *exc) -> None:
    self.close()
