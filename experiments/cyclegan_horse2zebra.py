"""CycleGAN (Zhu et al. 2017) on horse2zebra at the paper's size (256x256, for a GPU):
experiments/translation.py with method=cyclegan,data=horse2zebra.

  python -m gan_jax.main --config=experiments/cyclegan_horse2zebra.py --workdir=runs/cyclegan_horse2zebra

Arguments are passed on (e.g. `:variant=gan_cycle,steps=500,runlocal`); the variants, hyperparameters and their
sources are in experiments/translation.py.
"""
import os

from gan_jax import config as config_lib


def get_config(arg=None):
  base = os.path.join(os.path.dirname(os.path.abspath(__file__)), "translation.py")
  return config_lib.load_experiment(base, ",".join(filter(None, ["method=cyclegan,data=horse2zebra", arg])))
