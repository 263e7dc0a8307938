"""Config parsing and validation: bad keys and names are rejected, naming the bad value and the allowed ones."""
import ast
import glob
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from gan_jax import config as config_lib
from gan_jax import models, objectives, optimizers, sharding
from gan_jax.errors import UserError

from conftest import EXPERIMENTS, REPO


@pytest.mark.parametrize("experiment", EXPERIMENTS, ids=os.path.basename)
def test_every_experiment_validates_and_has_its_command(experiment):
  for arg in (None, "runlocal"):
    config = config_lib.load_experiment(experiment, arg)
    config_lib.validate(config)
    assert isinstance(config.seed, int) and isinstance(config.total_steps, int)
  text = open(experiment).read()
  assert f"--config=experiments/{os.path.basename(experiment)}" in text  # The docstring holds the command.


def test_parse_arg():
  arg = config_lib.parse_arg("runlocal,res=32", runlocal=False, res=16, name="a")
  assert arg.runlocal is True and arg.res == 32 and arg.name == "a"
  with pytest.raises(UserError, match="unknown config argument 'bogus'; allowed: res, runlocal"):
    config_lib.parse_arg("bogus", runlocal=False, res=16)
  with pytest.raises(UserError, match="res='x' is not a int"):
    config_lib.parse_arg("res=x", res=16)


def _digits():
  return config_lib.load_experiment(os.path.join(REPO, "experiments", "dcgan_digits.py"), "runlocal")


def test_comma_separated_evals_from_the_command_line_are_split():
  config = _digits()
  config.evals = ("fid, kid",)          # What --config.evals=fid,kid gives the tuple field.
  config_lib.validate(config)
  assert tuple(config.evals) == ("fid", "kid")
  config.evals = ("fid,bogus",)
  with pytest.raises(UserError, match="unknown evaluator 'bogus'"):
    config_lib.validate(config)


@pytest.mark.parametrize("key,value,message", [
    ("loss", "hinge_typo", r"unknown loss 'hinge_typo'; allowed: hinge, lsgan, minimax, non_saturating, wasserstein"),
    ("model_name", "nomodel", rf"unknown model_name 'nomodel'; allowed: {', '.join(sorted(models.names()))}"),
    ("objective", "noobjective",
     rf"unknown config.objective 'noobjective'; allowed: {', '.join(sorted(objectives.names()))}"),
    ("optimizer.g.lr_schedule", "cosine", r"unknown optimizer.g.lr_schedule 'cosine'; allowed: constant, linear_decay"),
    ("data.name", "nosuchset", r"unknown dataset 'nosuchset'; allowed: .*digits.*mnist"),
    ("optimizer.g.name", "adamw_typo", r"unknown optimizer.g.name 'adamw_typo'; allowed: adam, rmsprop, sgd"),
    ("model.resolution", 20, r"cannot produce resolution 20"),
    ("total_steps", 0, r"config.total_steps must be a positive integer"),
    ("ema_decay", 1.0, r"ema_decay must be in \[0, 1\)"),
    ("data.cache_mb", -1, r"config.data.cache_mb must be >= 0, got -1"),
])
def test_bad_values_are_rejected_by_name(key, value, message):
  config = _digits()
  config.update_from_flattened_dict({key: value})
  with pytest.raises(UserError, match=message):
    config_lib.validate(config)


def test_objective_kwargs_and_optimizers_are_checked_against_the_objective():
  config = _digits()
  config.objective_kwargs.lambda_l1 = 100.0
  with pytest.raises(UserError, match=r"unknown key\(s\) lambda_l1 in config.objective_kwargs for objective 'gan'; "
                                      r"allowed: none"):
    config_lib.validate(config)
  config = _digits()
  config.optimizer.g_ab = dict(config.optimizer.g)  # A network the plain GAN does not have.
  with pytest.raises(UserError, match=r"config.optimizer has entries for d, g, g_ab but objective 'gan' trains d, g"):
    config_lib.validate(config)
  config = _digits()
  config.optimizer.g.lr_schedule = "linear_decay"
  with pytest.raises(UserError, match=r"needs integers 0 <= decay_begin < decay_end"):
    config_lib.validate(config)
  assert config_lib.validate(_digits()).networks == ("g", "d")


