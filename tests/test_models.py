"""Every registered model: init and output shapes at the resolutions it supports, and its initialisation."""
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import config as config_lib, models
from gan_jax.errors import UserError

from conftest import EXPERIMENTS, init_variables


def _experiments_using(name):
  return [e for e in EXPERIMENTS if config_lib.load_experiment(e, "runlocal").model_name == name]


@pytest.mark.parametrize("name", models.names())
def test_every_registered_model_builds_from_an_experiment_and_fits_its_data(name):
  # Discovered from the registry: a new model file needs an experiment config that uses it, and its tiny variant
  # must make samples of the data's shape that its discriminator takes.
  using = _experiments_using(name)
  assert using, f"model {name!r} has no experiment config in experiments/"
  config = config_lib.load_experiment(using[0], "runlocal")
  gan = models.make(name, config.model.to_dict())
  if not hasattr(gan, "generator"):  # Translation networks: A images -> B images, PatchGAN logit maps on B.
    a = np.zeros((3, *gan.shape_a), np.float32)
    g_vars = init_variables(gan.g_ab, jax.random.PRNGKey(1), a, train=False)
    fake = jax.jit(lambda v, x: gan.g_ab.apply(v, x, train=False))(g_vars, a)
    assert fake.shape == (3, *gan.shape_b) and np.all(np.isfinite(fake))
    d_vars = init_variables(gan.d_b, jax.random.PRNGKey(2), fake, train=False)
    assert jax.jit(lambda v, x: gan.d_b.apply(v, x, train=False))(d_vars, fake).shape[0] == 3
    return
  # The latents and each network's forward pass are each one compiled program: eagerly, every operation of a
  # new shape compiles on its own (a StyleGAN2's ~180 of them: 12 s).
  labels = {"labels": np.arange(3, dtype=np.int32) % gan.num_classes} if gan.num_classes else {}
  if gan.text_dim:   # Text to image: G and D take a sentence feature too, AttnGAN's G the words (here 4) too.
    labels = {"sentence": np.ones((3, gan.text_dim), np.float32)}
  g_labels = dict(labels)
  if "words" in inspect.signature(type(gan.generator).__call__).parameters:
    g_labels.update(words=np.ones((3, 4, gan.text_dim), np.float32), mask=np.ones((3, 4), bool))
  z = jax.jit(lambda key: models.sample_latents(gan, key, 3))(jax.random.PRNGKey(0))
  g_vars = init_variables(gan.generator, jax.random.PRNGKey(1), z, train=False, **g_labels)
  fake = jax.jit(lambda v, z: gan.generator.apply(v, z, train=False, **g_labels))(g_vars, z)
  assert fake.shape == (3, *gan.data_shape) and np.all(np.isfinite(fake))
  d_vars = init_variables(gan.discriminator, jax.random.PRNGKey(2), fake, train=False, **labels)
  out = jax.jit(lambda v, x: gan.discriminator.apply(v, x, train=False, **labels))(d_vars, fake)
  assert (out[0] if gan.aux else out).shape == (3,)


@pytest.mark.parametrize("spectral_norm", [False, True])
@pytest.mark.parametrize("resolution,channels", [(8, 1), (14, 1), (16, 1), (28, 1), (32, 3), (64, 3)])
def test_dcgan_shapes(resolution, channels, spectral_norm):
  gan = models.make("dcgan", dict(resolution=resolution, channels=channels, latent_dim=16, g_width=4, d_width=4,
                                  d_spectral_norm=spectral_norm))
  # Inputs from numpy and jitted forward passes: eagerly, jax.random.normal compiles threefry (0.5 s) and each
  # layer's operations compile one by one, again for every resolution.
  z = np.random.default_rng(0).standard_normal((3, 16)).astype(np.float32)
  g_vars = init_variables(gan.generator, jax.random.PRNGKey(1), z, train=False)
  fake = jax.jit(lambda v, z: gan.generator.apply(v, z, train=False))(g_vars, z)
  assert fake.shape == (3, resolution, resolution, channels) == (3, *gan.data_shape)
  assert float(np.max(np.abs(fake))) <= 1.0  # tanh output
  d_vars = init_variables(gan.discriminator, jax.random.PRNGKey(2), fake, train=False)
  assert jax.jit(lambda v, x: gan.discriminator.apply(v, x, train=False))(d_vars, fake).shape == (3,)


def test_dcgan_layout_and_init():
  gan = models.make("dcgan", dict(resolution=64, channels=3, g_width=128, d_width=64))
  g_vars = init_variables(gan.generator, jax.random.PRNGKey(0), np.zeros((1, 100), np.float32), train=False)
  # The DCGAN paper's 64x64 generator: 4x4x1024 -> 8x8x512 -> 16x16x256 -> 32x32x128 -> 64x64x3.
  shapes = [v.shape for k, v in sorted(g_vars["params"].items()) if k.startswith("ConvTranspose")
            for v in [v["kernel"]]]
  assert [s[-1] for s in shapes] == [512, 256, 128, 3]
  assert g_vars["params"]["Dense_0"]["kernel"].shape == (100, 4 * 4 * 1024)
  kernel = np.asarray(g_vars["params"]["ConvTranspose_1"]["kernel"])
  np.testing.assert_allclose(kernel.std(), 0.02, rtol=0.02)  # N(0, 0.02), Radford et al. Sec. 4.
  assert abs(kernel.mean()) < 1e-3
  d_vars = init_variables(gan.discriminator, jax.random.PRNGKey(0), np.zeros((1, 64, 64, 3), np.float32), train=False)
  assert "BatchNorm_0" in d_vars["batch_stats"] and "BatchNorm_0" not in str(d_vars["params"]["Conv_0"])


