"""DCGAN (Radford, Metz & Chintala 2016, "Unsupervised Representation Learning with DCGANs", Sec. 3).

Generator: project z to a base x base map, then stride-2 transposed convolutions with BatchNorm and ReLU, tanh
output. Discriminator: stride-2 convolutions with LeakyReLU 0.2 (BatchNorm on all but the first), a linear logit.
Weights drawn from N(0, 0.02) (Sec. 4). Sized by resolution: base 4 (8, 16, 32, 64, ...) or 7 (14, 28, 56, ...).
"""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.errors import UserError
from gan_jax.models import GANModels
from gan_jax.models import layers

_init = nn.initializers.normal(0.02)  # Radford et al. 2016, Sec. 4.


def _bn_scale_init(key, shape, dtype=jnp.float32):
  return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)  # As the reference PyTorch DCGAN: N(1, 0.02).


def layout(resolution):
  """(base, num_stride2_layers): resolution = base * 2**num_stride2_layers, base 4 or 7, at least one layer."""
  for base in (4, 7):
    size, layers = resolution, 0
    while size > base and size % 2 == 0:
      size, layers = size // 2, layers + 1
    if size == base and layers >= 1:
      return base, layers
  raise UserError(f"DCGAN cannot produce resolution {resolution}; allowed: 4 or 7 times a power of two "
                  "(8, 14, 16, 28, 32, 56, 64, 128, ...)")


class Generator(nn.Module):
  resolution: int
  channels: int
  latent_dim: int = 100
  width: int = 64           # Channels of the last hidden layer; doubled at each lower resolution.
  bn_momentum: float = 0.9  # Flax's 0.9 is PyTorch's momentum 0.1.
  dtype: jnp.dtype = jnp.float32  # Computation dtype; parameters stay float32.

  @nn.compact
  def __call__(self, z, train: bool):  # z: [B, latent_dim] -> [B, H, W, C] in [-1, 1], float32
    base, num_up = layout(self.resolution)
    norm = functools.partial(nn.BatchNorm, use_running_average=not train, momentum=self.bn_momentum,
                             scale_init=_bn_scale_init, dtype=self.dtype)
    features = self.width * 2 ** (num_up - 1)
    x = nn.Dense(base * base * features, use_bias=False, kernel_init=_init, dtype=self.dtype)(z)
    x = nn.relu(norm()(x.reshape(-1, base, base, features)))
    for _ in range(num_up - 1):
      features //= 2
      x = layers.ConvTranspose(features, (4, 4), strides=(2, 2), padding="SAME", use_bias=False,
                               kernel_init=_init, dtype=self.dtype)(x)
      x = nn.relu(norm()(x))
    x = layers.ConvTranspose(self.channels, (4, 4), strides=(2, 2), padding="SAME", kernel_init=_init,
                             dtype=self.dtype)(x)
    return jnp.tanh(x).astype(jnp.float32)


class Discriminator(nn.Module):
  resolution: int
  width: int = 64          # Channels of the first layer; doubled at each lower resolution.
  norm: str = "batch"      # "batch" (Radford et al.) or "none".
  spectral_norm: bool = False  # Miyato et al. 2018: every conv and the linear layer spectrally normalised.
  bn_momentum: float = 0.9
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):  # x: [B, H, W, C] -> logits [B], float32
    _, num_down = layout(self.resolution)
    sn = functools.partial(layers.apply, spectral_norm=self.spectral_norm, train=train)
    conv = functools.partial(nn.Conv, kernel_size=(4, 4), strides=(2, 2), padding="SAME", kernel_init=_init,
                             dtype=self.dtype)
    features = self.width
    x = nn.leaky_relu(sn(conv(features), x), 0.2)
    for _ in range(num_down - 1):
      features *= 2
      x = sn(conv(features, use_bias=self.norm == "none"), x)
      if self.norm == "batch":
        x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                         scale_init=_bn_scale_init, dtype=self.dtype)(x)
      x = nn.leaky_relu(x, 0.2)
    logits = sn(nn.Dense(1, kernel_init=_init, dtype=self.dtype), x.reshape(x.shape[0], -1))[:, 0]
    return logits.astype(jnp.float32)


def make_models(*, resolution: int, channels: int, latent_dim: int = 100, g_width: int = 64,
                d_width: int = 64, d_norm: str = "batch", d_spectral_norm: bool = False,
                dtype: str = "float32") -> GANModels:
  """DCGAN pair for [resolution, resolution, channels] images; `dtype` bfloat16 computes in bf16 with float32
  parameters and optimizer states (mixed precision, for accelerators)."""
  layout(resolution)
  compute_dtype = layers.compute_dtype(dtype)
  if d_norm not in ("batch", "none"):
    raise UserError(f"unknown config.model.d_norm {d_norm!r}; allowed: batch, none")
  for key, value in (("channels", channels), ("latent_dim", latent_dim), ("g_width", g_width),
                     ("d_width", d_width)):
    if not isinstance(value, int) or value < 1:
      raise UserError(f"config.model.{key} must be a positive integer, got {value!r}")
  return GANModels(
      generator=Generator(resolution, channels, latent_dim, g_width, dtype=compute_dtype),
      discriminator=Discriminator(resolution, d_width, d_norm, d_spectral_norm, dtype=compute_dtype),
      latent_dim=latent_dim,
      data_shape=(resolution, resolution, channels))