def test_linear_decay_schedule_is_constant_then_linear_to_zero():
  # CycleGAN's schedule (Zhu et al. 2017, Sec. 4): the learning rate until decay_begin updates, then linearly to 0.
  lr = optimizers.learning_rate({"learning_rate": 2e-4, "lr_schedule": "linear_decay", "decay_begin": 100,
                                 "decay_end": 200}, scale=0.5)
  np.testing.assert_allclose([float(lr(n)) for n in (0, 99, 100, 150, 200, 250)], [1e-4, 1e-4, 1e-4, 5e-5, 0, 0],
                             atol=1e-12)
  assert optimizers.learning_rate({"learning_rate": 2e-4}) == 2e-4  # Constant: a number, as before schedules.


def test_unknown_keys_are_rejected():
  config = _digits()
  config.totl_steps = 5
  with pytest.raises(UserError, match=r"unknown config key\(s\) totl_steps; allowed: .*total_steps"):
    config_lib.validate(config)
  config = _digits()
  config.model.widht = 3
  with pytest.raises(UserError, match=r"unknown key\(s\) widht in config.model for model 'dcgan'"):
    config_lib.validate(config)
  config = _digits()
  config.optimizer.d.beta1 = 0.5
  with pytest.raises(UserError, match=r"unknown key\(s\) beta1 in optimizer.d \(adam\); allowed: learning_rate, b1"):
    config_lib.validate(config)


def test_batch_must_split_over_devices(monkeypatch):
  monkeypatch.setattr(sharding.jax, "device_count", lambda: 4)
  assert sharding.check_batch_size(8) == 8
  with pytest.raises(UserError, match="batch_size 6 is not divisible by the 4 devices"):
    sharding.check_batch_size(6)


def test_resume_diff_ignores_loop_keys_only():
  a, b = _digits(), _digits()
  b.total_steps, b.log_every = 100, 7
  assert config_lib.diff_for_resume(a, b) == []
  b.model.g_width, b.seed = 8, 3
  assert config_lib.diff_for_resume(a, b) == ["model.g_width", "seed"]


def _cli(*args, module="gan_jax.main"):
  return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True,
                        timeout=120)


@pytest.mark.parametrize("args,message", [
    (["--config=experiments/dcgan_digits.py:runlocal", "--config.loss=nope"], "unknown loss 'nope'"),
    (["--config=experiments/dcgan_digits.py:runlocal", "--config.nokey=1"], "nokey"),
    (["--config=experiments/dcgan_digits.py:bogus"], "unknown config argument 'bogus'"),
    (["--config=experiments/no_such_file.py"], "no_such_file.py"),
    (["--config=experiments/dcgan_digits.py:runlocal", "--config.model.resolution=20"], "resolution 20"),
])
def test_cli_errors_are_one_line_and_exit_2(tmp_path, args, message):
  result = _cli(*args, f"--workdir={tmp_path / 'w'}")
  assert result.returncode == 2, result.stderr[-2000:]
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("gan_jax: error: ") and message in last, result.stderr[-2000:]
  assert "Traceback" not in result.stderr
  assert not (tmp_path / "w" / "checkpoints").exists()


def test_an_unknown_override_key_is_one_clean_line_with_a_suggestion():
  from gan_jax import cli  # pylint: disable=g-import-not-at-top
  config = config_lib.base_config()
  for access, argv, expected in [
      (lambda: config.los, ["--config.los=hinge"], "unknown config key 'los'; did you mean 'loss'?"),
      (lambda: config.optimizer.g.lerning_rate, ["--config.optimizer.g.lerning_rate=1"],
       "unknown config key 'optimizer.g.lerning_rate'; did you mean 'optimizer.g.learning_rate'?"),
      (lambda: config.model.widht, ["--config.model.widht=3"], "unknown config key 'model.widht' (")]:
    with pytest.raises((AttributeError, KeyError)) as info:
      access()
    message = cli.unknown_key_message(info.value, ["main.py", *argv])
    assert message.startswith(expected) and "\n" not in message and "\\" not in message


