"""pix2pix and CycleGAN objectives: the image pool, aligned jitter, CycleGAN's losses against hand-computed values
on toy networks, exact resume of a CycleGAN run with its pools, sampling translations from given inputs."""
import os
import shutil
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
import pytest

from gan_jax import checkpoint, evaluate, images, models, sample, steps, train
from gan_jax.objectives import _translation, cyclegan
from gan_jax.errors import UserError

from conftest import REPO, assert_states_equal, init_state, tiny_config


def test_image_pool_fills_then_swaps_half_the_time():
  # util/image_pool.py: the first P fakes are stored and shown; afterwards each new fake is shown as it is or, with
  # probability 1/2, replaces a random stored one, which is shown instead.
  pool, filled = jnp.zeros((3, 1)), jnp.int32(0)
  query = jax.jit(cyclegan.pool_query)
  shown, pool, filled = query(pool, filled, jnp.array([[1.0], [2.0]]), jax.random.PRNGKey(0))
  np.testing.assert_array_equal(shown, [[1.0], [2.0]])
  np.testing.assert_array_equal(pool, [[1.0], [2.0], [0.0]])
  assert int(filled) == 2
  shown, pool, filled = query(pool, filled, jnp.array([[3.0], [4.0]]), jax.random.PRNGKey(1))
  assert int(filled) == 3 and float(shown[0, 0]) == 3.0 and float(pool[2, 0]) == 3.0  # The last free slot.
  old = 0
  for i in range(400):  # A full pool: each fake is shown, or swapped for a stored one, with probability 1/2.
    before = np.asarray(pool)
    new = jnp.array([[10.0 + i]])
    shown, pool, filled = query(pool, filled, new, jax.random.PRNGKey(100 + i))
    if float(shown[0, 0]) != 10.0 + i:  # Swapped: D sees a stored fake, and the new one takes its place.
      old += 1
      assert float(shown[0, 0]) in before[:, 0] and 10.0 + i in np.asarray(pool)[:, 0]
    else:
      np.testing.assert_array_equal(pool, before)
  assert int(filled) == 3 and 160 < old < 240  # 400 draws of p = 1/2: 200 +- 10 standard deviations of 10.


def test_a_pool_of_size_zero_shows_the_new_fakes():
  fakes = jnp.arange(4.0).reshape(2, 2)
  shown, pool, filled = cyclegan.pool_query(jnp.zeros((0, 2)), jnp.int32(0), fakes, jax.random.PRNGKey(0))
  np.testing.assert_array_equal(shown, fakes)
  assert pool.shape == (0, 2) and int(filled) == 0


def test_random_jitter_crops_input_and_target_at_the_same_place():
  # The target is a linear function of the input and nothing reaches the clip at |1|, so resizing and the same
  # crop keep the relation.
  x = jax.random.uniform(jax.random.PRNGKey(0), (4, 8, 8, 1), minval=-0.5, maxval=0.5)
  y = jnp.concatenate([x, -x, 0.5 * x], axis=-1)
  for flip in (False, True):
    jx, jy = _translation.random_jitter(jax.random.PRNGKey(3), (x, y), _translation.load_size(8), flip)
    assert jx.shape == x.shape and jy.shape == y.shape
    np.testing.assert_allclose(jy, jnp.concatenate([jx, -jx, 0.5 * jx], axis=-1), atol=1e-6)
  assert _translation.load_size(256) == 286 and _translation.load_size(32) == 36
  crops = [np.asarray(_translation.random_jitter(jax.random.PRNGKey(k), (x,), 9, False)[0]) for k in range(4)]
  assert not all(np.array_equal(crops[0], c) for c in crops[1:])  # Offsets are drawn.


def test_random_jitter_resizes_as_pil_bicubic_and_clips():
  # The official get_transform resizes with PIL's BICUBIC: a crop at offset (0, 0) of a 32 -> 36 resize is PIL's.
  from PIL import Image  # pylint: disable=g-import-not-at-top
  image = np.asarray(jax.random.uniform(jax.random.PRNGKey(1), (32, 32), minval=-1, maxval=1))
  pil = np.asarray(Image.fromarray(image, mode="F").resize((36, 36), Image.BICUBIC))
  assert pil.max() > 1 or pil.min() < -1   # Bicubic overshoots; PIL's uint8 images clip, so do we.
  found = None
  for k in range(64):
    crop = np.asarray(_translation.random_jitter(jax.random.PRNGKey(k), (image[None, :, :, None],), 36, False)[0])
    if np.allclose(crop[0, :, :, 0], np.clip(pil[:32, :32], -1, 1), atol=1e-4):
      found = k
      break
  assert found is not None


