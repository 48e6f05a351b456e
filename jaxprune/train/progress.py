"""A dependency-free progress bar with ETA for epochs (or steps).

On a terminal it redraws one line; in logs (no TTY) it prints one line per
update so CI output stays readable.
"""

from __future__ import annotations

import sys
import time


def format_seconds(seconds: float) -> str:
  seconds = int(max(seconds, 0))
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class ProgressBar:
  def __init__(self, total: int, *, start: int = 0, unit: str = "epoch", stream=None):
    self.total, self.done, self.unit = total, start, unit
    self.stream = stream or sys.stderr
    self.tty = getattr(self.stream, "isatty", lambda: False)()
    self._start_done = start
    self._t0 = time.monotonic()
    self._first_done_at = None  # The first update includes compilation.

  def update(self, done: int, info: str = "") -> None:
    now = time.monotonic()
    if self._first_done_at is None:
      self._first_done_at, self._first_done = now, done
    self.done = done
    rate_n = done - self._first_done
    if rate_n > 0:
      per_unit = (now - self._first_done_at) / rate_n
    else:
      per_unit = (now - self._t0) / max(done - self._start_done, 1)
    eta = per_unit * (self.total - done)
    width = 24
    filled = int(width * done / max(self.total, 1))
    bar = "#" * filled + "." * (width - filled)
    line = (
      f"{self.unit} {done}/{self.total} [{bar}] {100 * done / max(self.total, 1):5.1f}% "
      f"elapsed {format_seconds(now - self._t0)} ETA {format_seconds(eta)} {info}"
    )
    if self.tty:
      self.stream.write("\r" + line.ljust(100))
      if done >= self.total:
        self.stream.write("\n")
    else:
      self.stream.write(line + "\n")
    self.stream.flush()
