"""Metric writers: `metrics.jsonl`, TensorBoard event files and the console.

The writers follow clu's `MetricWriter` interface (`write_scalars`, `flush`,
`close`) so they compose like clu's. clu 0.0.12's own `metric_writers` package
imports TensorFlow at import time, which jaxprune does not depend on; the
TensorBoard writer here uses the `tensorboard` package's event-file writer
instead and produces the same event files.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from jaxprune import io_utils


class JsonlWriter:
  """One JSON object per `write_scalars` call, appended to `<workdir>/metrics.jsonl`."""

  def __init__(self, path: str):
    self.path = path

  def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
    io_utils.append_jsonl(self.path, {"step": int(step), **scalars})

  def flush(self) -> None:
    pass

  def close(self) -> None:
    pass


class TensorBoardWriter:
  """Scalars as TensorBoard events (no TensorFlow needed)."""

  def __init__(self, logdir: str):
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    self._event_pb2, self._summary_pb2 = event_pb2, summary_pb2
    self._writer = EventFileWriter(logdir)

  def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
    values = [
      self._summary_pb2.Summary.Value(tag=key, simple_value=float(value))
      for key, value in scalars.items()
      if isinstance(value, int | float) and not isinstance(value, bool)
    ]
    summary = self._summary_pb2.Summary(value=values)
    event = self._event_pb2.Event(
      wall_time=time.time(), step=int(step), summary=summary
    )
    self._writer.add_event(event)

  def flush(self) -> None:
    self._writer.flush()

  def close(self) -> None:
    self._writer.close()


class MultiWriter:
  def __init__(self, writers: Sequence[Any]):
    self.writers = list(writers)

  def write_scalars(self, step: int, scalars: Mapping[str, Any]) -> None:
    for writer in self.writers:
      writer.write_scalars(step, scalars)

  def flush(self) -> None:
    for writer in self.writers:
      writer.flush()

  def close(self) -> None:
    for writer in self.writers:
      writer.close()


def create_default_writer(workdir: str, enabled: bool = True) -> MultiWriter:
  """metrics.jsonl + TensorBoard under `workdir`; `enabled=False`: writes nothing
  (the non-zero processes of a multi-process run)."""
  if not enabled:
    return MultiWriter([])
  return MultiWriter(
    [
      JsonlWriter(os.path.join(workdir, "metrics.jsonl")),
      TensorBoardWriter(os.path.join(workdir, "tensorboard")),
    ]
  )
