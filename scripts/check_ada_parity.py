"""Checks gan_jax's ADA pipeline (gan_jax/augment.py) against the authors' PyTorch AugmentPipe at fixed parameters.

The reference is NVlabs/stylegan2-ada-pytorch's training/augment.py, run by torch on CPU with its `debug_percentile`
(every transform of the 'bgc' pipeline applied with the parameter at that percentile of its distribution). gan_jax
builds the same inverse geometric map and colour matrix from those parameters and runs geometric() and
apply_color(), so the check covers the matrices' composition, the padding, the sym6 resampling and the colour
algebra; the random draws differ by construction (torch's generator and JAX's).

  pip install torch==2.13.0   # optional, never a dependency of gan_jax
  git clone https://github.com/NVlabs/stylegan2-ada-pytorch
  python scripts/check_ada_parity.py --authors=stylegan2-ada-pytorch

Prints one JSON line per case (percentile, channels, size) with the largest absolute difference and how much the
pipeline changed the images, then one with the worst; exits 1 above 1e-4.
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

BGC = dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1, brightness=1, contrast=1, lumaflip=1,
           hue=1, saturation=1)


def ours(images, percentile: float):
  """gan_jax's pipeline with every 'bgc' parameter at `percentile` (AugmentPipe's debug_percentile)."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from scipy.special import erfinv  # pylint: disable=g-import-not-at-top
  from gan_jax import augment as A  # pylint: disable=g-import-not-at-top
  b, h, w, c = images.shape
  full = lambda v: jnp.full(b, v, jnp.float32)
  e, uniform = float(erfinv(percentile * 2 - 1)), percentile * 2 - 1
  g = A.scale2d(full(1 - 2 * np.floor(percentile * 2)), 1) @ A.rotate2d(full(np.pi / 2 * np.floor(percentile * 4)))
  shift = np.round(uniform * 0.125 * np.asarray([w, h]))
  g = g @ A.translate2d(full(-shift[0]), full(-shift[1]))
  s = 2 ** (e * 0.2)
  g = g @ A.scale2d(full(1 / s), full(1 / s)) @ A.rotate2d(full(uniform * np.pi))   # Pre-rotation.
  g = g @ A.scale2d(full(1 / s), full(s))                                          # (Post-rotation: 0 in debug.)
  g = g @ A.translate2d(full(-e * 0.125 * w), full(-e * 0.125 * h))
  x = A.geometric(jnp.asarray(images), g)
  hue_sat = (full(uniform * np.pi), full(2 ** e)) if c > 1 else ()
  m = A.color_transform(full(e * 0.2), full(2 ** (e * 0.5)), full(np.floor(percentile * 2)), *hue_sat)
  return np.asarray(A.apply_color(x, m))


def theirs(augment_module, images, percentile: float):
  import torch  # pylint: disable=g-import-not-at-top
  pipe = augment_module.AugmentPipe(**BGC)
  pipe.p.copy_(torch.tensor(1.0))
  out = pipe(torch.tensor(images).permute(0, 3, 1, 2), debug_percentile=percentile)
  return out.permute(0, 2, 3, 1).numpy()


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--authors", required=True, help="a checkout of NVlabs/stylegan2-ada-pytorch")
  args = parser.parse_args(argv)
  if not os.path.isfile(os.path.join(args.authors, "training", "augment.py")):
    sys.exit(f"error: {args.authors} has no training/augment.py (a checkout of NVlabs/stylegan2-ada-pytorch)")
  sys.path.insert(0, os.path.abspath(args.authors))
  from training import augment as their_augment  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  worst = 0.0
  for size in (16, 32):
    for channels in (1, 3):
      images = rng.uniform(-1, 1, (4, size, size, channels)).astype(np.float32)
      for percentile in (0.1, 0.3, 0.55, 0.7, 0.9):
        reference = theirs(their_augment, images, percentile)
        diff = float(np.max(np.abs(ours(images, percentile) - reference)))
        worst = max(worst, diff)
        print(json.dumps(dict(size=size, channels=channels, percentile=percentile, max_abs_diff=diff,
                              max_abs_change=float(np.max(np.abs(reference - images))))))
  print(json.dumps(dict(worst_max_abs_diff=worst)))
  return 0 if worst <= 1e-4 else 1


if __name__ == "__main__":
  sys.exit(main())
