"""Preemption: SIGTERM (what SLURM, Kubernetes and Cloud TPU send before killing a job) or SIGINT (Ctrl-C)
asks the training loop to finish its current step, write a checkpoint and exit 0; the same command resumes.

One process: Python signal handlers set a flag that the loop reads after each step. Several processes
(jax.distributed): every process must stop after the same step, so the decision is JAX's preemption sync
point (multihost_utils.reached_preemption_sync_point): JAX's coordination service catches SIGTERM in any
process and agrees with the others on the step to stop at; SIGINT is turned into a SIGTERM to the same end.
A second signal while stopping kills the process the default way (its checkpoints stay intact).
"""
import os
import signal

from absl import logging
import jax

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopRequests:
  """Context manager around the loop: `stop_requested(call)` says whether to stop after training call
  number `call` (which every process must pass in the same order, one per call)."""

  def __init__(self):
    self.received = None  # Name of the signal that asked to stop, once one did.
    self._previous = {}

  def __enter__(self):
    self._multi_process = jax.process_count() > 1
    for sig in _SIGNALS:
      if self._multi_process and sig == signal.SIGTERM:
        continue  # JAX's coordination service handles SIGTERM in multi-process runs.
      self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def __exit__(self, *exc):
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)
    self._previous.clear()

  def _handle(self, signum, frame):  # pylint: disable=unused-argument
    name = signal.Signals(signum).name
    logging.warning("Received %s: finishing the current step, then writing a checkpoint and exiting "
                    "(send it again to kill the process without saving).", name)
    self.received = name
    for sig, handler in self._previous.items():  # A second signal acts as it would have without us.
      signal.signal(sig, handler)
    self._previous.clear()
    if self._multi_process:
      os.kill(os.getpid(), signal.SIGTERM)  # Into JAX's preemption notifier, which tells every process.

  def stop_requested(self, call: int) -> bool:
    if self._multi_process:
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
      if multihost_utils.reached_preemption_sync_point(call):
        self.received = self.received or "SIGTERM"
        return True
      return False
    return self.received is not None
