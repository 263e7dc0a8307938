"""AC-GAN (Odena et al. 2017) on digits: experiments/conditional.py with variant=acgan,data=digits.

  python -m gan_jax.main --config=experiments/acgan_digits.py --workdir=runs/acgan_digits

Arguments are passed on (e.g. `:steps=500,runlocal`); the hyperparameters and their sources are in
experiments/conditional.py.
"""
import os

from gan_jax import config as config_lib


def get_config(arg=None):
  base = os.path.join(os.path.dirname(os.path.abspath(__file__)), "conditional.py")
  return config_lib.load_experiment(base, ",".join(filter(None, ["variant=acgan,data=digits", arg])))
