"""Offline TFDS builder `digits_m`: MNIST-M's recipe (Ganin et al. 2016) applied to scikit-learn's 8x8 digits.

Ganin, Ustinova, Ajakan, Germain, Larochelle, Laviolette, Marchand & Lempitsky 2016, "Domain-Adversarial Training
of Neural Networks", JMLR 17(59), Sec. 5.2, the MNIST -> MNIST-M experiment (first in Ganin & Lempitsky 2015,
ICML, Sec. 5.1): each digit is blended into a colour patch cut at random from a photo, output = |patch - digit|
per channel, which inverts the photo's colours inside the strokes.
Here the digits are scikit-learn's 1,797 8x8 digits (17 grey levels 0..16, rescaled to 0..255 as in `digits`),
scaled to 32x32 with PIL's bilinear filter, and the photos are the colour photos that ship inside the installed
scikit-learn and scikit-image wheels (read from the package directories, never downloaded), so the dataset is
prepared fully offline.

Features: `digit` uint8 [32, 32, 1], the grey digit (domain A); `image` uint8 [32, 32, 3], its digit-M blend
(domain B); `label`, the class 0-9. Splits (no shuffling: examples are served in scikit-learn's order, each digit's
BLENDS in a row): `train`, load_digits' first 1,500 digits x 10 blends (15,000 examples), patches from TRAIN_PHOTOS;
`test`, the remaining 297 digits x 4 (1,188), patches from TEST_PHOTOS, photos the train split never sees.

What the translation objectives use it for: unpaired CycleGAN (Zhu et al. 2017) learns grey digits <-> digits-M
from two disjoint halves of train, domain A = `digit` of `train[:50%]`, domain B = `image` of `train[50%:]`;
paired pix2pix (Isola et al. 2017) trains on `digit` -> `image` of the same examples, the supervised upper bound
the unpaired model is compared with; `label` lets a digit classifier score whether a translation kept the class.
"""
import importlib
import os

import numpy as np
import tensorflow_datasets as tfds

from gan_jax.errors import UserError

SIZE = 32                # Side of the digits and patches (MNIST-M's images are 28x28; 32 suits the DCGAN-style nets).
NUM_TRAIN_DIGITS = 1500  # load_digits()[:1500] is train, [1500:] (297 digits) is test.
SEED = 0                 # Photo choice and crop positions: np.random.default_rng((SEED, split index)).
# Blends per digit: each digit is blended into this many patches, one example each, digit by digit (MNIST-M has
# one per digit of MNIST's 60,000; 1,500 digits with one patch each gave a digits-M classifier 47% accurate on
# held-out photos). Every blend of a digit sits in the same half of train, so train[:50%] and train[50%:] still
# hold disjoint digits.
BLENDS = {"train": 10, "test": 4}

# (package, folder inside it, file): colour photos shipped in the wheels (scikit-learn 1.9.1, scikit-image 0.26.0).
# Left out: skimage's color.png (a synthetic colour wheel), hubble_deep_field.jpg and retina.jpg (mostly black),
# and motorcycle_right.png (the stereo twin of motorcycle_left.png, which would leak test's scene into train).
TRAIN_PHOTOS = (
    ("sklearn.datasets", "images", "china.jpg"),
    ("sklearn.datasets", "images", "flower.jpg"),
    ("skimage.data", "", "astronaut.png"),
    ("skimage.data", "", "chelsea.png"),
    ("skimage.data", "", "coffee.png"),
    ("skimage.data", "", "ihc.png"),
)
TEST_PHOTOS = (
    ("skimage.data", "", "rocket.jpg"),
    ("skimage.data", "", "motorcycle_left.png"),
)
SPLITS = ("train", "test")


def _check_split(split):
  if split not in SPLITS:
    raise UserError(f"digits_m has no split {split!r}; it has: {', '.join(SPLITS)}")


def photo_names(split):
  """The photos (package/file names) the patches of `split` are cut from."""
  _check_split(split)
  return tuple(f"{package}/{name}" for package, _, name in (TRAIN_PHOTOS if split == "train" else TEST_PHOTOS))


def photo_paths(split):
  """Absolute paths of the photos of `split` inside the installed packages; a UserError names any that is missing."""
  _check_split(split)
  paths = []
  for package, folder, name in TRAIN_PHOTOS if split == "train" else TEST_PHOTOS:
    path = os.path.join(os.path.dirname(importlib.import_module(package).__file__), folder, name)
    if not os.path.isfile(path):
      raise UserError(f"digits_m needs {name}, which is not in the installed {package} ({path}): install the "
                      f"versions pinned in requirements.txt")
    paths.append(path)
  return tuple(paths)


