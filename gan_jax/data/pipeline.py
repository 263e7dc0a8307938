"""tf.data input pipeline over TFDS: decode, crop, resize, scale to [-1, 1], shuffle, repeat, batch, prefetch.

The stream of global batches is a deterministic function of the seed alone: epoch e is the split shuffled with a
seed derived from (seed, e), cut into global batches. Process p of n keeps the p-th slice of every global batch
and decodes only that (small splits are decoded once and kept in memory instead), so one process with four
devices and two processes with two each train on the same batches. A run resumed at step s rebuilds the stream
and skips to where it stood: whole epochs cost nothing and the rest of one epoch is skipped before decoding.
"""
import os

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from gan_jax.errors import UserError, first_line

tf.config.set_visible_devices([], "GPU")  # tf.data only; keep accelerators for JAX.

OFFLINE_BUILDERS = ("digits", "ring8", "grid25")  # Prepared locally from data shipped inside installed packages.


def names():
  return tuple(sorted(set(tfds.list_builders(with_community_datasets=False)) | set(OFFLINE_BUILDERS)))


def _how_to_provide(name):
  return (f"run once with network access (TFDS downloads and prepares it), or pass "
          f"--config.data.data_dir=DIR holding a prepared copy (tfds build {name} --data_dir=DIR elsewhere), "
          f"or follow the manual download steps at https://www.tensorflow.org/datasets/catalog/{name}")


def load_builder(name, data_dir=None, download=True):
  """The TFDS builder of `name`, prepared: offline builders are built here; others need `download` or data_dir."""
  try:
    builder = tfds.builder(name, data_dir=data_dir)
  except Exception as e:  # TFDS raises several types for unknown or broken names.
    raise UserError(f"cannot load dataset {name!r}: {first_line(e)}") from None
  if _is_prepared(builder):
    return builder
  if name not in OFFLINE_BUILDERS and not download:
    raise UserError(f"dataset {name!r} is not prepared in {os.path.dirname(os.path.dirname(builder.data_dir))} "
                    f"and config.data.download is False: {_how_to_provide(name)}")
  try:
    builder.download_and_prepare()
  except Exception as e:  # Network, manual-download and disk errors all end here.
    if _is_prepared(builder):  # Another process (multi-host, shared data_dir) prepared it first.
      return tfds.builder(name, data_dir=data_dir)
    raise UserError(f"dataset {name!r} is not available offline and could not be prepared ({first_line(e)}): "
                    f"{_how_to_provide(name)}") from None
  return builder


def _is_prepared(builder):
  return tf.io.gfile.exists(os.path.join(builder.data_dir, "dataset_info.json"))


def _num_examples(builder, split, raw):
  try:
    return builder.info.splits[split].num_examples
  except (KeyError, ValueError, TypeError, AttributeError):
    return int(raw.reduce(np.int64(0), lambda n, _: n + 1))  # Unknown (e.g. mocked): count undecoded records.


