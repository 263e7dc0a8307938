"""Shared fixtures: a TFDS data_dir holding the offline `digits` dataset, and tiny configs of every experiment."""
import glob
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

from gan_jax import config as config_lib  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPERIMENTS = sorted(glob.glob(os.path.join(REPO, "experiments", "*.py")))


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
  """A fresh TFDS data_dir; `digits` is prepared into it on first use (from scikit-learn, offline)."""
  return str(tmp_path_factory.mktemp("tensorflow_datasets"))


def tiny_config(experiment, data_dir, **overrides):
  config = config_lib.load_experiment(experiment, "runlocal")
  config.data.data_dir = data_dir
  for key, value in overrides.items():
    config.update_from_flattened_dict({key: value})
  return config
