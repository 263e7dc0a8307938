"""Domain classifiers: small CNNs trained on a labelled TFDS dataset, for datasets where Inception features mean
little (digits, MNIST). Their penultimate layer serves FID/KID/precision-recall, their softmax IS and class
coverage. `scripts/train_classifier.py` trains and saves one; `load` reads it back.

A saved classifier is one .npz: the flattened parameters plus `meta` (JSON: dataset, resolution, channels,
classes, held-out accuracy). Scores computed under it name it (`classifier-<file name>-<sha256 prefix>`):
an FID is only comparable with one computed under the same features.
"""
import functools
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan_jax import weights

BUNDLED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights")


class CNN(nn.Module):
  """Three 3x3 convolutions (32, 64 stride 2, 128 stride 2) with ReLU, global average pooling, a 128-unit
  feature layer and the class logits. Features are the feature layer's pre-activations (full rank, so
  their covariance is well conditioned for FID)."""
  num_classes: int = 10
  feature_dim: int = 128

  @nn.compact
  def __call__(self, x):  # [B, H, W, C] in [-1, 1] -> (features [B, feature_dim], logits [B, num_classes])
    for features, stride in ((32, 1), (64, 2), (128, 2)):
      x = nn.relu(nn.Conv(features, (3, 3), strides=stride)(x))
    features = nn.Dense(self.feature_dim)(x.mean(axis=(1, 2)))
    return features, nn.Dense(self.num_classes)(nn.relu(features))


class Classifier:
  """A trained CNN and what it was trained on; `features_and_probs(images)` for uint8 images of any size.

  `name` (`classifier-<file>-<sha256 prefix>`) identifies the features: report it with every score.
  """

  def __init__(self, params, meta, name):
    self.params, self.meta, self.name = params, meta, name
    self.module = CNN(meta["num_classes"], meta["feature_dim"])
    self._apply = jax.jit(self.module.apply)

  def preprocess(self, images):
    """uint8 [N, H, W, C] -> float32 [N, res, res, channels] in [-1, 1] (bilinear, antialiased resize)."""
    return self.prepare(jnp.asarray(images, jnp.float32) / 127.5 - 1.0)

  def prepare(self, x):
    """float [N, H, W, C] in [-1, 1] -> [N, res, res, channels], the channels averaged or repeated and the image
    resized (bilinear, antialiased) to the classifier's; differentiable."""
    channels, res = self.meta["channels"], self.meta["resolution"]
    if x.shape[-1] != channels:
      x = x.mean(axis=-1, keepdims=True) if channels == 1 else jnp.repeat(x, channels, axis=-1)
    if x.shape[1:3] != (res, res):
      x = jax.image.resize(x, (x.shape[0], res, res, channels), "bilinear")
    return x

  def features(self, x):
    """Features [N, feature_dim] of float images [N, H, W, C] in [-1, 1], differentiable in x (jit it): what the
    StyleGAN2 projector compares where the authors compare VGG16's LPIPS features."""
    return self.module.apply({"params": self.params}, self.prepare(x))[0]

  def features_and_probs(self, images, batch_size=500):
    """(features float32 [N, feature_dim], class probabilities float32 [N, num_classes])."""
    features, probs = [], []
    for i in range(0, len(images), batch_size):
      f, logits = self._apply({"params": self.params}, self.preprocess(images[i:i + batch_size]))
      features.append(np.asarray(f))
      probs.append(np.asarray(jax.nn.softmax(logits)))
    return np.concatenate(features), np.concatenate(probs)


def resolve_path(spec):
  """A file path, or the name of a bundled classifier (`digits` -> gan_jax/metrics/weights/digits.npz)."""
  if os.sep in spec or spec.endswith(".npz"):
    return spec
  return os.path.join(BUNDLED_DIR, f"{spec}.npz")


def bundled_names():
  return tuple(sorted(f[:-4] for f in os.listdir(BUNDLED_DIR) if f.endswith(".npz"))) if os.path.isdir(
      BUNDLED_DIR) else ()


save = weights.save


def load(spec) -> Classifier:
  path = resolve_path(spec)
  params, meta = weights.read(path, f"classifier {spec!r} at", f"train one with scripts/train_classifier.py (bundled: "
                              f"{', '.join(bundled_names()) or 'none'})")
  from gan_jax.metrics import reference  # pylint: disable=g-import-not-at-top
  return Classifier(params, meta, f"classifier-{os.path.basename(path)[:-4]}-{reference.file_digest(path)}")


def train(images, labels, *, num_classes, seed=0, steps=2000, batch_size=64, learning_rate=1e-3,
          feature_dim=128):
  """Params of a CNN trained on float32 images [N, H, W, C] in [-1, 1] with labels [N].

  Adam with a cosine decay; each batch is shifted by up to one pixel at random (reflect padding), so the
  classifier does not depend on exact pixel alignment, which generated samples do not have. The compiled step is
  shared by every call with the same settings and shapes (the augmentation evaluator trains three per evaluation).
  """
  init, tx, step = _training(num_classes, feature_dim, steps, batch_size, learning_rate)
  key = jax.random.PRNGKey(seed)
  params = init(key, jnp.zeros((1, *images.shape[1:])))
  opt_state = tx.init(params)
  images, labels = jnp.asarray(images), jnp.asarray(labels)
  for i in range(steps):
    params, opt_state, _ = step(params, opt_state, images, labels, jax.random.fold_in(key, i + 1))
  return params


@functools.lru_cache(maxsize=None)
def _training(num_classes, feature_dim, steps, batch_size, learning_rate):
  """(jitted init(key, example) -> params, optimizer, jitted step(params, opt_state, images, labels, key)) for
  train's settings; jit compiles each once per shape (an eager init compiles every initialiser on its own)."""
  module = CNN(num_classes, feature_dim)
  tx = optax.adam(optax.cosine_decay_schedule(learning_rate, steps))

  def shift(x, key):
    padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    dy, dx = jax.random.randint(key, (2,), 0, 3)
    return jax.lax.dynamic_slice(padded, (0, dy, dx, 0), x.shape)

  @jax.jit
  def step(params, opt_state, images, labels, key):
    index_key, shift_key = jax.random.split(key)
    index = jax.random.choice(index_key, len(images), (batch_size,), replace=False)
    x, y = shift(images[index], shift_key), labels[index]

    def loss_fn(p):
      return optax.softmax_cross_entropy_with_integer_labels(module.apply({"params": p}, x)[1], y).mean()

    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  return jax.jit(lambda key, example: module.init(key, example)["params"]), tx, step


def accuracy(params, images, labels, feature_dim=128, num_classes=10) -> float:
  logits = jax.jit(CNN(num_classes, feature_dim).apply)({"params": params}, jnp.asarray(images))[1]
  return float(np.mean(np.asarray(logits).argmax(axis=1) == np.asarray(labels)))
