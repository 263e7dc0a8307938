"""Adversarial losses by name: each maps discriminator logits to the D and G objectives (to minimise).

`get(name)` returns a `Loss`; `names()` lists them. Logits are the discriminator's raw outputs, shape [B].
"""
import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class Loss:
  d_loss: Callable[[jax.Array, jax.Array], jax.Array]  # (real_logits, fake_logits) -> scalar
  g_loss: Callable[[jax.Array], jax.Array]             # fake_logits -> scalar


def _d_cross_entropy(real_logits, fake_logits):
  # Goodfellow et al. 2014, Eq. 1: D maximises log D(x) + log(1 - D(G(z))), with D = sigmoid(logits);
  # -log sigmoid(l) = softplus(-l) and -log(1 - sigmoid(l)) = softplus(l).
  return jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))


def _g_minimax(fake_logits):
  # Goodfellow et al. 2014, Eq. 1: G minimises log(1 - D(G(z))) = -softplus(logits). Saturates early on.
  return -jnp.mean(jax.nn.softplus(fake_logits))


def _g_non_saturating(fake_logits):
  # Goodfellow et al. 2014, Sec. 3: G maximises log D(G(z)) instead, i.e. minimises softplus(-logits).
  return jnp.mean(jax.nn.softplus(-fake_logits))


_LOSSES = {
    "minimax": Loss(d_loss=_d_cross_entropy, g_loss=_g_minimax),
    "non_saturating": Loss(d_loss=_d_cross_entropy, g_loss=_g_non_saturating),
}


def names():
  return tuple(_LOSSES)


def get(name) -> Loss:
  return _LOSSES[name]
