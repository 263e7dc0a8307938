"""The image-metric formulas against closed forms, independent references and their defining properties."""
import sys
import types

import numpy as np
import pytest

from gan_jax.metrics import frechet_distance, scores


def _random_stats(rng, d, rank=None):
  a = rng.standard_normal((d, rank or d))
  return rng.standard_normal(d), a @ a.T / d


def _eig_reference(mu1, s1, mu2, s2):
  # Tr((s1 s2)^(1/2)) = sum of the square roots of the eigenvalues of s1 s2 (real, >= 0 for PSD s1, s2).
  eig = np.clip(np.linalg.eigvals(s1 @ s2).real, 0, None)
  return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sum(np.sqrt(eig)))


def test_frechet_distance_of_identical_statistics_is_zero():
  mu, sigma = _random_stats(np.random.default_rng(0), 16)
  assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-8


def test_frechet_distance_closed_forms():
  # Equal covariances: only the means count. Diagonal covariances: sum (sqrt(a) - sqrt(b))^2.
  mu1, mu2 = np.array([0.0, 1.0]), np.array([3.0, -1.0])
  assert frechet_distance(mu1, np.eye(2), mu2, np.eye(2)) == pytest.approx(13.0, rel=1e-12)
  a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
  expected = np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
  assert frechet_distance(np.zeros(3), np.diag(a), np.zeros(3), np.diag(b)) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("rank", [None, 5], ids=["full_rank", "rank_deficient"])
def test_frechet_distance_matches_an_eigenvalue_reference(rank):
  rng = np.random.default_rng(1)
  (mu1, s1), (mu2, s2) = _random_stats(rng, 32, rank), _random_stats(rng, 32, rank)
  assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(_eig_reference(mu1, s1, mu2, s2), rel=1e-6)


@pytest.mark.parametrize("rank", [None, 5], ids=["full_rank", "rank_deficient"])
def test_frechet_distance_agrees_with_pytorch_fid(rank):
  # Optional: pip install torch==2.13.0 && pip install --no-deps torchvision==0.28.0 pytorch-fid==0.3.0. PyPI's
  # torchvision is a CUDA build whose operator registrations fail beside the CPU torch; pytorch-fid needs none.
  sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))
  fid_score = pytest.importorskip("pytorch_fid.fid_score")
  rng = np.random.default_rng(2)
  (mu1, s1), (mu2, s2) = _random_stats(rng, 64, rank), _random_stats(rng, 64, rank)
  expected = fid_score.calculate_frechet_distance(mu1, s1, mu2, s2)
  assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-6)


def test_kid_is_unbiased_and_separates_distributions():
  rng = np.random.default_rng(3)
  # Two independent samples of one distribution: the unbiased estimate averages to 0 (up to its noise).
  estimates = [scores.kernel_inception_distance(rng.standard_normal((200, 8)), rng.standard_normal((200, 8)),
                                                num_subsets=10, seed=i)[0] for i in range(20)]
  spread = np.std(estimates) / np.sqrt(len(estimates))
  assert abs(np.mean(estimates)) < 3 * spread
  shifted = scores.kernel_inception_distance(rng.standard_normal((200, 8)), rng.standard_normal((200, 8)) + 0.5,
                                             num_subsets=10)[0]
  assert shifted > 20 * spread


def test_kid_single_subset_equals_the_formula():
  rng = np.random.default_rng(4)
  x, y = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
  k = lambda a, b: (a @ b.T / 3 + 1) ** 3
  m = 5
  mmd = ((k(x, x).sum() - np.trace(k(x, x))) / (m * (m - 1)) + (k(y, y).sum() - np.trace(k(y, y))) / (m * (m - 1))
         - 2 * k(x, y).mean())
  # With m = N the subsets are permutations of the sets, which leave the estimate unchanged.
  assert scores.kernel_inception_distance(y, x, num_subsets=1)[0] == pytest.approx(mmd, rel=1e-10)


def test_inception_score_of_uniform_and_perfect_classifiers():
  assert scores.inception_score(np.full((100, 10), 0.1))[0] == pytest.approx(1.0)
  perfect = np.eye(10)[np.arange(1000) % 10]       # Confident and balanced in every split.
  mean, std = scores.inception_score(perfect)
  assert mean == pytest.approx(10.0) and std == pytest.approx(0.0, abs=1e-9)


