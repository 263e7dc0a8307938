"""Discriminator regularisers and constraints, each a pure function of a critic `d_fn: x [B, ...] -> logits [B]`,
and the generator's orthogonal regularisation, a function of its parameters.

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


def orthogonal(params, exclude=("shared",)):
  """BigGAN's orthogonal regularisation (Brock et al. 2019, Sec. 3.1): sum over G's weight matrices of
  ||W^T W * (1 - I)||_F^2, W a kernel reshaped to [fan_in, outputs] so the Gram matrix is that of the filters;
  1-D parameters and those whose path names one of `exclude` (the shared class embedding, as BigGAN-PyTorch's
  train_fns.py leaves it out) are not penalised. The authors' utils.ortho adds the gradient of half of this
  (2 (W W^T * (1 - I)) W, with PyTorch's [outputs, fan_in] W), so their strength 1e-4 is beta 5e-5 here."""
  total = jnp.float32(0.0)
  for path, value in jax.tree_util.tree_leaves_with_path(params):
    names = [str(getattr(k, "key", k)) for k in path]
    if value.ndim < 2 or any(name in exclude for name in names):
      continue
    w = value.reshape(-1, value.shape[-1]).astype(jnp.float32)
    gram = w.T @ w
    total = total + jnp.sum(jnp.square(gram * (1.0 - jnp.eye(gram.shape[0], dtype=gram.dtype))))
  return total


def consistency(outputs, outputs_transformed):
  """Consistency regularisation's ||D(x) - D(T(x))||^2 (Zhang et al. 2020, Eq. 1; Zhao et al. 2021, Eq. 2-4) as
  the mean squared difference of D's outputs before the last activation (PyTorch-StudioGAN's torch.nn.MSELoss):
  the logits, or any other output D is asked to keep consistent (AC-GAN's class logits). zCR's G term is the same
  difference between two batches of images (Zhao et al. 2021, Eq. 6)."""
  return jnp.mean(jnp.square(outputs.astype(jnp.float32) - outputs_transformed.astype(jnp.float32)))


def clip_weights(params, clip):
  """WGAN (Arjovsky et al. 2017, Algorithm 1): every critic parameter clipped to [-c, c] after each update."""
  return jax.tree.map(lambda p: jnp.clip(p, -clip, clip), params)
