"""DF-GAN (Tao et al. 2022, "DF-GAN: A Simple and Effective Baseline for Text-to-Image Synthesis", CVPR), as its
authors' code builds it (tobran/DF-GAN, code/models/GAN.py: NetG, NetD, NetC, G_Block, D_Block, DFBLK, Affine): one
stage from noise to image, the sentence fused into every up-sampling block by text-conditioned affine
transformations, and a discriminator whose image features meet the sentence only in its last, conditional head.

- Generator: z (100) -> dense -> 4x4 x 8 ngf, then per doubling a G_Block: nearest up-sampling, a 1x1 shortcut where
  the channels change, and a residual branch DFBlock -> conv 3x3 -> DFBlock -> conv 3x3; then leaky ReLU, conv 3x3
  and tanh. Channels 8, 4, 2, 1 x ngf (capped at 8) down to the output (get_G_in_out_chs).
- DFBlock: affine -> leaky ReLU 0.2 -> affine -> leaky ReLU, each affine gamma(c) x + beta(c) with gamma, beta
  two-layer MLPs of the condition c = [z, sentence] whose last layer starts at gamma = 1, beta = 0 (Affine's init).
- Discriminator features: conv 3x3, then per halving a D_Block (conv 4x4 stride 2 -> leaky ReLU -> conv 3x3 ->
  leaky ReLU, no bias; plus a 1x1 shortcut and 2x2 average pooling; the residual times a learned gamma starting at
  0) down to 4x4 x 8 ndf; `logits(features, sentence)`: the sentence tiled over the 4x4 map and concatenated,
  conv 3x3 to 2 ndf, leaky ReLU, conv 4x4 valid to one logit (NetC).

Initialisation is PyTorch's default the authors keep (kernels uniform in +-1/sqrt(fan_in): variance scaling 1/3),
except Affine's last layers; biases start at 0 here, not uniform as PyTorch's. Images NHWC in [-1, 1].
"""
import math

import flax.linen as nn
import jax.numpy as jnp

from gan_jax.errors import UserError
from gan_jax.models import GANModels, check_positive_ints

TORCH_DEFAULT = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")


def _conv(features, kernel, stride=1, padding=1, bias=True, name=None):
  return nn.Conv(features, (kernel, kernel), (stride, stride), [(padding, padding)] * 2, use_bias=bias,
                 kernel_init=TORCH_DEFAULT, name=name)


def lrelu(x):
  return nn.leaky_relu(x, 0.2)


class Affine(nn.Module):
  """gamma(c) * x + beta(c), per channel; gamma's and beta's last layers start at weight 0, bias 1 and 0."""
  features: int

  @nn.compact
  def __call__(self, x, c):
    def mlp(name, last_bias):
      h = nn.relu(nn.Dense(self.features, kernel_init=TORCH_DEFAULT, name=f"{name}_linear1")(c))
      return nn.Dense(self.features, kernel_init=nn.initializers.zeros,
                      bias_init=nn.initializers.constant(last_bias), name=f"{name}_linear2")(h)
    return mlp("gamma", 1.0)[:, None, None, :] * x + mlp("beta", 0.0)[:, None, None, :]


class DFBlock(nn.Module):
  features: int

  @nn.compact
  def __call__(self, x, c):
    x = lrelu(Affine(self.features, name="affine0")(x, c))
    return lrelu(Affine(self.features, name="affine1")(x, c))


class GBlock(nn.Module):
  features: int

  @nn.compact
  def __call__(self, x, c):
    b, h, w, channels = x.shape
    x = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)                       # F.interpolate(scale_factor=2)
    shortcut = _conv(self.features, 1, padding=0, name="c_sc")(x) if channels != self.features else x
    r = _conv(self.features, 3, name="c1")(DFBlock(channels, name="fuse1")(x, c))
    r = _conv(self.features, 3, name="c2")(DFBlock(self.features, name="fuse2")(r, c))
    return shortcut + r