def load_photos(split):
  """The photos of `split` as uint8 arrays [H, W, 3] (RGB, no alpha), at their native resolution."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  photos = []
  for path in photo_paths(split):
    with Image.open(path) as photo:
      if photo.mode not in ("RGB", "RGBA"):
        raise UserError(f"digits_m needs colour photos but {path} is {photo.mode}")
      photos.append(np.asarray(photo.convert("RGB"), np.uint8))
  return photos


def scaled_digits():
  """(digits uint8 [1797, 32, 32], labels int64 [1797]): load_digits' images rescaled from 0..16 to 0..255 (round(v *
  255 / 16), as the `digits` builder) and scaled from 8x8 to 32x32 with PIL's bilinear filter, in load_digits' order."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from sklearn.datasets import load_digits  # pylint: disable=g-import-not-at-top
  digits = load_digits()
  small = np.round(digits.images * 255.0 / 16.0).astype(np.uint8)  # [1797, 8, 8]
  large = np.stack([np.asarray(Image.fromarray(d, "L").resize((SIZE, SIZE), Image.Resampling.BILINEAR))
                    for d in small])
  return large, digits.target


def split_indices(split, num_digits=1797):
  """Indices into load_digits of the digits of `split`: [0, 1500) train, [1500, 1797) test."""
  _check_split(split)
  return np.arange(NUM_TRAIN_DIGITS) if split == "train" else np.arange(NUM_TRAIN_DIGITS, num_digits)


def random_patches(photos, num, rng):
  """uint8 [num, 32, 32, 3]: each a 32x32 crop of a photo chosen uniformly, at a uniform position (MNIST-M's patches
  are random crops of BSDS500 photos; ours are crops at the photos' native resolution)."""
  which = rng.integers(0, len(photos), num)
  heights = np.array([p.shape[0] for p in photos])[which]
  widths = np.array([p.shape[1] for p in photos])[which]
  tops, lefts = rng.integers(0, heights - SIZE + 1), rng.integers(0, widths - SIZE + 1)
  return np.stack([photos[i][t:t + SIZE, l:l + SIZE] for i, t, l in zip(which, tops, lefts)])


def blend(digits, patches):
  """MNIST-M's blend (Ganin et al. 2016, Sec. 5.2): |patch - digit| per channel.

  digits uint8 [N, H, W] (strokes bright), patches uint8 [N, H, W, 3] -> uint8 [N, H, W, 3]: the patch where the
  digit is 0, its colours inverted (255 - patch) where the digit is 255."""
  digits, patches = np.asarray(digits), np.asarray(patches)
  if digits.shape != patches.shape[:-1] or patches.shape[-1] != 3:
    raise ValueError(f"blend takes digits [N, H, W] and patches [N, H, W, 3], not {digits.shape} and {patches.shape}")
  return np.abs(patches.astype(int) - digits[..., None].astype(int)).astype(np.uint8)


def make_examples(split):
  """{"digit": uint8 [N, 32, 32, 1], "image": uint8 [N, 32, 32, 3], "label": int64 [N], "index": int64 [N]} for
  `split`, in the order the builder serves them: each digit of the split BLENDS[split] times in a row, with its own
  patch each time; `index` is the digit's index in load_digits. Deterministic: the patches come from
  np.random.default_rng((SEED, split's position in SPLITS))."""
  _check_split(split)
  all_digits, all_labels = scaled_digits()
  indices = np.repeat(split_indices(split, len(all_digits)), BLENDS[split])
  digits = all_digits[indices]                              # [N, 32, 32]
  rng = np.random.default_rng((SEED, SPLITS.index(split)))
  patches = random_patches(load_photos(split), len(indices), rng)
  return {"digit": digits[..., None], "image": blend(digits, patches), "label": all_labels[indices], "index": indices}


class DigitsM(tfds.core.GeneratorBasedBuilder):
  """Digits-M: scikit-learn's digits blended into patches of photos shipped with scikit-learn and scikit-image."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "32x32 (PIL bilinear), |patch - digit|; train 1,500 digits x 10 blends / test 297 x 4, "
                            "test patches from held-out photos."}

  def _info(self):
    return self.dataset_info_from_configs(
        description=__doc__,
        features=tfds.features.FeaturesDict({
            "digit": tfds.features.Image(shape=(SIZE, SIZE, 1)),
            "image": tfds.features.Image(shape=(SIZE, SIZE, 3)),
            "label": tfds.features.ClassLabel(num_classes=10),
        }),
        supervised_keys=("digit", "image"),
        disable_shuffling=True,  # Served in load_digits' order, so train[:50%] and train[50%:] are fixed halves.
        homepage="https://scikit-learn.org/stable/modules/generated/sklearn.datasets.load_digits.html",
        citation="Ganin et al. 2016, Domain-Adversarial Training of Neural Networks, JMLR 17(59), Sec. 5.2.",
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Digits and photos ship inside scikit-learn and scikit-image.
    return {split: self._generate_examples(split) for split in SPLITS}

  def _generate_examples(self, split):
    examples = make_examples(split)
    for key, (digit, image, label) in enumerate(zip(examples["digit"], examples["image"], examples["label"])):
      yield key, {"digit": digit, "image": image, "label": int(label)}
