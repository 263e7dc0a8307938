"""Reference features of real data, computed once per (dataset, split, sample shape, extractor, count) and
cached on disk as .npz (`scripts/compute_ref_stats.py` fills the cache ahead of training).

Real images go through the training pipeline's preprocessing (crop, resize to the model's resolution) and the
same uint8 quantisation as generated samples, so real and fake reach the extractor by the same path.
"""
import hashlib
import os

import numpy as np
from absl import logging

# $XDG_CACHE_HOME/gan_jax/reference (~/.cache/gan_jax/reference when unset), unless config.eval_cache_dir says.
DEFAULT_CACHE_DIR = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
                                 "gan_jax", "reference")


def cache_path(config, extractor, source) -> str:
  """The cache file of the reference features of `source` (a data.Source of one feature) under `extractor`."""
  (_, _, shape), = source.features
  cache_dir = config.eval_cache_dir or DEFAULT_CACHE_DIR
  split = source.split.replace("[", "_").replace("]", "").replace(":", "-").replace("%", "pc")
  key = f"{source.name}_{split}_{'x'.join(map(str, shape))}_{extractor.name}_{config.eval_ref_num}"
  return os.path.join(cache_dir, f"{key}.npz")


def features(config, extractor, source):
  """(features [N, D], probs [N, K]) of the first config.eval_ref_num examples of `source` (a data.Source of
  one feature: the real images the samples are compared with)."""
  path = cache_path(config, extractor, source)
  if os.path.exists(path):
    with np.load(path) as f:
      return f["features"], f["probs"]
  from gan_jax import data, images  # pylint: disable=g-import-not-at-top
  (role, _, _), = source.features
  real = data.load_examples(source, num=config.eval_ref_num)[role]
  real_features, probs = extractor.features_and_probs(images.to_uint8(real))
  os.makedirs(os.path.dirname(path), exist_ok=True)
  temporary = f"{path}.{os.getpid()}.tmp.npz"
  np.savez(temporary, features=real_features, probs=probs)
  os.replace(temporary, path)  # Atomic: a concurrent or killed run never leaves a half-written cache file.
  logging.info("Reference features of %d examples cached in %s.", len(real_features), path)
  return real_features, probs


_labels = {}


def labels(config, source):
  """The class labels [N] (the dataset's 'label' feature) of the examples `features` scores: the first
  config.eval_ref_num of the split, in its order. Intra-class FID's partition of the real images; read once per
  process (labels decode in seconds, without the images)."""
  key = (source.name, source.split, source.data_dir, config.eval_ref_num)
  if key not in _labels:
    import dataclasses  # pylint: disable=g-import-not-at-top
    from gan_jax import data  # pylint: disable=g-import-not-at-top
    label_source = dataclasses.replace(source, features=(("label", "label", ()),))
    _labels[key] = data.load_examples(label_source, num=config.eval_ref_num)["label"].astype(np.int64)
  return _labels[key]


def file_digest(path) -> str:
  """First 12 hex digits of a file's SHA-256: part of an extractor's name, so caches follow its weights."""
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()[:12]
