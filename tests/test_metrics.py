"""Mode coverage (PacGAN, Table 1) on constructed point sets."""
import numpy as np

from gan_jax.data.mixtures import MIXTURES
from gan_jax.metrics import mode_coverage

MODES, SIGMA = MIXTURES["ring8"]


def test_perfect_generator_covers_all_modes_uniformly():
  rng = np.random.default_rng(0)
  points = np.repeat(MODES, 100, axis=0) + 0.5 * SIGMA * rng.standard_normal((800, 2))
  result = mode_coverage(points, MODES, SIGMA)
  assert result == {"modes_covered": 8, "high_quality_pct": 100.0, "reverse_kl": 0.0}


def test_collapsed_generator():
  points = np.tile(MODES[3], (50, 1))
  result = mode_coverage(points, MODES, SIGMA)
  assert result["modes_covered"] == 1 and result["high_quality_pct"] == 100.0
  np.testing.assert_allclose(result["reverse_kl"], np.log(8))  # KL(point mass || uniform over 8) = log 8.


def test_three_sigma_threshold_and_skew():
  direction = MODES[0] / np.linalg.norm(MODES[0])
  near, far = MODES[0] + 2.9 * SIGMA * direction, MODES[0] + 3.1 * SIGMA * direction
  points = np.stack([near, far, MODES[1], MODES[1], MODES[1]])
  result = mode_coverage(points, MODES, SIGMA)
  assert result["modes_covered"] == 2 and result["high_quality_pct"] == 80.0
  q = np.array([0.25, 0.75])  # High-quality points over modes 0 and 1.
  np.testing.assert_allclose(result["reverse_kl"], np.sum(q * np.log(q * 8)))


def test_no_high_quality_points():
  result = mode_coverage(np.full((10, 2), 30.0), MODES, SIGMA)
  assert result["modes_covered"] == 0 and result["high_quality_pct"] == 0.0 and np.isnan(result["reverse_kl"])
