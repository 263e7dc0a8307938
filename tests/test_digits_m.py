"""The offline `digits_m` builder: MNIST-M's blend |patch - digit| over scikit-learn's digits, held-out test photos."""
import hashlib
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image
from sklearn.datasets import load_digits

from gan_jax import data
from gan_jax.data import digits_m
from gan_jax.errors import UserError


def _prepare(data_dir):
  builder = tfds.builder("digits_m", data_dir=str(data_dir))
  builder.download_and_prepare()
  return builder


def _served(builder, split):
  return tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1, shuffle_files=False))


@pytest.fixture(scope="module")
def builder(data_dir):
  return data.load_builder("digits_m", data_dir)  # The session's copy, which the translation tests train on.


def test_blend_is_the_absolute_difference_of_patch_and_digit():
  patches = np.array([[[[200, 10, 0], [0, 128, 255]]]], np.uint8)  # [1, 1, 2, 3]
  digits = np.array([[[255, 0]]], np.uint8)                          # [1, 1, 2]
  expected = np.array([[[[55, 245, 255], [0, 128, 255]]]], np.uint8)  # Inverted under the stroke, the patch off it.
  np.testing.assert_array_equal(digits_m.blend(digits, patches), expected)
  with pytest.raises(ValueError, match="patches"):
    digits_m.blend(digits, patches[..., :1])


def test_splits_hold_the_scaled_sklearn_digits_and_their_labels_in_order(builder):
  assert builder.info.splits["train"].num_examples == 1500 * 10
  assert builder.info.splits["test"].num_examples == 297 * 4
  digits = load_digits()
  small = np.round(digits.images * 255 / 16).astype(np.uint8)
  scaled = np.stack([np.asarray(Image.fromarray(d).resize((32, 32), Image.Resampling.BILINEAR)) for d in small])
  for split, rows, blends in (("train", slice(0, 1500), 10), ("test", slice(1500, 1797), 4)):
    served = _served(builder, split)
    assert served["digit"].shape[1:] == (32, 32, 1) and served["image"].shape[1:] == (32, 32, 3)
    np.testing.assert_array_equal(served["label"], np.repeat(digits.target[rows], blends))
    np.testing.assert_array_equal(served["digit"][..., 0], np.repeat(scaled[rows], blends, axis=0))
    first = served["image"][:blends]  # One digit's blends: the same strokes in different patches.
    assert len({im.tobytes() for im in first}) == blends
  # The halves of train that unpaired training takes hold disjoint digits.
  train = digits_m.make_examples("train")
  assert not set(train["index"][:7500]) & set(train["index"][7500:])
  assert scaled.min() == 0 and scaled.max() == 255  # Bilinear upscaling keeps the blank background and full strokes.


def test_served_examples_are_the_generated_ones(builder):
  for split in digits_m.SPLITS:
    served, made = _served(builder, split), digits_m.make_examples(split)
    for feature in ("digit", "image", "label"):
      np.testing.assert_array_equal(served[feature], made[feature], err_msg=f"{split}/{feature}")


def _find_patch(image, digit, photos):
  """(photo index, top, left) of a 32x32 crop whose blend with `digit` [32, 32] is `image`, or None."""
  r, c = np.argwhere(digit == 0)[0]  # Off the strokes the image is the photo's pixel itself.
  for p, photo in enumerate(photos):
    tops, lefts = np.nonzero(np.all(photo[r:photo.shape[0] - 31 + r, c:photo.shape[1] - 31 + c] == image[r, c], -1))
    for top, left in zip(tops, lefts):
      if np.array_equal(digits_m.blend(digit[None], photo[None, top:top + 32, left:left + 32])[0], image):
        return p, top, left
  return None


@pytest.mark.parametrize("split", digits_m.SPLITS)
def test_images_blend_their_digit_into_a_crop_of_their_splits_photos(builder, split):
  served = _served(builder, split)
  photos, other_photos = digits_m.load_photos(split), digits_m.load_photos("test" if split == "train" else "train")
  found = [_find_patch(image, digit[..., 0], photos) for image, digit in zip(served["image"][:12], served["digit"])]
  assert None not in found
  assert len({p for p, _, _ in found}) > 1  # Patches come from several photos.
  assert _find_patch(served["image"][0], served["digit"][0, ..., 0], other_photos) is None


def test_preparing_twice_gives_identical_examples(builder, tmp_path):
  def checksum(b):
    digest = hashlib.sha256()
    for split in digits_m.SPLITS:
      served = _served(b, split)
      for feature in ("digit", "image", "label"):
        digest.update(np.ascontiguousarray(served[feature]).tobytes())
    return digest.hexdigest()

  assert checksum(builder) == checksum(_prepare(tmp_path))


def test_test_photos_are_held_out_and_ship_inside_the_installed_packages():
  import skimage.data
  import sklearn.datasets
  train, test = set(digits_m.photo_names("train")), set(digits_m.photo_names("test"))
  assert train and test and not train & test
  assert "skimage.data/motorcycle_right.png" not in train  # The stereo twin of a test photo.
  roots = (os.path.dirname(skimage.data.__file__), os.path.join(os.path.dirname(sklearn.datasets.__file__), "images"))
  for split in digits_m.SPLITS:
    paths = digits_m.photo_paths(split)
    assert len(paths) == len(digits_m.photo_names(split)) and all(os.path.isfile(p) for p in paths)
    assert all(os.path.dirname(p) in roots for p in paths)
    assert all(photo.ndim == 3 and photo.shape[-1] == 3 and min(photo.shape[:2]) >= 300
               for photo in digits_m.load_photos(split))
  assert not set(digits_m.photo_paths("train")) & set(digits_m.photo_paths("test"))
  with pytest.raises(UserError, match="no split 'validation'"):
    digits_m.photo_names("validation")


def test_train_images_are_coloured_and_mid_grey_on_average(builder):
  images = _served(builder, "train")["image"].astype(np.float64)
  channel_means = images.mean(axis=(0, 1, 2))  # [3]
  assert np.all((channel_means > 60) & (channel_means < 190)), channel_means
  assert np.ptp(channel_means) > 10, channel_means
  # Per image the channels differ too (not grey patches), for most examples.
  per_image = images.mean(axis=(1, 2))  # [N, 3]
  assert np.mean(np.ptp(per_image, axis=1) > 5) > 0.5
