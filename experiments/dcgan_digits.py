"""DCGAN (Radford et al. 2016) on scikit-learn's 1,797 handwritten digits, at 16x16: the default experiment.

  python -m gan_jax.main --config=experiments/dcgan_digits.py --workdir=runs/dcgan_digits

Tiny variant for a quick check (2 steps): --config=experiments/dcgan_digits.py:runlocal
Paper hyperparameters: Adam lr 2e-4, beta1 0.5, batch 128 (here 64: 1,797 images), N(0, 0.02) init.
"""
from gan_jax import config as config_lib


def get_config(arg=None):
  arg = config_lib.parse_arg(arg, runlocal=False)
  config = config_lib.base_config()
  config_lib.set_model(config, "dcgan", resolution=16, channels=1, latent_dim=64, g_width=32, d_width=32)
  config.data.name = "digits"
  config.batch_size = 64
  config.total_steps = 3000
  config.ema_decay = 0.999
  config.log_every = 100
  config.sample_every = 500
  config.checkpoint_every = 1000
  # Image metrics under the bundled digits classifier (gan_jax/metrics/weights/digits.npz), 1,797 samples of
  # the EMA generator against the 1,797 real digits, every 1,000 steps and at the end.
  config.evals = ("fid", "kid", "precision_recall", "density_coverage", "inception_score", "class_coverage")
  config.eval_features = "classifier:digits"
  config.eval_every = 1000
  config.eval_num_samples = 1797
  if arg.runlocal:
    config_lib.make_tiny(config)
  return config
