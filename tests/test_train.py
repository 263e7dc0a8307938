"""End to end: every experiment's tiny variant trains; resume is exact; 1 device, 4 devices and 2 processes agree;
sampling."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
import tensorflow_datasets as tfds

from gan_jax import checkpoint, data, losses, sample, train
from gan_jax.errors import UserError

from conftest import EXPERIMENTS, REPO, assert_states_equal, tiny_config
import golden_runs


def _metrics(workdir):
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f]
  return [r for r in rows if "g_grad_norm" in r]  # The step's metrics (every objective logs G's gradient norm).


# What each objective logs at every step (besides every network's parameter norm).
_LOGGED = {"gan": {"d_loss", "g_loss", "d_real_prob", "d_fake_prob", "d_grad_norm", "g_grad_norm"},
           "pix2pix": {"d_loss", "g_loss", "g_l1", "d_real_prob", "d_fake_prob", "d_grad_norm", "g_grad_norm"},
           "cyclegan": {"g_loss", "g_cycle", "g_identity", "g_grad_norm", "d_a_loss", "d_b_loss"},
           "stylegan2": {"d_loss", "g_loss", "d_real_prob", "d_fake_prob", "d_real_sign", "d_grad_norm", "g_grad_norm"},
           "progan": {"d_loss", "g_loss", "d_real_prob", "d_fake_prob", "d_grad_norm", "g_grad_norm", "level",
                      "fade_alpha", "d_reg_gradient_penalty", "d_reg_drift"},
           "dfgan": {"d_loss", "g_loss", "d_real", "d_fake", "d_mismatched", "d_reg_magp", "d_real_prob",
                     "d_fake_prob", "d_grad_norm", "g_grad_norm"},
           "attngan": {"d_loss", "d0_loss", "d1_loss", "d2_loss", "g_loss", "g_adversarial", "g_words", "g_sentence",
                       "g_kl", "d_real_prob", "d_fake_prob", "d_wrong_prob", "d_real_sign", "d_grad_norm",
                       "g_grad_norm"}}


def _grouped(experiment):
  """Tiny runs with the same programs go to one xdist worker: StyleGAN2's (digits and MNIST are the same tiny
  networks), the 2D benchmark's (ring8 and grid25 are the same points to a network: gan_ring's and gan_grid's
  programs are one), CycleGAN's on digits-M with test_translation's resume test, the default experiment's with
  digits_run, cGAN's and InfoGAN's on digits with test_conditional's tiny_runs, ProGAN's with test_progan's resumed
  run, DF-GAN's with test_dfgan's, AttnGAN's with test_attngan's, the ResNet GANs' shared config
  with sngan_cifar10 (its defaults). Each program then compiles once, its persistent-cache entry written before
  the next run reads it."""
  name = os.path.basename(experiment)
  if name.startswith("stylegan2") and "cifar10" not in name:
    return pytest.param(experiment, marks=pytest.mark.xdist_group("stylegan2"))
  if name.endswith(("_ring.py", "_grid.py")) or name == "mode_collapse.py":
    return pytest.param(experiment, marks=pytest.mark.xdist_group("mode_collapse"))
  if name == "cyclegan_digits_m.py":
    return pytest.param(experiment, marks=pytest.mark.xdist_group("cyclegan_digits_m"))
  if name in ("resnet_gans.py", "sngan_cifar10.py"):  # The shared config's defaults are sngan_cifar10's.
    return pytest.param(experiment, marks=pytest.mark.xdist_group("resnet_gans"))
  if name in ("cgan_digits.py", "infogan_digits.py"):  # test_conditional's tiny_runs: the same programs.
    return pytest.param(experiment, marks=pytest.mark.xdist_group("conditional_runs"))
  if name.startswith("progan"):   # test_progan's resumed run: the same programs (progan.py's data is digits).
    return pytest.param(experiment, marks=pytest.mark.xdist_group("progan"))
  if name in ("dfgan_shapes.py", "attngan_shapes.py"):   # With test_dfgan's / test_attngan's run: the same programs.
    return pytest.param(experiment, marks=pytest.mark.xdist_group(name.split("_")[0]))
  if name == "dcgan_digits.py":   # With the digits_run fixture: the same tiny run.
    return pytest.param(experiment, marks=pytest.mark.xdist_group("digits_run"))
  return experiment


@pytest.mark.parametrize("experiment", [_grouped(e) for e in EXPERIMENTS], ids=os.path.basename)
def test_every_experiment_trains_two_steps(experiment, data_dir, tmp_path, caplog):
  caplog.set_level("INFO")
  config = tiny_config(experiment, data_dir)
  if config.data.name in data.OFFLINE_BUILDERS:
    state = train.train_and_evaluate(config, str(tmp_path))
  else:  # Standard datasets (and those derived from them) cannot be downloaded here: TFDS's mock data.
    with tfds.testing.mock_data(num_examples=2 * config.batch_size):
      state = train.train_and_evaluate(config, str(tmp_path))
  assert int(state.step) == config.total_steps == 2
  rows = _metrics(tmp_path)
  assert [r["step"] for r in rows] == [1, 2]
  assert {f"{name}_param_norm" for name in state.nets} <= set(rows[0])
  golden_runs.check(os.path.splitext(os.path.basename(experiment))[0], state, rows)  # Numbers pinned.
  for row in rows:
    assert _LOGGED[config.objective] <= set(row), config.objective
    assert all(np.isfinite(v) for v in row.values())
    if "d_real_prob" in _LOGGED[config.objective]:
      assert 0.0 < row["d_real_prob"] < 1.0 and 0.0 < row["d_fake_prob"] < 1.0
    # ADA's r_t, E[sign(D(x) - t)], for every loss with a decision threshold t (all but the Wasserstein critic's).
    signs = ["d_a_real_sign", "d_b_real_sign"] if config.objective == "cyclegan" else ["d_real_sign"]
    if losses.get(config.loss).threshold is not None:
      assert all(-1.0 <= row[name] <= 1.0 for name in signs), row
    else:
      assert not set(signs) & set(row)
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1", "2"]
  # Translation grids show the real targets themselves.
  real = ["real.png"] if config.objective in ("gan", "stylegan2", "progan", "dfgan", "attngan") else []
  assert sorted(os.listdir(tmp_path / "samples")) == real + ["step_0000001.png", "step_0000002.png"]
  assert any(f.startswith("events.out.tfevents") for f in os.listdir(tmp_path))
  with open(tmp_path / "config.json") as f:
    assert json.load(f)["model_name"] == config.model_name
  if config.evals:  # Evaluated at every step of the tiny run (config.eval_every), in eval.json.
    with open(tmp_path / "eval.json") as f:
      evals = [json.loads(line) for line in f]
    assert [e["step"] for e in evals] == list(range(config.eval_every, 3, config.eval_every))
    if "mode_coverage" in config.evals:  # The 2D benchmark.
      assert 0 <= evals[-1]["mode_coverage/modes_covered"] <= 25
    elif "augmentation" in config.evals:  # GAN samples as training data: three classifiers' accuracies.
      last = evals[-1]
      assert all(0.0 <= last[f"augmentation/{arm}"] <= 1.0 for arm in ("real", "real_plus_synthetic", "synthetic"))
      assert last["augmentation/num_real"] == last["augmentation/num_synthetic"] == 64  # The tiny run's n.
      summary, = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Done: step 2")]
      assert "augmentation real_plus_synthetic" in summary
    elif "attributes" in config.evals:  # Text to image: the shapes parser against the captions' facts.
      assert all(0.0 <= evals[-1][f"attributes/{fact}"] <= 1.0 for fact in ("shape", "colour", "size", "exact"))
    else:  # Image metrics, named with their extractor, and the closing summary with real data's own scores.
      assert evals[-1]["fid/fid"] > 0 and evals[-1]["features"].startswith("classifier-")
      summary, = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Done: step 2")]
      last = re.search(r"last evaluation: [^\n]*\bfid ([0-9.e+-]+)", summary)
      real = re.search(r"real vs real: [^\n]*\bfid ([0-9.e+-]+)[^\n]*\(two halves", summary)
      assert last and real, summary
      assert float(last.group(1)) == pytest.approx(evals[-1]["fid/fid"], rel=1e-3) and float(real.group(1)) >= 0


def _digits(data_dir, **overrides):
  return tiny_config(os.path.join(REPO, "experiments", "dcgan_digits.py"), data_dir, **overrides)


@pytest.mark.xdist_group("digits_run")  # One worker trains digits_run once for all its users.
def test_first_step_matches_closed_form_at_init(digits_run):
  # At init D's logits are near 0: D(x) ~ D(G(z)) ~ 1/2, D's loss ~ 2 log 2 and G's ~ log 2.
  first = _metrics(digits_run)[0]
  np.testing.assert_allclose([first["d_loss"], first["g_loss"]], [2 * np.log(2), np.log(2)], atol=0.1)
  np.testing.assert_allclose([first["d_real_prob"], first["d_fake_prob"]], [0.5, 0.5], atol=0.05)


def test_resume_is_bitwise_exact(data_dir, tmp_path):
  # Two critic steps per G step and a tiny shuffle buffer: resume must restore RNG, optimizers, EMA, step
  # and the data position. 4 steps * 2 * 8 examples, run in halves.
  # (The run's workdir without its checkpoint at 4 resumes from 2; what it logged after 2 is set aside and
  # logged again.)
  overrides = {"num_critic_steps": 2, "ema_decay": 0.5, "checkpoint_every": 2, "total_steps": 4}
  full = train.train_and_evaluate(_digits(data_dir, **overrides), str(tmp_path / "full"))
  shutil.copytree(tmp_path / "full", tmp_path / "split")
  shutil.rmtree(tmp_path / "split" / "checkpoints" / "4")
  half, _ = checkpoint.Checkpointer(str(tmp_path / "split"), read_only=True).restore(full)
  resumed = train.train_and_evaluate(_digits(data_dir, **overrides), str(tmp_path / "split"))
  assert int(half.step) == 2 and int(resumed.step) == int(full.step) == 4
  assert_states_equal(full, resumed)
  assert [r["step"] for r in _metrics(tmp_path / "split")] == [1, 2, 3, 4]
  assert _metrics(tmp_path / "full")[2:] == _metrics(tmp_path / "split")[2:]


def test_resume_with_a_different_model_is_refused(data_dir, tmp_path):
  train.train_and_evaluate(_digits(data_dir, total_steps=1), str(tmp_path))
  with pytest.raises(UserError, match=r"different config \(keys model.g_width differ\)"):
    train.train_and_evaluate(_digits(data_dir, total_steps=2, **{"model.g_width": 8}), str(tmp_path))
  assert sorted(os.listdir(tmp_path / "checkpoints")) == ["1"]


@pytest.fixture(scope="module")
def plain_d_run(data_dir, tmp_path_factory):
  """(workdir, final state) of the tiny DCGAN with an EMA decay of 0 and no normalisation in D, for two tests."""
  workdir = tmp_path_factory.mktemp("plain_d_run")
  return workdir, train.train_and_evaluate(_digits(data_dir, ema_decay=0.0, **{"model.d_norm": "none"}), str(workdir))


@pytest.mark.xdist_group("plain_d_run")
def test_ema_with_zero_decay_is_the_generator(plain_d_run):
  _, state = plain_d_run
  assert_states_equal(state.ema["g"], state.variables("g"))


@pytest.mark.xdist_group("plain_d_run")
def test_discriminator_without_batchnorm_trains(plain_d_run):
  # Every make_models keyword is in config.model (config.set_model), so it can be overridden like this.
  workdir, state = plain_d_run
  assert state.nets["d"].collections == {} and all(np.isfinite(r["d_loss"]) for r in _metrics(workdir))


def test_divergence_stops_before_checkpointing(data_dir, tmp_path):
  config = _digits(data_dir, total_steps=3, **{"optimizer.d.learning_rate": 1e38, "optimizer.g.learning_rate": 1e38})
  with pytest.raises(UserError, match=r"training diverged at step \d: .* is (nan|inf)"):
    train.train_and_evaluate(config, str(tmp_path))
  assert not (tmp_path / "checkpoints" / "3").exists()


@pytest.fixture(scope="module")
def digits_run(data_dir, tmp_path_factory):
  """The default experiment's tiny run, trained once for the sampling tests that only read it."""
  workdir = str(tmp_path_factory.mktemp("digits_run"))
  train.train_and_evaluate(_digits(data_dir), workdir)
  return workdir


