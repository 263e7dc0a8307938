"""Mode coverage of a Gaussian mixture (PacGAN, Lin et al. 2018, Table 1, and the authors' MetricLogger;
after VEEGAN, Srivastava et al. 2017): from N generated points (2,500 in the paper),

- a point is high quality when it lies within 3 sigma of its nearest mode;
- a mode is covered when at least one high-quality point's nearest mode is it;
- reverse KL: KL(q || uniform) for q the distribution of high-quality points over modes (0 when uniform).
"""
import numpy as np


def mode_coverage(points, modes, sigma) -> dict:
  """points [N, D], modes [K, D], isotropic sigma -> {modes_covered, high_quality_pct, reverse_kl}.

  reverse_kl is NaN when no point is of high quality (q is then undefined).
  """
  points, modes = np.asarray(points, np.float64), np.asarray(modes, np.float64)
  distances = np.linalg.norm(points[:, None, :] - modes[None, :, :], axis=-1)  # [N, K]
  nearest = distances.argmin(axis=1)
  high_quality = distances[np.arange(len(points)), nearest] < 3.0 * sigma
  counts = np.bincount(nearest[high_quality], minlength=len(modes))              # [K]
  if counts.sum() == 0:
    reverse_kl = float("nan")
  else:
    q = counts / counts.sum()
    reverse_kl = float(np.sum(q[q > 0] * np.log(q[q > 0] * len(modes))))
  return {"modes_covered": int((counts > 0).sum()), "high_quality_pct": 100.0 * float(high_quality.mean()),
          "reverse_kl": reverse_kl}
