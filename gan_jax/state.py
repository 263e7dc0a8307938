"""GANState: everything a run trains or carries, as one pytree (checkpointed whole, restored whole).

Variables are split as Flax does: `*_params` are trained, `*_state` holds the other collections
(BatchNorm statistics, later spectral-norm vectors). The RNG is a base key; step s uses fold_in(rng, s).
"""
from typing import Any

import flax
import jax
import jax.numpy as jnp

from gan_jax.models import GANModels

PyTree = Any


@flax.struct.dataclass
class GANState:
  step: jax.Array          # int32 scalar: generator updates done.
  rng: jax.Array           # uint32[2] base key.
  g_params: PyTree
  g_state: PyTree          # Non-trained collections of G, e.g. {'batch_stats': ...}.
  d_params: PyTree
  d_state: PyTree
  g_opt_state: PyTree
  d_opt_state: PyTree
  ema_g: PyTree            # EMA of G's variables {'params': ..., 'batch_stats': ...}: what is sampled.

  def g_variables(self):
    return {"params": self.g_params, **self.g_state}

  def d_variables(self):
    return {"params": self.d_params, **self.d_state}


def _split(variables):
  variables = flax.core.unfreeze(variables)
  params = variables.pop("params")
  return params, variables


def create_state(models: GANModels, g_tx, d_tx, seed: int, pack: int = 1) -> GANState:
  """Initial state from `seed` (the key also drives latents and everything else random in training).

  D is built for inputs packed `pack` times on the last axis (steps.pack).
  """
  root = jax.random.PRNGKey(seed)
  g_key, d_key, train_key = jax.random.split(root, 3)
  z = jnp.zeros((1, models.latent_dim), jnp.float32)
  labels = {"labels": jnp.zeros((1,), jnp.int32)} if models.num_classes else {}
  g_params, g_state = _split(models.generator.init(g_key, z, train=False, **labels))
  *sample_shape, channels = models.data_shape
  d_input = jnp.zeros((1, *sample_shape, pack * channels))
  d_params, d_state = _split(models.discriminator.init(d_key, d_input, train=False, **labels))
  return GANState(
      step=jnp.zeros((), jnp.int32), rng=train_key,
      g_params=g_params, g_state=g_state, d_params=d_params, d_state=d_state,
      g_opt_state=g_tx.init(g_params), d_opt_state=d_tx.init(d_params),
      ema_g={"params": g_params, **g_state})
