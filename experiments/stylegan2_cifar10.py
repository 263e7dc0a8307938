"""StyleGAN2 (Karras et al. 2020) on cifar10: experiments/stylegan2.py with data=cifar10.

  python -m gan_jax.main --config=experiments/stylegan2_cifar10.py --workdir=runs/stylegan2_cifar10

Arguments are passed on (e.g. `:n=100,steps=500,runlocal`); the settings and their sources are in
experiments/stylegan2.py.
"""
import os

from gan_jax import config as config_lib


def get_config(arg=None):
  base = os.path.join(os.path.dirname(os.path.abspath(__file__)), "stylegan2.py")
  return config_lib.load_experiment(base, ",".join(filter(None, ["data=cifar10", arg])))
