"""Shared fixtures: a TFDS data_dir holding the offline datasets, and tiny configs of every experiment.
Evaluation caches go to a temporary $XDG_CACHE_HOME.

The session shares one persistent XLA compilation cache (a fresh temporary directory, also used by the
subprocesses tests start): many tests train the same tiny configs, and each train_and_evaluate call would
otherwise compile the same programs again.

Everything the session writes to temporary storage lives under one root that pytest's main process removes at
exit: the XLA cache, each process's cache home, and $TMPDIR for the session's processes (TFDS leaves an empty
`tmp*tfds` directory in the temporary folder for every builder of an unprepared dataset it makes, 2,600 a run).
xdist's workers inherit the root from the main process's environment; they may exit without running atexit.
"""
import atexit
import glob
import os
import shutil
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# XLA's CPU backend compiles the suite's programs without LLVM's optimisations (level 0; train.compile_once's
# initialisers keep their level 1) and with its older loop emitters instead of the fusion emitters
# (--xla_cpu_use_fusion_emitters=false): the tiny programs run a few steps and compilation is most of the suite's
# time (SAGAN's tiny training step: 6.7 s at level 0, 11 s at the default; every experiment's two-step run, the
# 46 of them on two workers: 328 s at level 0, 236 s with the loop emitters too). Their numbers move only in the
# last bits (the golden runs are recorded with these flags, golden_runs.machine() says so). Subprocesses inherit
# them. A flag already in $XLA_FLAGS is kept.
for _flag, _value in (("xla_backend_optimization_level", "0"), ("xla_cpu_use_fusion_emitters", "false")):
  if _flag not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --{_flag}={_value}".strip()
if "GAN_JAX_TESTS_ROOT" not in os.environ:  # pytest's main process (or a single-process run).
  _ROOT = tempfile.mkdtemp(prefix="gan_jax_tests_")
  atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)
  os.makedirs(os.path.join(_ROOT, "tmp"))
  os.makedirs(os.path.join(_ROOT, "xla_cache"))
  os.environ["GAN_JAX_TESTS_ROOT"] = _ROOT
_ROOT = os.environ["GAN_JAX_TESTS_ROOT"]
os.environ.setdefault("PYTEST_DEBUG_TEMPROOT", tempfile.gettempdir())  # tmp_path stays pytest's, kept as it keeps it.
os.environ["TMPDIR"] = tempfile.tempdir = os.path.join(_ROOT, "tmp")
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  os.environ.update(JAX_COMPILATION_CACHE_DIR=os.path.join(_ROOT, "xla_cache"),
                    JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="-1")

# Reference features and real-vs-real scores cached by the tests (of mocked datasets among them) go to a
# temporary cache, never the user's: a mocked `mnist` once left its features in ~/.cache/gan_jax under the name a
# real MNIST reference of the same size would read. One per process, as before.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="cache_home_", dir=_ROOT)

import pytest  # noqa: E402

from gan_jax import config as config_lib  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERIMENTS = sorted(glob.glob(os.path.join(REPO, "experiments", "*.py")))


@pytest.fixture(autouse=True)
def network_for_mocked_datasets(monkeypatch):
  """Tests read standard datasets through tfds.testing.mock_data, which replaces their download; the pipeline's
  probe of the network (which this machine lacks) is told it is there. A test about the probe patches it back."""
  from gan_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(pipeline, "network_reachable", lambda root=None: True)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
  """A fresh TFDS data_dir, shared by the session's xdist workers: the offline datasets (digits, digits_m, ring8,
  grid25) are prepared into it on first use, once per session (data.load_builder's lock makes a second worker
  wait for the first's preparation instead of repeating it; grid25's 100,000 points take 10 s)."""
  if not os.environ.get("PYTEST_XDIST_WORKER"):  # One process.
    return str(tmp_path_factory.mktemp("tensorflow_datasets"))
  shared = tmp_path_factory.getbasetemp().parent / "tensorflow_datasets"
  shared.mkdir(exist_ok=True)
  return str(shared)


def tiny_config(experiment, data_dir, **overrides):
  """The `runlocal` config of `experiment` (a path, or a file name in experiments/) reading data_dir, with the flat
  `overrides`."""
  if not os.path.dirname(experiment):
    experiment = os.path.join(REPO, "experiments", experiment)
  config = config_lib.load_experiment(experiment, "runlocal")
  config.data.data_dir = data_dir
  for key, value in overrides.items():
    config.update_from_flattened_dict({key: value})
  return config


def init_state(objective, seed, txs):
  """objective.init(seed, txs) compiled as the trainer compiles it (train.compile_once): run eagerly, every random
  initialiser compiles at XLA's full optimisation first (10 s for an AC-GAN's on this CPU, against 1 s)."""
  from gan_jax import train  # pylint: disable=g-import-not-at-top
  return train.compile_once(lambda: objective.init(seed, txs))()


def init_variables(module, *args, **kwargs):
  """module.init(*args, **kwargs) as one program compiled like the trainer's initialisers (train.compile_once):
  eagerly, each initialiser of a new shape compiles at XLA's full optimisation (19 s for DCGAN's 64x64 pair)."""
  from gan_jax import train  # pylint: disable=g-import-not-at-top
  return train.compile_once(lambda: module.init(*args, **kwargs))()


def resume_a_copy_without_its_last_checkpoint(config, workdir, last_step: int):
  """Copies the run in `workdir` (a pathlib.Path) to `<workdir>_resumed` without its checkpoint at `last_step`,
  resumes the copy with `config` through train.train_and_evaluate, and returns its final state."""
  import shutil  # pylint: disable=g-import-not-at-top
  from gan_jax import train  # pylint: disable=g-import-not-at-top
  copy = workdir.parent / f"{workdir.name}_resumed"
  shutil.copytree(workdir, copy)
  shutil.rmtree(copy / "checkpoints" / str(last_step))
  return train.train_and_evaluate(config, str(copy))


def assert_states_equal(a, b):
  """Bitwise equality of two training states (or any two pytrees of one structure), leaf by leaf."""
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
