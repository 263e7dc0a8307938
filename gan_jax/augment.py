"""Differentiable augmentation of the discriminator's inputs, for training with little data.

DiffAugment (Zhao, Liu, Lin, Zhu & Han 2020, "Differentiable Augmentation for Data-Efficient GAN Training"; the
authors' DiffAugment_pytorch.py in mit-han-lab/data-efficient-gans): the same random transformation family is
applied to real and generated images wherever D sees them, in D's and in G's losses (and in R1, whose gradient is
taken through it), and it is differentiable, so G learns through it. Its policy 'color,translation,cutout':

  color        brightness + U(-0.5, 0.5); saturation: the deviation from the per-pixel channel mean times U(0, 2);
               contrast: the deviation from the image mean times U(0.5, 1.5)   (one draw per image each)
  translation  an integer shift per image and axis, uniform in [-r H, r H] with r = 1/8, the uncovered pixels
               filled with `fill`
  cutout       a square of half the image's side (ratio 1/2) at a uniform position (it may cross the border),
               set to `fill`

Images are NHWC in [-1, 1]. The authors' code fills with 0, the middle grey of that range; `fill` offers the
background instead (-1 for digits, whose background is black): config.augment.fill.
"""
import jax
import jax.numpy as jnp

POLICIES = ("color", "translation", "cutout")
KINDS = ("none", "diffaugment")


def _uniform(key, x, low, high):
  return jax.random.uniform(key, (x.shape[0], 1, 1, 1), x.dtype, low, high)


def color(key, x):
  brightness, saturation, contrast = jax.random.split(key, 3)
  x = x + _uniform(brightness, x, -0.5, 0.5)
  mean = jnp.mean(x, axis=-1, keepdims=True)
  x = (x - mean) * _uniform(saturation, x, 0.0, 2.0) + mean
  mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
  return (x - mean) * _uniform(contrast, x, 0.5, 1.5) + mean


def translation(key, x, ratio: float = 0.125, fill: float = 0.0):
  """Each image shifted by integers (dy, dx), each uniform in [-s, s], s = int(ratio * side + 0.5); pixels shifted
  in from outside are `fill` (the authors pad by one pixel and clamp the source index into the padding)."""
  b, h, w, _ = x.shape
  sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
  ky, kx = jax.random.split(key)
  dy = jax.random.randint(ky, (b, 1, 1), -sy, sy + 1)
  dx = jax.random.randint(kx, (b, 1, 1), -sx, sx + 1)
  rows = jnp.arange(h)[None, :, None] - dy          # Source row of each output pixel: [B, H, 1].
  cols = jnp.arange(w)[None, None, :] - dx          # [B, 1, W]
  inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
  batch = jnp.arange(b)[:, None, None]
  moved = x[batch, jnp.clip(rows, 0, h - 1), jnp.clip(cols, 0, w - 1)]
  return jnp.where(inside[..., None], moved, jnp.asarray(fill, x.dtype))


def cutout(key, x, ratio: float = 0.5, fill: float = 0.0):
  """A (ratio * H) x (ratio * W) square per image, its centre uniform over [0, H + (1 - size mod 2)) (the authors'
  offsets, so it may hang over the border), set to `fill`."""
  b, h, w, _ = x.shape
  ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
  ky, kx = jax.random.split(key)
  oy = jax.random.randint(ky, (b, 1, 1), 0, h + (1 - ch % 2))
  ox = jax.random.randint(kx, (b, 1, 1), 0, w + (1 - cw % 2))
  rows = jnp.arange(h)[None, :, None] - (oy - ch // 2)
  cols = jnp.arange(w)[None, None, :] - (ox - cw // 2)
  cut = (rows >= 0) & (rows < ch) & (cols >= 0) & (cols < cw)
  return jnp.where(cut[..., None], jnp.asarray(fill, x.dtype), x)


def diff_augment(key, x, policy=POLICIES, fill: float = 0.0):
  """DiffAugment of images x [B, H, W, C] with the transforms of `policy`, in its order, each drawn per image."""
  for name, k in zip(policy, jax.random.split(key, len(policy))):
    if name == "color":
      x = color(k, x)
    elif name == "translation":
      x = translation(k, x, fill=fill)
    elif name == "cutout":
      x = cutout(k, x, fill=fill)
    else:
      raise ValueError(f"unknown DiffAugment transform {name!r}")
  return x


def check(config) -> None:
  """Raises UserError for a bad config.augment."""
  from gan_jax.errors import UserError  # pylint: disable=g-import-not-at-top
  spec = config.augment
  if spec.kind not in KINDS:
    raise UserError(f"unknown config.augment.kind {spec.kind!r}; allowed: {', '.join(KINDS)}")
  policy = [p for p in spec.policy.split(",") if p]
  bad = [p for p in policy if p not in POLICIES]
  if bad or not policy:
    raise UserError(f"config.augment.policy must be a comma-separated list of {', '.join(POLICIES)}, got "
                    f"{spec.policy!r}")
  if isinstance(spec.fill, bool) or not isinstance(spec.fill, (int, float)) or not -1.0 <= spec.fill <= 1.0:
    raise UserError(f"config.augment.fill must be a number in [-1, 1], got {spec.fill!r}")


def make(config):
  """augment(key, images) of config.augment, or None for kind 'none'."""
  spec = config.augment
  if spec.kind == "none":
    return None
  policy = tuple(p for p in spec.policy.split(",") if p)
  return lambda key, x: diff_augment(key, x, policy, float(spec.fill))
