"""Trains a domain classifier (gan_jax/metrics/classifier.py) on a labelled TFDS dataset and saves it as .npz.

  python scripts/train_classifier.py --dataset=digits --resolution=16 --out=gan_jax/metrics/weights/digits.npz
  python scripts/train_classifier.py --dataset=mnist --resolution=28 --steps=8000 \
      --out=gan_jax/metrics/weights/mnist.npz [--data_dir=DIR]           # and --dataset=fashion_mnist
  python scripts/train_classifier.py --dataset=digits_m --resolution=32 --channels=3 \
      --out=gan_jax/metrics/weights/digits_m.npz

Images go through the training pipeline's preprocessing (crop, resize to --resolution, [-1, 1]). Held out:
the `test` split when the dataset has one, else the last 20% of `train`. Deterministic on CPU for a seed; the
bundled `digits` classifier is this script's first command (its held-out accuracy is in the README).
"""
import os
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gan_jax import cli, errors  # noqa: E402

_DATASET = flags.DEFINE_string("dataset", "digits", "A labelled TFDS image dataset.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "TFDS data_dir.")
_RESOLUTION = flags.DEFINE_integer("resolution", 16, "Input resolution of the classifier.")
_CHANNELS = flags.DEFINE_integer("channels", 1, "Input channels of the classifier.")
_FEATURE = flags.DEFINE_string("feature", "image", "The dataset's image feature to classify (digits_m: `image` is "
                               "domain B, digits-M; `digit` domain A, grey digits).")
_STEPS = flags.DEFINE_integer("steps", 3000, "Training steps (batch 64).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of initialisation and batches.")
_OUT = flags.DEFINE_string("out", None, "Output .npz path.")


def main(argv):
  cli.check_command_line(argv, out=_OUT.value)
  from gan_jax import data  # pylint: disable=g-import-not-at-top
  from gan_jax.metrics import classifier  # pylint: disable=g-import-not-at-top
  with cli.user_errors_reported(False):
    shape = (_RESOLUTION.value, _RESOLUTION.value, _CHANNELS.value)
    splits = data.load_builder(_DATASET.value, _DATA_DIR.value).info.splits
    train_split, test_split = ("train", "test") if "test" in splits else ("train[:80%]", "train[80%:]")
    if "label" not in data.load_builder(_DATASET.value, _DATA_DIR.value).info.features:
      raise errors.UserError(f"dataset {_DATASET.value!r} has no labels to train a classifier on")

    def load(split):
      source = data.Source(name=_DATASET.value, split=split, data_dir=_DATA_DIR.value,
                           features=(("x", _FEATURE.value, shape), ("label", "label", ())))
      examples = data.load_examples(source)
      return examples["x"], examples["label"]

    (x_train, y_train), (x_test, y_test) = load(train_split), load(test_split)
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    params = classifier.train(x_train, y_train, num_classes=num_classes, seed=_SEED.value, steps=_STEPS.value)
    test_accuracy = classifier.accuracy(params, x_test, y_test, num_classes=num_classes)
    meta = dict(dataset=_DATASET.value, feature=_FEATURE.value, train_split=train_split, test_split=test_split,
                resolution=_RESOLUTION.value, channels=_CHANNELS.value, num_classes=num_classes, feature_dim=128,
                steps=_STEPS.value, seed=_SEED.value, test_accuracy=round(test_accuracy, 4))
    classifier.save(_OUT.value, params, meta)
  print(f"wrote {_OUT.value}: held-out accuracy {test_accuracy:.4f} on {test_split} ({len(y_test)} images)")


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
