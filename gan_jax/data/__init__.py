"""The one data entry point: `get_dataset(...)`, a tf.data pipeline over any TFDS image dataset by name.

Offline builders defined in this package (`digits`, `ring8`, `grid25`) register with TFDS on import and are prepared
locally on first use.
"""
from gan_jax.data import digits, mixtures  # noqa: F401  (registers the builders)
from gan_jax.data.pipeline import OFFLINE_BUILDERS, check, get_dataset, load_builder, load_examples, names  # noqa: F401
