"""Surviving faults: preemption signals, a kill while saving, corrupted checkpoints, a full disk, divergence
rollback, and bad input anywhere in the config space (a property test)."""
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import flax
from hypothesis import HealthCheck, event, given, settings, strategies as st
import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from gan_jax import checkpoint, data, models, sample, state as state_lib, steps, train, workdir as workdir_lib
from gan_jax.errors import UserError

from conftest import REPO, assert_states_equal, tiny_config

RING = os.path.join(REPO, "experiments", "gan_ring.py")
# The 2D benchmark's tiny MLPs: quick to compile. Every step logged (so a signal lands between two logged
# steps), no evaluations, checkpoints only where the test asks.
LOOP = {"log_every": 1, "sample_every": 1000, "eval_every": 1000, "checkpoint_every": 1000, "evals": ()}


def _ring(data_dir, **overrides):
  return tiny_config(RING, data_dir, **{**LOOP, **overrides})


def _flags(data_dir, **overrides):
  values = {"data.data_dir": data_dir, **LOOP, **overrides}
  return [f"--config={RING}:runlocal"] + [f"--config.{k}={v}" for k, v in values.items()]


def _logged_steps(workdir):
  try:
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
      return [json.loads(line) for line in f if '"d_loss"' in line]
  except (FileNotFoundError, json.JSONDecodeError):  # Not written yet, or a line half written.
    return []


def _wait_for_step(workdir, step, timeout=120):
  deadline = time.time() + timeout
  while time.time() < deadline:
    rows = _logged_steps(workdir)
    if rows and rows[-1]["step"] >= step:
      return
    time.sleep(0.01)
  raise TimeoutError(f"{workdir} did not reach step {step}")


