"""Data parallelism with jax.jit over a Mesh: the batch axis is split over every device, the state replicated.

Each process feeds its own share of the batch; `global_batch` assembles the global array without copies
(jax.make_array_from_process_local_data).
"""
import collections

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from gan_jax.errors import UserError


def make_mesh() -> Mesh:
  return Mesh(np.array(jax.devices()), ("data",))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh, batch_axis: int = 0) -> NamedSharding:
  """Shards axis `batch_axis` over the mesh's devices (1 for the [num_critic_steps, B, ...] input)."""
  return NamedSharding(mesh, P(*([None] * batch_axis), "data"))


def check_batch_size(global_batch_size: int) -> int:
  """Returns the per-process batch size; the global one must split evenly over devices."""
  devices = jax.device_count()
  if global_batch_size % devices:
    raise UserError(f"config.batch_size {global_batch_size} is not divisible by the {devices} devices")
  return global_batch_size // jax.process_count()


def global_batch(local_batch, sharding: NamedSharding):
  """Process-local numpy arrays -> global jax.Arrays sharded by `sharding`."""
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), local_batch)


def prefetch_to_device(local_batches, sharding: NamedSharding, size: int = 2):
  """Yields global batches with the next `size` already sent to the devices, so that the transfer of step
  t+1's input overlaps step t's (asynchronously dispatched) computation."""
  queue = collections.deque()
  for local_batch in local_batches:
    queue.append(global_batch(local_batch, sharding))
    if len(queue) > size:
      yield queue.popleft()
  yield from queue
