"""SAGAN (Zhang et al. 2019), class-conditional, on cifar10 at 32x32:
experiments/resnet_gans.py with variant=sagan,data=cifar10.

  python -m gan_jax.main --config=experiments/sagan_cifar10.py --workdir=runs/sagan_cifar10

Needs TFDS's `cifar10` (network on first run, or --config.data.data_dir).
Arguments are passed on (e.g. `:conditional=0`, `:res=16,width=64,steps=3000`, `:runlocal`);
the settings and their sources are in experiments/resnet_gans.py.
"""
import os

from gan_jax import config as config_lib


def get_config(arg=None):
  base = os.path.join(os.path.dirname(os.path.abspath(__file__)), "resnet_gans.py")
  return config_lib.load_experiment(base, ",".join(filter(None, ["variant=sagan,data=cifar10", arg])))
