"""A run's workdir and who writes it: one training process at a time (a lock), and records that hold each step once.

Training writes two record files of JSON lines: metrics.jsonl (the logged scalars) and eval.json (evaluations;
`gan_jax.evaluate` appends to it too). A run resumed from the checkpoint of step s logs the steps after s again,
so on resume the lines past s are moved to a side file (metrics.set_aside.jsonl, eval.set_aside.json), each
tagged with when and why; nothing is deleted.
"""
import datetime
import errno
import fcntl
import json
import os
import socket

from absl import logging
from clu import metric_writers
import numpy as np

from gan_jax.errors import UserError

LOCK = "lock"
RECORDS = ("metrics.jsonl", "eval.json")


# Characters that make orbax lose checkpoints: its OCDBT merge finds the per-process files by globbing under the
# checkpoint's path (orbax/checkpoint/_src/serialization/ocdbt_utils.py, merge_ocdbt_per_process_files), finds none
# when the path itself holds a glob pattern, and skips the merge with only a warning, so every save "succeeds" and
# none can be read back.
GLOB_CHARACTERS = "[]*?"


def check_path(workdir: str) -> None:
  """Raises UserError if checkpoints written under `workdir` could not be read back (GLOB_CHARACTERS)."""
  bad = sorted({c for c in os.path.abspath(workdir) if c in GLOB_CHARACTERS})
  if bad:
    raise UserError(f"workdir {workdir!r} contains {' '.join(bad)}: orbax cannot finalise checkpoints under a path "
                    f"with any of {' '.join(GLOB_CHARACTERS)} (they would not restore); choose another path")


def safe_name(name: str) -> str:
  """`name` as one path component without '/' or GLOB_CHARACTERS: brackets become parentheses (a sweep cell
  `data.split=train[:100]` -> `data.split=train(:100)`), '*' and '?' underscores."""
  return name.translate(str.maketrans({"/": "_", "[": "(", "]": ")", "*": "_", "?": "_"}))


def set_aside_path(record: str) -> str:
  stem, ext = os.path.splitext(record)
  return f"{stem}.set_aside{ext}"


class Lock:
  """An exclusive lock on <workdir>/lock, held while one process trains there (process 0 of a multi-process
  run). It is the kernel's (flock): it goes when its process does, however that ends, so a crash never leaves
  it stuck. A second trainer on the same workdir gets a UserError naming the first, and changes nothing there.
  Filesystems without flock (some network mounts) get a warning and no lock."""

  def __init__(self, workdir: str):
    self.path = os.path.join(workdir, LOCK)
    self._fd = None

  def acquire(self) -> None:
    fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)  # Opened without truncating the holder's record.
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      holder = os.read(fd, 4096).decode(errors="replace").strip() or "another process"
      os.close(fd)
      if e.errno in (errno.EWOULDBLOCK, errno.EACCES):
        raise UserError(f"{os.path.dirname(self.path)} is being trained by {holder}; wait for it to end, stop it, "
                        "or use another --workdir") from None
      logging.warning("Cannot lock %s (%s): nothing stops a second trainer on this workdir.", self.path, e)
      return
    os.ftruncate(fd, 0)
    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    os.write(fd, f"pid {os.getpid()} on {socket.gethostname()} since {started}\n".encode())
    self._fd = fd

  def release(self) -> None:
    if self._fd is not None:
      os.close(self._fd)  # Closing releases the flock; the file stays, holding the last trainer's record.
      self._fd = None

  def __enter__(self):
    self.acquire()
    return self

  def __exit__(self, *exc):
    self.release()


def _step_of(line: str):
  try:
    return int(json.loads(line)["step"])
  except (ValueError, KeyError, TypeError):  # A line cut short by a kill, or not a record.
    return None


def set_aside_records_after(workdir: str, step: int) -> int:
  """Moves the lines of metrics.jsonl and eval.json past `step` (and lines cut short by a kill) to their side
  files; returns how many lines moved. Each file is rewritten atomically."""
  moved = 0
  now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
  for record in RECORDS:
    path = os.path.join(workdir, record)
    if not os.path.exists(path):
      continue
    with open(path) as f:
      lines = f.read().splitlines()
    kept, later = [], []
    for line in lines:
      line_step = _step_of(line)
      (kept if line_step is not None and line_step <= step else later).append(line)
    if not later:
      continue
    with open(os.path.join(workdir, set_aside_path(record)), "a") as f:
      for line in later:
        f.write(json.dumps({"set_aside": now, "resumed_from_step": step, "line": line}) + "\n")
    temporary = f"{path}.tmp"
    with open(temporary, "w") as f:
      f.write("".join(line + "\n" for line in kept))
    os.replace(temporary, path)
    moved += len(later)
    logging.warning("Resuming at step %d: moved %d line(s) of %s logged after it to %s.", step, len(later), record,
                    set_aside_path(record))
  return moved


class JsonlWriter(metric_writers.MetricWriter):
  """Appends scalars as JSON lines to <workdir>/metrics.jsonl, for scripts and tests; other kinds are ignored."""

  def __init__(self, path):
    self._path = path

  def write_scalars(self, step, scalars):
    with open(self._path, "a") as f:
      f.write(json.dumps({"step": int(step), **{k: float(v) for k, v in scalars.items()}}) + "\n")

  def write_summaries(self, step, values, metadata=None): pass
  def write_images(self, step, images): pass
  def write_videos(self, step, videos): pass
  def write_audios(self, step, audios, *, sample_rate): pass
  def write_texts(self, step, texts): pass
  def write_histograms(self, step, arrays, num_buckets=None): pass
  def write_hparams(self, hparams): pass
  def flush(self): pass
  def close(self): pass


def append_eval_record(workdir, step, results, **fields) -> dict:
  """Appends one JSON line to <workdir>/eval.json and returns it: the step, every result (NaN as null) and
  `fields` (e.g. the extractor, the sample count, the source, the run's wall-clock)."""
  record = {"step": int(step), **{k: (v if np.isfinite(v) else None) for k, v in results.items()}, **fields}
  with open(os.path.join(workdir, "eval.json"), "a") as f:
    f.write(json.dumps(record) + "\n")
  return record
