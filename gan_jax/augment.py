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

ADA (Karras, Aittala, Hellsten, Laine, Lehtinen & Aila 2020, "Training Generative Adversarial Networks with Limited
Data"; NVlabs/stylegan2-ada-pytorch training/augment.py AugmentPipe, whose parameters these are): each transform
of the pipeline ('bgc': blit, geometric, colour) applied to each image with probability p,

  blit       x-flip; rotation by a multiple of 90 degrees; integer translation, uniform within 1/8 of the size
  geometric  isotropic scaling 2^N(0, 0.2^2); rotation uniform in a full circle (before and after the anisotropic
             scaling, each with probability 1 - sqrt(1 - p), so that one of them happens with probability p);
             anisotropic scaling 2^N(0, 0.2^2); fractional translation N(0, 0.125^2) of the size
  colour     brightness + N(0, 0.2^2); contrast 2^N(0, 0.5^2); luma flip (Householder reflection about the luma
             axis, half the time); hue rotation about the luma axis, uniform in a full circle; saturation
             2^N(0, 1) (hue and saturation skipped for grey images, as the authors' code does)

The blit and geometric transforms compose into one inverse affine map per image, executed as the authors do: the
image reflect-padded, up-sampled 2x with the sym6 wavelet's low-pass filter, sampled bilinearly, filtered and
down-sampled again (geometric). The colour transforms compose into one 4x4 matrix (colour). Every part is
differentiable in the images. How p moves is the objective's (ada_update: every ada_interval steps towards
r_t = E[sign D(x)] = ada_target).
"""

import jax
import jax.numpy as jnp
import numpy as np

POLICIES = ("color", "translation", "cutout")
KINDS = ("none", "diffaugment", "ada", "fixed")
PIPES = {"blit": "b", "geom": "g", "color": "c", "bg": "bg", "bgc": "bgc"}  # The authors' augpipe names we have.
SYM6 = (0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633, 0.4910559419267466,
        0.787641141030194, 0.3379294217276218, -0.07263752278646252, -0.021060292512300564, 0.04472490177066578,
        0.0017677118642428036, -0.007800708325034148)  # augment.py's wavelets['sym6'], an orthogonal low-pass.


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


def consistency_transform(key, x, flip: bool = True, ratio: float = 0.125):
  """T(x) of consistency regularisation (Zhang et al. 2020, Sec. 3: "flipping the image horizontally and
  shifting it by a few pixels"; PyTorch-StudioGAN's src/utils/cr.py, apply_diffaug4cr): each image mirrored with
  probability 1/2 when `flip`, then shifted by integers (dy, dx), each uniform in [-s, s], s = int(ratio * side),
  with the pixels shifted in reflected from inside the image (reflect padding)."""
  b, h, w, _ = x.shape
  flip_key, ky, kx = jax.random.split(key, 3)
  if flip:
    mirrored = jax.random.bernoulli(flip_key, 0.5, (b, 1, 1, 1))
    x = jnp.where(mirrored, x[:, :, ::-1], x)
  sy, sx = int(h * ratio), int(w * ratio)
  dy = jax.random.randint(ky, (b, 1, 1), -sy, sy + 1)
  dx = jax.random.randint(kx, (b, 1, 1), -sx, sx + 1)

  def reflect(i, n):  # Index i in [-(n - 1), 2 (n - 1)] reflected into [0, n), the edge pixel not repeated.
    i = jnp.abs(i)
    return jnp.where(i > n - 1, 2 * (n - 1) - i, i)

  rows = reflect(jnp.arange(h)[None, :, None] + dy, h)   # Source row of each output pixel: [B, H, 1].
  cols = reflect(jnp.arange(w)[None, None, :] + dx, w)   # [B, 1, W]
  return x[jnp.arange(b)[:, None, None], rows, cols]


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


# --- ADA ------------------------------------------------------------------------------------------------------

def _affine(rows):
  """[B, 3, 3] matrices from rows of per-image entries (arrays [B] or numbers; [3, 3] when all are numbers)."""
  shape = jnp.broadcast_shapes(*(jnp.shape(e) for row in rows for e in row))
  return jnp.stack([jnp.stack([jnp.broadcast_to(jnp.asarray(e, jnp.float32), shape) for e in row], -1)
                    for row in rows], -2)


def translate2d(tx, ty):
  return _affine([[1, 0, tx], [0, 1, ty], [0, 0, 1]])


def scale2d(sx, sy):
  return _affine([[sx, 0, 0], [0, sy, 0], [0, 0, 1]])


def rotate2d(theta):
  return _affine([[jnp.cos(theta), -jnp.sin(theta), 0], [jnp.sin(theta), jnp.cos(theta), 0], [0, 0, 1]])


def _chosen(key, shape, p, value, identity):
  """`value` where a uniform draw is below p (per image), else `identity`."""
  return jnp.where(jax.random.uniform(key, shape) < p, value, identity)


def geometric_matrix(key, batch: int, height: int, width: int, p, blit: bool = True, geom: bool = True):
  """The inverse map G_inv [B, 3, 3] (output pixel -> input pixel, in pixel coordinates centred on the image; x
  along the width) of the blit and geometric transforms, each drawn per image and applied with probability p, in
  the authors' order (AugmentPipe.forward)."""
  keys = iter(jax.random.split(key, 18))
  u = lambda shape=(batch,): jax.random.uniform(next(keys), shape)
  n = lambda shape=(batch,): jax.random.normal(next(keys), shape)
  eye = jnp.broadcast_to(jnp.eye(3), (batch, 3, 3))
  g_inv = eye
  if blit:
    flip = _chosen(next(keys), (batch,), p, jnp.floor(u() * 2), 0.0)
    g_inv = g_inv @ scale2d(1 - 2 * flip, 1)                                   # scale2d_inv(1 - 2i, 1)
    quarter = _chosen(next(keys), (batch,), p, jnp.floor(u() * 4), 0.0)
    g_inv = g_inv @ rotate2d(np.pi / 2 * quarter)                              # rotate2d_inv(-pi / 2 i)
    shift = _chosen(next(keys), (batch, 1), p, (u((batch, 2)) * 2 - 1) * 0.125, 0.0)
    g_inv = g_inv @ translate2d(-jnp.round(shift[:, 0] * width), -jnp.round(shift[:, 1] * height))
  if geom:
    s = _chosen(next(keys), (batch,), p, jnp.exp2(n() * 0.2), 1.0)
    g_inv = g_inv @ scale2d(1 / s, 1 / s)
    p_rot = 1 - jnp.sqrt(jnp.clip(1 - p, 0, 1))                                 # P(pre or post) = p.
    g_inv = g_inv @ rotate2d(_chosen(next(keys), (batch,), p_rot, (u() * 2 - 1) * np.pi, 0.0))
    s = _chosen(next(keys), (batch,), p, jnp.exp2(n() * 0.2), 1.0)
    g_inv = g_inv @ scale2d(1 / s, s)
    g_inv = g_inv @ rotate2d(_chosen(next(keys), (batch,), p_rot, (u() * 2 - 1) * np.pi, 0.0))
    shift = _chosen(next(keys), (batch, 1), p, n((batch, 2)) * 0.125, 0.0)
    g_inv = g_inv @ translate2d(-shift[:, 0] * width, -shift[:, 1] * height)
  return g_inv


def _bilinear(x, iy, ix):
  """x [B, H, W, C] sampled at fractional indices iy, ix [B, h, w], zero outside (grid_sample's bilinear mode with
  zeros padding)."""
  _, h, w, _ = x.shape
  y0, x0 = jnp.floor(iy), jnp.floor(ix)
  wy, wx = (iy - y0)[..., None], (ix - x0)[..., None]
  batch = jnp.arange(x.shape[0])[:, None, None]

  def at(yy, xx):
    inside = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
    values = x[batch, jnp.clip(yy, 0, h - 1).astype(jnp.int32), jnp.clip(xx, 0, w - 1).astype(jnp.int32)]
    return values * inside[..., None].astype(x.dtype)

  return ((at(y0, x0) * (1 - wx) + at(y0, x0 + 1) * wx) * (1 - wy)
          + (at(y0 + 1, x0) * (1 - wx) + at(y0 + 1, x0 + 1) * wx) * wy)


def geometric(x, g_inv):
  """Images x [B, H, W, C] transformed by the inverse maps g_inv [B, 3, 3] (geometric_matrix's), as AugmentPipe
  executes them: reflect-padded, up-sampled 2x with the sym6 low-pass, sampled bilinearly (zeros outside the
  padding), filtered and down-sampled 2x back to H x W. The padding is always the authors' largest (size - 1 on
  every side), where theirs is the part of it the transformed corners need, so the shapes are static; the extra
  reflected pixels lie outside what the corners reach (up to the filters' support)."""
  from gan_jax.models.stylegan2 import upfirdn2d  # pylint: disable=g-import-not-at-top
  b, h, w, _ = x.shape
  filter_pad = len(SYM6) // 4
  x = jnp.pad(x, ((0, 0), (h - 1, h - 1), (w - 1, w - 1), (0, 0)), mode="reflect")  # The origin stays central.
  x = upfirdn2d(x, up=2, pad=((len(SYM6) + 1) // 2, (len(SYM6) - 2) // 2), gain=4.0, taps=SYM6[::-1])
  # The map in the up-sampled image's centred coordinates (the authors' scale2d(2) and translate2d(-0.5) pairs).
  g = translate2d(-0.5, -0.5) @ scale2d(2, 2) @ g_inv @ scale2d(0.5, 0.5) @ translate2d(0.5, 0.5)
  out_h, out_w = (h + 2 * filter_pad) * 2, (w + 2 * filter_pad) * 2
  v = (jnp.arange(out_h, dtype=jnp.float32) - (out_h - 1) / 2)[None, :, None]
  u = (jnp.arange(out_w, dtype=jnp.float32) - (out_w - 1) / 2)[None, None, :]
  row = lambda i: [g[:, i, j][:, None, None] for j in range(3)]
  (a, bb, c), (d, e, f) = row(0), row(1)
  ix = a * u + bb * v + c + (x.shape[2] - 1) / 2
  iy = d * u + e * v + f + (x.shape[1] - 1) / 2
  x = _bilinear(x, iy, ix)
  return upfirdn2d(x, down=2, pad=(-2 * filter_pad + (len(SYM6) - 1) // 2, -2 * filter_pad + (len(SYM6) - 2) // 2),
                   taps=SYM6)


_LUMA = np.asarray([1, 1, 1, 0]) / np.sqrt(3)   # The luma axis in homogeneous RGB.


def color_matrix(key, batch: int, channels: int, p):
  """The colour transform C [B, 4, 4] (colour_in -> colour_out, homogeneous RGB) of brightness, contrast, luma
  flip, hue and saturation, each drawn per image and applied with probability p (hue and saturation only for RGB),
  in the authors' order."""
  keys = iter(jax.random.split(key, 10))
  u = lambda: jax.random.uniform(next(keys), (batch,))
  n = lambda: jax.random.normal(next(keys), (batch,))
  brightness = _chosen(next(keys), (batch,), p, n() * 0.2, 0.0)
  contrast = _chosen(next(keys), (batch,), p, jnp.exp2(n() * 0.5), 1.0)
  flip = _chosen(next(keys), (batch,), p, jnp.floor(u() * 2), 0.0)
  hue = _chosen(next(keys), (batch,), p, (u() * 2 - 1) * np.pi, 0.0) if channels > 1 else None
  saturation = _chosen(next(keys), (batch,), p, jnp.exp2(n() * 1.0), 1.0) if channels > 1 else None
  return color_transform(brightness, contrast, flip, hue, saturation)


def color_transform(brightness, contrast, flip, hue=None, saturation=None):
  """C [B, 4, 4] of the colour transforms with these parameters [B] (hue and saturation None: skipped)."""
  column = lambda a: jnp.asarray(a, jnp.float32)[:, None, None]
  eye = jnp.eye(4)
  vv = jnp.asarray(np.outer(_LUMA, _LUMA), jnp.float32)
  m = eye + column(brightness) * jnp.asarray([[0, 0, 0, 1]] * 3 + [[0, 0, 0, 0]], jnp.float32)  # translate3d(b, b, b)
  m = (jnp.diag(jnp.asarray([0, 0, 0, 1.0])) + column(contrast) * jnp.diag(jnp.asarray([1, 1, 1, 0.0]))) @ m
  m = (eye - 2 * vv * column(flip)) @ m                                       # Householder reflection.
  if hue is not None:
    m = _rotate3d_luma(column(hue)) @ m
  if saturation is not None:
    m = (vv + (eye - vv) * column(saturation)) @ m
  return m


def _rotate3d_luma(theta):
  """rotate3d(v, theta) about the luma axis v: [B, 1, 1] angles -> [B, 4, 4] (Rodrigues' formula)."""
  v = _LUMA[:3]
  cross = np.asarray([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
  r = (jnp.cos(theta) * np.eye(3) + jnp.sin(theta) * cross + (1 - jnp.cos(theta)) * np.outer(v, v))
  return jnp.pad(r, ((0, 0), (0, 1), (0, 1))) + jnp.asarray(np.diag([0, 0, 0, 1.0]), jnp.float32)


def apply_color(x, m):
  """Images x [B, H, W, C] (C 3 or 1) under colour transforms m [B, 4, 4]: RGB as m's 3x3 part plus its offset;
  grey as the authors' code does it, the value times the mean row sum of m's RGB part plus the mean offset."""
  if x.shape[-1] == 3:
    return jnp.einsum("bij,bhwj->bhwi", m[:, :3, :3], x) + m[:, None, None, :3, 3]
  if x.shape[-1] == 1:
    grey = jnp.mean(m[:, :3, :], axis=1)                                      # [B, 4]
    return x * jnp.sum(grey[:, :3], axis=1)[:, None, None, None] + grey[:, 3][:, None, None, None]
  raise ValueError(f"ADA's colour transforms take RGB or grey images, not {x.shape[-1]} channels")


def ada(key, x, p, pipe: str = "bgc"):
  """ADA's pipeline `pipe` (PIPES: the letters b, g, c of blit, geometric and colour) on images x [B, H, W, C] with
  probability p (a scalar, traced: it moves during training)."""
  letters = PIPES[pipe]
  geom_key, color_key = jax.random.split(key)
  b, h, w, c = x.shape
  if "b" in letters or "g" in letters:
    x = geometric(x, geometric_matrix(geom_key, b, h, w, p, blit="b" in letters, geom="g" in letters))
  if "c" in letters:
    x = apply_color(x, color_matrix(color_key, b, c, p))
  return x


def ada_adjust(p, sign_mean, target: float, batch_size: int, interval: int, kimg: float):
  """ADA's update of p (training_loop.py): p + sign(r_t - target) x batch_size x interval / (1000 kimg), so that
  p can go from 0 to 1 in kimg thousand images, clamped to [0, 1] (the authors clamp only at 0; above 1 every
  transform already happens, and p would take as long to come back: their issue #175 shows p = 21.8)."""
  step = batch_size * interval / (kimg * 1000.0)
  return jnp.clip(p + jnp.sign(sign_mean - target) * step, 0.0, 1.0)


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
  if spec.pipe not in PIPES:
    raise UserError(f"unknown config.augment.pipe {spec.pipe!r}; allowed: {', '.join(PIPES)}")
  if isinstance(spec.p, bool) or not isinstance(spec.p, (int, float)) or not 0.0 <= spec.p <= 1.0:
    raise UserError(f"config.augment.p must be a probability in [0, 1], got {spec.p!r}")
  if isinstance(spec.ada_target, bool) or not isinstance(spec.ada_target, (int, float)) or not (
      -1.0 < spec.ada_target < 1.0):
    raise UserError(f"config.augment.ada_target must be in (-1, 1) (a target for E[sign D(x)]), got "
                    f"{spec.ada_target!r}")
  if isinstance(spec.ada_interval, bool) or not isinstance(spec.ada_interval, int) or spec.ada_interval < 1:
    raise UserError(f"config.augment.ada_interval must be a positive integer, got {spec.ada_interval!r}")
  if isinstance(spec.ada_kimg, bool) or not isinstance(spec.ada_kimg, (int, float)) or not spec.ada_kimg > 0:
    raise UserError(f"config.augment.ada_kimg must be > 0 (thousands of images for p to go from 0 to 1), got "
                    f"{spec.ada_kimg!r}")


def check_images(config, data_shape) -> None:
  """Raises UserError where config.augment cannot take images of `data_shape` (ADA's colour transforms: RGB or
  grey)."""
  from gan_jax.errors import UserError  # pylint: disable=g-import-not-at-top
  if config.augment.kind in ("ada", "fixed") and "c" in PIPES[config.augment.pipe] and data_shape[-1] not in (1, 3):
    raise UserError(f"config.augment.pipe {config.augment.pipe!r} has colour transforms, for RGB or grey images; "
                    f"these have {data_shape[-1]} channels (use pipe 'bg')")


def not_applicable(config) -> set:
  """The config.augment keys that config.augment.kind does not read."""
  diffaugment, pipeline, adaptive = {"policy", "fill"}, {"pipe", "p"}, {"ada_target", "ada_interval", "ada_kimg"}
  used = {"none": set(), "diffaugment": diffaugment, "fixed": pipeline, "ada": pipeline | adaptive}
  return {f"augment.{k}" for k in (diffaugment | pipeline | adaptive) - used[config.augment.kind]}


def adaptive(config) -> bool:
  """Whether p moves during training (kind 'ada'), so the objective keeps it and the r_t accumulator in its
  state."""
  return config.augment.kind == "ada"


def initial_state(config) -> dict:
  """The state.extra entries of ADA (kind 'ada'): p, from config.augment.p, and the sum and count of the per-step
  E[sign D(x)] since p last moved. Checkpointed with the run, so a resumed run continues exactly."""
  if not adaptive(config):
    return {}
  return {"ada_p": jnp.float32(config.augment.p), "ada_signs": jnp.zeros((), jnp.float32),
          "ada_count": jnp.zeros((), jnp.int32)}


def ada_step(config, extra: dict, images_per_step: int) -> dict:
  """`extra` with ADA's pending adjustment made: after every ada_interval steps (training_loop.py), p moves by
  ada_adjust from the mean of the accumulated signs, and the accumulator restarts. Objectives call it at the start
  of a step, as the authors' loop adjusts p between steps."""
  spec = config.augment
  due = extra["ada_count"] >= spec.ada_interval
  r_t = extra["ada_signs"] / jnp.maximum(extra["ada_count"], 1).astype(jnp.float32)
  adjusted = ada_adjust(extra["ada_p"], r_t, spec.ada_target, images_per_step, spec.ada_interval, spec.ada_kimg)
  return {**extra, "ada_p": jnp.where(due, adjusted, extra["ada_p"]),
          "ada_signs": jnp.where(due, 0.0, extra["ada_signs"]), "ada_count": jnp.where(due, 0, extra["ada_count"])}


def ada_accumulate(extra: dict, real_sign) -> dict:
  """`extra` with one step's E[sign D(x)] of the (augmented) reals added to ADA's accumulator."""
  return {**extra, "ada_signs": extra["ada_signs"] + real_sign, "ada_count": extra["ada_count"] + 1}


def make(config):
  """augment(key, images, p) of config.augment, or None for kind 'none'. p is the current probability of an
  adaptive pipeline (kind 'ada': the objective's state); the other kinds ignore it."""
  spec = config.augment
  if spec.kind == "none":
    return None
  if spec.kind == "diffaugment":
    policy = tuple(p for p in spec.policy.split(",") if p)
    return lambda key, x, p=None: diff_augment(key, x, policy, float(spec.fill))
  fixed = float(spec.p)
  return lambda key, x, p=None: ada(key, x, fixed if p is None else p, spec.pipe)