def test_help_lists_the_experiments_and_the_config_keys():
  from gan_jax import main  # pylint: disable=g-import-not-at-top
  listing = main.list_experiments().splitlines()
  assert len(listing) == len(EXPERIMENTS) and all(line.startswith("experiments/") for line in listing)
  assert any(line.startswith("experiments/dcgan_digits.py") and "default experiment" in line for line in listing)
  keys = main.config_help()
  assert "batch_size = 64  # Global batch, split over all devices of all processes." in keys.splitlines()
  assert all(f"{key} = " in keys for key in config_lib.flatten(config_lib.base_config()))


def _flags_defined_at_import(path):
  """Lines of `flags.DEFINE_*(...)` / `config_flags.DEFINE_*(...)` calls made when the file is imported: in its
  module body, outside any function."""
  tree = ast.parse(open(path).read())
  lines = []
  for node in tree.body:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
      continue
    for call in ast.walk(node):
      if (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
          and call.func.attr.startswith("DEFINE_")):
        lines.append(call.lineno)
  return lines


def test_modules_imported_in_process_define_no_flags_on_import():
  # absl flags are process-global: a module that defines --workdir when imported breaks every other one imported
  # beside it (DuplicateFlagError, as CI once hit when a test imported scripts/attention_maps.py on the worker that
  # had imported gan_jax.main, a pairing that depends on how xdist shares out the tests). The package and the
  # scripts that tests import define their flags inside the function that runs the command line; gan_jax/main.py,
  # the training program, is the one module whose flags exist on import.
  paths = glob.glob(os.path.join(REPO, "gan_jax", "**", "*.py"), recursive=True)
  paths.remove(os.path.join(REPO, "gan_jax", "main.py"))
  paths += [os.path.join(REPO, "scripts", f"{name}.py") for name in ("attention_maps", "benchmark")]
  found = {os.path.relpath(p, REPO): lines for p in paths if (lines := _flags_defined_at_import(p))}
  assert not found, f"flags defined at import (file: lines): {found}"
  assert _flags_defined_at_import(os.path.join(REPO, "scripts", "pretrain_damsm.py"))  # The check sees them.


def test_sample_cli_on_a_missing_workdir(tmp_path):
  result = _cli(f"--workdir={tmp_path}", "--out=x.npz", module="gan_jax.sample")
  assert result.returncode == 2 and "gan_jax: error: " in result.stderr and "config.json not found" in result.stderr


def test_config_json_is_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
  # The processes of a multi-process run read config.json while process 0 writes it (a resume once failed on a
  # half-written file); a write that fails leaves the previous file as it was, and no temporary behind.
  config = config_lib.base_config()
  config_lib.save_json(config, str(tmp_path))
  before = (tmp_path / "config.json").read_text()
  changed = config_lib.base_config()
  changed.seed = 7

  def fail(*args, **kwargs):
    raise OSError(28, "No space left on device")
  monkeypatch.setattr(config_lib.os, "replace", fail)
  with pytest.raises(OSError):
    config_lib.save_json(changed, str(tmp_path))
  assert (tmp_path / "config.json").read_text() == before and os.listdir(tmp_path) == ["config.json"]
  monkeypatch.undo()
  config_lib.save_json(changed, str(tmp_path))
  assert config_lib.load_json(str(tmp_path)).seed == 7 and os.listdir(tmp_path) == ["config.json"]


