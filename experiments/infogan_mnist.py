"""InfoGAN (Chen et al. 2016) on mnist: experiments/conditional.py with variant=infogan,data=mnist.

  python -m gan_jax.main --config=experiments/infogan_mnist.py --workdir=runs/infogan_mnist

Arguments are passed on (e.g. `:steps=500,runlocal`); the hyperparameters and their sources are in
experiments/conditional.py.
"""
import os

from gan_jax import config as config_lib


def get_config(arg=None):
  base = os.path.join(os.path.dirname(os.path.abspath(__file__)), "conditional.py")
  return config_lib.load_experiment(base, ",".join(filter(None, ["variant=infogan,data=mnist", arg])))
