"""One program at a time for jaxlib's batched LAPACK kernels on CPU.

jaxlib's CPU kernels for batched decompositions (SVD, hence `matrix_rank`;
`eigh`/`eigvalsh`) split the batch over XLA's intra-op thread pool and then
*block* the pool thread they run on until every chunk is done. When two such
programs are in flight at once -- two threads dispatching (the runs of a
grouped sweep prune in their own threads), or one thread's asynchronous
dispatch running ahead -- each can occupy a pool thread waiting for chunks
queued behind the other; on a 2-core machine (a 2-thread pool) nothing is
left to run them and the process hangs with every thread idle. A grouped
mini sweep's HRank pruning did exactly that (found with gdb: both pool threads
in the SVD kernel's `ParallelBatchMap`, waiting).

`run_alone(fn, ...)` calls `fn` under one process-wide lock and waits for its
result before releasing it, so at most one of these programs runs at a time
(the others finish, they never wait on each other). Wrap every jitted call
whose program contains a batched decomposition; programs without one need
nothing (the native conv kernels never block a pool thread on queued work).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import jax

T = TypeVar("T")
_LOCK = threading.Lock()


def run_alone(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
  """`fn(*args, **kwargs)`, computed to completion while no other `run_alone`
  program runs in this process."""
  with _LOCK:
    return jax.block_until_ready(fn(*args, **kwargs))