def test_config_json_shows_keys_that_do_not_apply_as_null(tmp_path):
  # An unconditional run's config.json once showed d_conditioning "projection" next to num_classes 0. Keys the
  # run does not use are null; loading restores their defaults, so the config builds and resumes as it ran,
  # and a workdir written before (every key with a value) still resumes.
  import json  # pylint: disable=g-import-not-at-top
  cases = {"dcgan_digits.py": ("model.g_conditioning", "model.d_conditioning", "aux_weight", "pack_slot_statistics",
                               "regularizer.lazy_every", "rollback_lr_factor", "max_rollbacks"),
           "acgan_digits.py": ("pack_slot_statistics",),
           "pacgan4_grid.py": ("aux_weight",),
           "pix2pix_edges2fashion.py": ("model.num_blocks", "pack", "num_critic_steps", "regularizer.r1", "aux_weight")}
  applies = {"acgan_digits.py": ("model.g_conditioning", "model.d_conditioning", "aux_weight"),
             "pacgan4_grid.py": ("pack", "pack_slot_statistics"), "cyclegan_digits_m.py": ("model.num_blocks",),
             "dcgan_digits.py": ("model.num_classes", "eval_features")}
  for name in sorted(set(cases) | set(applies)):
    config = config_lib.load_experiment(os.path.join(REPO, "experiments", name))
    workdir = tmp_path / name
    workdir.mkdir()
    config_lib.save_json(config, str(workdir))
    stored = config_lib.flatten(json.loads((workdir / "config.json").read_text()))
    flat = config_lib.flatten(config)
    assert all(stored[k] is None for k in cases.get(name, ())), name
    assert all(stored[k] == flat[k] is not None for k in applies.get(name, ())), name
    assert sum(v is None for v in stored.values()) == sum(v is None for v in flat.values()) + len(
        config_lib.not_applicable(config)) - sum(flat.get(k) is None for k in config_lib.not_applicable(config))
    loaded = config_lib.load_json(str(workdir))
    assert config_lib.as_run(loaded) == config_lib.as_run(config)  # Every key that applies, as it ran.
    assert config_lib.diff_for_resume(loaded, config) == []
    config_lib.validate(loaded)
    old_style = config_lib.with_defaults(json.loads(config.to_json()))  # As config.json was written before.
    assert config_lib.diff_for_resume(old_style, config) == []
  # Values the run does not use, set away from their defaults: config.json nulls them, and the loaded config
  # (their defaults back) validates and builds the same networks with the same parameter shapes.
  config = config_lib.load_experiment(os.path.join(REPO, "experiments", "dcgan_digits.py"))
  config.model.d_conditioning, config.regularizer.lazy_every, config.aux_weight = "acgan", 4, 3.0
  config.evals, config.eval_features, config.eval_num_samples = (), "classifier:mnist", 123  # Kept: evaluate reads them.
  workdir = tmp_path / "unused"
  workdir.mkdir()
  config_lib.save_json(config, str(workdir))
  loaded = config_lib.load_json(str(workdir))
  assert (loaded.model.d_conditioning, loaded.regularizer.lazy_every, loaded.aux_weight) == ("projection", 1, 1.0)
  assert (loaded.eval_features, loaded.eval_num_samples) == ("classifier:mnist", 123)
  assert config_lib.diff_for_resume(loaded, config) == []
  shapes = []
  for c in (config, loaded):
    objective = config_lib.validate(c)
    state = jax.eval_shape(lambda o=objective, c=c: o.init(0, optimizers.for_networks(c, o.networks)))
    shapes.append((jax.tree_util.tree_structure(state), jax.tree_util.tree_leaves(state)))
  assert shapes[0] == shapes[1]
  changed = config_lib.load_experiment(os.path.join(REPO, "experiments", "dcgan_digits.py"))
  changed.model.num_classes = 10  # The conditioning keys now apply, and a resume must see the difference.
  assert config_lib.diff_for_resume(config_lib.load_json(str(tmp_path / "dcgan_digits.py")), changed) == [
      "model.d_conditioning", "model.g_conditioning", "model.num_classes"]
