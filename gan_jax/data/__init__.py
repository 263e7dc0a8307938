"""The one data entry point: `get_dataset(sources, ...)`, tf.data pipelines over TFDS datasets by name.

Offline builders defined in this package (`digits`, `digits_m`, `ring8`, `grid25`; `edges2fashion`, derived from a
prepared `fashion_mnist`) register with TFDS when the pipeline loads, and are prepared locally on first use. A
standard dataset's original files prepare its TFDS dataset without network: local_copy.py, scripts/prepare_dataset.py.

`Source`, `source` and `stream_seed` (sources.py) import without TensorFlow; the pipeline's names (get_dataset,
load_examples, check, ...) load TensorFlow and TFDS on first use, so code that only builds models and steps (a GPU
benchmark on a machine without TensorFlow) imports this package freely.
"""
from gan_jax.data.sources import Source, source, stream_seed  # noqa: F401

_PIPELINE = ("DERIVED_BUILDERS", "OFFLINE_BUILDERS", "check", "get_dataset", "load_builder", "load_examples", "names")


def __getattr__(name):  # PEP 562: the pipeline (TensorFlow, TFDS, the builders) on first use of one of its names.
  if name in _PIPELINE:
    from gan_jax.data import pipeline  # pylint: disable=g-import-not-at-top
    return getattr(pipeline, name)
  raise AttributeError(f"module 'gan_jax.data' has no attribute {name!r}")
