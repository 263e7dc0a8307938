"""Class conditioning and auxiliary heads, shared by model families.

- Generator: the label concatenated to z as a one-hot vector (Mirza & Osindero 2014, "Conditional GANs",
  Sec. 4.1), or conditional BatchNorm, whose per-class scale and shift replace BatchNorm's own (de Vries et
  al. 2017; the generator of Miyato & Koyama 2018).
- Discriminator: the label as one-hot channels concatenated to the image (Mirza & Osindero 2014, as in
  convolutional cGANs), a projection term <embed(y), phi(x)> added to the logit (Miyato & Koyama 2018,
  "cGANs with Projection Discriminator", Eq. 3), or an auxiliary classifier head (AC-GAN, Odena et al. 2017).
- InfoGAN's Q head (Chen et al. 2016): the distribution of the latent codes given an image, sharing the
  discriminator's body.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp

G_CONDITIONING = ("concat", "cbn")
D_CONDITIONING = ("concat", "projection", "acgan")


def one_hot_channels(x, labels, num_classes):
  """[B, H, W, C], labels [B] -> [B, H, W, C + num_classes]: the label's one-hot vector at every pixel."""
  maps = jnp.broadcast_to(jax.nn.one_hot(labels, num_classes, dtype=x.dtype)[:, None, None, :],
                          (*x.shape[:-1], num_classes))
  return jnp.concatenate([x, maps], axis=-1)


class ConditionalBatchNorm(nn.Module):
  """BatchNorm without its own scale and shift, then gamma[y] * x + beta[y] per class y (de Vries et al.
  2017): gamma starts at 1 and beta at 0, so at initialisation it is plain BatchNorm."""
  num_classes: int
  use_running_average: bool
  momentum: float = 0.9
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, labels):  # x [B, ..., C], labels [B]
    x = nn.BatchNorm(use_running_average=self.use_running_average, momentum=self.momentum, use_scale=False,
                     use_bias=False, dtype=self.dtype)(x)
    features = x.shape[-1]
    gamma = nn.Embed(self.num_classes, features, embedding_init=nn.initializers.ones, name="gamma")(labels)
    beta = nn.Embed(self.num_classes, features, embedding_init=nn.initializers.zeros, name="beta")(labels)
    shape = (x.shape[0],) + (1,) * (x.ndim - 2) + (features,)
    return x * gamma.reshape(shape).astype(x.dtype) + beta.reshape(shape).astype(x.dtype)


class ProjectionTerm(nn.Module):
  """<V y, phi(x)> (Miyato & Koyama 2018, Eq. 3): added to the unconditional logit psi(phi(x))."""
  num_classes: int

  @nn.compact
  def __call__(self, features, labels):  # [B, F], [B] -> [B]
    embedding = nn.Embed(self.num_classes, features.shape[-1], embedding_init=nn.initializers.normal(0.02))
    return jnp.sum(embedding(labels) * features.astype(jnp.float32), axis=-1)


class QHead(nn.Module):
  """InfoGAN's Q (Chen et al. 2016, Appendix C.1, MNIST): FC 128 - BatchNorm - LeakyReLU 0.1 - FC, giving
  the categorical code's logits and the continuous codes' means (their std is fixed at 1, as in the
  authors' code)."""
  num_outputs: int
  bn_momentum: float = 0.9

  @nn.compact
  def __call__(self, features, train: bool):  # [B, F] -> [B, num_outputs]
    h = nn.Dense(128)(features.astype(jnp.float32))
    h = nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum)(h)
    return nn.Dense(self.num_outputs)(nn.leaky_relu(h, 0.1))
