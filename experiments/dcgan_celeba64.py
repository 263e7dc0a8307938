"""DCGAN (Radford et al. 2016) on CelebA faces at 64x64: the paper's Figure 1 generator (4x4x1024 -> 64x64x3).

  python -m gan_jax.main --config=experiments/dcgan_celeba64.py --workdir=runs/dcgan_celeba64

Images are centre-cropped to 178x178 and resized to 64x64. Needs TFDS's `celeb_a` (a manual download from
Google Drive on many networks: see https://www.tensorflow.org/datasets/catalog/celeb_a), prepared in
--config.data.data_dir. Tiny variant: --config=experiments/dcgan_celeba64.py:runlocal
"""
from gan_jax import config as config_lib


def get_config(arg=None):
  arg = config_lib.parse_arg(arg, runlocal=False)
  config = config_lib.base_config()
  config_lib.set_model(config, "dcgan", resolution=64, channels=3, latent_dim=100, g_width=128, d_width=64)
  config.data.name = "celeb_a"
  config.batch_size = 128          # Radford et al. 2016, Sec. 4.
  config.total_steps = 50_000      # ~32 epochs of the 202,599 training faces.
  config.log_every = 500
  config.sample_every = 2500
  config.checkpoint_every = 5000
  if arg.runlocal:
    config_lib.make_tiny(config)
  return config
