"""The one data entry point: `get_dataset(sources, ...)`, tf.data pipelines over TFDS datasets by name.

Offline builders defined in this package (`digits`, `digits_m`, `ring8`, `grid25`; `edges2fashion`, derived from a
prepared `fashion_mnist`) register with TFDS on import and are prepared locally on first use. A standard dataset's
original files prepare its TFDS dataset without network: local_copy.py, scripts/prepare_dataset.py.
"""
from gan_jax.data import digits, digits_m, edges2fashion, mixtures  # noqa: F401  (registers the builders)
from gan_jax.data.pipeline import (OFFLINE_BUILDERS, Source, check, get_dataset, load_builder, load_examples,  # noqa: F401
                                   names, source, stream_seed)
