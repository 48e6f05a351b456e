"""Analysis toolkit (Jacobian singular values, OrthP, ...). Being written."""

from __future__ import annotations

from typing import Any


def make_callbacks(analysis_config: Any, model: Any, data: Any) -> list:
  """Training callbacks requested by `config.analysis` (see train/loop.py)."""
  if analysis_config.jsv_every_epochs:
    raise NotImplementedError("analysis.jsv_every_epochs is not implemented yet")
  return []