def channel_plan(width: int, resolution: int):
  """get_G_in_out_chs / get_D_in_out_chs: [width * min(2^i, 8) for i < log2(resolution) - 1], G's reversed."""
  return [width * min(2 ** i, 8) for i in range(int(math.log2(resolution)) - 1)]


class Generator(nn.Module):
  resolution: int
  channels: int
  ngf: int = 32

  @nn.compact
  def __call__(self, z, sentence, train: bool = False):
    del train  # No batch statistics.
    plan = channel_plan(self.ngf, self.resolution)[::-1]
    x = nn.Dense(4 * 4 * 8 * self.ngf, kernel_init=TORCH_DEFAULT, name="fc")(z)
    x = x.reshape(z.shape[0], 8 * self.ngf, 4, 4).transpose(0, 2, 3, 1)      # The authors' view(B, 8 ngf, 4, 4).
    c = jnp.concatenate([z, sentence.astype(z.dtype)], axis=-1)
    for i, features in enumerate(plan[1:]):
      x = GBlock(features, name=f"block{i}")(x, c)
    return jnp.tanh(_conv(self.channels, 3, name="to_rgb")(lrelu(x)))


class DBlock(nn.Module):
  features: int

  @nn.compact
  def __call__(self, x):
    r = lrelu(_conv(self.features, 4, stride=2, bias=False, name="conv_r0")(x))
    r = lrelu(_conv(self.features, 3, bias=False, name="conv_r1")(r))
    s = _conv(self.features, 1, padding=0, name="conv_s")(x) if x.shape[-1] != self.features else x
    s = nn.avg_pool(s, (2, 2), (2, 2))
    return s + self.param("gamma", nn.initializers.zeros, (1,)) * r


class Discriminator(nn.Module):
  """NetD (`features`) and NetC (`logits`); calling it is both: D(x, sentence) -> logits [B]."""
  resolution: int
  ndf: int = 32

  def setup(self):
    plan = channel_plan(self.ndf, self.resolution)
    self.conv_img = _conv(self.ndf, 3, name="conv_img")
    self.blocks = [DBlock(features, name=f"block{i}") for i, features in enumerate(plan[1:])]
    self.joint0 = _conv(2 * self.ndf, 3, bias=False, name="joint_conv0")
    self.joint1 = _conv(1, 4, padding=0, bias=False, name="joint_conv1")

  def features(self, x):
    x = self.conv_img(x)
    for block in self.blocks:
      x = block(x)
    return x

  def logits(self, features, sentence):
    b, h, w, _ = features.shape
    y = jnp.broadcast_to(sentence[:, None, None, :].astype(features.dtype), (b, h, w, sentence.shape[-1]))
    return self.joint1(lrelu(self.joint0(jnp.concatenate([features, y], axis=-1))))[:, 0, 0, 0]

  def __call__(self, x, sentence, train: bool = False):
    del train
    return self.logits(self.features(x), sentence)


def make_models(*, resolution: int, channels: int = 3, latent_dim: int = 100, ngf: int = 32, ndf: int = 32,
                text_dim: int = 128) -> GANModels:
  """DF-GAN for [resolution, resolution, channels] images (the authors': 256x256, ngf = ndf = 32, z 100) and
  sentence features of text_dim (the DAMSM's hidden size: the authors' 256, pretrain_damsm.py's default 128)."""
  if not (isinstance(resolution, int) and resolution >= 8 and resolution & (resolution - 1) == 0):
    raise UserError(f"config.model.resolution must be a power of two >= 8, got {resolution!r}")
  check_positive_ints(channels=channels, latent_dim=latent_dim, ngf=ngf, ndf=ndf, text_dim=text_dim)
  return GANModels(generator=Generator(resolution, channels, ngf), discriminator=Discriminator(resolution, ndf),
                   latent_dim=latent_dim, data_shape=(resolution, resolution, channels), text_dim=text_dim)

