"""Data sources by role, without TensorFlow: what an objective names to read (data/pipeline.py serves them).

A `Source` is a TFDS split and the features an objective reads from it, by role. This module imports nothing
heavy, so models, objectives and benchmarks import without TensorFlow; the tf.data pipeline loads where data is read.
"""
import dataclasses
from typing import Optional


@dataclasses.dataclass(frozen=True)
class Source:
  """A TFDS split and the features an objective reads from it, by role: `features` is ((role, feature name,
  shape), ...), where shape is the sample's (images are cropped and resized to it, vectors must have it) or ()
  for an integer scalar such as a class label. Several roles of one Source come from the same examples (paired
  data: an input image and its target); several Sources are independent streams (unpaired data)."""
  name: str
  features: tuple
  split: str = "train"
  data_dir: Optional[str] = None
  download: bool = True
  shuffle_buffer: int = 10_000
  cache_mb: float = 1024   # Splits whose decoded samples fit in this many MiB are decoded once and kept in memory.

  def shape(self, role):
    return dict((r, shape) for r, _, shape in self.features)[role]


def source(data_config, **features) -> Source:
  """The Source of `config.data` with `features` given as role=(feature name, shape): the one place that turns
  config.data into a data source."""
  return Source(name=data_config.name, split=data_config.split, data_dir=data_config.data_dir,
                download=data_config.download, shuffle_buffer=data_config.shuffle_buffer,
                cache_mb=data_config.cache_mb,
                features=tuple((role, feature, tuple(shape)) for role, (feature, shape) in features.items()))


def stream_seed(seed: int, index: int) -> int:
  """The seed of the index-th of several independent sources (the first's is the run's seed)."""
  return seed + 7919 * index