def test_sigterm_and_sigint_stop_with_a_checkpoint_and_resume_bitwise(data_dir, tmp_path):
  total = 400
  workdir = str(tmp_path / "interrupted")
  # A real training process, stopped by SIGTERM: it finishes its step, checkpoints it and exits 0.
  process = subprocess.Popen([sys.executable, "-m", "gan_jax.main", *_flags(data_dir, total_steps=total),
                              f"--workdir={workdir}"], cwd=REPO, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
  _wait_for_step(workdir, 5)
  process.send_signal(signal.SIGTERM)
  _, stderr = process.communicate(timeout=120)
  assert process.returncode == 0, stderr[-3000:]
  assert "Stopped by SIGTERM at step" in stderr
  (first_stop,) = checkpoint.Checkpointer(workdir).all_steps()
  assert 5 <= first_stop < total and _logged_steps(workdir)[-1]["step"] == first_stop

  # The same run resumed in this process, stopped by SIGINT (Ctrl-C) from another thread.
  finished = threading.Event()

  def interrupt():
    _wait_for_step(workdir, first_stop + 5)
    if not finished.is_set():
      os.kill(os.getpid(), signal.SIGINT)

  watcher = threading.Thread(target=interrupt)
  watcher.start()
  config = _ring(data_dir, total_steps=total)
  try:
    second_stop = int(train.train_and_evaluate(config, workdir).step)
  finally:
    finished.set()
    watcher.join()
  assert first_stop + 5 <= second_stop < total
  assert checkpoint.Checkpointer(workdir).latest_step() == second_stop

  # Resumed once more, it ends exactly where an uninterrupted run does, having logged the same steps.
  resumed = train.train_and_evaluate(config, workdir)
  uninterrupted = train.train_and_evaluate(config, str(tmp_path / "uninterrupted"))
  assert_states_equal(resumed, uninterrupted)
  assert _logged_steps(workdir) == _logged_steps(tmp_path / "uninterrupted")


_KILL_WHILE_SAVING = """
import os, signal, sys
from orbax.checkpoint._src.path import atomicity
from gan_jax import main

finalize = atomicity.AtomicRenameTemporaryPath.finalize

step = sys.argv.pop(1)

async def killed_before_commit(self):
  if self._final_path.name == step:  # Its files are written, not yet renamed into place.
    os.kill(os.getpid(), signal.SIGKILL)
  return await finalize(self)

atomicity.AtomicRenameTemporaryPath.finalize = killed_before_commit
main.run()
"""


def test_killed_while_saving_resumes_from_the_last_complete_checkpoint(data_dir, tmp_path):
  workdir = str(tmp_path / "killed")
  result = subprocess.run([sys.executable, "-c", _KILL_WHILE_SAVING, "2",
                           *_flags(data_dir, total_steps=3, checkpoint_every=1), f"--workdir={workdir}"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
  leftovers = os.listdir(os.path.join(workdir, "checkpoints"))
  assert "1" in leftovers and "2" not in leftovers and any(".orbax-checkpoint-tmp" in n for n in leftovers)
  config = _ring(data_dir, total_steps=3, checkpoint_every=1)
  resumed = train.train_and_evaluate(config, workdir)
  assert_states_equal(resumed, train.train_and_evaluate(config, str(tmp_path / "whole")))
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == ["1", "2", "3"]  # Leftovers cleaned up.


@flax.struct.dataclass
class _Stepped:
  step: np.ndarray
  w: np.ndarray


def test_no_checkpoint_io_runs_in_the_background_of_a_redirected_filesystem(tmp_path):
  # tfds.testing.mock_data redirects every epath call of the process during as_dataset, which the trainer
  # calls right after creating its checkpointer. Orbax's own clean-up of unfinished saves ran in a background
  # thread then, listed checkpoints/ inside the mock's directory and failed the next save ("cannot write
  # checkpoint 1 ... No such file or directory"): the suite's one flaky test. The redirect is held for longer
  # than any clean-up takes, so the old behaviour fails here every time.
  from tensorflow_datasets.testing import test_utils  # pylint: disable=g-import-not-at-top
  unfinished = tmp_path / "checkpoints" / "7.orbax-checkpoint-tmp-1234"
  os.makedirs(unfinished / "state")
  ckpt = checkpoint.Checkpointer(str(tmp_path))
  assert not unfinished.exists()  # Removed before the constructor returned.
  with test_utils.MockFs():
    time.sleep(0.3)
  ckpt.save(_Stepped(step=np.int32(1), w=np.arange(3.0)))
  ckpt.close()
  assert os.listdir(tmp_path / "checkpoints") == ["1"]
  # Readers (sampling, evaluation beside training) leave a save in flight alone.
  os.makedirs(unfinished / "state")
  checkpoint.Checkpointer(str(tmp_path), read_only=True).close()
  assert unfinished.exists()


_KILLED_AFTER_LOGGING = """
import os, signal, sys
from gan_jax import checkpoint, main, workdir

kill_after = int(sys.argv.pop(1))
save, write_scalars = checkpoint.Checkpointer.save, workdir.JsonlWriter.write_scalars

def save_and_wait(self, *args, **kwargs):  # Each checkpoint complete before training goes on.
  save(self, *args, **kwargs)
  self.wait()

def write_then_die(self, step, scalars):  # Killed after logging this step, before its checkpoint.
  write_scalars(self, step, scalars)
  if step == kill_after and "d_loss" in scalars:
    os.kill(os.getpid(), signal.SIGKILL)

checkpoint.Checkpointer.save, workdir.JsonlWriter.write_scalars = save_and_wait, write_then_die
main.run()
"""


def test_records_hold_each_step_once_after_a_kill_between_a_log_and_a_checkpoint(data_dir, tmp_path):
  workdir = str(tmp_path / "killed")
  evals = {"evals": "mode_coverage", "eval_every": 1, "eval_num_samples": 50}
  result = subprocess.run([sys.executable, "-c", _KILLED_AFTER_LOGGING, "7",
                           *_flags(data_dir, total_steps=100, checkpoint_every=4, **evals), f"--workdir={workdir}"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
  assert [r["step"] for r in _logged_steps(workdir)] == list(range(1, 8))  # Logged to 7, checkpointed at 4.
  with open(os.path.join(workdir, "eval.json")) as f:
    assert [json.loads(line)["step"] for line in f] == list(range(1, 7))

  config = _ring(data_dir, total_steps=10, checkpoint_every=4, evals=("mode_coverage",), eval_every=1,
                 eval_num_samples=50)
  train.train_and_evaluate(config, workdir)
  assert [r["step"] for r in _logged_steps(workdir)] == list(range(1, 11))  # Each step once.
  with open(os.path.join(workdir, "eval.json")) as f:
    assert [json.loads(line)["step"] for line in f] == list(range(1, 11))
  # What the killed run logged after step 4 is set aside, with when and from which step, not deleted.
  with open(os.path.join(workdir, "metrics.set_aside.jsonl")) as f:
    aside = [json.loads(line) for line in f]
  assert {a["resumed_from_step"] for a in aside} == {4}
  assert sorted({json.loads(a["line"])["step"] for a in aside}) == [5, 6, 7]
  with open(os.path.join(workdir, "eval.set_aside.json")) as f:
    assert [json.loads(json.loads(line)["line"])["step"] for line in f] == [5, 6]


def test_records_of_a_restart_from_scratch_are_set_aside_and_a_cut_line_too(tmp_path):
  with open(tmp_path / "metrics.jsonl", "w") as f:
    f.write('{"step": 1, "d_loss": 1.0}\n{"step": 2, "d_loss": 0.9}\n{"step": 3, "d_lo')
  assert workdir_lib.set_aside_records_after(str(tmp_path), 0) == 3
  assert (tmp_path / "metrics.jsonl").read_text() == ""
  lines = (tmp_path / "metrics.set_aside.jsonl").read_text().splitlines()
  assert [json.loads(line)["line"] for line in lines][-1] == '{"step": 3, "d_lo'
  assert workdir_lib.set_aside_records_after(str(tmp_path), 0) == 0  # Nothing left to move.


def test_a_second_trainer_on_a_busy_workdir_stops_at_once_and_changes_nothing(data_dir, tmp_path):
  workdir = str(tmp_path / "run")
  first = subprocess.Popen([sys.executable, "-m", "gan_jax.main", *_flags(data_dir, total_steps=100_000),
                            f"--workdir={workdir}"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  try:
    _wait_for_step(workdir, 3)
    with pytest.raises(UserError, match=rf"{workdir} is being trained by pid {first.pid} on .* since "):
      train.train_and_evaluate(_ring(data_dir, total_steps=100_000), workdir)
    first.send_signal(signal.SIGSTOP)  # Frozen, still holding the lock: the workdir stands still.
    time.sleep(0.5)
    before = _tree(workdir)
    second = subprocess.run([sys.executable, "-m", "gan_jax.main", *_flags(data_dir, total_steps=100_000),
                             f"--workdir={workdir}"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert second.returncode == 2
    assert second.stderr.strip().splitlines()[-1].startswith(f"gan_jax: error: {workdir} is being trained by pid "
                                                             f"{first.pid}")
    assert _tree(workdir) == before
  finally:
    first.kill()  # SIGKILL: no clean-up of its own.
    first.wait()
  # Its lock went with it: the workdir can be trained again, resuming from the dead run's checkpoint.
  assert int(train.train_and_evaluate(_ring(data_dir, total_steps=2), workdir).step) == 2


def _tree(directory):
  """{path: (size, mtime_ns)} of everything under `directory`."""
  tree = {}
  for root, dirs, files in os.walk(directory):
    for name in dirs + files:
      stat = os.stat(os.path.join(root, name))
      tree[os.path.relpath(os.path.join(root, name), directory)] = (stat.st_size, stat.st_mtime_ns)
  return tree


def _largest_file(directory):
  files = [os.path.join(root, name) for root, _, names in os.walk(directory) for name in names]
  return max(files, key=os.path.getsize)


def test_corrupted_checkpoints_are_skipped_with_a_warning_naming_them(data_dir, tmp_path, caplog):
  workdir = str(tmp_path / "run")
  config = _ring(data_dir, total_steps=3, checkpoint_every=1)
  final = train.train_and_evaluate(config, workdir)
  directory = os.path.join(workdir, "checkpoints")
  # Step 3: bytes of its largest array file flipped. Step 2: its recorded digest edited by hand.
  path = _largest_file(os.path.join(directory, "3", "state"))
  with open(path, "r+b") as f:
    raw = bytearray(f.read())
    raw[len(raw) // 2:len(raw) // 2 + 16] = bytes(b ^ 0xFF for b in raw[len(raw) // 2:len(raw) // 2 + 16])
    f.seek(0)
    f.write(raw)
  meta = os.path.join(directory, "2", "meta", "metadata")
  with open(meta) as f:
    record = json.load(f)
  with open(meta, "w") as f:
    json.dump({**record, "digest": "0" * 64}, f)

  template = train.restore_or_init(config, str(tmp_path / "fresh"), train.sharding.make_mesh())[1]
  caplog.set_level("WARNING")
  restored, _ = checkpoint.Checkpointer(workdir).restore(template)
  assert int(restored.step) == 1
  warnings = [r.getMessage() for r in caplog.records if "Skipping checkpoint" in r.getMessage()]
  assert len(warnings) == 2 and os.path.join(directory, "3") in warnings[0]
  assert "digest" in warnings[1] and os.path.join(directory, "2") in warnings[1]

  # Training resumes from step 1, moves the bad ones aside and ends where the first run did.
  resumed = train.train_and_evaluate(config, workdir)
  assert_states_equal(resumed, final)
  assert sorted(os.listdir(directory)) == ["1", "2", "3", "corrupt-2", "corrupt-3"]

  for step in ("1", "2", "3"):  # No intact checkpoint left: an error, not a fresh start over them.
    with open(os.path.join(directory, step, "meta", "metadata"), "w") as f:
      json.dump({"digest": "bad"}, f)
  with pytest.raises(UserError, match=r"no intact checkpoint in .*checkpoints \(skipped steps \[3, 2, 1\]"):
    train.train_and_evaluate(config, workdir)


def test_a_full_disk_while_saving_is_an_error_that_keeps_earlier_checkpoints(data_dir, tmp_path, monkeypatch):
  workdir = str(tmp_path / "run")
  config = _ring(data_dir, total_steps=3, checkpoint_every=1)
  save = ocp.CheckpointManager.save

  def disk_full_at_step_2(self, step, *args, **kwargs):
    if step == 2:
      raise OSError(errno.ENOSPC, "No space left on device")
    return save(self, step, *args, **kwargs)

  monkeypatch.setattr(ocp.CheckpointManager, "save", disk_full_at_step_2)
  with pytest.raises(UserError, match=r"cannot write checkpoint 2 in .*: the disk is full; the checkpoints "
                                      r"written before \(steps: 1\) are intact"):
    train.train_and_evaluate(config, workdir)
  monkeypatch.setattr(ocp.CheckpointManager, "save", save)
  assert int(train.train_and_evaluate(config, workdir).step) == 3  # Space freed: resumes from step 1.


def test_a_workdir_written_before_new_keys_and_digests_resumes(data_dir, tmp_path):
  # As an older gan_jax left it: config.json without the keys added since, and a checkpoint in orbax's
  # single-item layout with no digest. It loads, resumes and ends exactly where a run of today's code does.
  config = _ring(data_dir, total_steps=3, checkpoint_every=1)
  whole = train.train_and_evaluate(config, str(tmp_path / "whole"))
  half = train.train_and_evaluate(_ring(data_dir, total_steps=2, checkpoint_every=1), str(tmp_path / "half"))
  old = tmp_path / "old"
  old.mkdir()
  with open(tmp_path / "half" / "config.json") as f:
    stored = json.load(f)
  for key in ("on_divergence", "rollback_lr_factor", "max_rollbacks", "aux_weight", "steps_per_call"):
    del stored[key]
  with open(old / "config.json", "w") as f:
    json.dump(stored, f)
  manager = ocp.CheckpointManager(str(old / "checkpoints"))  # GANState's fields, before networks had names.
  manager.save(2, args=ocp.args.StandardSave(state_lib.to_legacy(flax.serialization.to_state_dict(half))))
  manager.wait_until_finished()
  manager.close()
  assert_states_equal(train.train_and_evaluate(config, str(old)), whole)


def test_a_digested_checkpoint_of_the_layout_before_named_networks_resumes(data_dir, tmp_path):
  # As gan_jax wrote checkpoints before the trainer refactor: GANState's g_*/d_*/ema_g fields beside a digest.
  config = _ring(data_dir, total_steps=3, checkpoint_every=1)
  whole = train.train_and_evaluate(config, str(tmp_path / "whole"))
  half = train.train_and_evaluate(_ring(data_dir, total_steps=2, checkpoint_every=1), str(tmp_path / "half"))
  os.makedirs(tmp_path / "old")
  shutil.copy(tmp_path / "half" / "config.json", tmp_path / "old" / "config.json")
  legacy = state_lib.to_legacy(flax.serialization.to_state_dict(half))
  assert sorted(legacy) == ["d_opt_state", "d_params", "d_state", "ema_g", "g_opt_state", "g_params", "g_state",
                            "rng", "step"]
  manager = ocp.CheckpointManager(str(tmp_path / "old" / "checkpoints"), item_names=("state", "meta"))
  manager.save(2, args=ocp.args.Composite(state=ocp.args.StandardSave(legacy),
                                          meta=ocp.args.JsonSave({"digest": checkpoint.digest(legacy)})))
  manager.wait_until_finished()
  manager.close()
  sampled = sample.sample(str(tmp_path / "old"), 5, seed=1)[0]  # Sampling reads it as it is.
  np.testing.assert_array_equal(sampled, sample.sample(str(tmp_path / "half"), 5, seed=1)[0])
  assert_states_equal(train.train_and_evaluate(config, str(tmp_path / "old")), whole)


def test_divergence_rolls_back_with_a_lower_learning_rate(data_dir, tmp_path):
  # Learning rates of 1e38 overflow the parameters at once; the rollback restarts from the initial state
  # (no checkpoint yet) with a new RNG and learning rates 1e38 * 1e-41 = 1e-3, and training goes on.
  overrides = {"total_steps": 3, "checkpoint_every": 1, "on_divergence": "rollback", "rollback_lr_factor": 1e-41,
               "max_rollbacks": 1, "optimizer.d.learning_rate": 1e38, "optimizer.g.learning_rate": 1e38}
  state = train.train_and_evaluate(_ring(data_dir, **overrides), str(tmp_path / "a"))
  assert int(state.step) == 3 and all(np.isfinite(x).all() for x in jax.tree.leaves(state))
  with open(tmp_path / "a" / "metrics.jsonl") as f:
    rows = [json.loads(line) for line in f]
  assert {"step": 0, "rollbacks": 1.0, "lr_scale": 1e-41} in [{k: r[k] for k in r if k in (
      "step", "rollbacks", "lr_scale")} for r in rows if "rollbacks" in r]
  assert [r["step"] for r in rows if "d_loss" in r] == [1, 2, 3]
  _, meta = checkpoint.Checkpointer(str(tmp_path / "a")).restore(state)
  assert meta["rollbacks"] == 1 and meta["lr_scale"] == pytest.approx(1e-41)

  # Rolling back without lowering the learning rate diverges again; after max_rollbacks it stops.
  with pytest.raises(UserError, match=r"training diverged at step 1: \w+ is (nan|inf) after 1 rollback\(s\)"):
    train.train_and_evaluate(_ring(data_dir, **{**overrides, "rollback_lr_factor": 1.0}), str(tmp_path / "b"))


def test_a_rollback_sets_aside_what_was_logged_after_the_good_checkpoint(data_dir, tmp_path, monkeypatch):
  # Logged to step 3, checkpointed at 2, diverged at 4: training goes back to 2, so step 3's line is set aside and
  # each step appears once.
  real, seen = train.first_non_finite, []

  def diverges_once_at_4(pending):
    if not seen and any(step >= 4 for step, _ in pending):
      seen.append(True)
      return 4, "d_loss", float("nan")
    return real(pending)

  monkeypatch.setattr(train, "first_non_finite", diverges_once_at_4)
  overrides = {"total_steps": 5, "checkpoint_every": 2, "on_divergence": "rollback", "max_rollbacks": 1}
  train.train_and_evaluate(_ring(data_dir, **overrides), str(tmp_path))
  assert [r["step"] for r in _logged_steps(tmp_path)] == [1, 2, 3, 4, 5]
  with open(tmp_path / "metrics.set_aside.jsonl") as f:
    aside = [json.loads(line) for line in f]
  assert {a["resumed_from_step"] for a in aside} == {2} and {json.loads(a["line"])["step"] for a in aside} == {3}


def test_first_non_finite_names_the_step_and_quantity():
  pending = [(2, {"d_loss": np.float32(1.0), "g_loss": np.float32(2.0)}),
             (6, {"d_loss": np.array([1.0, 1.0, np.inf, np.nan], np.float32),
                  "g_loss": np.array([1.0, np.nan, 1.0, 1.0], np.float32)})]
  assert train.first_non_finite(pending) == (4, "g_loss", pytest.approx(np.nan, nan_ok=True))
  assert train.first_non_finite(pending[:1]) is None


def test_a_workdir_that_is_a_file_is_refused(data_dir, tmp_path):
  path = tmp_path / "a_file"
  path.write_text("")
  with pytest.raises(UserError, match="cannot create workdir"):
    train.train_and_evaluate(_ring(data_dir), str(path))


# --- Property test: any config is either trained for a step, or rejected with one UserError line before the
# training step is built (so before anything is compiled).

_DIGITS = os.path.join(REPO, "experiments", "dcgan_digits.py")

# Each key with values a config may take (drawn freely) and one it may not (at most one per example).
_VALID = {
    "loss": st.sampled_from(["non_saturating", "minimax", "lsgan", "hinge", "wasserstein"]),
    "batch_size": st.integers(1, 8),
    "num_critic_steps": st.integers(1, 2),
    "pack": st.integers(1, 3),
    "unrolled_steps": st.integers(0, 1),
    "steps_per_call": st.integers(1, 2),
    "ema_decay": st.sampled_from([0.0, 0.9]),
    "regularizer.gradient_penalty": st.sampled_from([0.0, 10.0]),
    "regularizer.r1": st.sampled_from([0.0, 1.0]),
    "regularizer.lazy_every": st.integers(1, 2),
    "regularizer.weight_clip": st.sampled_from([0.0, 0.01]),
    "optimizer.d.name": st.just("adam"),
    "on_divergence": st.sampled_from(["stop", "rollback"]),
    "simultaneous_updates": st.sampled_from([False, False, True]),  # True needs 1 critic step and no unrolling.
}
_INVALID = {
    "model_name": "nomodel", "loss": "nope", "batch_size": 0, "num_critic_steps": 0, "pack": 0,
    "unrolled_steps": -1, "ema_decay": 1.0, "regularizer.gradient_penalty": -1.0, "regularizer.lazy_every": 0,
    "optimizer.d.name": "adamw", "on_divergence": "retry", "data.name": "nosuchset", "total_steps": 3,
    "log_every": 0, "eval_features": "inception:/no/such/weights.pth", "evals": ("nosuchmetric",),
    "optimizer.g.b3": 0.9, "data.cache_mb": -1,
}
_DATASETS = {_DIGITS: ("digits", "mnist", "ring8"), RING: ("ring8", "grid25", "digits")}  # Valid, offline
# elsewhere, or of the wrong shape.


@st.composite
def configs(draw):
  experiment = draw(st.sampled_from([_DIGITS, RING]))
  values = {key: draw(strategy) for key, strategy in _VALID.items()}
  values["total_steps"] = values["log_every"] = values["steps_per_call"]
  valid, *wrong = _DATASETS[experiment]
  values["data.name"] = draw(st.sampled_from([valid, valid, *wrong]))
  values["data.download"] = False  # No network here: a standard dataset must fail at once, not retry.
  if experiment == _DIGITS:
    values["model.resolution"] = draw(st.sampled_from([8, 16, 16, 12]))  # 12: DCGAN cannot produce it.
    values["model_name"] = draw(st.sampled_from(["dcgan", *models.names()]))  # Others: the wrong data shape.
  # One key in four examples is left valid: rejections are cheap, trained examples cost a compilation.
  broken = draw(st.one_of(st.none(), *[st.sampled_from(sorted(_INVALID))] * 3))
  if broken:
    values[broken] = _INVALID[broken]
  return experiment, values


@settings(max_examples=16, deadline=None, derandomize=True, print_blob=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(drawn=configs())
def test_any_config_trains_a_step_or_is_rejected_before_compiling(drawn, data_dir, tmp_path_factory, monkeypatch):
  experiment, values = drawn
  config = tiny_config(experiment, data_dir, **LOOP)
  with config.unlocked():
    for key, value in values.items():
      parent, _, leaf = key.rpartition(".")
      _node(config, parent)[leaf] = value
  built = []
  make_train_step = steps.make_train_step
  workdir = str(tmp_path_factory.mktemp("property"))
  with monkeypatch.context() as patch:
    patch.setattr(steps, "make_train_step", lambda *a, **k: built.append(1) or make_train_step(*a, **k))
    try:
      state = train.train_and_evaluate(config, workdir)
    except UserError as e:
      assert not built, f"rejected after the step was built: {e}"
      assert str(e).strip() and "\n" not in str(e).strip()
      event("rejected")
      return
  assert int(state.step) == config.total_steps
  assert {"d_loss", "g_loss"} <= set(_logged_steps(workdir)[-1])
  event("trained")


def _node(config, path):
  for part in filter(None, path.split(".")):
    config = config[part]
  return config
