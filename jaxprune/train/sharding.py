"""Data-parallel placement: one mesh axis "data" over every device.

State is replicated, batches are split along "data". Under `jax.jit` this is all
the parallelism code there is: BatchNorm statistics computed on a data-sharded
batch are global-batch statistics, and gradient means are all-reduced by XLA.

Multi-process (`initialize_distributed`, i.e. `jaxprune.main --distributed`):
`jax.devices()` then spans every process, so the mesh, the replicated state and
`batch_size` are global. Every process runs the same program on the same data:
resident splits are read in full by each process and placed replicated;
streamed batches are read in full by each process too (same seed, same order),
and each process hands its own devices their slices of that global batch
(`shard_batch`), which is correct but repeats the host-side reading on every
process. Only process 0 writes files (`is_primary`); orbax coordinates
checkpoints across processes itself.
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


def shard_batch(tree: Any, mesh: Mesh) -> Any:
  """Host numpy batch (the whole global batch) -> global jax.Array split along
  the batch axis.

  With several processes every process holds the same global batch and gives
  its addressable devices their slices of it.
  """
  sharding = batch_sharded(mesh)
  if jax.process_count() == 1:
    return jax.tree_util.tree_map(
      lambda x: jax.make_array_from_process_local_data(sharding, x), tree
    )
  return jax.tree_util.tree_map(
    lambda x: jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx]),
    tree,
  )


def check_batch_size(batch_size: int, mesh: Mesh, field: str = "batch_size") -> None:
  n = mesh.devices.size
  if batch_size <= 0 or batch_size % n:
    raise ValueError(
      f"{field}={batch_size} must be a positive multiple of the {n} devices of the "
      f"data-parallel mesh"
    )
