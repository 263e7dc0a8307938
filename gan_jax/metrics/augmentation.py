"""A class-conditional generator as a source of training data, measured: the `augmentation` evaluator.

Three classifiers (classifier.CNN, trained by classifier.train with the same seed and steps) are each tested on
real held-out images, `config.augmentation.test_split`:

- `real`: trained on the n real labelled images of `config.data.split`, the generator's own training data;
- `real_plus_synthetic`: those n plus m = round(`synthetic_ratio` x n) samples of the EMA generator, each labelled
  with the class it was generated for (classes balanced), mixed into one training set: GAN data augmentation
  (e.g. Antoniou et al. 2017, "Data Augmentation Generative Adversarial Networks");
- `synthetic`: the m samples alone: the Classification Accuracy Score (CAS) of Ravuri & Vinyals 2019
  ("Classification Accuracy Score for Conditional Generative Models", Sec. 3), who found that classifiers trained
  on BigGAN's ImageNet samples fall well short of real-data training.

`n` is the size of `config.data.split`: sweep it with TFDS slicing (`train[:100]`, `train[:500]`, ...) so the GAN
and the `real` classifier see the same n images. The held-out split must not overlap them (digits, which has no
test split: `train[80%:]` against at most `train[:80%]`). Results: `augmentation/{real, real_plus_synthetic,
synthetic}` (accuracies) and `augmentation/{num_real, num_synthetic}`.
"""
import numpy as np

_real_accuracy = {}  # The `real` arm does not depend on the generator: trained once per process and setting.


def num_real(config) -> int:
  """n: the number of examples in config.data.split (TFDS's split info, no reading)."""
  from gan_jax import data  # pylint: disable=g-import-not-at-top
  builder = data.load_builder(config.data.name, config.data.data_dir)
  return int(builder.info.splits[config.data.split].num_examples)


def num_synthetic(config, n=None) -> int:
  """m = round(synthetic_ratio x n), at least 1: the generator samples the `synthetic` arms train on."""
  return max(1, int(round(config.augmentation.synthetic_ratio * (num_real(config) if n is None else n))))


def _load(config, split, shape):
  from gan_jax import data  # pylint: disable=g-import-not-at-top
  source = data.Source(name=config.data.name, split=split, data_dir=config.data.data_dir,
                       features=(("x", config.data.feature, shape), ("label", "label", ())))
  examples = data.load_examples(source)
  return examples["x"], examples["label"].astype(np.int32)


def score(config, synthetic, labels, seed) -> dict:
  """{real, real_plus_synthetic, synthetic, num_real, num_synthetic} for generated images `synthetic` (float32
  [m, H, W, C] in [-1, 1]) generated for the classes `labels` [m]; the classifiers initialised and batched from
  `seed` (the run's, or a sweep's seed of a vmapped cell)."""
  from gan_jax.metrics import classifier  # pylint: disable=g-import-not-at-top
  settings = config.augmentation
  shape = tuple(synthetic.shape[1:])
  x_real, y_real = _load(config, config.data.split, shape)
  x_test, y_test = _load(config, settings.test_split, shape)
  num_classes = int(max(y_real.max(), y_test.max(), labels.max())) + 1
  labels = np.asarray(labels, np.int32)

  def accuracy(x, y):
    params = classifier.train(x, y, num_classes=num_classes, seed=seed, steps=settings.steps)
    return classifier.accuracy(params, x_test, y_test, num_classes=num_classes)

  key = (config.data.name, config.data.feature, config.data.split, settings.test_split, config.data.data_dir, shape,
         num_classes, seed, settings.steps)
  if key not in _real_accuracy:
    _real_accuracy[key] = accuracy(x_real, y_real)
  return {"real": _real_accuracy[key],
          "real_plus_synthetic": accuracy(np.concatenate([x_real, synthetic]), np.concatenate([y_real, labels])),
          "synthetic": accuracy(synthetic, labels),
          "num_real": len(y_real), "num_synthetic": len(labels)}