@pytest.mark.parametrize("resolution", [3, 12, 20, 48, 100])
def test_impossible_resolution_is_a_user_error(resolution):
  with pytest.raises(UserError, match=f"resolution {resolution}"):
    models.make("dcgan", dict(resolution=resolution, channels=1))


def test_discriminator_without_norm_has_no_batch_stats():
  gan = models.make("dcgan", dict(resolution=28, channels=1, d_width=8, d_norm="none"))
  d_vars = init_variables(gan.discriminator, jax.random.PRNGKey(0), np.zeros((2, 28, 28, 1), np.float32), train=False)
  assert set(d_vars) == {"params"}


@pytest.mark.parametrize("pack", [1, 4])
def test_mlp_shapes_and_pacgan_sizes(pack):
  gan = models.make("mlp", {})
  z = np.random.default_rng(0).standard_normal((5, 2)).astype(np.float32)  # Eagerly, jax.random compiles threefry.
  g_vars = init_variables(gan.generator, jax.random.PRNGKey(1), z, train=False)
  points = jax.jit(lambda v, z: gan.generator.apply(v, z, train=False))(g_vars, z)
  assert points.shape == (5, 2) == (5, *gan.data_shape) and not gan.makes_images
  # PacGAN's G: 2 -> 400 -> 400 -> 400 -> 400 -> 2, no hidden biases; D: maxout 200 units x 5 pieces.
  kernels = [g_vars["params"][f"Dense_{i}"]["kernel"].shape for i in range(5)]
  assert kernels == [(2, 400), (400, 400), (400, 400), (400, 400), (400, 2)]
  assert "bias" not in g_vars["params"]["Dense_0"] and "bias" in g_vars["params"]["Dense_4"]
  d_vars = init_variables(gan.discriminator, jax.random.PRNGKey(2), np.zeros((5, 2 * pack), np.float32), train=False)
  assert d_vars["params"]["Maxout_0"]["Dense_0"]["kernel"].shape == (2 * pack, 1000)
  d_apply = jax.jit(lambda v, x: gan.discriminator.apply(v, x, train=False))
  assert d_apply(d_vars, np.ones((5, 2 * pack), np.float32)).shape == (5,)


def test_spectral_norm_matches_svd():
  # Miyato et al. 2018, Algorithm 1: power iteration, one step per training call; sigma converges to the
  # largest singular value and the normalised kernel has spectral norm 1.
  import flax.linen as nn
  from gan_jax.models import layers

  class Layer(nn.Module):
    @nn.compact
    def __call__(self, x, train):
      return layers.apply(nn.Dense(7, kernel_init=nn.initializers.normal(1.0)), x, spectral_norm=True, train=train)

  # Input from numpy, initialisation and each training call compiled once: eagerly, jax.random compiles threefry
  # and every call's dozen operations are dispatched one by one, 200 times.
  x = np.random.default_rng(0).standard_normal((4, 5)).astype(np.float32)
  variables = init_variables(Layer(), jax.random.PRNGKey(1), x, train=False)
  kernel = np.asarray(variables["params"]["Dense_0"]["kernel"])
  singular_values = np.linalg.svd(kernel, compute_uv=False)
  step = jax.jit(lambda state: Layer().apply({"params": variables["params"], **state}, x, train=True,
                                             mutable=["spectral"])[1])
  state = {"spectral": variables["spectral"]}
  for _ in range(200):
    state = step(state)
  sigma = float(state["spectral"]["SpectralNorm_0"]["Dense_0/kernel/sigma"])
  np.testing.assert_allclose(sigma, singular_values[0], rtol=1e-4)
  y = jax.jit(lambda state: Layer().apply({"params": variables["params"], **state}, x, train=False))(state)
  bias = np.asarray(variables["params"]["Dense_0"]["bias"])
  np.testing.assert_allclose(y, x @ (kernel / singular_values[0]) + bias, rtol=1e-4, atol=1e-5)


def test_dcgan_bfloat16_computes_in_bf16_with_float32_parameters():
  kwargs = dict(resolution=16, channels=1, latent_dim=16, g_width=8, d_width=8)
  f32, bf16 = models.make("dcgan", kwargs), models.make("dcgan", dict(kwargs, dtype="bfloat16"))
  # Input from numpy, and both precisions' forward passes of each network one compiled program: eagerly,
  # jax.random compiles threefry and each operation of each precision compiles on its own.
  z = np.random.default_rng(0).standard_normal((4, 16)).astype(np.float32)
  g_vars = init_variables(f32.generator, jax.random.PRNGKey(1), z, train=False)
  bf16_vars = init_variables(bf16.generator, jax.random.PRNGKey(1), z, train=False)
  assert jax.tree.structure(g_vars) == jax.tree.structure(bf16_vars)
  assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(bf16_vars))
  fake32, fake16 = map(np.asarray, jax.jit(  # As numpy arrays: their difference below compiles nothing.
      lambda v, z: tuple(gan.generator.apply(v, z, train=False) for gan in (f32, bf16)))(g_vars, z))
  assert fake16.dtype == jnp.float32                      # Outputs are handed on in float32.
  assert 0 < float(np.max(np.abs(fake16 - fake32))) < 0.05  # bf16 rounding: different, but close.
  d_vars = init_variables(f32.discriminator, jax.random.PRNGKey(2), fake32, train=False)
  logits32, logits16 = jax.jit(lambda v, x: tuple(gan.discriminator.apply(v, x, train=False) for gan in (f32, bf16)))(
      d_vars, fake32)
  assert logits16.dtype == jnp.float32
  np.testing.assert_allclose(logits16, logits32, atol=0.05)
  with pytest.raises(UserError, match="unknown config.model.dtype 'float16'"):
    models.make("dcgan", dict(kwargs, dtype="float16"))
