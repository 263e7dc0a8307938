"""DCGAN (Radford, Metz & Chintala 2016, "Unsupervised Representation Learning with DCGANs", Sec. 3).

Generator: project z to a base x base map, then stride-2 transposed convolutions with BatchNorm and ReLU, tanh
output. Discriminator: stride-2 convolutions with LeakyReLU 0.2 (BatchNorm on all but the first), a linear logit.
Weights drawn from N(0, 0.02) (Sec. 4). Sized by resolution: base 4 (8, 16, 32, 64, ...) or 7 (14, 28, 56, ...).

Class-conditional with `num_classes` > 0 (models/conditioning.py: G by concatenation or conditional BatchNorm;
D by concatenation, projection, or AC-GAN's auxiliary classifier), and InfoGAN's Q head with
`info_categorical` / `info_continuous` codes.
"""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.errors import UserError
from gan_jax.models import GANModels, check_positive_ints
from gan_jax.models import conditioning, layers

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
  num_classes: int = 0      # > 0: class-conditional on labels [B].
  conditioning: str = "concat"  # How labels enter: "concat" (one-hot to z) or "cbn" (conditional BatchNorm).

  @nn.compact
  def __call__(self, z, train: bool, labels=None):  # z: [B, latent_dim] -> [B, H, W, C] in [-1, 1], float32
    base, num_up = layout(self.resolution)
    if self.num_classes and self.conditioning == "concat":
      z = jnp.concatenate([z, jax.nn.one_hot(labels, self.num_classes, dtype=z.dtype)], axis=-1)

    def norm():
      if self.num_classes and self.conditioning == "cbn":
        cbn = conditioning.ConditionalBatchNorm(self.num_classes, not train, self.bn_momentum, self.dtype)
        return lambda x: cbn(x, labels)
      return nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum, scale_init=_bn_scale_init,
                          dtype=self.dtype)

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
  num_classes: int = 0         # > 0: class-conditional on labels [B].
  conditioning: str = "projection"  # "concat" (one-hot channels), "projection" or "acgan" (auxiliary classifier).
  info_outputs: int = 0        # InfoGAN: outputs of the Q head (categorical logits, then continuous means).

  @nn.compact
  def __call__(self, x, train: bool, labels=None):
    """x: [B, H, W, C] -> logits [B] float32; (logits, aux) with AC-GAN's class logits [B, num_classes] or
    InfoGAN's Q outputs [B, info_outputs]."""
    _, num_down = layout(self.resolution)
    conditional = self.num_classes > 0
    if conditional and self.conditioning == "concat":
      x = conditioning.one_hot_channels(x, labels, self.num_classes)
    sn = functools.partial(layers.apply, spectral_norm=self.spectral_norm, train=train)
    conv = functools.partial(nn.Conv, kernel_size=(4, 4), strides=(2, 2), padding="SAME", kernel_init=_init,
                             dtype=self.dtype, conv_general_dilated=layers.conv_general_dilated)
    features = self.width
    x = nn.leaky_relu(sn(conv(features), x), 0.2)
    for _ in range(num_down - 1):
      features *= 2
      x = sn(conv(features, use_bias=self.norm == "none"), x)
      if self.norm == "batch":
        x = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum,
                         scale_init=_bn_scale_init, dtype=self.dtype)(x)
      x = nn.leaky_relu(x, 0.2)
    features = x.reshape(x.shape[0], -1)
    logits = sn(nn.Dense(1, kernel_init=_init, dtype=self.dtype), features)[:, 0].astype(jnp.float32)
    if conditional and self.conditioning == "projection":
      logits = logits + conditioning.ProjectionTerm(self.num_classes)(features, labels)
    if conditional and self.conditioning == "acgan":
      return logits, sn(nn.Dense(self.num_classes, kernel_init=_init), features.astype(jnp.float32))
    if self.info_outputs:
      return logits, conditioning.QHead(self.info_outputs, self.bn_momentum)(features, train)
    return logits


def not_applicable(kwargs) -> set:
  """make_models keys that these kwargs do not use: an unconditional model's conditioning (models.not_applicable)."""
  return set() if kwargs.get("num_classes") else {"g_conditioning", "d_conditioning"}


def make_models(*, resolution: int, channels: int, latent_dim: int = 100, g_width: int = 64,
                d_width: int = 64, d_norm: str = "batch", d_spectral_norm: bool = False,
                dtype: str = "float32", num_classes: int = 0, g_conditioning: str = "concat",
                d_conditioning: str = "projection", info_categorical: int = 0,
                info_continuous: int = 0) -> GANModels:
  """DCGAN pair for [resolution, resolution, channels] images; `dtype` bfloat16 computes in bf16 with float32
  parameters and optimizer states (mixed precision, for accelerators).

  `num_classes` > 0 makes both class-conditional (`g_conditioning`, `d_conditioning`: see
  models/conditioning.py). `info_categorical` (categories of one code) and `info_continuous` (number of U(-1,1)
  codes) make it InfoGAN: G's input is `latent_dim` noise values followed by the codes, and D gets a Q head.
  """
  layout(resolution)
  for key, value in (("num_classes", num_classes), ("info_categorical", info_categorical),
                     ("info_continuous", info_continuous)):
    if not isinstance(value, int) or value < 0:
      raise UserError(f"config.model.{key} must be a non-negative integer, got {value!r}")
  if num_classes == 1 or info_categorical == 1:
    raise UserError("config.model.num_classes and info_categorical must be 0 (off) or at least 2")
  if g_conditioning not in conditioning.G_CONDITIONING:
    raise UserError(f"unknown config.model.g_conditioning {g_conditioning!r}; allowed: "
                    f"{', '.join(conditioning.G_CONDITIONING)}")
  if d_conditioning not in conditioning.D_CONDITIONING:
    raise UserError(f"unknown config.model.d_conditioning {d_conditioning!r}; allowed: "
                    f"{', '.join(conditioning.D_CONDITIONING)}")
  if num_classes and (info_categorical or info_continuous):
    raise UserError("a model is either class-conditional (num_classes) or InfoGAN (info_*), not both")
  compute_dtype = layers.compute_dtype(dtype)
  if d_norm not in ("batch", "none"):
    raise UserError(f"unknown config.model.d_norm {d_norm!r}; allowed: batch, none")
  check_positive_ints(channels=channels, latent_dim=latent_dim, g_width=g_width, d_width=d_width)
  info_dims = info_categorical + info_continuous
  return GANModels(
      generator=Generator(resolution, channels, latent_dim + info_dims, g_width, dtype=compute_dtype,
                          num_classes=num_classes, conditioning=g_conditioning),
      discriminator=Discriminator(resolution, d_width, d_norm, d_spectral_norm, dtype=compute_dtype,
                                  num_classes=num_classes, conditioning=d_conditioning, info_outputs=info_dims),
      latent_dim=latent_dim + info_dims,
      data_shape=(resolution, resolution, channels),
      num_classes=num_classes,
      aux="classes" if num_classes and d_conditioning == "acgan" else ("info" if info_dims else ""),
      info_categorical=info_categorical, info_continuous=info_continuous)
