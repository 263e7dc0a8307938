"""SAGAN (Zhang et al. 2019), class-conditional, on fashion_mnist at 32x32:
experiments/resnet_gans.py with variant=sagan,data=fashion_mnist.

  python -m gan_jax.main --config=experiments/sagan_fashion_mnist.py --workdir=runs/sagan_fashion_mnist

Needs TFDS's `fashion_mnist` (network, or scripts/prepare_dataset.py from its original files).
Arguments are passed on (e.g. `:conditional=0`, `:res=16,width=64,steps=3000`, `:runlocal`);
the settings and their sources are in experiments/resnet_gans.py.
"""
import os

from gan_jax import config as config_lib


def get_config(arg=None):
  base = os.path.join(os.path.dirname(os.path.abspath(__file__)), "resnet_gans.py")
  return config_lib.load_experiment(base, ",".join(filter(None, ["variant=sagan,data=fashion_mnist", arg])))
