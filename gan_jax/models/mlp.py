"""MLP generator and maxout discriminator for 2D data: the networks of PacGAN's synthetic experiments
(Lin et al. 2018, Sec. 4.1 and the authors' code): G has 4 ReLU layers of 400 units with BatchNorm and a
2-d Gaussian latent; D has 3 maxout layers of 200 units with 5 pieces; weights N(0, 0.02), biases 0.
"""
import flax.linen as nn

from gan_jax.models import GANModels, check_positive_ints
from gan_jax.models import layers

_init = nn.initializers.normal(0.02)


class Generator(nn.Module):
  dim: int = 2
  hidden: int = 400
  depth: int = 4
  bn_momentum: float = 0.95  # PacGAN's code: population statistics updated as 0.95 p + 0.05 m.

  @nn.compact
  def __call__(self, z, train: bool):  # [B, latent_dim] -> [B, dim]
    x = z
    for _ in range(self.depth):
      x = nn.Dense(self.hidden, use_bias=False, kernel_init=_init)(x)
      x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum)(x))
    return nn.Dense(self.dim, kernel_init=_init)(x)


class Discriminator(nn.Module):
  hidden: int = 200
  depth: int = 3
  pieces: int = 5
  spectral_norm: bool = False

  @nn.compact
  def __call__(self, x, train: bool):  # [B, dim * pack] -> logits [B]
    for _ in range(self.depth):
      x = layers.Maxout(self.hidden, self.pieces, kernel_init=_init, spectral_norm=self.spectral_norm)(x, train)
    out = layers.apply(nn.Dense(1, kernel_init=_init), x, spectral_norm=self.spectral_norm, train=train)
    return out[:, 0]


def make_models(*, dim: int = 2, latent_dim: int = 2, g_hidden: int = 400, g_depth: int = 4,
                d_hidden: int = 200, d_depth: int = 3, d_pieces: int = 5,
                d_spectral_norm: bool = False) -> GANModels:
  """The PacGAN 2D pair (defaults are the paper's)."""
  check_positive_ints(dim=dim, latent_dim=latent_dim, g_hidden=g_hidden, g_depth=g_depth, d_hidden=d_hidden,
                                 d_depth=d_depth, d_pieces=d_pieces)
  return GANModels(
      generator=Generator(dim, g_hidden, g_depth),
      discriminator=Discriminator(d_hidden, d_depth, d_pieces, d_spectral_norm),
      latent_dim=latent_dim, data_shape=(dim,))
