"""pix2pix (Isola et al. 2017) on digits_m, grey digits to digits-M, paired:
experiments/translation.py with method=pix2pix,data=digits_m.

  python -m gan_jax.main --config=experiments/pix2pix_digits_m.py --workdir=runs/pix2pix_digits_m

Arguments are passed on (e.g. `:variant=l1,steps=500,runlocal`); the variants, hyperparameters and their sources are in
experiments/translation.py.
"""
import os

from gan_jax import config as config_lib


def get_config(arg=None):
  base = os.path.join(os.path.dirname(os.path.abspath(__file__)), "translation.py")
  return config_lib.load_experiment(base, ",".join(filter(None, ["method=pix2pix,data=digits_m", arg])))
