"""Runs of a sweep in threads whose training phases meet and train as groups.

A protocol (prune -> retrain, IMP, BIMP, Scratch, lottery, ...) is written for
one run: a chain of `train_and_evaluate` calls with pruning in between. To run
R such runs as one batched program without rewriting any protocol, each run's
protocol executes in its own thread under a `Coordinator`; its
`train_and_evaluate` calls do not train but submit a `loop.Run` and wait. When
every live thread is waiting (in `submit`, or on a file lock held by another
thread), the coordinator partitions the submitted phases by
`Run.program_key` (same data, batch sizes, model shapes, optimizer kind) and
trains each partition with `loop.train_runs`, one compiled program per
partition; the threads then go on to their next phase. So the dense phases of
R seeds train together, their prunings run side by side, and their
retrainings train together again; phases whose shapes differ (structured
pruning to different widths) simply fall into different partitions.

Results are what the runs would give one by one: `train_runs` writes every
run's own workdir, and a run that diverges fails alone. Host work (pruning,
scoring, JSV) stays per run. Run the group with `Coordinator.run(tasks)`; the
result of each task is its return value or the exception it raised.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from jaxprune import io_utils

_local = threading.local()


def current() -> Coordinator | None:
  """The coordinator of the calling thread's group, or None (a lone run)."""
  return getattr(_local, "coordinator", None)


@dataclasses.dataclass(eq=False)
class _Slot:
  run: Any
  result: Any = None
  done: bool = False


class Coordinator:
  """Meets the threads of a group at their training phases (module docstring).

  `train(runs) -> results` trains one partition (`loop.train_runs`, or a
  partial of it with a group mode).
  """

  def __init__(self, train: Callable[[list[Any]], list[Any]]):
    self._train = train
    self._cv = threading.Condition()
    self._pending: list[_Slot] = []
    self._runnable = 0  # Live threads neither submitted nor waiting on a lock.
    self._live = 0
    self.phases: list[int] = []  # Sizes of the partitions trained (for tests).

  # ---------------------------------------------------------------- threads
  def submit(self, run: Any) -> Any:
    """Called by `train_and_evaluate` in a group thread: waits for the phase."""
    slot = _Slot(run)
    with self._cv:
      self._pending.append(slot)
      self._runnable -= 1
      self._cv.notify_all()
      while not slot.done:
        self._cv.wait()
      self._runnable += 1
    return slot.result

  @contextlib.contextmanager
  def waiting(self) -> Iterator[None]:
    """A thread blocked on something another thread will release (a file lock)
    does not hold up the group's next phase."""
    with self._cv:
      self._runnable -= 1
      self._cv.notify_all()
    try:
      yield
    finally:
      with self._cv:
        self._runnable += 1

  def _thread(self, task: Callable[[], Any], results: list, i: int) -> None:
    _local.coordinator = self
    io_utils.set_wait_hook(self.waiting)
    try:
      results[i] = task()
    except BaseException as e:  # Returned to the caller, per task.
      results[i] = e
    finally:
      with self._cv:
        self._runnable -= 1
        self._live -= 1
        self._cv.notify_all()

  # ---------------------------------------------------------------- main thread
  def run(self, tasks: Sequence[Callable[[], Any]]) -> list[Any]:
    """Runs `tasks` (each one protocol run) as a group; their results in order
    (a return value, or the exception a task raised)."""
    results: list[Any] = [None] * len(tasks)
    with self._cv:
      self._live = self._runnable = len(tasks)
    threads = [
      threading.Thread(target=self._thread, args=(t, results, i), daemon=True)
      for i, t in enumerate(tasks)
    ]
    for t in threads:
      t.start()
    while True:
      with self._cv:
        while not (self._live == 0 or (self._runnable == 0 and self._pending)):
          self._cv.wait(timeout=1.0)
        if self._live == 0:
          break
        batch, self._pending = self._pending, []
      self._train_batch(batch)
    for t in threads:
      t.join()
    return results

  def _train_batch(self, batch: list[_Slot]) -> None:
    # In a fixed order (not the threads' arrival order), so a rerun trains the
    # same groups in the same order.
    partitions: dict[str, list[_Slot]] = {}
    for slot in sorted(batch, key=lambda s: s.run.workdir):
      partitions.setdefault(slot.run.program_key(), []).append(slot)
    for _, slots in sorted(partitions.items()):
      self.phases.append(len(slots))
      try:
        results = self._train([s.run for s in slots])
      except BaseException as e:  # A bad phase fails its own runs only.
        results = [e] * len(slots)
      with self._cv:
        for slot, result in zip(slots, results):
          slot.result, slot.done = result, True
        self._cv.notify_all()
