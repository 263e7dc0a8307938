"""Checkpoints with orbax's CheckpointManager under <workdir>/checkpoints: save, keep N, restore the latest.

Orbax writes each step to a temporary directory and renames it when complete, so a run killed while saving
resumes from the last complete checkpoint. The state is stored as its Flax state dict.
"""
import os

import flax
import jax
import orbax.checkpoint as ocp

from gan_jax.errors import UserError


class Checkpointer:

  def __init__(self, workdir: str, max_to_keep: int = 3):
    self.directory = os.path.join(os.path.abspath(workdir), "checkpoints")
    self._manager = ocp.CheckpointManager(
        self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True))

  def latest_step(self):
    return self._manager.latest_step()

  def save(self, state) -> None:
    step = int(jax.device_get(state.step))
    if step in self._manager.all_steps():
      return
    self._manager.save(step, args=ocp.args.StandardSave(flax.serialization.to_state_dict(state)))

  def restore(self, template, step=None):
    """The state at `step` (default latest), laid out (shapes, dtypes, shardings) like `template`."""
    step = self.latest_step() if step is None else step
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, flax.serialization.to_state_dict(template))
    try:
      restored = self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
    except Exception as e:  # Orbax raises many types for unreadable or mismatched trees.
      raise UserError(f"cannot restore checkpoint {step} from {self.directory}: "
                      f"{(str(e).strip().splitlines() or [type(e).__name__])[0][:300]}") from None
    return flax.serialization.from_state_dict(template, restored)

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()
