"""Checkpoints with orbax's CheckpointManager under <workdir>/checkpoints: save, keep N, restore the latest
intact one.

Each step directory holds two items: `state`, the GANState as its Flax state dict, and `meta`, a JSON record
with a SHA-256 digest of every array of the state (and what the loop needs to carry, e.g. a rollback's
learning-rate scale). Orbax writes a step into a temporary directory and renames it when complete, so a run
killed while saving resumes from the last complete checkpoint. On restore the digest is recomputed: a
checkpoint that cannot be read or whose arrays do not match their digest (corrupted on disk, edited by
hand) is skipped with a warning naming it, and the next older one is tried; it is never loaded silently.
"""
import errno
import hashlib
import os
import shutil
import types

from absl import logging
import flax
import jax
import numpy as np
import orbax.checkpoint as ocp

from gan_jax import state as state_lib
from gan_jax.errors import UserError, first_line

CORRUPT_PREFIX = "corrupt-"  # Training renames a skipped step directory N to corrupt-N, out of orbax's way.


def digest(state_dict) -> str:
  """SHA-256 over every array's path, dtype, shape and bytes, in tree order (host copies of replicated
  arrays)."""
  h = hashlib.sha256()
  for path, leaf in jax.tree_util.tree_flatten_with_path(state_dict)[0]:
    value = np.asarray(jax.device_get(leaf))
    h.update(f"{jax.tree_util.keystr(path)}|{value.dtype.str}|{value.shape}|".encode())
    h.update(np.ascontiguousarray(value).tobytes())
  return h.hexdigest()


def _is_legacy(read_metadata) -> bool:
  """Whether the state item whose metadata `read_metadata()` returns is in the layout before networks were named
  (GANState's g_*/d_* fields)."""
  try:
    metadata = read_metadata()
  except Exception:  # Unreadable metadata: the restore that follows reports it.
    return False
  metadata = getattr(metadata, "item_metadata", metadata)  # A checkpointer's StepMetadata holds the tree's.
  tree = getattr(metadata, "tree", metadata)
  return isinstance(tree, dict) and state_lib.is_legacy(tree)


