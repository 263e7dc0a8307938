"""Offline TFDS builder `digits`: scikit-learn's handwritten digits (UCI optdigits test set), shipped with sklearn.

1,797 greyscale 8x8 images with 17 grey levels (0..16, rescaled here to 0..255) and labels 0-9, one `train`
split (slice it, e.g. `train[:80%]`, for held-out data). Prepared locally, no network needed.
"""
import numpy as np
import tensorflow_datasets as tfds


class Digits(tfds.core.GeneratorBasedBuilder):
  """scikit-learn's `load_digits` as a TFDS dataset."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "8x8 images rescaled from 0..16 to 0..255 (round(v * 255 / 16))."}

  def _info(self):
    return self.dataset_info_from_configs(
        description=__doc__,
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(8, 8, 1)),
            "label": tfds.features.ClassLabel(num_classes=10),
        }),
        supervised_keys=("image", "label"),
        homepage="https://scikit-learn.org/stable/modules/generated/sklearn.datasets.load_digits.html",
        citation="Alpaydin & Kaynak 1998, Optical Recognition of Handwritten Digits, UCI ML Repository.",
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Everything ships inside scikit-learn.
    return {"train": self._generate_examples()}

  def _generate_examples(self):
    from sklearn.datasets import load_digits  # pylint: disable=g-import-not-at-top
    digits = load_digits()
    images = np.round(digits.images * 255.0 / 16.0).astype(np.uint8)[..., None]  # [1797, 8, 8, 1]
    for index, (image, label) in enumerate(zip(images, digits.target)):
      yield index, {"image": image, "label": int(label)}
