"""Offline TFDS builders for the 2D Gaussian mixtures of the mode-collapse benchmark (PacGAN, Lin et al. 2018,
Sec. 4.1, after VEEGAN): `ring8`, 8 Gaussians on the unit circle, sigma 0.01; `grid25`, 25 Gaussians at
{-4, -2, 0, 2, 4}^2, sigma 0.05. 100,000 equally weighted points each (PacGAN's num_sample), feature `points`
float32 [2] and `label` the mode index. Synthetic by definition: generated locally from a fixed seed.
"""
import itertools

import numpy as np
import tensorflow_datasets as tfds

NUM_POINTS = 100_000


def ring8_modes():
  angles = 2 * np.pi * np.arange(8) / 8
  return np.stack([np.cos(angles), np.sin(angles)], axis=1)  # [8, 2]


def grid25_modes():
  return np.array(list(itertools.product(range(-4, 5, 2), repeat=2)), np.float64)  # [25, 2]


# name -> (modes [K, 2], sigma): what the mode-coverage metric needs to know about each mixture.
MIXTURES = {"ring8": (ring8_modes(), 0.01), "grid25": (grid25_modes(), 0.05)}


class _MixtureBuilder(tfds.core.GeneratorBasedBuilder):
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "100,000 points from a fixed seed."}
  _SEED = 0

  def _info(self):
    modes, _ = MIXTURES[self.name]
    return self.dataset_info_from_configs(
        description=__doc__,
        features=tfds.features.FeaturesDict({
            "points": tfds.features.Tensor(shape=(2,), dtype=np.float32),
            "label": tfds.features.ClassLabel(num_classes=len(modes)),
        }),
        supervised_keys=("points", "label"),
        citation="Lin, Khetan, Fanti & Oh 2018, PacGAN: The power of two samples in GANs, NeurIPS.",
    )

  def _split_generators(self, dl_manager):
    del dl_manager
    return {"train": self._generate_examples()}

  def _generate_examples(self):
    modes, sigma = MIXTURES[self.name]
    rng = np.random.default_rng(self._SEED)
    labels = rng.integers(0, len(modes), NUM_POINTS)
    points = (modes[labels] + sigma * rng.standard_normal((NUM_POINTS, 2))).astype(np.float32)
    for index, (point, label) in enumerate(zip(points, labels)):
      yield index, {"points": point, "label": int(label)}


class Ring8(_MixtureBuilder):
  """8 Gaussians on the unit circle, sigma 0.01."""


class Grid25(_MixtureBuilder):
  """25 Gaussians on a 5x5 grid with spacing 2, sigma 0.05."""
