"""Offline TFDS builders for the 2D Gaussian mixtures of the mode-collapse benchmark (PacGAN, Lin et al. 2018,
Sec. 4.1, after VEEGAN): `ring8`, 8 Gaussians on the unit circle, sigma 0.01; `grid25`, 25 Gaussians at
{-4, -2, 0, 2, 4}^2, sigma 0.05. 100,000 equally weighted points each (PacGAN's num_sample), feature `points`
float32 [2] and `label` the mode index. Synthetic by definition: generated locally from a fixed seed by
mixture_points.py, which holds the modes, sigmas and points without TensorFlow.
"""
import numpy as np
import tensorflow_datasets as tfds

from gan_jax.data import mixture_points
from gan_jax.data.mixture_points import MIXTURES, NUM_POINTS, grid25_modes, ring8_modes  # noqa: F401


class _MixtureBuilder(tfds.core.GeneratorBasedBuilder):
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "100,000 points from a fixed seed."}
  _SEED = mixture_points.SEED

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
    points, labels = mixture_points.sample(self.name, NUM_POINTS, self._SEED)
    for index, (point, label) in enumerate(zip(points, labels)):
      yield index, {"points": point, "label": int(label)}


class Ring8(_MixtureBuilder):
  """8 Gaussians on the unit circle, sigma 0.01."""


class Grid25(_MixtureBuilder):
  """25 Gaussians on a 5x5 grid with spacing 2, sigma 0.05."""