class Checkpointer:
  """The run's checkpoints. Between calls nothing runs in the background but the last save, which wait() and
  close() finish: a run's file I/O never overlaps code that swaps out filesystem functions for a while
  (tfds.testing.mock_data redirects every epath and tf.io.gfile call of the process inside as_dataset)."""

  def __init__(self, workdir: str, max_to_keep: int = 3, read_only: bool = False):
    """`read_only` for readers (sampling, evaluation), which may run beside training: they create nothing and
    leave temporary directories alone, one of which may be the trainer's save in flight."""
    self.directory = os.path.join(os.path.abspath(workdir), "checkpoints")
    self._manager = ocp.CheckpointManager(
        self.directory, item_names=("state", "meta"),
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=not read_only, read_only=read_only,
                                             cleanup_tmp_directories=False))
    if not read_only:
      self._remove_unfinished_saves()

  def _remove_unfinished_saves(self) -> None:
    """Deletes the temporary directories of saves a killed run left unfinished, here and now. Orbax's own
    option (cleanup_tmp_directories) does it in a background thread that outlives the constructor; that thread
    made the test suite flaky, listing the directory while mock_data redirected paths elsewhere."""
    if jax.process_index() == 0:
      for temporary in ocp.utils.tmp_checkpoints(self.directory):
        shutil.rmtree(os.fspath(temporary.get()), ignore_errors=True)
        logging.warning("Removed the unfinished save %s.", temporary.get())
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
      multihost_utils.sync_global_devices("gan_jax checkpoint cleanup")
    self._manager.reload()

  def latest_step(self):
    return self._manager.latest_step()

  def all_steps(self):
    return sorted(self._manager.all_steps())

  def save(self, state, meta=None) -> None:
    """Writes `state` at its step (asynchronously), with `meta` (a JSON-able dict) beside its digest. A full
    disk or an unwritable directory raises UserError; the checkpoints written before stay intact."""
    step = int(jax.device_get(state.step))
    if step in self._manager.all_steps():
      return
    tree = flax.serialization.to_state_dict(state)
    record = {"digest": digest(tree), **(meta or {})}
    try:
      self._manager.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(tree),
                                                      meta=ocp.args.JsonSave(record)))
    except OSError as e:
      raise self._save_error(step, e) from None

  def _save_error(self, step, e: OSError) -> UserError:
    reason = "the disk is full" if e.errno in (errno.ENOSPC, errno.EDQUOT) else first_line(e)
    kept = ", ".join(str(s) for s in self.all_steps() if s != step) or "none"
    return UserError(f"cannot write checkpoint {step} in {self.directory}: {reason}; the checkpoints written "
                     f"before (steps: {kept}) are intact")

  def restore(self, template, quarantine: bool = False):
    """(state, meta) of the newest intact checkpoint, laid out (shapes, dtypes, shardings) like `template`.

    Unreadable or corrupted checkpoints are skipped with a warning; with `quarantine` (training, which will
    write that step again) each is renamed to corrupt-<step>. Raises UserError when none is intact.
    """
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, flax.serialization.to_state_dict(template))
    skipped = []
    for step in reversed(self.all_steps()):
      problem, restored = self._read(step, abstract)
      if problem is None:
        if skipped and quarantine:
          self._quarantine(skipped)
        return flax.serialization.from_state_dict(template, restored.state), dict(restored.meta)
      logging.warning("Skipping checkpoint %s: %s.", os.path.join(self.directory, str(step)), problem)
      skipped.append(step)
    raise UserError(f"no intact checkpoint in {self.directory} (skipped steps {skipped}, see the warnings); "
                    "move the directory away to start afresh")

  def _read(self, step, abstract):
    """(None, restored) for an intact checkpoint, else (what is wrong, None). Checkpoints written before
    networks were named (GANState's g_*/d_* fields) are read in their layout and converted (state.from_legacy)."""
    undigested = os.path.join(self.directory, str(step), "default")
    if os.path.isdir(undigested):  # Written before checkpoints carried digests: one item, the state.
      try:
        reader = ocp.StandardCheckpointer()
        legacy = _is_legacy(lambda: reader.metadata(undigested))
        state = reader.restore(undigested, state_lib.to_legacy(abstract) if legacy else abstract)
      except Exception as e:  # As below.
        return f"unreadable ({first_line(e)})", None
      logging.warning("Checkpoint %s predates digests: loaded without verification.", undigested)
      return None, types.SimpleNamespace(state=state_lib.from_legacy(state) if legacy else state, meta={})
    legacy = _is_legacy(lambda: ocp.StandardCheckpointer().metadata(os.path.join(self.directory, str(step), "state")))
    try:
      restored = self._manager.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(state_lib.to_legacy(abstract) if legacy else abstract),
          meta=ocp.args.JsonRestore()))
    except Exception as e:  # Orbax and tensorstore raise many types for missing or damaged files.
      return f"unreadable ({first_line(e)})", None
    expected = (restored.meta or {}).get("digest")
    if expected != digest(restored.state):  # Over the tree as it was written.
      return "its arrays do not match the digest written with them (corrupted)", None
    if legacy:
      return None, types.SimpleNamespace(state=state_lib.from_legacy(restored.state), meta=restored.meta)
    return None, restored


  def _quarantine(self, steps) -> None:
    if jax.process_index() == 0:
      for step in steps:
        source = os.path.join(self.directory, str(step))
        os.replace(source, os.path.join(self.directory, f"{CORRUPT_PREFIX}{step}"))
        logging.warning("Moved corrupted checkpoint %s to %s%d.", source, CORRUPT_PREFIX, step)
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
      multihost_utils.sync_global_devices("gan_jax checkpoint quarantine")
    self._manager.reload()

  def wait(self) -> None:
    """Waits for the last asynchronous save; a failure to write it raises UserError."""
    try:
      self._manager.wait_until_finished()
    except OSError as e:
      raise self._save_error(self.latest_step(), e) from None

  def close(self) -> None:
    try:
      self.wait()
    finally:
      self._manager.close()
