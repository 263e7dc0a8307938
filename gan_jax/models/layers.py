"""Layers shared by model families: spectral normalisation (Miyato et al. 2018) and maxout (Goodfellow et al. 2013)."""
import flax.linen as nn
import jax.numpy as jnp

SPECTRAL = "spectral"  # The collection holding power-iteration vectors; it rides in GANState.d_state.


def apply(layer: nn.Module, x, *, spectral_norm: bool, train: bool):
  """`layer(x)`, with its kernel divided by its largest singular value when `spectral_norm`.

  One power iteration per call in training (Miyato et al. 2018, Algorithm 1); conv kernels are reshaped to
  [kh * kw * in, out] matrices as in the paper.
  """
  if not spectral_norm:
    return layer(x)
  return nn.SpectralNorm(layer, n_steps=1, collection_name=SPECTRAL)(x, update_stats=train)


class Maxout(nn.Module):
  """Maxout (Goodfellow et al. 2013): `pieces` linear maps per unit, the unit's output their maximum."""
  features: int
  pieces: int
  kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
  spectral_norm: bool = False

  @nn.compact
  def __call__(self, x, train: bool = False):  # [B, D] -> [B, features]
    linear = nn.Dense(self.features * self.pieces, kernel_init=self.kernel_init)
    y = apply(linear, x, spectral_norm=self.spectral_norm, train=train)
    return jnp.max(y.reshape(x.shape[0], self.features, self.pieces), axis=-1)
