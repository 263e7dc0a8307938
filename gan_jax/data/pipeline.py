"""tf.data input pipeline over TFDS: decode, crop, resize, scale to [-1, 1], shuffle, repeat, batch, prefetch.

The stream is a deterministic function of (seed, process): epoch e is the process's share of the split shuffled
with a seed derived from (seed, e). A run resumed at step s rebuilds the stream and skips to where it stood:
whole epochs cost nothing and the rest of one epoch is skipped before decoding.
"""
import os

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from gan_jax.errors import UserError

tf.config.set_visible_devices([], "GPU")  # tf.data only; keep accelerators for JAX.

OFFLINE_BUILDERS = ("digits",)  # Prepared locally from data shipped inside installed packages.


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
    raise UserError(f"cannot load dataset {name!r}: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
                    ) from None
  if _is_prepared(builder):
    return builder
  if name not in OFFLINE_BUILDERS and not download:
    raise UserError(f"dataset {name!r} is not prepared in {os.path.dirname(os.path.dirname(builder.data_dir))} "
                    f"and config.data.download is False: {_how_to_provide(name)}")
  try:
    builder.download_and_prepare()
  except Exception as e:  # Network, manual-download and disk errors all end here.
    first_line = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
    raise UserError(f"dataset {name!r} is not available offline and could not be prepared ({first_line}): "
                    f"{_how_to_provide(name)}") from None
  return builder


def _is_prepared(builder):
  return tf.io.gfile.exists(os.path.join(builder.data_dir, "dataset_info.json"))


def _num_examples(builder, split, raw):
  try:
    return builder.info.splits[split].num_examples
  except (KeyError, ValueError, TypeError, AttributeError):
    return int(raw.reduce(np.int64(0), lambda n, _: n + 1))  # Unknown (e.g. mocked): count undecoded records.


def _preprocess(image_feature, image_key, resolution, channels):
  source_channels = image_feature.shape[-1]

  def preprocess(example):
    image = image_feature.decode_example(example[image_key])  # uint8 [h, w, c]
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    side = tf.minimum(height, width)                           # Centre crop to a square.
    image = tf.image.crop_to_bounding_box(image, (height - side) // 2, (width - side) // 2, side, side)
    if source_channels == 1 and channels == 3:
      image = tf.image.grayscale_to_rgb(image)
    elif source_channels == 3 and channels == 1:
      image = tf.image.rgb_to_grayscale(image)
    elif source_channels != channels:
      raise UserError(f"cannot convert {source_channels}-channel images to {channels} channels")
    image = tf.image.resize(tf.cast(image, tf.float32), [resolution, resolution], method="bilinear",
                            antialias=True)
    out = {"image": tf.clip_by_value(image / 127.5 - 1.0, -1.0, 1.0)}  # [res, res, channels] in [-1, 1]
    if "label" in example:
      out["label"] = tf.cast(example["label"], tf.int32)
    return out

  return preprocess


def get_dataset(*, name, split="train", data_dir=None, download=True, image_key="image", resolution,
                channels, batch_size, num_stacked=1, seed=0, shuffle_buffer=10_000, start_step=0,
                process_index=0, process_count=1):
  """Infinite iterator of numpy batches {'image': [num_stacked, batch_size, res, res, channels], 'label'}.

  `batch_size` is this process's share of the global batch; `num_stacked` batches (one per discriminator
  update) form one training step. `start_step` steps are skipped, for resuming exactly.
  """
  builder = load_builder(name, data_dir, download)
  features = builder.info.features
  if image_key not in features:
    raise UserError(f"dataset {name!r} has no feature {image_key!r}; it has: {', '.join(features)}")
  if process_count > 1:
    split = tfds.split_for_jax_process(split, process_index=process_index, process_count=process_count)
  decoders = {image_key: tfds.decode.SkipDecoding()}  # Decode after shuffling and skipping.
  try:
    raw = builder.as_dataset(split=split, shuffle_files=False, decoders=decoders)
  except Exception as e:
    raise UserError(f"cannot read split {split!r} of dataset {name!r}: {str(e).splitlines()[0]}") from None
  keys = [image_key] + (["label"] if "label" in features else [])
  raw = raw.map(lambda ex: {k: ex[k] for k in keys})
  epoch_size = _num_examples(builder, split, raw)
  if epoch_size < batch_size:
    raise UserError(f"split {split!r} of {name!r} has {epoch_size} examples per process, fewer than the "
                    f"per-process batch size {batch_size}")

  consumed = start_step * num_stacked * batch_size
  first_epoch, offset = divmod(consumed, epoch_size)
  buffer = min(shuffle_buffer, epoch_size)
  base_seed = (seed * 1_000_003 + process_index * 10_007) % (2 ** 62)

  def epoch(e):
    return raw.shuffle(buffer, seed=base_seed + e, reshuffle_each_iteration=False)

  ds = tf.data.Dataset.range(first_epoch, np.iinfo(np.int64).max).flat_map(epoch).skip(offset)
  ds = ds.map(_preprocess(features[image_key], image_key, resolution, channels),
              num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  ds = ds.batch(batch_size, drop_remainder=True).batch(num_stacked, drop_remainder=True)
  ds = ds.prefetch(tf.data.AUTOTUNE)
  return iter(tfds.as_numpy(ds))
