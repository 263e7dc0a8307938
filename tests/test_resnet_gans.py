"""The ResNet GANs (models/resnet.py): SNGAN's layout and parameter count, SAGAN's self-attention against a
hand-written one, BigGAN's hierarchical latents and orthogonal regularisation against their closed forms.
Their 2-step runs are test_train's, with every experiment's."""
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import REPO, init_variables
from gan_jax import config as config_lib, regularizers
from gan_jax.errors import UserError
from gan_jax.models import resnet


def _count(params):
  return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))


def _conv(k, c_in, c_out):  # A k x k convolution's weights and bias.
  return k * k * c_in * c_out + c_out


def test_sngan_cifar_networks_have_the_papers_layout_and_size():
  # Miyato et al. 2018, Table 4 (CIFAR-10): G z(128) -> 4x4x256, three up-sampling blocks of 256 channels (two 3x3
  # convolutions and BatchNorms, a 1x1 shortcut), BN - ReLU - conv3x3 -> 3; D an optimised block and three
  # pre-activation blocks of 128 channels, down-sampling in the first two, learned shortcuts only there.
  models = resnet.make_models(resolution=32, channels=3)
  key = jax.random.PRNGKey(0)  # Shapes only (jax.eval_shape): nothing is compiled.
  g = jax.eval_shape(lambda: models.generator.init(key, jnp.zeros((2, 128)), train=False))["params"]
  d = jax.eval_shape(lambda: models.discriminator.init(key, jnp.zeros((2, 32, 32, 3)), train=False))["params"]
  block = 2 * _conv(3, 256, 256) + _conv(1, 256, 256) + 2 * 2 * 256
  assert _count(g) == (128 * 4 * 4 * 256 + 4 * 4 * 256) + 3 * block + 2 * 256 + _conv(3, 256, 3) == 4_276_739
  assert sorted(g) == ["BatchNorm_0", "block0", "block1", "block2", "linear", "to_image"]
  assert [("shortcut" in d[f"block{i}"]) for i in range(4)] == [True, True, False, False]
  assert _count(d) == (_conv(3, 3, 128) + _conv(3, 128, 128) + _conv(1, 3, 128)          # Optimised block.
                       + 2 * _conv(3, 128, 128) + _conv(1, 128, 128)                      # Down-sampling block.
                       + 2 * 2 * _conv(3, 128, 128) + 128 + 1) == 1_053_825               # Two at 8x8, the logit.
  assert resnet.d_downsampling(32) == (True, True, False, False)


def test_discriminator_sums_relu_features_and_adds_the_projection():
  # The logit is linear(sum over positions of ReLU(h)) + <embed(y), that sum> (Miyato & Koyama 2018, Eq. 3), h the
  # last block's 8x8 map: global sum pooling, not mean.
  models = resnet.make_models(resolution=32, channels=1, d_width=8, num_classes=10, d_spectral_norm=False)
  x = jax.random.normal(jax.random.PRNGKey(1), (3, 32, 32, 1))
  labels = jnp.array([0, 4, 9])
  variables = init_variables(models.discriminator, jax.random.PRNGKey(0), x, train=False, labels=labels)
  logits, captured = jax.jit(lambda v: models.discriminator.apply(
      v, x, train=False, labels=labels, capture_intermediates=lambda m, _: m.name == "block3"))(variables)
  h = captured["intermediates"]["block3"]["__call__"][0]
  assert h.shape == (3, 8, 8, 8)
  pooled = np.asarray(jnp.sum(jax.nn.relu(h), axis=(1, 2)))
  p = variables["params"]
  expected = pooled @ np.asarray(p["linear"]["kernel"])[:, 0] + float(p["linear"]["bias"][0])
  expected += np.sum(np.asarray(p["embed"]["embedding"])[np.asarray(labels)] * pooled, axis=-1)
  np.testing.assert_allclose(np.asarray(logits), expected, rtol=1e-5, atol=1e-5)


