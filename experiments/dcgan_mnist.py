"""DCGAN (Radford et al. 2016) on MNIST, 28x28: 7x7x256 -> 14x14x128 -> 28x28x1, paper hyperparameters.

  python -m gan_jax.main --config=experiments/dcgan_mnist.py --workdir=runs/dcgan_mnist

Needs TFDS's `mnist`: network access on first run, or --config.data.data_dir=DIR holding a prepared copy.
Tiny variant: --config=experiments/dcgan_mnist.py:runlocal
"""
from gan_jax import config as config_lib


def get_config(arg=None):
  arg = config_lib.parse_arg(arg, runlocal=False)
  config = config_lib.base_config()
  config_lib.set_model(config, "dcgan", resolution=28, channels=1, latent_dim=100, g_width=128, d_width=64)
  config.data.name = "mnist"
  config.batch_size = 128          # Radford et al. 2016, Sec. 4: mini-batches of 128, Adam 2e-4, beta1 0.5.
  config.total_steps = 10_000      # ~21 epochs of MNIST's 60,000 images.
  config.log_every = 200
  config.sample_every = 1000
  config.checkpoint_every = 2000
  # Image metrics under the bundled MNIST classifier (gan_jax/metrics/weights/mnist.npz, trained by
  # scripts/train_classifier.py): 10,000 samples of the EMA generator against 50,000 training images.
  # Inception FID: python -m gan_jax.evaluate --workdir=... --features=inception:FILE (see docs/evaluation.md).
  config.evals = ("fid", "kid", "precision_recall", "density_coverage", "inception_score", "class_coverage")
  config.eval_features = "classifier:mnist"
  config.eval_every = 2000
  config.eval_num_samples = 10_000
  if arg.runlocal:
    config_lib.make_tiny(config)
  return config
