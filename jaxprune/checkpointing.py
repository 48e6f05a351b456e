"""The one checkpoint wrapper: orbax `CheckpointManager`s for latest, best and final.

Layout under `<workdir>/checkpoints/`:
  latest/<step>/  periodic saves (keeps `max_to_keep`), the resume point;
  best/<step>/    the state with the best validation metric so far (keeps 1);
  final/<step>/   the state at the end of training.
Each save holds the whole `TrainState` (params, batch stats, optimizer state,
masks, step, rng) plus a small JSON `meta` item (epoch, best metric, ...). Orbax
writes into a temporary directory and renames it when complete, so a kill never
leaves a half-written checkpoint that a resume would pick up. Nothing is pickled.

Synopsis:
  ckpt = Checkpointer(os.path.join(workdir, "checkpoints"))
  ckpt.save("latest", step, state, {"epoch": 3})
  restored = ckpt.restore("latest", abstract_state)  # None if nothing saved.
  ckpt.close()
"""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp

KINDS = ("latest", "best", "final")


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
    if kind not in KINDS:
      raise ValueError(f"checkpoint kind must be one of {list(KINDS)}, got {kind!r}")
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

  def restore(
    self, kind: str, abstract_state: Any = None, step: int | None = None
  ) -> tuple[Any, dict[str, Any]] | None:
    """Returns (state, meta) of `step` (default: latest) or None if there is none.

    Without `abstract_state` the state comes back as nested dicts of arrays
    (handy in a notebook: `ckpt.restore("final")[0]["params"]`).
    """
    manager = self._manager(kind)
    step = self.latest_step(kind) if step is None else step
    if manager is None or step is None:
      return None
    restored = manager.restore(
      step,
      args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()
      ),
    )
    return restored["state"], dict(restored["meta"])

  def close(self) -> None:
    for manager in self._managers.values():
      manager.wait_until_finished()
      manager.close()

  def __enter__(self) -> Checkpointer:
    return self

  def __exit__(self, *exc) -> None:
    self.close()
