"""InfoGAN (Chen et al. 2016) on digits: experiments/conditional.py with variant=infogan,data=digits.

  python -m gan_jax.main --config=experiments/infogan_digits.py --workdir=runs/infogan_digits

Arguments are passed on (e.g. `:steps=500,runlocal`); the hyperparameters and their sources are in
experiments/conditional.py.
"""
import os

from gan_jax import config as config_lib


def get_config(arg=None):
  base = os.path.join(os.path.dirname(os.path.abspath(__file__)), "conditional.py")
  return config_lib.load_experiment(base, ",".join(filter(None, ["variant=infogan,data=digits", arg])))
