"""Data-parallel placement: one mesh axis "data" over every device.

State is replicated, batches are split along "data". Under `jax.jit` this is all
the parallelism code there is: BatchNorm statistics computed on a data-sharded
batch are global-batch statistics, and gradient means are all-reduced by XLA.

Multi-process (`initialize_distributed`, i.e. `jaxprune.main --distributed`):
`jax.devices()` then spans every process, so the mesh, the replicated state and
`batch_size` are global. Every process runs the same program: resident splits
are read in full by each process and placed replicated; of each streamed global
batch a process reads and decodes only the rows its own devices hold
(`host_rows`) and assembles the global array from them (`shard_batch`), so
host-side work is split across processes. Only process 0 writes files
(`is_primary`); orbax coordinates checkpoints across processes itself.
"""

from __future__ import annotations

from typing import Any

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def make_mesh(devices: list | None = None) -> Mesh:
  devices = devices or jax.devices()
  return jax.make_mesh(
    (len(devices),),
    (DATA_AXIS,),
    axis_types=(jax.sharding.AxisType.Auto,),
    devices=devices,
  )


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def replicate(tree: Any, mesh: Mesh) -> Any:
  return jax.device_put(tree, replicated(mesh))


def initialize_distributed(
  coordinator_address: str | None = None,
  num_processes: int | None = None,
  process_id: int | None = None,
) -> None:
  """`jax.distributed.initialize` (before any other JAX call); arguments left as
  None are auto-detected on clusters JAX knows (SLURM, Open MPI, TPU pods)."""
  jax.distributed.initialize(
    coordinator_address=coordinator_address,
    num_processes=num_processes,
    process_id=process_id,
  )


def is_primary() -> bool:
  """True in the process that writes results (process 0; always single-process)."""
  return jax.process_index() == 0


def host_rows(mesh: Mesh, batch_size: int) -> slice:
  """The rows of a global batch of `batch_size` that this process's devices hold.

  All rows with one process. Several processes each hold one contiguous block
  (the mesh lists each process's devices together); anything else is refused
  rather than silently mis-assembled.
  """
  indices = batch_sharded(mesh).addressable_devices_indices_map((batch_size,))
  starts = sorted(idx[0].start or 0 for idx in indices.values())
  stops = sorted(
    batch_size if idx[0].stop is None else idx[0].stop for idx in indices.values()
  )
  if any(b != a for a, b in zip(stops[:-1], starts[1:])):
    raise ValueError(
      f"process {jax.process_index()} holds non-contiguous rows of the batch "
      f"({list(zip(starts, stops))}); build the mesh with each process's devices "
      "adjacent"
    )
  return slice(starts[0], stops[-1])


def shard_batch(tree: Any, mesh: Mesh, batch_size: int | None = None) -> Any:
  """This process's rows of a global batch (host numpy) -> global jax.Array
  split along the batch axis.

  With one process the rows are the whole batch. With several, each process
  passes only its `host_rows(mesh, batch_size)` and the global array of
  `batch_size` rows is assembled from every process's part.
  """
  sharding = batch_sharded(mesh)

  def put(x):
    rows = batch_size if batch_size is not None else x.shape[0]
    return jax.make_array_from_process_local_data(sharding, x, (rows, *x.shape[1:]))

  return jax.tree_util.tree_map(put, tree)


def check_batch_size(batch_size: int, mesh: Mesh, field: str = "batch_size") -> None:
  n = mesh.devices.size
  if batch_size <= 0 or batch_size % n:
    raise ValueError(
      f"{field}={batch_size} must be a positive multiple of the {n} devices of the "
      f"data-parallel mesh"
    )
