"""Adversarial losses by name: each maps discriminator logits to the D and G objectives (to minimise).

`get(name)` returns a `Loss`; `names()` lists them. Logits are the discriminator's raw outputs, shape [B].

`real_sign` is ADA's overfitting heuristic r_t = E[sign(D(x) - t)] over real images (Karras et al. 2020b, Sec. 3.1:
with logits, t = 0), at the loss's decision threshold t: 0 for the cross-entropy and hinge losses, 0.5 for LSGAN's
0/1 targets. It goes from 0 (D cannot tell) towards 1 as D grows confident on the reals, or overfits them; every
family logs it as d_real_sign. A Wasserstein critic's output has no fixed origin, so it has no threshold and no r_t.
"""
import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class Loss:
  d_loss: Callable[[jax.Array, jax.Array], jax.Array]  # (real_logits, fake_logits) -> scalar
  g_loss: Callable[[jax.Array], jax.Array]             # fake_logits -> scalar
  threshold: float | None = 0.0                        # D's output between "fake" and "real" (None: none).


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


def _d_least_squares(real_logits, fake_logits):
  # LSGAN (Mao et al. 2017, Eq. 2 with a=0, b=1): D regresses reals to 1 and fakes to 0.
  return 0.5 * jnp.mean(jnp.square(real_logits - 1.0)) + 0.5 * jnp.mean(jnp.square(fake_logits))


def _g_least_squares(fake_logits):
  # LSGAN (Mao et al. 2017, Eq. 2 with c=1): G pushes D's output on fakes to 1.
  return 0.5 * jnp.mean(jnp.square(fake_logits - 1.0))


def _d_hinge(real_logits, fake_logits):
  # Hinge loss (Lim & Ye 2017, Eq. 4; Miyato et al. 2018, Eq. 16): margins at +1 for reals, -1 for fakes.
  return jnp.mean(jax.nn.relu(1.0 - real_logits)) + jnp.mean(jax.nn.relu(1.0 + fake_logits))


def _g_critic(fake_logits):
  # Hinge and Wasserstein generators both maximise the critic's output on fakes.
  return -jnp.mean(fake_logits)


def _d_wasserstein(real_logits, fake_logits):
  # WGAN (Arjovsky et al. 2017, Algorithm 1): the critic maximises E[f(x)] - E[f(G(z))]. Needs a Lipschitz
  # constraint (weight clipping or a gradient penalty) to mean anything.
  return jnp.mean(fake_logits) - jnp.mean(real_logits)


_LOSSES = {
    "minimax": Loss(d_loss=_d_cross_entropy, g_loss=_g_minimax),
    "non_saturating": Loss(d_loss=_d_cross_entropy, g_loss=_g_non_saturating),
    "lsgan": Loss(d_loss=_d_least_squares, g_loss=_g_least_squares, threshold=0.5),
    "hinge": Loss(d_loss=_d_hinge, g_loss=_g_critic),
    "wasserstein": Loss(d_loss=_d_wasserstein, g_loss=_g_critic, threshold=None),
}


def names():
  return tuple(_LOSSES)


def get(name) -> Loss:
  return _LOSSES[name]


def real_sign(threshold, real_logits, network: str = "d") -> dict:
  """{"<network>_real_sign": r_t} of D's outputs on reals (any shape: PatchGAN maps count every patch), or {} for a
  loss without a threshold."""
  if threshold is None:
    return {}
  return {f"{network}_real_sign": jnp.mean(jnp.sign(real_logits - threshold))}