class _Scale(nn.Module):
  """A toy generator: x * s, s a learned scalar per output channel (its input channel count must match)."""
  channels: int

  @nn.compact
  def __call__(self, x, train, stochastic=None):
    del train, stochastic
    return x * self.param("s", lambda key: jnp.full((self.channels,), 0.5))


class _Sum(nn.Module):
  """A toy PatchGAN: per-pixel logit w * sum over channels, [B, H, W]."""

  @nn.compact
  def __call__(self, x, train):
    del train
    return self.param("w", lambda key: jnp.array(0.25)) * jnp.sum(x, axis=-1)


def _toy_cyclegan_step(data_dir, pool_size):
  """(objective, txs, state after one step, metrics) of CycleGAN with G = x * 0.5, D = 0.25 * 3 * value."""
  config = tiny_config(os.path.join(REPO, "experiments", "cyclegan_digits_m.py"), data_dir)
  toy = models.make("translation", config.model.to_dict())
  toy = type(toy)(g_ab=_Scale(3), g_ba=_Scale(3), d_a=_Sum(), d_b=_Sum(), shape_a=(2, 2, 3), shape_b=(2, 2, 3))
  objective = cyclegan.make(config, toy, pool_size=pool_size)
  txs = train.build(config, objective=objective)[1]
  state = init_state(objective, 0, txs)
  assert ("pool_a" in state.extra) == (pool_size > 0)   # Orbax cannot save arrays of size 0: no pools then.
  batch = {"a": jnp.full((1, 1, 2, 2, 3), 0.8), "b": jnp.full((1, 1, 2, 2, 3), -0.4)}
  return (objective, txs, *jax.jit(steps.make_train_step(objective, txs))(state, batch))


def test_cyclegan_losses_against_hand_computed_values(data_dir):
  metrics = _toy_cyclegan_step(data_dir, pool_size=50)[-1]
  # G_ab = G_ba = x * 0.5: fake_b = 0.4, fake_a = -0.2, rec_a = 0.2, rec_b = -0.1, idt_a = G_ab(b) = -0.2,
  # idt_b = G_ba(a) = 0.4. Cycle |0.2 - 0.8| + |-0.1 + 0.4| = 0.9; identity |-0.2 + 0.4| + |0.4 - 0.8| = 0.6.
  np.testing.assert_allclose(float(metrics["g_cycle"]), 0.9, rtol=1e-6)
  np.testing.assert_allclose(float(metrics["g_identity"]), 0.6, rtol=1e-6)
  # LSGAN (Mao et al. 2017) for G: mean (D(fake) - 1)^2 with D = 0.25 * 3 * value: D_b(0.4) = 0.3, D_a(-0.2) = -0.15.
  np.testing.assert_allclose(float(metrics["g_loss"]), (0.3 - 1) ** 2 + (-0.15 - 1) ** 2, rtol=1e-5)
  # D's loss on real and pooled fakes (the pool is empty: the fakes themselves), halved: 0.5 [(D(real) - 1)^2 +
  # D(fake)^2] with the fakes of the generators before their update.
  np.testing.assert_allclose(float(metrics["d_b_loss"]), 0.5 * ((0.25 * 3 * -0.4 - 1) ** 2 + 0.3 ** 2), rtol=1e-5)
  np.testing.assert_allclose(float(metrics["d_a_loss"]), 0.5 * ((0.25 * 3 * 0.8 - 1) ** 2 + 0.15 ** 2), rtol=1e-5)


def test_cyclegan_without_a_pool_trains_saves_and_restores(data_dir, tmp_path):
  # pool_size 0 (the paper's ablation without history): D sees the newest fakes, which on the first step is what
  # a pool shows too; the state, without pool arrays, saves and restores.
  with_pool = _toy_cyclegan_step(data_dir, pool_size=50)[-1]
  objective, txs, state, metrics = _toy_cyclegan_step(data_dir, pool_size=0)
  for name in ("d_a_loss", "d_b_loss", "g_loss", "g_cycle"):
    np.testing.assert_allclose(float(metrics[name]), float(with_pool[name]), rtol=1e-6)
  from gan_jax import checkpoint  # pylint: disable=g-import-not-at-top
  saver = checkpoint.Checkpointer(str(tmp_path))
  saver.save(state)
  saver.wait()
  restored = checkpoint.Checkpointer(str(tmp_path), read_only=True).restore(init_state(objective, 1, txs))[0]
  for x, y in zip(jax.tree.leaves(state), jax.tree.leaves(restored), strict=True):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_cyclegan_needs_equal_shapes_for_identity_and_rejects_plain_gan_keys(data_dir):
  config = tiny_config(os.path.join(REPO, "experiments", "cyclegan_digits_m.py"), data_dir)
  config.model.channels_a = 1
  from gan_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  with pytest.raises(UserError, match="the identity loss maps B images through G_ab, so A and B must have one shape"):
    config_lib.validate(config)
  config = tiny_config(os.path.join(REPO, "experiments", "pix2pix_digits_m.py"), data_dir, pack=2)
  with pytest.raises(UserError, match="config.pack is a plain-GAN setting that objective 'pix2pix' does not use"):
    config_lib.validate(config)


