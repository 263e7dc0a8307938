"""Adversarial losses against their closed forms (Goodfellow et al. 2014)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import losses

LOGITS_REAL = jnp.array([2.0, -1.0, 0.5, 0.0])
LOGITS_FAKE = jnp.array([-3.0, 1.5, 0.0, -0.5])


def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def test_discriminator_loss_is_binary_cross_entropy():
  expected = -np.mean(np.log(_sigmoid(LOGITS_REAL))) - np.mean(np.log(1.0 - _sigmoid(LOGITS_FAKE)))
  for name in ("minimax", "non_saturating"):
    np.testing.assert_allclose(losses.get(name).d_loss(LOGITS_REAL, LOGITS_FAKE), expected, rtol=1e-6)


def test_generator_losses_closed_form():
  np.testing.assert_allclose(losses.get("minimax").g_loss(LOGITS_FAKE),
                             np.mean(np.log(1.0 - _sigmoid(LOGITS_FAKE))), rtol=1e-6)
  np.testing.assert_allclose(losses.get("non_saturating").g_loss(LOGITS_FAKE),
                             -np.mean(np.log(_sigmoid(LOGITS_FAKE))), rtol=1e-6)


def test_values_at_equilibrium():
  # D(x) = D(G(z)) = 1/2: D's loss is 2 log 2 (Goodfellow et al. 2014, Theorem 1: -log 4 for the value).
  zeros = jnp.zeros(8)
  np.testing.assert_allclose(losses.get("non_saturating").d_loss(zeros, zeros), 2 * np.log(2), rtol=1e-6)
  np.testing.assert_allclose(losses.get("non_saturating").g_loss(zeros), np.log(2), rtol=1e-6)
  np.testing.assert_allclose(losses.get("minimax").g_loss(zeros), -np.log(2), rtol=1e-6)


def test_non_saturating_gradient_is_strong_where_minimax_saturates():
  # When D confidently rejects fakes (logit -6), d/dl log(1 - sigmoid(l)) = -sigmoid(l) ~ -0.0025 vanishes while
  # d/dl -log sigmoid(l) = sigmoid(l) - 1 ~ -1 does not (Sec. 3 of the paper).
  logit = jnp.array([-6.0])
  g_minimax = jax.grad(losses.get("minimax").g_loss)(logit)[0]
  g_non_saturating = jax.grad(losses.get("non_saturating").g_loss)(logit)[0]
  np.testing.assert_allclose(g_minimax, -_sigmoid(-6.0), rtol=1e-5)
  np.testing.assert_allclose(g_non_saturating, _sigmoid(-6.0) - 1.0, rtol=1e-5)
  assert abs(g_non_saturating) > 300 * abs(g_minimax)


@pytest.mark.parametrize("name", losses.names())
def test_losses_are_finite_for_extreme_logits(name):
  extreme = jnp.array([-1e4, 1e4])  # Squares of 1e4 still fit in float32.
  loss = losses.get(name)
  assert np.isfinite(loss.d_loss(extreme, extreme)) and np.isfinite(loss.g_loss(extreme))


def test_lsgan_hinge_wasserstein_on_known_logits():
  r, f = np.asarray(LOGITS_REAL, np.float64), np.asarray(LOGITS_FAKE, np.float64)
  # r = [2, -1, 0.5, 0], f = [-3, 1.5, 0, -0.5].
  lsgan, hinge, wgan = losses.get("lsgan"), losses.get("hinge"), losses.get("wasserstein")
  np.testing.assert_allclose(lsgan.d_loss(LOGITS_REAL, LOGITS_FAKE),
                             0.5 * (1 + 4 + 0.25 + 1) / 4 + 0.5 * (9 + 2.25 + 0 + 0.25) / 4, rtol=1e-6)
  np.testing.assert_allclose(lsgan.g_loss(LOGITS_FAKE), 0.5 * (16 + 0.25 + 1 + 2.25) / 4, rtol=1e-6)
  # Hinge: relu(1 - r) = [0, 2, 0.5, 1]; relu(1 + f) = [0, 2.5, 1, 0.5].
  np.testing.assert_allclose(hinge.d_loss(LOGITS_REAL, LOGITS_FAKE), 3.5 / 4 + 4.0 / 4, rtol=1e-6)
  np.testing.assert_allclose(hinge.g_loss(LOGITS_FAKE), -f.mean(), rtol=1e-6)
  np.testing.assert_allclose(wgan.d_loss(LOGITS_REAL, LOGITS_FAKE), f.mean() - r.mean(), rtol=1e-6)
  np.testing.assert_allclose(wgan.g_loss(LOGITS_FAKE), -f.mean(), rtol=1e-6)
