"""Progressive GAN (Karras et al. 2018, "Progressive Growing of GANs for Improved Quality, Stability, and Variation"),
as its authors' code builds it (tkarras/progressive_growing_of_gans, networks.py G_paper and D_paper): a generator
and a discriminator that grow from 4x4 to `resolution`, one block per doubling, each new block faded in.

G: z pixel-normalised, a dense layer to 4x4 (gain sqrt(2) / 4), a 3x3 convolution; then per resolution nearest
up-sampling and two 3x3 convolutions; leaky ReLU 0.2 and pixel normalisation after every layer (Sec. 4.2); a 1x1
toRGB (gain 1) at every resolution. D mirrors it: a 1x1 fromRGB (leaky ReLU) at every resolution, blocks of two 3x3
convolutions and 2x2 average pooling, and at 4x4 minibatch standard deviation (groups of 4, Sec. 3), a 3x3
convolution, a dense layer and the output. Every weight is N(0, 1) scaled at runtime by He's constant
gain / sqrt(fan_in), the equalized learning rate (Sec. 4.1). The authors' fused up-sampling convolution equals
nearest up-sampling then the 3x3 convolution, and their fused down-sampling one the convolution then 2x2 averaging,
which is how they are written here.

Which blocks run is the module's `stage` = (level, fading), level 0 being 4x4: the objective (objectives/progan.py)
builds one program per stage. While `fading`, the new block's output is blended with the previous level's by the
fade-in weight alpha: G's image is lerp(upsample(toRGB_{level-1}), toRGB_level, alpha), D's features
lerp(fromRGB_{level-1}(avgpool(x)), block_level(fromRGB_level(x)), alpha) (Fig. 2). Alpha, and the level, are the
`schedule` collection, which the objective sets at every step. With `stage` None, G runs every block and returns
the schedule's current image up-sampled to `resolution` (the authors' 'linear' structure): what sampling and
evaluation see. D with `stage` None is the full network at the top level. Initialising either builds every block,
so a run's checkpoints hold them all from the start.
"""
import math
from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.errors import UserError
from gan_jax.models import GANModels, check_positive_ints, stylegan2

SCHEDULE = "schedule"   # The collection {"level": int32, "alpha": float32} the objective sets at every step.


def pixel_norm(x, eps: float = 1e-8):
  """Pixelwise feature vector normalisation (Sec. 4.2, Eq. in text): each pixel's features divided by their root
  mean square, x / sqrt(mean_c(x^2) + eps)."""
  return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + eps)


def upscale(x, factor: int = 2):
  """Nearest-neighbour up-sampling, [B, H, W, C] -> [B, factor H, factor W, C] (networks.py upscale2d)."""
  return x if factor == 1 else jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)