def _preprocess_image(image_feature, resolution, channels):
  source_channels = image_feature.shape[-1]

  def preprocess(encoded):
    image = image_feature.decode_example(encoded)             # uint8 [h, w, c]
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    side = tf.minimum(height, width)                           # Centre crop to a square.
    image = tf.image.crop_to_bounding_box(image, (height - side) // 2, (width - side) // 2, side, side)
    if source_channels == 1 and channels == 3:
      image = tf.image.grayscale_to_rgb(image)
    elif source_channels == 3 and channels == 1:
      image = tf.image.rgb_to_grayscale(image)
    image = tf.image.resize(tf.cast(image, tf.float32), [resolution, resolution], method="bilinear",
                            antialias=True)
    return tf.clip_by_value(image / 127.5 - 1.0, -1.0, 1.0)   # [res, res, channels] in [-1, 1]

  return preprocess


def _sample_preprocess(features, feature, shape):
  """The function from one undecoded example's feature to a float32 sample of the model's `shape`."""
  spec = features[feature]
  if isinstance(spec, tfds.features.Image):
    if len(shape) != 3 or shape[0] != shape[1]:
      raise UserError(f"feature {feature!r} holds images but the model makes samples of shape {shape}")
    if spec.shape[-1] not in (1, 3, shape[-1]):
      raise UserError(f"cannot convert {spec.shape[-1]}-channel images to {shape[-1]} channels")
    return _preprocess_image(spec, shape[0], shape[-1])
  if tuple(spec.shape) != tuple(shape):
    raise UserError(f"feature {feature!r} has shape {tuple(spec.shape)} but the model makes {tuple(shape)}")
  return lambda value: tf.cast(spec.decode_example(value), tf.float32)  # Vectors are used as they are.


def _open_split(name, split, data_dir, download, feature, shape):
  """(builder, raw undecoded examples of `split`, their preprocessing to float32 samples of `shape`)."""
  builder = load_builder(name, data_dir, download)
  features = builder.info.features
  if feature not in features:
    raise UserError(f"dataset {name!r} has no feature {feature!r}; it has: {', '.join(features)}")
  to_sample = _sample_preprocess(features, feature, shape)
  decoders = {feature: tfds.decode.SkipDecoding()}  # Decode after shuffling and skipping.
  try:
    raw = builder.as_dataset(split=split, shuffle_files=False, decoders=decoders)
  except Exception as e:
    raise UserError(f"cannot read split {split!r} of dataset {name!r}: {first_line(e)}") from None
  keys = [feature] + (["label"] if "label" in features else [])
  return builder, raw.map(lambda ex: {k: ex[k] for k in keys}), to_sample


def load_examples(*, name, split="train", data_dir=None, download=True, feature="image", shape, num=None):
  """(samples float32 [N, *shape], labels int32 [N] or None): the first `num` examples of `split` (all when
  None), in the split's order, preprocessed exactly as for training. For reference statistics and classifiers."""
  _, raw, to_sample = _open_split(name, split, data_dir, download, feature, shape)
  if num is not None:
    raw = raw.take(num)
  ds = raw.map(lambda ex: (to_sample(ex[feature]), tf.cast(ex.get("label", -1), tf.int32)),
               num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).batch(1024)
  batches = list(tfds.as_numpy(ds))
  if not batches:
    raise UserError(f"split {split!r} of dataset {name!r} holds no examples")
  labels = np.concatenate([b[1] for b in batches])
  return np.concatenate([b[0] for b in batches]), (None if (labels < 0).all() else labels)


def check(*, name, split="train", data_dir=None, download=True, feature="image", shape, global_batch_size,
          num_classes=0):
  """Raises UserError unless `split` of `name` is available and fits the model's sample `shape`, the global
  batch and, for a class-conditional model, its `num_classes` (what training checks before it compiles
  anything). Returns (epoch size, raw examples, preprocessing)."""
  builder, raw, to_sample = _open_split(name, split, data_dir, download, feature, shape)
  if num_classes:
    label = builder.info.features["label"] if "label" in builder.info.features else None
    if label is None:
      raise UserError(f"the model is class-conditional but dataset {name!r} has no 'label' feature")
    if getattr(label, "num_classes", None) and label.num_classes > num_classes:
      raise UserError(f"dataset {name!r} has {label.num_classes} classes but config.model.num_classes is "
                      f"{num_classes}")
  epoch_size = _num_examples(builder, split, raw)
  if epoch_size < global_batch_size:
    raise UserError(f"split {split!r} of {name!r} has {epoch_size} examples, fewer than the global batch size "
                    f"{global_batch_size}")
  return epoch_size, raw, to_sample


def get_dataset(*, name, split="train", data_dir=None, download=True, feature="image", shape, batch_size,
                num_stacked=1, steps_per_call=1, seed=0, shuffle_buffer=10_000, start_step=0, process_index=0,
                process_count=1, cache_mb=1024):
  """Infinite iterator of numpy batches {'x': [num_stacked, batch_size, *shape], 'label': [num_stacked, B]};
  with steps_per_call K > 1, K such batches stacked: {'x': [K, num_stacked, batch_size, *shape], ...}.

  Images are cropped, resized and converted to `shape` = (res, res, channels) in [-1, 1]; vector features
  (e.g. 2D points) must already have `shape`.

  `batch_size` is this process's share of the global batch (process_count * batch_size examples), rows
  [process_index * batch_size, (process_index + 1) * batch_size) of it; `num_stacked` batches (one per
  discriminator update) form one training step. `start_step` steps are skipped, for resuming exactly.

  A split whose decoded samples take at most `cache_mb` MiB (float32) is decoded once, in full by every process,
  and kept in memory; its epochs are then shuffles of the decoded samples, the same permutations as of the
  undecoded records, so the batches are those of the uncached stream. Decoding each example anew costs more
  than the training step of small models on a CPU (the digits: 12 ms per batch of 64 against 0.7 ms from
  memory; the 2D mixtures: 7.9 ms per batch of 100 against 0.6 ms; 2-core CPU VM).
  """
  global_batch_size = batch_size * process_count
  epoch_size, raw, to_sample = check(name=name, split=split, data_dir=data_dir, download=download, feature=feature,
                                     shape=shape, global_batch_size=global_batch_size)

  consumed = start_step * num_stacked * global_batch_size
  first_epoch, offset = divmod(consumed, epoch_size)
  buffer = min(shuffle_buffer, epoch_size)
  base_seed = (seed * 1_000_003) % (2 ** 62)

  def preprocess(example):
    out = {"x": to_sample(example[feature])}
    if "label" in example:
      out["label"] = tf.cast(example["label"], tf.int32)
    return out

  decode = lambda ds: ds.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  cached = epoch_size * int(np.prod(shape)) * 4 <= cache_mb * 2 ** 20
  examples = decode(raw).cache() if cached else raw

  def epoch(e):
    return examples.shuffle(buffer, seed=base_seed + e, reshuffle_each_iteration=False)

  ds = tf.data.Dataset.range(first_epoch, np.iinfo(np.int64).max).flat_map(epoch).skip(offset)
  if process_count > 1:  # This process's slice of each global batch (undecoded unless cached).
    ds = ds.enumerate().filter(lambda i, _: (i % global_batch_size) // batch_size == process_index)
    ds = ds.map(lambda _, example: example)
  if not cached:
    ds = decode(ds)
  ds = ds.batch(batch_size, drop_remainder=True).batch(num_stacked, drop_remainder=True)
  if steps_per_call > 1:
    ds = ds.batch(steps_per_call, drop_remainder=True)
  ds = ds.prefetch(tf.data.AUTOTUNE)
  return iter(tfds.as_numpy(ds))
