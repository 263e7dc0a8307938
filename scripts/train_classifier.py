"""Trains a domain classifier (gan_jax/metrics/classifier.py) on a labelled TFDS dataset and saves it as .npz.

  python scripts/train_classifier.py --dataset=digits --resolution=16 --out=gan_jax/metrics/weights/digits.npz
  python scripts/train_classifier.py --dataset=mnist --resolution=28 --steps=8000 \
      --out=gan_jax/metrics/weights/mnist.npz [--data_dir=DIR]           # and --dataset=fashion_mnist
  python scripts/train_classifier.py --dataset=digits_m --resolution=32 --channels=3 \
      --out=gan_jax/metrics/weights/digits_m.npz

Images go through the training pipeline's preprocessing (crop, resize to --resolution, [-1, 1]). Held out:
the `test` split when the dataset has one, else the last 20% of `train`. Deterministic on CPU for a seed; the
bundled `digits` classifier is this script's first command (its held-out accuracy is in the README).

The task protocol of pixel-level domain adaptation (Bousmalis et al. 2017, PixelDA; Hoffman et al. 2018, CyCADA,
Sec. 4.1): a classifier trained on labelled source images translated by a trained generator (--translate=WORKDIR,
the run's sampled direction, with the run's input channels), tested on real target images (--test_feature):

  python scripts/train_classifier.py --dataset=digits_m --resolution=32 --channels=3 --feature=digit \
      --train_split='train[:50%]' --test_feature=image --translate=runs/cyclegan_digits_m --out=/tmp/cycada.npz

Without --translate the same flags give the source-only baseline, and --feature=image --train_split='train[50%:]'
the target-trained one. The result line is also written as JSON beside --out (.json).
"""
import json
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
_TRAIN_SPLIT = flags.DEFINE_string("train_split", None, "Training split; default: `train`, or `train[:80%]` when "
                                   "the dataset has no `test` split.")
_TEST_FEATURE = flags.DEFINE_string("test_feature", None, "The image feature the held-out accuracy is measured on; "
                                    "default: --feature.")
_TRANSLATE = flags.DEFINE_string("translate", None, "Workdir of a trained translation run (pix2pix, CycleGAN): the "
                                 "training images are translated by its generator before the classifier sees them.")
_STEPS = flags.DEFINE_integer("steps", 3000, "Training steps (batch 64).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of initialisation and batches.")
_OUT = flags.DEFINE_string("out", None, "Output .npz path.")


def main(argv):
  cli.check_command_line(argv, out=_OUT.value)
  from gan_jax import data, sample  # pylint: disable=g-import-not-at-top
  from gan_jax.metrics import classifier  # pylint: disable=g-import-not-at-top
  with cli.user_errors_reported(False):
    shape = (_RESOLUTION.value, _RESOLUTION.value, _CHANNELS.value)
    builder = data.load_builder(_DATASET.value, _DATA_DIR.value)
    train_split, test_split = ("train", "test") if "test" in builder.info.splits else ("train[:80%]", "train[80%:]")
    train_split = _TRAIN_SPLIT.value or train_split
    test_feature = _TEST_FEATURE.value or _FEATURE.value
    if "label" not in builder.info.features:
      raise errors.UserError(f"dataset {_DATASET.value!r} has no labels to train a classifier on")
    translate = sample.translator(_TRANSLATE.value) if _TRANSLATE.value else None

    def load(split, feature, shape):
      source = data.Source(name=_DATASET.value, split=split, data_dir=_DATA_DIR.value,
                           features=(("x", feature, shape), ("label", "label", ())))
      examples = data.load_examples(source)
      return examples["x"], examples["label"]

    x_train, y_train = load(train_split, _FEATURE.value, translate.input_shape if translate else shape)
    if translate:
      x_train = translate(x_train)
      if x_train.shape[1:] != shape:
        raise errors.UserError(f"--translate={_TRANSLATE.value} outputs images {x_train.shape[1:]}, not the "
                               f"classifier's {shape} (--resolution, --channels)")
    x_test, y_test = load(test_split, test_feature, shape)
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    params = classifier.train(x_train, y_train, num_classes=num_classes, seed=_SEED.value, steps=_STEPS.value)
    test_accuracy = classifier.accuracy(params, x_test, y_test, num_classes=num_classes)
    meta = dict(dataset=_DATASET.value, feature=_FEATURE.value, train_split=train_split, test_split=test_split,
                test_feature=test_feature, translate=_TRANSLATE.value or "", resolution=_RESOLUTION.value,
                channels=_CHANNELS.value, num_classes=num_classes, feature_dim=128, steps=_STEPS.value,
                seed=_SEED.value, test_accuracy=round(test_accuracy, 4))
    classifier.save(_OUT.value, params, meta)
    with open(os.path.splitext(_OUT.value)[0] + ".json", "w") as f:
      f.write(json.dumps(dict(meta, num_train=len(y_train), num_test=len(y_test))) + "\n")
  print(f"wrote {_OUT.value}: held-out accuracy {test_accuracy:.4f} on {test_feature} of {test_split} "
        f"({len(y_test)} images), trained on {len(y_train)} {'translated ' if translate else ''}{_FEATURE.value} "
        f"images of {train_split}")


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
