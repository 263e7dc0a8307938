"""DiffAugment and ADA (gan_jax/augment.py; Zhao et al. 2020, Karras et al. 2020) against their definitions.
DiffAugment: shapes and ranges, translation as an integer shift filled with `fill`, cutout as one square of half the
side, colour on constant images, gradients. ADA: the identity at p = 0, geometry at known parameters (integer shifts
exact, rotations and scalings undone by their inverses), the colour transforms' closed forms, p's update rule.
Where StyleGAN2's and the plain GAN's phases apply them, and ADA's p moving in a DCGAN's steps and resuming exactly.
(scripts/check_ada_parity.py compares the pipeline with the authors' PyTorch AugmentPipe at fixed parameters.)"""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import REPO, assert_states_equal, resume_a_copy_without_its_last_checkpoint, tiny_config
from gan_jax import augment, config as config_lib, steps, train
from gan_jax.errors import UserError


def _images(seed=0, shape=(16, 8, 8, 1)):
  """Images uniform in [-0.9, 0.9], drawn by numpy: an eager jax.random.uniform of a new shape compiles threefry
  alone (0.5 s), and no test depends on the particular values."""
  return np.random.default_rng(seed).uniform(-0.9, 0.9, shape).astype(np.float32)


def test_translation_shifts_each_image_by_at_most_an_eighth_and_fills_what_it_uncovers():
  # One bright pixel per image at (4, 4) of an 8x8 image: after translation it is at (4 + dy, 4 + dx) with |dy|,
  # |dx| <= int(8 / 8 + 0.5) = 1, everything else is the fill value.
  # Inputs in numpy and every call jitted: eagerly, each small op of a new shape compiles alone.
  x = np.full((64, 8, 8, 1), -1.0, np.float32)
  x[:, 4, 4, 0] = 1.0
  y = np.asarray(jax.jit(lambda k, x: augment.translation(k, x, fill=-1.0))(jax.random.PRNGKey(0), x))
  shifts = set()
  for image in y[..., 0]:
    (r,), (c,) = np.nonzero(image == 1.0)
    assert abs(r - 4) <= 1 and abs(c - 4) <= 1 and np.sum(image != -1.0) == 1
    shifts.add((r - 4, c - 4))
  assert len(shifts) == 9   # All nine shifts occur.
  # A shift moves the content: an image's values are its own, shifted, or the fill.
  x = _images()
  y = np.asarray(jax.jit(lambda k, x: augment.translation(k, x, fill=0.5))(jax.random.PRNGKey(1), x))
  for a, b in zip(x, y):
    assert any(np.array_equal(b[max(dy, 0):8 + min(dy, 0), max(dx, 0):8 + min(dx, 0)],
                              a[max(-dy, 0):8 + min(-dy, 0), max(-dx, 0):8 + min(-dx, 0)])
               for dy in (-1, 0, 1) for dx in (-1, 0, 1))


