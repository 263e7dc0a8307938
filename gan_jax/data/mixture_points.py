"""The 2D Gaussian mixtures of the mode-collapse benchmark (PacGAN, Lin et al. 2018, Sec. 4.1, after VEEGAN) as
numpy: their modes, sigma and points, without TensorFlow (mixtures.py's TFDS builders and the GPU check use them).
"""
import itertools

import numpy as np

NUM_POINTS = 100_000  # PacGAN's num_sample: the size of each dataset.
SEED = 0              # The datasets' fixed seed.


def ring8_modes():
  angles = 2 * np.pi * np.arange(8) / 8
  return np.stack([np.cos(angles), np.sin(angles)], axis=1)  # [8, 2]


def grid25_modes():
  return np.array(list(itertools.product(range(-4, 5, 2), repeat=2)), np.float64)  # [25, 2]


# name -> (modes [K, 2], sigma): what the mode-coverage metric needs to know about each mixture.
MIXTURES = {"ring8": (ring8_modes(), 0.01), "grid25": (grid25_modes(), 0.05)}


def sample(name: str, num: int = NUM_POINTS, seed: int = SEED):
  """(points float32 [num, 2], labels int64 [num]): `num` equally weighted draws from mixture `name`, the mode
  index of each in `labels`. With the defaults, the points of the TFDS dataset of that name, in its order."""
  modes, sigma = MIXTURES[name]
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, len(modes), num)
  points = (modes[labels] + sigma * rng.standard_normal((num, 2))).astype(np.float32)
  return points, labels