@pytest.mark.xdist_group("digits_run")  # One worker trains digits_run once for all its users.
def test_samples_are_deterministic(digits_run):
  a = sample.sample(digits_run, 6, seed=1)[0]
  b = sample.sample(digits_run, 6, seed=1, batch_size=4)[0]
  c = sample.sample(digits_run, 3, seed=1)[0]
  d = sample.sample(digits_run, 6, seed=2)[0]
  assert a.shape == (6, 16, 16, 1) and a.dtype == np.uint8
  np.testing.assert_array_equal(a, b)
  np.testing.assert_array_equal(a[:3], c)
  assert not np.array_equal(a, d)


@pytest.mark.xdist_group("digits_run")  # One worker trains digits_run once for all its users.
def test_sample_cli_writes_npz_and_grid(digits_run, tmp_path):
  out, grid = tmp_path / "s.npz", tmp_path / "s.png"
  result = subprocess.run([sys.executable, "-m", "gan_jax.sample", f"--workdir={digits_run}", "--num=5",
                           f"--out={out}", f"--grid={grid}", "--seed=3"], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  np.testing.assert_array_equal(np.load(out)["images"], sample.sample(digits_run, 5, seed=3)[0])
  assert grid.stat().st_size > 0 and set(np.load(out)) == {"images"}  # Unconditional: no labels written.


@pytest.mark.xdist_group("mode_collapse")  # The programs of test_every_experiment_trains_two_steps[pacgan2_grid].
def test_sample_cli_writes_points_for_2d_models(data_dir, tmp_path):
  train.train_and_evaluate(tiny_config(os.path.join(REPO, "experiments", "pacgan2_grid.py"), data_dir),
                           str(tmp_path))
  out = tmp_path / "p.npz"
  result = subprocess.run([sys.executable, "-m", "gan_jax.sample", f"--workdir={tmp_path}", "--num=7",
                           f"--out={out}", f"--grid={tmp_path / 'p.png'}"], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  points = np.load(out)["points"]
  assert points.shape == (7, 2) and points.dtype == np.float32
  np.testing.assert_array_equal(points, sample.sample(str(tmp_path), 7)[0])


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _metrics_so_far(workdir):
  try:
    return _metrics(workdir)
  except (FileNotFoundError, json.JSONDecodeError):  # Not written yet, or a line half written.
    return []


def _child_with_arg(parent_pid, arg):
  for pid in subprocess.run(["pgrep", "-P", str(parent_pid)], capture_output=True, text=True).stdout.split():
    with open(f"/proc/{pid}/cmdline", "rb") as f:
      if arg.encode() in f.read().split(b"\0"):
        return int(pid)
  raise LookupError(f"no child of {parent_pid} has {arg}")


def test_one_device_four_devices_and_two_processes_agree(data_dir, tmp_path):
  # The same global batches and losses on 1 device, 4 devices of one process, and 2 processes of 2 devices
  # (jax.distributed on 127.0.0.1, gloo). The 2-process run is preempted: SIGTERM reaches process 1 alone,
  # both stop after the same step with a checkpoint and exit 0; it is then resumed from the checkpoint both
  # wrote at step 2 (the later ones are removed) and runs step 3.
  flags = ["--config=experiments/dcgan_digits.py:runlocal", f"--config.data.data_dir={data_dir}",
           "--config.evals=()"]
  data.load_builder("digits", data_dir)  # Prepared before the processes start, not by all of them at once.
  four = subprocess.Popen(
      [sys.executable, "-m", "gan_jax.main", *flags, "--config.total_steps=3", f"--workdir={tmp_path / '4'}"],
      cwd=REPO, env=dict(os.environ, JAX_PLATFORMS="cpu",
                   XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=4"),
      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  workdir = tmp_path / "2x2"
  launch = ["bash", "scripts/launch_local.sh", "2", "2", *flags, f"--workdir={workdir}"]
  first = subprocess.Popen(launch + ["--config.total_steps=1000", "--config.keep_checkpoints=1000"], cwd=REPO,
                           env=dict(os.environ, PORT=str(_free_port())), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
  deadline = time.time() + 300
  while len(_metrics_so_far(workdir)) < 2 and time.time() < deadline:
    time.sleep(0.05)
  os.kill(_child_with_arg(first.pid, "--process_id=1"), signal.SIGTERM)
  output, _ = first.communicate(timeout=300)
  process_1_log = (workdir / "process_1.log").read_text()
  assert first.returncode == 0, output[-3000:] + process_1_log[-3000:]
  stopped_at = max(int(name) for name in os.listdir(workdir / "checkpoints") if name.isdigit())
  assert 2 <= stopped_at < 1000
  for log in (output, process_1_log):
    assert f"Stopped by SIGTERM at step {stopped_at}" in log
  for name in os.listdir(workdir / "checkpoints"):
    if name.isdigit() and int(name) > 2:
      shutil.rmtree(workdir / "checkpoints" / name)
  resumed = subprocess.run(launch + ["--config.total_steps=3"], cwd=REPO, env=dict(os.environ, PORT=str(_free_port())),
                           capture_output=True, text=True, timeout=600)
  assert resumed.returncode == 0, resumed.stdout[-3000:] + (workdir / "process_1.log").read_text()[-3000:]
  assert "Resumed from" in resumed.stdout and "on 4 device(s)" in resumed.stdout
  assert four.wait(timeout=600) == 0, four.stderr.read()[-3000:]
  train.train_and_evaluate(_digits(data_dir, total_steps=3, evals=()), str(tmp_path / "1"))
  one, four = _metrics(tmp_path / "1"), _metrics(tmp_path / "4")
  by_step = {}
  for row in _metrics(workdir):  # Steps 1..stopped_at, then step 3 again after the resume: keep the last.
    by_step[row["step"]] = row
  two_by_two = [by_step[1], by_step[2], by_step[3]]
  assert [r["step"] for r in one] == [r["step"] for r in four] == [1, 2, 3]
  for a, b, c in zip(one, four, two_by_two):
    for key in ("d_loss", "g_loss", "d_real_prob", "d_fake_prob", "d_grad_norm", "g_grad_norm", "g_param_norm"):
      np.testing.assert_allclose(b[key], a[key], rtol=1e-4, atol=1e-6, err_msg=key)
      np.testing.assert_allclose(c[key], a[key], rtol=1e-4, atol=1e-6, err_msg=key)


def test_steps_per_call_scans_the_same_steps(data_dir, tmp_path):
  # 4 steps as 2 calls of 2 scanned steps: the same state as 4 calls of 1, and the same per-step stream.
  overrides = {"total_steps": 4, "log_every": 2, "sample_every": 2, "checkpoint_every": 2, "eval_every": 2,
               "num_critic_steps": 2}
  one = train.train_and_evaluate(_digits(data_dir, steps_per_call=1, **overrides), str(tmp_path / "one"))
  two = train.train_and_evaluate(_digits(data_dir, steps_per_call=2, **overrides), str(tmp_path / "two"))
  assert int(two.step) == 4 and sorted(os.listdir(tmp_path / "two" / "checkpoints")) == ["2", "4"]
  for a, b in zip(jax.tree.leaves(one), jax.tree.leaves(two)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
  with pytest.raises(UserError, match="multiple of config.steps_per_call"):
    train.train_and_evaluate(_digits(data_dir, steps_per_call=3, **overrides), str(tmp_path / "three"))


def test_scanned_and_unrolled_multi_steps_agree():
  # steps.scan_steps over 3 steps of a toy "train step", as lax.scan (accelerators) and unrolled (CPU).
  from gan_jax import steps  # pylint: disable=g-import-not-at-top
  step = lambda state, batch: (state * 2.0 + batch["x"], {"x_sum": batch["x"].sum()})
  batches = {"x": np.arange(6.0, dtype=np.float32).reshape(3, 2)}
  for unroll in (False, True):
    state, metrics = jax.jit(steps.scan_steps(step, unroll))(np.zeros(2, np.float32), batches)
    np.testing.assert_array_equal(state, [8.0, 15.0])        # ((0*2+[0,1])*2+[2,3])*2+[4,5]
    np.testing.assert_array_equal(metrics["x_sum"], [1.0, 5.0, 9.0])
