"""Discriminator regularisers and constraints, each a pure function of a critic `d_fn: x [B, ...] -> logits [B]`.

Selected by `config.regularizer` (weights of 0 switch a term off); steps.py adds the terms to D's loss.
Per-sample input gradients come from grad(sum(D(x))), exact when D treats samples independently (no
BatchNorm in D, as Gulrajani et al. 2017 advise for penalised critics).
"""
import jax
import jax.numpy as jnp


def _input_gradient_norms(d_fn, x):
  grads = jax.grad(lambda x: jnp.sum(d_fn(x)))(x)          # [B, ...]
  return jnp.sqrt(jnp.sum(jnp.square(grads.reshape(x.shape[0], -1)), axis=1) + 1e-12)  # [B]


def _per_sample(key, x):
  return jax.random.uniform(key, (x.shape[0],) + (1,) * (x.ndim - 1), x.dtype)  # [B, 1, ...]


def gradient_penalty(d_fn, real, fake, key):
  """WGAN-GP (Gulrajani et al. 2017, Algorithm 1): E[(||grad D(x_hat)|| - 1)^2], x_hat = e x + (1 - e) G(z)."""
  eps = _per_sample(key, real)
  interpolates = eps * real + (1.0 - eps) * fake
  return jnp.mean(jnp.square(_input_gradient_norms(d_fn, interpolates) - 1.0))


def gradient_norm_squared(d_fn, x):
  """E[||grad D(x)||^2]: R1 on reals, R2 on fakes (Mescheder et al. 2018, Eq. 9-10; the loss adds gamma/2 x this)."""
  return jnp.mean(jnp.square(_input_gradient_norms(d_fn, x)))


def dragan_penalty(d_fn, real, key):
  """DRAGAN (Kodali et al. 2017, Eq. 4 and the authors' code): (||grad D(x_hat)|| - 1)^2 around the data,
  x_hat = x + a * 0.5 * std(x) * u with u ~ U[0, 1]^d and a ~ U[0, 1] per sample."""
  noise_key, alpha_key = jax.random.split(key)
  perturbed = real + 0.5 * jnp.std(real) * jax.random.uniform(noise_key, real.shape, real.dtype)
  x_hat = real + _per_sample(alpha_key, real) * (perturbed - real)
  return jnp.mean(jnp.square(_input_gradient_norms(d_fn, x_hat) - 1.0))


def clip_weights(params, clip):
  """WGAN (Arjovsky et al. 2017, Algorithm 1): every critic parameter clipped to [-c, c] after each update."""
  return jax.tree.map(lambda p: jnp.clip(p, -clip, clip), params)