def downscale(x, factor: int = 2):
  """Box-filter down-sampling, the mean of factor x factor pixels (networks.py downscale2d; dataset_tool.py builds
  each lower resolution of a dataset the same way)."""
  if factor == 1:
    return x
  b, h, w, c = x.shape
  return jnp.mean(x.reshape(b, h // factor, factor, w // factor, factor, c), axis=(2, 4))


def channels_at(level: int, channel_base: int, channel_max: int) -> int:
  """nf(level + 1) of networks.py: the feature maps of the block at 4 * 2**level pixels."""
  return min(channel_base // 2 ** (level + 1), channel_max)


class WSConv(nn.Module):
  """A k x k convolution (or, with k = 0, a dense layer on the flattened input) with the equalized learning rate:
  weight N(0, 1) times gain / sqrt(fan_in), bias zeros (networks.py get_weight with use_wscale, apply_bias)."""
  features: int
  kernel_size: int = 3
  gain: float = math.sqrt(2.0)
  use_bias: bool = True

  @nn.compact
  def __call__(self, x):
    if self.kernel_size == 0:
      x = x.reshape(x.shape[0], -1)
      w = self.param("kernel", nn.initializers.normal(1.0), (x.shape[-1], self.features))
      y = x @ (w * (self.gain / math.sqrt(x.shape[-1])))
    else:
      k = self.kernel_size
      w = self.param("kernel", nn.initializers.normal(1.0), (k, k, x.shape[-1], self.features))
      y = jax.lax.conv_general_dilated(x, w * (self.gain / math.sqrt(k * k * x.shape[-1])), (1, 1), "SAME",
                                       dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y + self.param("bias", nn.initializers.zeros, (self.features,)) if self.use_bias else y


def _lrelu(x):
  return jax.nn.leaky_relu(x, 0.2)


def _schedule(module, num_levels: int):
  """(level, alpha) of the module's `schedule` collection, created at the top level, faded in."""
  level = module.variable(SCHEDULE, "level", lambda: jnp.asarray(num_levels - 1, jnp.int32))
  alpha = module.variable(SCHEDULE, "alpha", lambda: jnp.ones((), jnp.float32))
  return level.value, alpha.value


def _check_stage(stage, num_levels: int):
  if stage is not None and not (0 <= stage[0] < num_levels and (stage[0] > 0 or not stage[1])):
    raise ValueError(f"stage {stage} is not one of this {num_levels}-level network's")


class Generator(nn.Module):
  """G_paper (pixel norm, equalized learning rate, leaky ReLU, nearest up-sampling), grown by `stage`."""
  resolution: int
  channels: int
  channel_base: int = 8192
  channel_max: int = 512
  stage: Optional[tuple] = None   # (level, fading): the blocks to run, or None for sampling (see the module doc).

  @property
  def num_levels(self) -> int:
    return int(math.log2(self.resolution)) - 1

  def _torgb(self, level, h):
    return WSConv(self.channels, kernel_size=1, gain=1.0, name=f"torgb_{4 * 2 ** level}")(h)

  @nn.compact
  def __call__(self, z, train: bool = False):
    del train  # No batch statistics.
    _check_stage(self.stage, self.num_levels)
    level, alpha = _schedule(self, self.num_levels)
    ch = lambda lv: channels_at(lv, self.channel_base, self.channel_max)
    top = self.num_levels - 1 if self.stage is None else self.stage[0]
    x = pixel_norm(z)
    # The authors' gain sqrt(2) / 4 ("to match the original Theano implementation"); the bias is per feature map,
    # added after the reshape to 4x4.
    x = WSConv(16 * ch(0), kernel_size=0, gain=math.sqrt(2.0) / 4, use_bias=False, name="b4_dense")(x)
    x = x.reshape(x.shape[0], 4, 4, ch(0)) + self.param("b4_dense_bias", nn.initializers.zeros, (ch(0),))
    h = pixel_norm(_lrelu(x))
    h = pixel_norm(_lrelu(WSConv(ch(0), name="b4_conv")(h)))
    features = [h]
    for lv in range(1, top + 1):
      r = 4 * 2 ** lv
      h = pixel_norm(_lrelu(WSConv(ch(lv), name=f"b{r}_conv0")(upscale(h))))
      h = pixel_norm(_lrelu(WSConv(ch(lv), name=f"b{r}_conv1")(h)))
      features.append(h)
    if self.stage is None:  # Every level's image at full resolution; the schedule's, faded in (as 'linear').
      images = jnp.stack([upscale(self._torgb(lv, f), 2 ** (top - lv)) for lv, f in enumerate(features)])
      current, previous = images[level], images[jnp.maximum(level - 1, 0)]
      return previous + (current - previous) * alpha
    image = self._torgb(top, features[top])
    if self.stage[1]:  # Fading the new block in (Fig. 2b).
      image = upscale(self._torgb(top - 1, features[top - 1])) * (1 - alpha) + image * alpha
    return image


class Discriminator(nn.Module):
  """D_paper (equalized learning rate, leaky ReLU, average pooling, minibatch std at 4x4), grown by `stage`."""
  resolution: int
  channel_base: int = 8192
  channel_max: int = 512
  mbstd_group_size: int = 4
  stage: Optional[tuple] = None   # (level, fading); None: the top level, stable.

  @property
  def num_levels(self) -> int:
    return int(math.log2(self.resolution)) - 1

  @nn.compact
  def __call__(self, x, train: bool = False):
    del train  # No batch statistics.
    _check_stage(self.stage, self.num_levels)
    _, alpha = _schedule(self, self.num_levels)
    ch = lambda lv: channels_at(lv, self.channel_base, self.channel_max)
    top, fading = (self.num_levels - 1, False) if self.stage is None else self.stage
    fromrgb = lambda lv, img: _lrelu(WSConv(ch(lv), kernel_size=1, name=f"fromrgb_{4 * 2 ** lv}")(img))
    if self.is_initializing():  # Every fromRGB exists from the start, for the checkpoints to hold all blocks.
      for lv in range(top):
        fromrgb(lv, downscale(x, 2 ** (top - lv)))
    h = fromrgb(top, x)
    for lv in range(top, 0, -1):
      r = 4 * 2 ** lv
      h = _lrelu(WSConv(ch(lv), name=f"b{r}_conv0")(h))
      h = downscale(_lrelu(WSConv(ch(lv - 1), name=f"b{r}_conv1")(h)))
      if lv == top and fading:  # Fading the new block in (Fig. 2b).
        h = fromrgb(top - 1, downscale(x)) * (1 - alpha) + h * alpha
    if self.mbstd_group_size > 1:
      h = stylegan2.minibatch_std(h, self.mbstd_group_size)
    h = _lrelu(WSConv(ch(0), name="b4_conv")(h))
    h = _lrelu(WSConv(ch(-1), kernel_size=0, name="b4_dense0")(h))
    return WSConv(1, kernel_size=0, gain=1.0, name="b4_dense1")(h)[:, 0]


def make_models(*, resolution: int, channels: int, latent_dim: int = 512, channel_base: int = 8192,
                channel_max: int = 512, mbstd_group_size: int = 4) -> GANModels:
  """The paper's networks for [resolution, resolution, channels] images: channel_base 8192 and channel_max 512
  (networks.py's fmap_base and fmap_max), latents of min(channel_base / 2, channel_max) = 512."""
  if not (isinstance(resolution, int) and resolution >= 4 and resolution & (resolution - 1) == 0):
    raise UserError(f"config.model.resolution must be a power of two >= 4, got {resolution!r}")
  check_positive_ints(channels=channels, latent_dim=latent_dim, channel_base=channel_base, channel_max=channel_max,
                      mbstd_group_size=mbstd_group_size)
  if channel_base < resolution:
    raise UserError(f"config.model.channel_base ({channel_base}) must be at least the resolution ({resolution})")
  return GANModels(
      generator=Generator(resolution, channels, channel_base, channel_max),
      discriminator=Discriminator(resolution, channel_base, channel_max, mbstd_group_size),
      latent_dim=latent_dim, data_shape=(resolution, resolution, channels))
