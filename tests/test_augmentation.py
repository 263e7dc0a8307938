"""The augmentation evaluator (gan_jax/metrics/augmentation.py): its three classifiers on a tiny setting, where
the answer is known, and its config checks. The end-to-end path (a GAN trained, its samples scored) is the
`augmentation` experiment's two-step run in test_train.py, numbers pinned."""
import os

import numpy as np
import pytest

from gan_jax import config as config_lib
from gan_jax.errors import UserError
from gan_jax.metrics import augmentation

from conftest import REPO, tiny_config

EXPERIMENT = os.path.join(REPO, "experiments", "augmentation.py")


def test_synthetic_data_that_is_real_helps_and_wrong_labels_do_not(data_dir):
  """'Synthetic' images that are real digits with their labels are as good as real data; the same images with
  shuffled labels teach nothing (chance is 10%)."""
  config = tiny_config(EXPERIMENT, data_dir, **{"data.split": "train[:100]", "augmentation.steps": 120})
  assert augmentation.num_real(config) == 100
  assert augmentation.num_synthetic(config) == 100
  config.augmentation.synthetic_ratio = 4.0
  assert augmentation.num_synthetic(config) == 400 and augmentation.num_synthetic(config, n=3) == 12
  extra = augmentation._load(config, "train[100:500]", (16, 16, 1))  # pylint: disable=protected-access
  good = augmentation.score(config, extra[0], extra[1], seed=0)
  assert good["num_real"] == 100 and good["num_synthetic"] == 400
  assert 0.6 < good["real"] < good["real_plus_synthetic"]  # 100 real digits, then 500.
  assert good["synthetic"] > good["real"]                    # 400 real digits with the right labels.
  shuffled = np.random.default_rng(0).permutation(extra[1])
  bad = augmentation.score(config, extra[0], shuffled, seed=0)
  assert bad["real"] == good["real"]  # The real arm does not depend on the synthetic images.
  assert bad["synthetic"] < 0.25 and bad["real_plus_synthetic"] < good["real_plus_synthetic"] - 0.1


@pytest.mark.parametrize("overrides,message", [
    ({"augmentation.test_split": ""}, "needs config.augmentation.test_split"),
    ({"augmentation.test_split": "train[:64]"}, "would be tested on their own training images"),
    ({"augmentation.synthetic_ratio": 0.0}, "synthetic_ratio must be > 0"),
    ({"augmentation.steps": 0}, "augmentation.steps must be a positive integer"),
    ({"model.num_classes": 0, "evals": ("augmentation",)}, "augmentation needs a class-conditional model"),
])
def test_bad_augmentation_settings_are_rejected_before_training(data_dir, overrides, message):
  config = tiny_config(EXPERIMENT, data_dir)
  for key, value in overrides.items():
    config.update_from_flattened_dict({key: value})
  with pytest.raises(UserError, match=message):
    config_lib.validate(config)
