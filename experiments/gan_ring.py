"""GAN (Goodfellow et al. 2014, non-saturating): the mode-collapse benchmark (PacGAN, Lin et al. 2018, Table 1) on ring8.

  python -m gan_jax.main --config=experiments/gan_ring.py --workdir=runs/gan_ring

The protocol and its arguments are in experiments/mode_collapse.py (e.g. `:steps=20000,runlocal`).
"""
import os

from gan_jax import config as config_lib


def get_config(arg=None):
  base = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mode_collapse.py")
  return config_lib.load_experiment(base, ",".join(filter(None, ["data=ring8,variant=gan", arg])))
