"""DiffAugment (gan_jax/augment.py; Zhao et al. 2020) against its definition: shapes and ranges, translation as an
integer shift filled with `fill`, cutout as one square of half the side, colour on constant images, gradients, and
where StyleGAN2's phases apply it."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import REPO, tiny_config
from gan_jax import augment, config as config_lib, steps, train
from gan_jax.errors import UserError


def _images(seed=0, shape=(16, 8, 8, 1)):
  return jax.random.uniform(jax.random.PRNGKey(seed), shape, jnp.float32, -0.9, 0.9)


def test_translation_shifts_each_image_by_at_most_an_eighth_and_fills_what_it_uncovers():
  # One bright pixel per image at (4, 4) of an 8x8 image: after translation it is at (4 + dy, 4 + dx) with |dy|,
  # |dx| <= int(8 / 8 + 0.5) = 1, everything else is the fill value.
  x = jnp.full((64, 8, 8, 1), -1.0).at[:, 4, 4, 0].set(1.0)
  y = np.asarray(jax.jit(lambda k, x: augment.translation(k, x, fill=-1.0))(jax.random.PRNGKey(0), x))
  shifts = set()
  for image in y[..., 0]:
    (r,), (c,) = np.nonzero(image == 1.0)
    assert abs(r - 4) <= 1 and abs(c - 4) <= 1 and np.sum(image != -1.0) == 1
    shifts.add((r - 4, c - 4))
  assert len(shifts) == 9   # All nine shifts occur.
  # A shift moves the content: an image's values are its own, shifted, or the fill.
  x = _images()
  y = np.asarray(augment.translation(jax.random.PRNGKey(1), x, fill=0.5))
  for a, b in zip(np.asarray(x), y):
    assert any(np.array_equal(b[max(dy, 0):8 + min(dy, 0), max(dx, 0):8 + min(dx, 0)],
                              a[max(-dy, 0):8 + min(-dy, 0), max(-dx, 0):8 + min(-dx, 0)])
               for dy in (-1, 0, 1) for dx in (-1, 0, 1))


def test_cutout_sets_one_square_of_half_the_side_to_the_fill():
  x = jnp.full((200, 8, 8, 1), 0.5)
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
  x = jnp.full((256, 4, 4, 1), 0.2)
  y = np.asarray(jax.jit(augment.color)(jax.random.PRNGKey(0), x))
  shift = y[:, 0, 0, 0] - 0.2
  np.testing.assert_allclose(y, y[:, :1, :1, :1] * np.ones_like(y), atol=1e-6)
  assert shift.min() >= -0.5 and shift.max() <= 0.5 and shift.std() > 0.2
  colour = _images(shape=(8, 6, 6, 3))
  out = augment.diff_augment(jax.random.PRNGKey(3), colour)
  assert out.shape == colour.shape and np.all(np.isfinite(out))


def test_diff_augment_is_differentiable():
  # Translation then cutout copies each input pixel to at most one output pixel: the gradient of the sum is 0 or 1.
  x = _images()
  grad = jax.jit(jax.grad(lambda x: jnp.sum(augment.diff_augment(jax.random.PRNGKey(0), x,
                                                                 ("translation", "cutout")))))(x)
  assert set(np.unique(np.asarray(grad))) <= {0.0, 1.0} and 0 < float(jnp.mean(grad)) < 1
  grad = jax.jit(jax.grad(lambda x: jnp.sum(jnp.square(augment.diff_augment(jax.random.PRNGKey(0), x)))))(x)
  assert np.all(np.isfinite(grad)) and float(jnp.max(jnp.abs(grad))) > 0


def _config(data_dir, **overrides):
  return tiny_config(os.path.join(REPO, "experiments", "stylegan2_digits.py"), data_dir, **overrides)


def test_stylegan2_augments_everything_d_sees(data_dir, monkeypatch):
  # Traced, not compiled. The augmentation is traced for the fakes of g_main, the reals and fakes of d_main, and
  # R1's reals in d_reg (which is traced once for its metrics' shapes even when it is not due, and once more to
  # run when it is); without augmentation, never.
  calls = []
  make = augment.make
  monkeypatch.setattr(augment, "make", lambda config: (lambda f: f and (lambda k, x: calls.append(x.shape) or f(k, x)))(
      make(config)))
  config = _config(data_dir, **{"augment.kind": "diffaugment", "augment.fill": -1.0})
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
  objective, txs = train.build(_config(data_dir))
  jax.eval_shape(steps.make_train_step(objective, txs, active=frozenset({"g_reg", "d_reg"})), state, batch)
  assert calls == []
  assert config_lib.load_experiment(os.path.join(REPO, "experiments", "stylegan2.py"),
                                    "augment=diffaugment").augment.fill == -1.0


@pytest.mark.parametrize("overrides,message", [
    ({"augment.kind": "ada"}, "unknown config.augment.kind 'ada'"),
    ({"augment.kind": "diffaugment", "augment.policy": "color,zoom"}, "config.augment.policy"),
    ({"augment.kind": "diffaugment", "augment.fill": 2.0}, r"config.augment.fill must be a number in \[-1, 1\]"),
])
def test_bad_augment_configs_are_refused(data_dir, overrides, message):
  with pytest.raises(UserError, match=message):
    config_lib.validate(_config(data_dir, **overrides))


def test_augment_on_an_objective_without_it_is_refused(data_dir):
  config = tiny_config(os.path.join(REPO, "experiments", "dcgan_digits.py"), data_dir,
                       **{"augment.kind": "diffaugment"})
  with pytest.raises(UserError, match="not wired into objective 'gan'"):
    config_lib.validate(config)