def test_consistency_transform_is_a_flip_and_a_reflect_padded_shift_of_at_most_an_eighth():
  # CR's T (Zhang et al. 2020; PyTorch-StudioGAN's cr.py): each output image is one of the 2 x 5 x 5 candidates
  # (mirrored or not, then shifted by |dy|, |dx| <= int(16 / 8) = 2 with reflect padding), and all of them occur
  # in a batch of 512. Without flip and with ratio 0 it is the identity.
  x = _images(shape=(512, 16, 16, 2))
  y = np.asarray(jax.jit(augment.consistency_transform)(jax.random.PRNGKey(3), x))
  padded = {flip: np.pad(x[:, :, ::-1] if flip else x, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect")
            for flip in (False, True)}
  seen = set()
  for i in range(len(x)):
    found = [(flip, dy, dx) for flip in (False, True) for dy in range(-2, 3) for dx in range(-2, 3)
             if np.array_equal(y[i], padded[flip][i, 2 + dy:18 + dy, 2 + dx:18 + dx])]
    assert len(found) == 1, i
    seen.add(found[0])
  assert len(seen) == 2 * 5 * 5
  identity = jax.jit(lambda k, x: augment.consistency_transform(k, x, flip=False, ratio=0.0))
  np.testing.assert_array_equal(identity(jax.random.PRNGKey(3), x), x)


def test_cutout_sets_one_square_of_half_the_side_to_the_fill():
  x = np.full((200, 8, 8, 1), 0.5, np.float32)
  y = np.asarray(jax.jit(lambda k, x: augment.cutout(k, x, fill=-1.0))(jax.random.PRNGKey(0), x))[..., 0]
  areas = []
  for image in y:
    rows, cols = np.nonzero(image == -1.0)
    assert set(np.unique(image)) <= {0.5, -1.0} and len(rows)
    h, w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
    assert h <= 4 and w <= 4 and len(rows) == h * w   # One rectangle of at most 4 x 4 (it may cross the border).
    areas.append(h * w)
  assert max(areas) == 16 and min(areas) < 16


def test_color_on_constant_images_is_a_brightness_shift_and_keeps_shapes():
  # A constant grey image has no saturation or contrast to scale: only the brightness U(-0.5, 0.5) moves it.
  x = np.full((256, 4, 4, 1), 0.2, np.float32)
  y = np.asarray(jax.jit(augment.color)(jax.random.PRNGKey(0), x))
  shift = y[:, 0, 0, 0] - 0.2
  np.testing.assert_allclose(y, y[:, :1, :1, :1] * np.ones_like(y), atol=1e-6)
  assert shift.min() >= -0.5 and shift.max() <= 0.5 and shift.std() > 0.2
  colour = _images(shape=(8, 6, 6, 3))
  out = np.asarray(jax.jit(augment.diff_augment)(jax.random.PRNGKey(3), colour))   # Eagerly, each op compiles.
  assert out.shape == colour.shape and np.all(np.isfinite(out))


def test_diff_augment_is_differentiable():
  # Translation then cutout copies each input pixel to at most one output pixel: the gradient of the sum is 0 or 1.
  x = _images()
  grad = jax.jit(jax.grad(lambda x: jnp.sum(augment.diff_augment(jax.random.PRNGKey(0), x,
                                                                 ("translation", "cutout")))))(x)
  assert set(np.unique(np.asarray(grad))) <= {0.0, 1.0} and 0 < float(np.mean(grad)) < 1
  grad = np.asarray(jax.jit(jax.grad(lambda x: jnp.sum(jnp.square(augment.diff_augment(jax.random.PRNGKey(0), x)))))(x))
  assert np.all(np.isfinite(grad)) and float(np.max(np.abs(grad))) > 0


def _record_augment_calls(monkeypatch) -> list:
  """The shapes of the images every augmentation function augment.make returns is called on, from now on."""
  calls, make = [], augment.make
  monkeypatch.setattr(augment, "make", lambda config: (
      lambda f: f and (lambda k, x, p=None: calls.append(x.shape) or f(k, x, p)))(make(config)))
  return calls


def test_stylegan2_augments_everything_d_sees(data_dir, monkeypatch):
  # Traced, not compiled. The augmentation is traced for the fakes of g_main, the reals and fakes of d_main, and
  # R1's reals in d_reg (which is traced once for its metrics' shapes even when it is not due, and once more to
  # run when it is); without augmentation, never.
  calls = _record_augment_calls(monkeypatch)
  config = tiny_config("stylegan2_digits.py", data_dir, **{"augment.kind": "diffaugment", "augment.fill": -1.0})
  config_lib.validate(config)
  objective, txs = train.build(config)
  state = jax.eval_shape(lambda: objective.init(0, txs))
  batch = {"x": jax.ShapeDtypeStruct((1, config.batch_size, 8, 8, 1), jnp.float32)}
  traced = {}
  for active in (frozenset(), frozenset({"d_reg"})):
    calls.clear()
    jax.eval_shape(steps.make_train_step(objective, txs, active=active), state, batch)
    assert set(calls) == {(8, 8, 8, 1)}
    traced[active] = len(calls)
  assert traced == {frozenset(): 4, frozenset({"d_reg"}): 5}
  calls.clear()
  objective, txs = train.build(tiny_config("stylegan2_digits.py", data_dir))
  jax.eval_shape(steps.make_train_step(objective, txs, active=frozenset({"g_reg", "d_reg"})), state, batch)
  assert calls == []
  assert config_lib.load_experiment(os.path.join(REPO, "experiments", "stylegan2.py"),
                                    "augment=diffaugment").augment.fill == -1.0


@pytest.mark.parametrize("overrides,message", [
    ({"augment.kind": "adaptive"}, "unknown config.augment.kind 'adaptive'"),
    ({"augment.kind": "ada", "augment.pipe": "bgcfnc"}, "unknown config.augment.pipe 'bgcfnc'"),
    ({"augment.kind": "fixed", "augment.p": 1.5}, r"config.augment.p must be a probability in \[0, 1\]"),
    ({"augment.kind": "ada", "augment.ada_target": 1.0}, r"config.augment.ada_target must be in \(-1, 1\)"),
    ({"augment.kind": "ada", "augment.ada_interval": 0}, "config.augment.ada_interval must be a positive integer"),
    ({"augment.kind": "ada", "augment.ada_kimg": 0.0}, "config.augment.ada_kimg must be > 0"),
    ({"augment.kind": "diffaugment", "augment.policy": "color,zoom"}, "config.augment.policy"),
    ({"augment.kind": "diffaugment", "augment.fill": 2.0}, r"config.augment.fill must be a number in \[-1, 1\]"),
])
def test_bad_augment_configs_are_refused(data_dir, overrides, message):
  with pytest.raises(UserError, match=message):
    config_lib.validate(tiny_config("stylegan2_digits.py", data_dir, **overrides))


def test_augment_on_an_objective_without_it_is_refused(data_dir):
  config = tiny_config("pix2pix_edges2fashion.py", data_dir,
                       **{"augment.kind": "diffaugment"})
  with pytest.raises(UserError, match="not wired into objective 'pix2pix'"):
    config_lib.validate(config)


# --- ADA ---

def _smooth(shape=(4, 16, 16, 3)):
  """Band-limited images (a few low-frequency cosines): what resampling can undo to a small error."""
  b, h, w, c = shape
  rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
  phases = np.random.default_rng(0).uniform(0, 2 * np.pi, (b, 1, 1, c, 2))
  x = 0.5 * np.cos(2 * np.pi * rows[None, :, :, None] / h + phases[..., 0]) * np.cos(
      2 * np.pi * cols[None, :, :, None] / w + phases[..., 1])
  return x.astype(np.float32)


@pytest.mark.parametrize("channels", [1, 3])
def test_ada_is_the_identity_at_p_zero_and_changes_images_at_p_one(channels):
  # Up-sampling and down-sampling with the orthogonal sym6 filter undo each other, and every transform is drawn
  # but not applied: the output is the input to float error. At p = 1 every transform applies.
  x = _images(shape=(8, 16, 16, channels))
  ada = jax.jit(augment.ada)
  np.testing.assert_allclose(ada(jax.random.PRNGKey(0), x, 0.0), x, atol=2e-6)
  y = np.asarray(ada(jax.random.PRNGKey(0), x, 1.0))                      # Checked in numpy: no eager op compiles.
  assert y.shape == x.shape and np.all(np.isfinite(y)) and float(np.mean(np.abs(y - x))) > 0.2


def test_ada_geometry_at_known_parameters():
  # Integer translations move pixels exactly (reflected at the border); a rotation and a scaling followed by their
  # inverses give the image back, up to the resampling filters' error on band-limited images.
  x = _smooth()
  b = x.shape[0]
  # geometric jitted once for all its calls (one shape), the matrices made in one program, the checks in numpy:
  # eagerly, each op compiles alone (130 compilations); all the resamplings as one program compile 6x longer.
  jitted = jax.jit(augment.geometric)
  geometric = lambda x, g_inv: np.asarray(jitted(x, g_inv))
  shift, quarter_turn, pairs = jax.jit(lambda: (
      augment.translate2d(-jnp.full(b, 3.0), -jnp.full(b, 2.0)), augment.rotate2d(jnp.full(b, np.pi / 2)),
      [(augment.rotate2d(jnp.full(b, 0.6)), augment.rotate2d(jnp.full(b, -0.6))),
       (augment.scale2d(jnp.full(b, 0.7), 0.7), augment.scale2d(jnp.full(b, 1 / 0.7), 1 / 0.7))]))()
  shifted = geometric(x, shift)                                            # Right 3, down 2.
  np.testing.assert_allclose(shifted[:, 2:, 3:], x[:, :-2, :-3], atol=1e-5)
  np.testing.assert_allclose(shifted[:, 2:, 2], x[:, :-2, 1], atol=1e-5)   # Column -1 reflects column 1.
  quarter = geometric(x, quarter_turn)
  # (Not exact, as in the authors' pipeline: the sym6 filter is not symmetric, so resampling does not commute with
  # rotations; exact for integer shifts.)
  np.testing.assert_allclose(quarter, np.rot90(x, 1, axes=(1, 2)), atol=0.03)
  for forward, backward in pairs:
    there_and_back = geometric(geometric(x, forward), backward)
    np.testing.assert_allclose(there_and_back[:, 4:12, 4:12], x[:, 4:12, 4:12], atol=0.01)
    assert float(np.max(np.abs(geometric(x, forward) - x))) > 0.2


def test_ada_colour_transforms_have_their_closed_forms():
  x = _images(shape=(3, 4, 4, 3))
  ones, zeros = np.ones(3, np.float32), np.zeros(3, np.float32)
  b, c = np.asarray([0.1, -0.3, 0.0], np.float32), np.asarray([0.5, 1.0, 2.0], np.float32)
  # Each transform made and applied as one program, the closed forms in numpy: eagerly, each op compiles alone.
  colour = jax.jit(lambda x, *parameters: augment.apply_color(x, augment.color_transform(*parameters)))
  np.testing.assert_allclose(colour(x, b, c, zeros),
                             (x + b[:, None, None, None]) * c[:, None, None, None], atol=1e-6)   # Brightness first.
  # Luma flip reflects about the grey axis: the grey component negates, the colour part stays.
  grey = np.mean(x, axis=-1, keepdims=True)
  np.testing.assert_allclose(colour(x, zeros, ones, ones), x - 2 * grey, atol=1e-6)
  # Saturation s scales the distance from grey; hue rotation keeps grey and the distance from it.
  s = np.asarray([0.0, 0.5, 3.0], np.float32)
  np.testing.assert_allclose(colour(x, zeros, ones, zeros, zeros, s), grey + s[:, None, None, None] * (x - grey),
                             atol=1e-6)
  turned = np.asarray(colour(x, zeros, ones, zeros, np.full(3, 2.0, np.float32), ones))
  np.testing.assert_allclose(np.mean(turned, -1), grey[..., 0], atol=1e-6)
  np.testing.assert_allclose(np.linalg.norm(turned - grey, axis=-1), np.linalg.norm(x - grey, axis=-1), atol=1e-5)
  # Grey images: the authors' reduction; a luma flip negates them, and hue and saturation are never drawn.
  g = x[..., :1]
  np.testing.assert_allclose(colour(g, zeros, ones, ones), -g, atol=1e-6)
  # Drawn for grey images, the matrices hold no hue rotation or saturation: their RGB part is c (I - 2 f v v^T),
  # symmetric with equal off-diagonal entries; drawn for RGB images, hue rotations make them asymmetric. (Drawn
  # eagerly: jitted, each channel count's draws compile threefry at XLA's full optimisation, 2.5x slower.)
  rgb_part = lambda channels: np.asarray(augment.color_matrix(jax.random.PRNGKey(0), 64, channels, 1.0))[:, :3, :3]
  grey_m, rgb_m = rgb_part(1), rgb_part(3)
  off = grey_m[:, ~np.eye(3, dtype=bool)]
  np.testing.assert_allclose(off, off[:, :1] * np.ones_like(off), atol=1e-6)
  assert np.max(np.abs(rgb_m - np.swapaxes(rgb_m, 1, 2))) > 0.1


def test_ada_p_moves_by_its_speed_towards_the_target_and_stays_in_0_1():
  # A scripted r_t: above the target p rises by batch x interval / (1000 kimg) per adjustment, below it falls,
  # and it stays within [0, 1] (Karras et al. 2020, Sec. 3; training_loop.py with the clamp at 1 added).
  step = 32 * 4 / (1000 * 2.0)
  adjust = jax.jit(augment.ada_adjust, static_argnums=(2, 3, 4, 5))      # One program: eagerly, each op compiles.
  p, history = 0.0, []
  for r_t in [0.8] * 20 + [0.6] + [0.2] * 40:
    p = float(adjust(p, r_t, 0.6, 32, 4, 2.0))
    history.append(p)
  np.testing.assert_allclose(history[:3], [step, 2 * step, 3 * step], rtol=1e-6)
  assert history[15] == 1.0 and history[19] == 1.0 and history[20] == 1.0   # Clamped at 1; r_t = target: no move.
  np.testing.assert_allclose(history[21], 1.0 - step, rtol=1e-6)
  assert history[-1] == 0.0 and min(history) == 0.0


def test_the_plain_gan_augments_what_d_sees_moves_adas_p_and_resumes_it_exactly(data_dir, tmp_path, monkeypatch):
  # DCGAN with ADA, p moving after every step, through the trainer: the augmentation is traced for the reals and
  # fakes of D's update and the fakes of G's; p (logged as it augmented the step) moves by batch / (1000 ada_kimg)
  # towards E[sign D(x)] = 0.6 from the previous step's logged r_t, and the accumulator holds the last step's sign.
  # Then the same workdir without its last checkpoint, resumed from step 2: p, its pending r_t sum and everything
  # else continue bitwise.
  calls = _record_augment_calls(monkeypatch)
  config = lambda: tiny_config("dcgan_digits.py", data_dir, total_steps=3, checkpoint_every=1, sample_every=100,
                               evals=(), **{"augment.kind": "ada", "augment.p": 0.5, "augment.ada_interval": 1,
                                            "augment.ada_kimg": 0.08})
  config_lib.validate(config())
  full = train.train_and_evaluate(config(), str(tmp_path / "full"))
  assert calls == [(config().batch_size, 16, 16, 1)] * 3   # Traced once: D's reals and fakes, G's fakes.
  with open(tmp_path / "full" / "metrics.jsonl") as f:
    rows = [r for r in map(json.loads, f) if "g_loss" in r]
  move = config().batch_size / 80.0
  assert len(rows) == 3 and rows[0]["augment_p"] == 0.5
  for before, after in zip(rows, rows[1:]):
    expected = np.clip(before["augment_p"] + move * np.sign(before["d_real_sign"] - 0.6), 0, 1)
    np.testing.assert_allclose(after["augment_p"], expected, rtol=1e-6)
  assert int(full.extra["ada_count"]) == 1
  np.testing.assert_allclose(float(full.extra["ada_signs"]), rows[2]["d_real_sign"], rtol=1e-6)
  resumed = resume_a_copy_without_its_last_checkpoint(config(), tmp_path / "full", 3)
  assert int(resumed.step) == 3
  assert_states_equal(full, resumed)


@pytest.mark.parametrize("experiment,overrides,message", [
    ("wgangp_grid.py", {"augment.kind": "diffaugment"}, "augments images; model 'mlp' makes points"),
    ("dcgan_digits.py", {"augment.kind": "ada", "loss": "wasserstein"}, "which loss 'wasserstein' does not define"),
])
def test_augment_combinations_the_plain_gan_refuses(data_dir, experiment, overrides, message):
  with pytest.raises(UserError, match=message):
    config_lib.validate(tiny_config(experiment, data_dir, **overrides))