def test_precision_recall_and_density_coverage():
  rng = np.random.default_rng(5)
  real = rng.standard_normal((300, 4))
  assert scores.precision_recall(real, real) == (1.0, 1.0)
  # A generator collapsed onto one real sample: precise, with no recall or coverage to speak of.
  collapsed = real[0] + 1e-3 * rng.standard_normal((10, 4))
  precision, recall = scores.precision_recall(real, collapsed)
  assert precision == 1.0 and recall < 0.02
  density, coverage = scores.density_coverage(real, collapsed)
  assert coverage < 0.05  # Only the few reals whose balls hold real[0].
  # Far away fakes: nothing is precise or covered.
  assert scores.precision_recall(real, real + 100.0) == (0.0, 0.0)
  assert scores.density_coverage(real, real + 100.0) == (0.0, 0.0)
  # Density of a fresh sample of the same distribution is about 1 (Naeem et al. 2020, Sec. 3.2).
  density, coverage = scores.density_coverage(real, rng.standard_normal((300, 4)))
  assert 0.7 < density < 1.3 and coverage > 0.8


def test_manifold_metrics_in_blocks_equal_the_full_distance_matrix(monkeypatch):
  # The distances are taken a block of rows at a time (50,000 reference features at once were 20 GB and the
  # kernel killed a run); any block size gives the definition's numbers, computed here from whole matrices.
  rng = np.random.default_rng(0)
  real, fake = rng.standard_normal((70, 3)), 1.2 * rng.standard_normal((50, 3))
  distances = lambda a, b: np.sqrt(((a[:, None] - b[None]) ** 2).sum(-1))
  radii = lambda x, k: np.sort(distances(x, x), axis=1)[:, k]
  precision = np.mean((distances(fake, real) <= radii(real, 3)[None]).any(axis=1))
  recall = np.mean((distances(real, fake) <= radii(fake, 3)[None]).any(axis=1))
  inside = distances(real, fake) < radii(real, 5)[:, None]
  expected = ((precision, recall), (inside.sum() / (5 * len(fake)), inside.any(axis=1).mean()))
  blocks = scores._distance_blocks  # pylint: disable=protected-access
  for rows in (1, 7, 1000):
    monkeypatch.setattr(scores, "_distance_blocks", lambda a, b, rows=rows: blocks(a, b, max_entries=rows * len(b)))
    got = (scores.precision_recall(real, fake), scores.density_coverage(real, fake))
    np.testing.assert_allclose(np.array(got), np.array(expected), rtol=1e-12)
  assert 0.0 < precision < 1.0 and 0.0 < recall < 1.0 and 0.0 < inside.mean() < 1.0
  # What the blocks leave behind owns its memory: no view keeps a block of distances alive.
  seen = []
  monkeypatch.setattr(np, "concatenate", lambda parts, *a, original=np.concatenate, **k: seen.extend(parts) or
                      original(parts, *a, **k))
  scores._knn_radii(real, 3)  # pylint: disable=protected-access
  assert seen and all(part.base is None for part in seen)


def test_caption_diversity_on_hand_built_features():
  # Two captions, two samples each, on a line: within-caption pairs |0-3| and |10-14|, across the other four.
  fake, groups = np.array([[0.0], [3.0], [10.0], [14.0]]), np.array([0, 0, 1, 1])
  real = np.array([[0.0], [1.0], [10.0], [12.0]])
  result = scores.caption_diversity(fake, groups, real, groups)
  assert result["within"] == pytest.approx(3.5) and result["across"] == pytest.approx((10 + 14 + 7 + 11) / 4)
  assert result["real_within"] == pytest.approx(1.5) and result["real_across"] == pytest.approx((10 + 12 + 9 + 11) / 4)
  assert result["ratio"] == pytest.approx(3.5 / 1.5)
  # A generator that ignores z: every caption's samples identical, whatever their number and dimension.
  rng = np.random.default_rng(0)
  collapsed = np.repeat(rng.standard_normal((5, 16)), 7, axis=0)
  result = scores.caption_diversity(collapsed, np.repeat(np.arange(5), 7))
  assert result["within"] == pytest.approx(0.0, abs=1e-6) and result["across"] > 1 and "ratio" not in result
  # Euclidean distances of the full matrix, pair by pair.
  points, labels = rng.standard_normal((9, 4)), np.array([0, 1, 2] * 3)
  pairs = [(i, j) for i in range(9) for j in range(i + 1, 9)]
  same = [np.linalg.norm(points[i] - points[j]) for i, j in pairs if labels[i] == labels[j]]
  apart = [np.linalg.norm(points[i] - points[j]) for i, j in pairs if labels[i] != labels[j]]
  result = scores.caption_diversity(points, labels)
  assert result["within"] == pytest.approx(np.mean(same)) and result["across"] == pytest.approx(np.mean(apart))


def test_class_coverage():
  even = np.eye(10)[np.arange(100) % 10]
  assert scores.class_coverage(even) == {"classes_covered": 10, "reverse_kl": 0.0, "max_class_fraction": 0.1}
  one = np.eye(10)[np.zeros(50, int)]
  result = scores.class_coverage(one)
  assert result["classes_covered"] == 1 and result["reverse_kl"] == pytest.approx(np.log(10))