def _hand_attention(x, p, gamma):
  """Zhang et al. 2019, Eq. 1-3 with the authors' channels: theta C/8, phi C/8 and g C/2 (both max-pooled 2x2)."""
  b, h, w, c = x.shape
  conv = lambda v, name: np.einsum("bhwc,cd->bhwd", v, np.asarray(p[name]["kernel"])[0, 0])
  pool = lambda v: v.reshape(b, h // 2, 2, w // 2, 2, -1).max(axis=(2, 4))
  theta = conv(x, "theta").reshape(b, h * w, -1)
  phi = pool(conv(x, "phi")).reshape(b, h * w // 4, -1)
  g = pool(conv(x, "g")).reshape(b, h * w // 4, -1)
  s = np.einsum("bqc,bkc->bqk", theta, phi)
  beta = np.exp(s - s.max(-1, keepdims=True))
  beta /= beta.sum(-1, keepdims=True)
  o = conv(np.einsum("bqk,bkc->bqc", beta, g).reshape(b, h, w, c // 2), "o")
  return x + gamma * o


def test_self_attention_is_the_identity_at_gamma_0_and_equals_a_hand_written_one():
  block = resnet.SelfAttention(spectral_norm=False, kernel_init=nn.initializers.normal(0.3))
  x = jax.random.normal(jax.random.PRNGKey(2), (2, 8, 8, 16))
  variables = init_variables(block, jax.random.PRNGKey(0), x, train=False)
  p = variables["params"]
  assert float(p["gamma"]) == 0.0 and p["theta"]["kernel"].shape[-1] == p["phi"]["kernel"].shape[-1] == 2
  assert p["g"]["kernel"].shape[-1] == 8 and p["o"]["kernel"].shape[-1] == 16
  apply = jax.jit(lambda v: block.apply(v, x, train=False))
  np.testing.assert_array_equal(np.asarray(apply(variables)), np.asarray(x))
  variables = {"params": {**p, "gamma": jnp.float32(0.7)}}
  np.testing.assert_allclose(np.asarray(apply(variables)),
                             _hand_attention(np.asarray(x, np.float64), variables["params"], 0.7), rtol=2e-4,
                             atol=2e-5)


def test_sagan_places_attention_at_its_resolution_in_both_networks():
  models = resnet.make_models(resolution=32, channels=3, g_width=16, d_width=16, attention_resolution=16,
                              g_spectral_norm=True)
  key = jax.random.PRNGKey(0)
  g = jax.eval_shape(lambda: models.generator.init(key, jnp.zeros((2, 128)), train=False))
  d = jax.eval_shape(lambda: models.discriminator.init(key, jnp.zeros((2, 32, 32, 3)), train=False))
  assert "attention" in g["params"] and "attention" in d["params"]
  assert "spectral" in g and "spectral" in d  # Spectral norm in G too.
  with pytest.raises(UserError, match="attention_resolution must be 0 .* one of \\[8, 16\\]"):
    resnet.make_models(resolution=32, channels=3, attention_resolution=32)


def test_biggan_splits_z_over_the_blocks_and_conditions_each_batchnorm_on_its_chunk():
  # Brock et al. 2019, Sec. 3 / BigGAN-PyTorch's BigGAN.py: z (128) in 4 chunks of 32; the first feeds the linear
  # layer, chunk i + 1 (with the 128-d shared embedding) block i's BatchNorm gains and biases, 1 + W_g y and W_b y.
  models = resnet.make_models(resolution=32, channels=1, g_width=16, num_classes=10, hierarchical=True,
                              g_spectral_norm=True, weight_init="ortho")
  z = jax.random.normal(jax.random.PRNGKey(3), (2, 128))
  labels = jnp.array([1, 2])
  variables = init_variables(models.generator, jax.random.PRNGKey(0), z, train=False, labels=labels)
  p = variables["params"]
  assert p["shared"]["embedding"].shape == (10, 128) and p["linear"]["kernel"].shape == (32, 4 * 4 * 16)
  assert p["block0"]["_Norm_0"]["gain"]["kernel"].shape == (128 + 32, 16)

  @jax.jit
  def block_inputs(z):
    _, captured = models.generator.apply(variables, z, train=False, labels=labels,
                                         capture_intermediates=lambda m, _: m.name in ("linear", "block0", "block1"))
    return [captured["intermediates"][name]["__call__"][0] for name in ("linear", "block0", "block1")]

  base = block_inputs(z)
  for chunk, changed in ((0, [True, True, True]), (1, [False, True, True]), (2, [False, False, True])):
    moved = block_inputs(z.at[:, 32 * chunk:32 * (chunk + 1)].add(1.0))
    assert [not np.allclose(a, b) for a, b in zip(base, moved)] == changed, chunk
  with pytest.raises(UserError, match="latent_dim must split into 3 equal chunks"):
    resnet.make_models(resolution=16, channels=1, hierarchical=True, latent_dim=128)


def test_orthogonal_regularisation_is_its_closed_form_and_twice_the_authors_gradient():
  # Brock et al. 2019, Sec. 3.1: beta ||W^T W * (1 - I)||_F^2 over G's filters; 1-D parameters and the shared
  # embedding are left out. BigGAN-PyTorch's utils.ortho adds 2 (W W^T * (1 - I)) W with W [outputs, fan_in]: the
  # gradient of half the penalty.
  rng = np.random.default_rng(0)
  kernel = rng.normal(size=(3, 3, 2, 4)).astype(np.float32)
  dense = rng.normal(size=(5, 3)).astype(np.float32)
  params = {"conv": {"kernel": kernel, "bias": np.ones(4, np.float32)}, "dense": {"kernel": dense},
            "shared": {"embedding": rng.normal(size=(10, 6)).astype(np.float32)}}

  def off_diagonal(w):  # w [fan_in, outputs]
    gram = w.T.astype(np.float64) @ w
    return np.sum((gram - np.diag(np.diag(gram))) ** 2)

  expected = off_diagonal(kernel.reshape(18, 4)) + off_diagonal(dense)
  np.testing.assert_allclose(float(regularizers.orthogonal(params)), expected, rtol=1e-5)
  q, _ = np.linalg.qr(rng.normal(size=(6, 4)))
  assert float(regularizers.orthogonal({"w": q.astype(np.float32)})) < 1e-10  # Orthonormal filters: no penalty.
  grads = jax.grad(regularizers.orthogonal)(params)
  w = kernel.reshape(18, 4).T  # PyTorch's view: [outputs, fan_in].
  authors = 2.0 * ((w @ w.T) * (1.0 - np.eye(4))) @ w
  np.testing.assert_allclose(np.asarray(grads["conv"]["kernel"]).reshape(18, 4).T, 2.0 * authors, rtol=1e-4)
  assert not np.any(np.asarray(grads["conv"]["bias"])) and not np.any(np.asarray(grads["shared"]["embedding"]))


def test_bad_model_settings_are_rejected_by_name():
  with pytest.raises(UserError, match="resolution 16 or 32"):
    resnet.make_models(resolution=64, channels=3)
  with pytest.raises(UserError, match="weight_init"):
    resnet.make_models(resolution=32, channels=3, weight_init="he")
  with pytest.raises(UserError, match="num_classes"):
    resnet.make_models(resolution=32, channels=3, num_classes=1)


def test_the_experiments_cr_argument_sets_the_papers_consistency_weights():
  # resnet_gans.py's cr: CR (Zhang et al. 2020: lambda 10 on reals), bCR (Zhao et al. 2021: 10 on reals and
  # fakes), zCR (lambda_dis 5, lambda_gen 0.5), icr (bCR + zCR); none by default.
  path = os.path.join(REPO, "experiments", "resnet_gans.py")
  weights = lambda arg: {k: v for k, v in config_lib.load_experiment(path, arg).regularizer.items()
                         if k in ("cr_real", "cr_fake", "zcr_d", "zcr_g") and v}
  assert weights("variant=biggan") == {}
  assert weights("variant=biggan,cr=cr") == {"cr_real": 10.0}
  assert weights("variant=biggan,cr=bcr") == {"cr_real": 10.0, "cr_fake": 10.0}
  assert weights("variant=sngan,cr=icr,runlocal") == {"cr_real": 10.0, "cr_fake": 10.0, "zcr_d": 5.0, "zcr_g": 0.5}
  with pytest.raises(UserError, match="unknown cr 'bcrr'"):
    config_lib.load_experiment(path, "cr=bcrr")
