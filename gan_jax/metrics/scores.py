"""Sample-quality scores of image GANs, computed on features of an extractor, exactly as the field does.

Each function is cited next to its code. Inputs are numpy arrays: features [N, D] (Inception pool features or a
domain classifier's penultimate layer) and class probabilities [N, K]; a score is only comparable with
another computed under the same extractor and sample counts.
"""
import numpy as np
from scipy import linalg


def feature_statistics(features):
  """(mu [D], sigma [D, D]): the Gaussian fit of FID, as pytorch-fid (np.mean, np.cov with rowvar=False)."""
  features = np.asarray(features, np.float64)
  return np.mean(features, axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps=1e-6) -> float:
  """Fréchet distance of N(mu1, sigma1) and N(mu2, sigma2) (FID, Heusel et al. 2017, Eq. 6):
  ||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2)).

  Step for step pytorch-fid's `calculate_frechet_distance`: when the square root of the product is not
  finite, retry with `eps` added to both diagonals; a complex root whose diagonal has an imaginary part above
  1e-3 is an error; otherwise its real part is used.
  """
  mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
  sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
  if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
    raise ValueError(f"statistics of different sizes: mu {mu1.shape} vs {mu2.shape}, "
                     f"sigma {sigma1.shape} vs {sigma2.shape}")
  diff = mu1 - mu2
  covmean = linalg.sqrtm(sigma1.dot(sigma2))
  if not np.isfinite(covmean).all():
    offset = np.eye(sigma1.shape[0]) * eps
    covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
  if np.iscomplexobj(covmean):
    if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
      raise ValueError(f"imaginary component {np.max(np.abs(covmean.imag))} in the matrix square root")
    covmean = covmean.real
  return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fid(real_features, fake_features) -> float:
  return frechet_distance(*feature_statistics(real_features), *feature_statistics(fake_features))


def kernel_inception_distance(real_features, fake_features, num_subsets=100, max_subset_size=1000, seed=0):
  """(mean, std) of KID (Bińkowski et al. 2018): the unbiased MMD^2 with the cubic polynomial kernel
  k(x, y) = (x.y / d + 1)^3, over `num_subsets` random subsets of at most `max_subset_size` of each set,
  as StyleGAN2-ADA's metrics/kernel_inception_distance.py and clean-fid compute it.
  """
  real, fake = np.asarray(real_features, np.float64), np.asarray(fake_features, np.float64)
  d = real.shape[1]
  m = min(len(real), len(fake), max_subset_size)
  if m < 2:
    raise ValueError("KID needs at least 2 samples in each set")
  rng = np.random.default_rng(seed)
  estimates = []
  for _ in range(num_subsets):
    x = fake[rng.choice(len(fake), m, replace=False)]
    y = real[rng.choice(len(real), m, replace=False)]
    a = (x @ x.T / d + 1) ** 3 + (y @ y.T / d + 1) ** 3
    b = (x @ y.T / d + 1) ** 3
    estimates.append((a.sum() - np.diag(a).sum()) / (m - 1) - b.sum() * 2 / m)
  estimates = np.array(estimates) / m
  return float(estimates.mean()), float(estimates.std())


def inception_score(probs, num_splits=10):
  """(mean, std) over `num_splits` splits of exp(E_x KL(p(y|x) || p(y))) (Salimans et al. 2016, Sec. 4),
  with p(y) the split's marginal, as the authors' code and pytorch/TF ports compute it."""
  probs = np.asarray(probs, np.float64)
  scores = []
  for part in np.array_split(probs, num_splits):
    marginal = part.mean(axis=0, keepdims=True)
    kl = np.sum(part * (_safe_log(part) - _safe_log(marginal)), axis=1)
    scores.append(np.exp(kl.mean()))
  return float(np.mean(scores)), float(np.std(scores))


def _safe_log(p):
  return np.log(np.where(p > 0, p, 1.0))  # 0 log 0 = 0.


