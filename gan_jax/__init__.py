"""gan_jax: a JAX/Flax research codebase for generative adversarial networks.

Entry points: `python -m gan_jax.main` (train), `python -m gan_jax.sample` (draw samples).
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow serves tf.data only; quiet most of its C++ logs.