@pytest.mark.xdist_group("cyclegan_digits_m")  # After test_train's tiny run of the same programs.
def test_cyclegan_resumes_exactly_with_its_pools(data_dir, tmp_path):
  # The tiny config's batches of 8 go into pools of 10: the first step fills 8 slots, the second fills 2 and swaps
  # with the rest, so the step resumed from checkpoint 1 must restore the pools, their fill counts and the
  # learning-rate schedule's count exactly. (Two runs of the golden run's programs: the same workdir without its last
  # checkpoint resumes.)
  config = tiny_config(os.path.join(REPO, "experiments", "cyclegan_digits_m.py"), data_dir, evals=(),
                       sample_every=100)
  assert config.objective_kwargs.pool_size == 10 and config.batch_size == 8 and config.checkpoint_every == 1
  full = train.train_and_evaluate(config, str(tmp_path / "full"))
  shutil.copytree(tmp_path / "full", tmp_path / "split")
  shutil.rmtree(tmp_path / "split" / "checkpoints" / "2")
  half, _ = checkpoint.Checkpointer(str(tmp_path / "split"), read_only=True).restore(full)
  assert int(half.extra["pool_a_filled"]) == 8 and int(half.step) == 1
  resumed = train.train_and_evaluate(config, str(tmp_path / "split"))
  assert int(full.extra["pool_a_filled"]) == 10 and np.abs(np.asarray(full.extra["pool_b"])).sum() > 0
  assert_states_equal(full, resumed)
  # gan_jax.evaluate --direction=ba scores G_ba's translations of B test images against the real A ones.
  records = [evaluate.evaluate(str(tmp_path / "full"), num=8, ref_num=8, evals=["fid"], direction=direction)
             for direction in ("ab", "ba")]
  assert [(r["step"], r["direction"]) for r in records] == [(2, "ab"), (2, "ba")]
  assert np.isfinite(records[1]["fid/fid"]) and records[1]["fid/fid"] != records[0]["fid/fid"]


def test_pix2pix_samples_translate_given_inputs_and_write_them_beside(data_dir, tmp_path):
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(tiny_config(os.path.join(REPO, "experiments", "pix2pix_digits_m.py"), data_dir,
                                       evals=()), workdir)
  inputs = np.zeros((3, 32, 32, 1), np.uint8)
  inputs[:, 8:24, 14:18] = 255  # A bar: a grey "1".
  np.save(tmp_path / "inputs.npy", inputs)
  out = tmp_path / "out.npz"
  result = subprocess.run([sys.executable, "-m", "gan_jax.sample", f"--workdir={workdir}", "--num=3",
                           f"--inputs={tmp_path / 'inputs.npy'}", f"--out={out}", f"--grid={tmp_path / 'g.png'}"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  written = np.load(out)
  assert written["images"].shape == (3, 32, 32, 3) and written["images"].dtype == np.uint8
  # The grid: 2 examples per row (ceil(sqrt(3 / 2))), each input (grey, given 3 channels) beside its translation.
  picture = np.asarray(Image.open(tmp_path / "g.png"))[::4, ::4]
  assert picture.shape == (2 * 33 + 1, 4 * 33 + 1, 3)
  np.testing.assert_array_equal(picture[1:33, 1:33], np.repeat(inputs[0], 3, axis=-1))
  np.testing.assert_array_equal(picture[1:33, 34:66], written["images"][0])
  np.testing.assert_array_equal(picture[34:66, 1:33, 0], inputs[2, ..., 0])
  np.testing.assert_allclose(written["inputs"], inputs / 127.5 - 1.0, atol=1e-6)
  again = sample.sample(workdir, 3, inputs=inputs.astype(np.float32) / 127.5 - 1.0)[0]
  np.testing.assert_array_equal(again, written["images"])  # The CLI's samples are the library's.
  translate = sample.translator(workdir)  # scripts/train_classifier.py --translate's: the same translations.
  assert translate.input_shape == (32, 32, 1)
  np.testing.assert_array_equal(images.to_uint8(translate(inputs.astype(np.float32) / 127.5 - 1.0)), again)
  with pytest.raises(UserError, match="--direction applies to CycleGAN runs"):
    evaluate.evaluate(workdir, direction="ba")
  with pytest.raises(UserError, match=r"--inputs: images of shape \(32, 32, 3\), but this run's generator takes "
                                      r"\(32, 32, 1\)"):
    sample.sample(workdir, 2, inputs=np.zeros((2, 32, 32, 3), np.float32))