def _distance_blocks(a, b, max_entries=1 << 23):
  """(start row, Euclidean distances [rows, len(b)] float64) over blocks of a's rows, each of at most
  `max_entries` distances (64 MiB): memory stays bounded however many features there are (50,000 reals at
  once would be 20 GB)."""
  b_sq = np.sum(b * b, axis=1)
  rows = max(1, max_entries // max(len(b), 1))
  for i in range(0, len(a), rows):
    block = a[i:i + rows]
    sq = np.sum(block * block, axis=1)[:, None] - 2.0 * block @ b.T + b_sq[None, :]
    yield i, np.sqrt(np.maximum(sq, 0.0))


def _knn_radii(features, k):
  """Distance of each point to its k-th nearest neighbour other than itself."""
  # Index 0 of each sorted row is the point itself (distance 0). The copy lets each block go: a column of the
  # partitioned block is a view that would keep all of it alive (20 GB for 50,000 points).
  return np.concatenate([np.partition(d, k, axis=1)[:, k].copy() for _, d in _distance_blocks(features, features)])


def _within(a, b, b_radii):
  """[len(a)] bool: whether each point of `a` lies in some ball around the points of `b` (radii `b_radii`)."""
  return np.concatenate([np.any(d <= b_radii[None, :], axis=1) for _, d in _distance_blocks(a, b)])


def precision_recall(real_features, fake_features, k=3):
  """(precision, recall) of Kynkäänniemi et al. 2019 (Sec. 2): each set's manifold is the union of balls
  around its points with radius the distance to the k-th nearest neighbour (k = 3); precision is the
  fraction of fakes inside the real manifold, recall the fraction of reals inside the fake manifold."""
  real, fake = np.asarray(real_features, np.float64), np.asarray(fake_features, np.float64)
  real_radii, fake_radii = _knn_radii(real, k), _knn_radii(fake, k)
  precision = np.mean(_within(fake, real, real_radii))
  recall = np.mean(_within(real, fake, fake_radii))
  return float(precision), float(recall)


def density_coverage(real_features, fake_features, k=5):
  """(density, coverage) of Naeem et al. 2020 (Eq. 3-4, k = 5 as recommended there): with balls around the
  reals of radius the distance to their k-th nearest real neighbour, density is the mean number of balls a
  fake falls in, divided by k; coverage is the fraction of reals whose ball holds at least one fake."""
  real, fake = np.asarray(real_features, np.float64), np.asarray(fake_features, np.float64)
  real_radii = _knn_radii(real, k)
  balls_hit, covered = 0, []
  for i, d in _distance_blocks(real, fake):                               # [rows of real, N_fake]
    inside = d < real_radii[i:i + len(d), None]
    balls_hit += int(inside.sum())
    covered.append(inside.any(axis=1))
  return float(balls_hit / (k * len(fake))), float(np.mean(np.concatenate(covered)))


def class_coverage(probs):
  """How many classes a domain classifier finds among the samples, and how evenly: classes_covered (argmax
  counts > 0), reverse_kl of the predicted-class histogram from uniform (0 when even; log K when all samples
  fall in one class), and the largest class fraction. A mode-collapse signal for labelled image data."""
  probs = np.asarray(probs)
  num_classes = probs.shape[1]
  counts = np.bincount(probs.argmax(axis=1), minlength=num_classes)
  q = counts / counts.sum()
  return {"classes_covered": int((counts > 0).sum()),
          "reverse_kl": float(np.sum(q[q > 0] * np.log(q[q > 0] * num_classes))),
          "max_class_fraction": float(q.max())}


def class_accuracy(probs, labels):
  """Class-conditional generation (the measure of AC-GAN, Odena et al. 2017, Sec. 4.1, and of the projection
  discriminator's paper, Miyato & Koyama 2018, Sec. 5.1): the fraction of samples a domain classifier assigns
  to the class they were generated for, overall (`accuracy`) and per requested class (`accuracy_<k>`)."""
  predicted, labels = np.asarray(probs).argmax(axis=1), np.asarray(labels)
  result = {"accuracy": float(np.mean(predicted == labels))}
  for k in np.unique(labels):
    result[f"accuracy_{int(k)}"] = float(np.mean(predicted[labels == k] == k))
  return result


def intra_class_fid(real_features, real_labels, fake_features, fake_labels) -> dict:
  """Intra-class FID (Miyato & Koyama 2018, Sec. 5.1; BigGAN's and PyTorch-StudioGAN's intra-FID): the FID of
  each class's generated samples (by the label they were generated for) against the real examples of that class,
  and `fid` their mean over the classes scored, `worst` the largest and `worst_class` its class, `classes` how
  many were scored: those with at least 2 real and 2 generated samples (a small reference may lack some; an
  evaluation never stops a run; NaN when none has). A model that makes good images but ignores its labels scores
  well in FID and badly here. Each per-class FID is taken on fewer samples than the whole set's, so its bias is
  larger (Chong & Forsyth 2020): compare at equal counts."""
  real_labels, fake_labels = np.asarray(real_labels), np.asarray(fake_labels)
  classes, per_class = [], []
  for k in np.unique(real_labels):
    real_k, fake_k = real_features[real_labels == k], fake_features[fake_labels == k]
    if min(len(real_k), len(fake_k)) >= 2:
      classes.append(int(k))
      per_class.append(fid(real_k, fake_k))
  if not per_class:
    return {"fid": float("nan"), "worst": float("nan"), "worst_class": -1, "classes": 0}
  worst = int(np.argmax(per_class))
  return {"fid": float(np.mean(per_class)), "worst": float(per_class[worst]), "worst_class": classes[worst],
          "classes": len(classes)}


def code_purity(probs, codes):
  """InfoGAN's categorical code against the true classes, found without labels (Chen et al. 2016, Sec. 7.1):
  each code value is mapped to the class the domain classifier predicts most often for its samples; `purity` is
  the fraction of samples whose predicted class is their code's class, `classes_matched` the number of
  distinct classes the codes map to (a one-to-one code has as many as it has values), and `code_<c>_class`
  each code's class."""
  predicted, codes = np.asarray(probs).argmax(axis=1), np.asarray(codes)
  num_classes = np.asarray(probs).shape[1]
  majority, agree = {}, 0
  for c in np.unique(codes):
    counts = np.bincount(predicted[codes == c], minlength=num_classes)
    majority[int(c)] = int(counts.argmax())
    agree += int(counts.max())
  return {"purity": agree / len(codes), "classes_matched": len(set(majority.values())),
          **{f"code_{c}_class": k for c, k in majority.items()}}


def _mean_pairwise(a, same):
  """Mean Euclidean distance over the pairs i < j of the rows of `a` for which same[i, j] holds."""
  distances = np.concatenate([d for _, d in _distance_blocks(a, a)])
  upper = np.triu(np.ones(same.shape, bool), k=1) & same
  return float(distances[upper].mean()) if upper.any() else float("nan")


def caption_diversity(features, groups, real_features=None, real_groups=None) -> dict:
  """Diversity for a fixed condition, as BicycleGAN (Zhu et al. 2017, Sec. 6.1) and MSGAN (Mao et al. 2019) measure
  it: the mean distance between pairs of samples generated for the same input under different latents; here in an
  extractor's feature space (LPIPS needs VGG weights, not available offline). `within` is that mean over the pairs
  sharing a group (features [N, D], groups [N]: the caption each sample was generated for), `across` the mean over
  pairs of different groups (the scale: what different captions give). With real examples grouped the same way
  (captioned_shapes renders each caption's scene anew), `real_within` is the data's own spread for a fixed caption
  (`real_across` its spread over different captions) and `ratio` = within / real_within: near 0, G ignores z
  (conditional mode collapse, the text-to-image GANs' common failure); near 1, it varies as much as the data."""
  features, groups = np.asarray(features, np.float64), np.asarray(groups)
  same = groups[:, None] == groups[None, :]
  result = {"within": _mean_pairwise(features, same), "across": _mean_pairwise(features, ~same)}
  if real_features is not None:
    real_groups = np.asarray(real_groups)
    real, real_same = np.asarray(real_features, np.float64), real_groups[:, None] == real_groups[None, :]
    result["real_within"], result["real_across"] = _mean_pairwise(real, real_same), _mean_pairwise(real, ~real_same)
    result["ratio"] = result["within"] / result["real_within"]
  return result


def reconstruction_errors(samples, targets) -> dict:
  """Paired translation against the true targets (pix2pix, Isola et al. 2017, and the image-quality measures its
  successors report): mean absolute error and PSNR on [0, 255] pixels, and SSIM (Wang et al. 2004, Eq. 13; a
  7x7 uniform window, K1 0.01, K2 0.03, as scikit-image's default), each the mean over images (SSIM also over
  channels). samples and targets: float [N, H, W, C] in [-1, 1]."""
  from skimage.metrics import structural_similarity  # pylint: disable=g-import-not-at-top
  x = (np.clip(np.asarray(samples, np.float64), -1, 1) + 1.0) * 127.5
  y = (np.clip(np.asarray(targets, np.float64), -1, 1) + 1.0) * 127.5
  mse = np.mean(np.square(x - y), axis=(1, 2, 3))
  psnr = 10.0 * np.log10(255.0 ** 2 / np.maximum(mse, 1e-10))
  ssim = [np.mean([structural_similarity(a[..., c], b[..., c], data_range=255.0) for c in range(a.shape[-1])])
          for a, b in zip(x, y)]
  return {"mae": float(np.mean(np.abs(x - y))), "psnr": float(np.mean(psnr)), "ssim": float(np.mean(ssim))}
