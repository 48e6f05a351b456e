"""Data-parallel placement: one mesh axis "data" over every local device.

State is replicated, batches are split along "data". Under `jax.jit` this is all
the parallelism code there is: BatchNorm statistics computed on a data-sharded
batch are global-batch statistics, and gradient means are all-reduced by XLA.
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


def shard_batch(tree: Any, mesh: Mesh) -> Any:
  """Host numpy batch -> global jax.Array split along the batch axis."""
  sharding = batch_sharded(mesh)
  return jax.tree_util.tree_map(
    lambda x: jax.make_array_from_process_local_data(sharding, x), tree
  )


def check_batch_size(batch_size: int, mesh: Mesh, field: str = "batch_size") -> None:
  n = mesh.devices.size
  if batch_size <= 0 or batch_size % n:
    raise ValueError(
      f"{field}={batch_size} must be a positive multiple of the {n} devices of the "
      f"data-parallel mesh"
    )
