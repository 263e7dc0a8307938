"""DCGAN (Radford et al. 2016) on CIFAR-10, 32x32x3: 4x4x512 -> 8x8x256 -> 16x16x128 -> 32x32x3.

  python -m gan_jax.main --config=experiments/dcgan_cifar10.py --workdir=runs/dcgan_cifar10

Needs TFDS's `cifar10`: network access on first run, or --config.data.data_dir=DIR holding a prepared copy.
Tiny variant: --config=experiments/dcgan_cifar10.py:runlocal
"""
from gan_jax import config as config_lib


def get_config(arg=None):
  arg = config_lib.parse_arg(arg, runlocal=False)
  config = config_lib.base_config()
  config_lib.set_model(config, "dcgan", resolution=32, channels=3, latent_dim=100, g_width=128, d_width=64)
  config.data.name = "cifar10"
  config.batch_size = 128          # Radford et al. 2016, Sec. 4.
  config.total_steps = 50_000
  config.log_every = 500
  config.sample_every = 2500
  config.checkpoint_every = 5000
  if arg.runlocal:
    config_lib.make_tiny(config)
  return config
