"""pix2pix (Isola et al. 2017) on edges2fashion, edges to Fashion-MNIST shoes and bags:
experiments/translation.py with method=pix2pix,data=edges2fashion.

  python -m gan_jax.main --config=experiments/pix2pix_edges2fashion.py --workdir=runs/pix2pix_edges2fashion

Arguments are passed on (e.g. `:variant=l1,steps=500,runlocal`); the variants, hyperparameters and their sources are in
experiments/translation.py.
"""
import os

from gan_jax import config as config_lib


def get_config(arg=None):
  base = os.path.join(os.path.dirname(os.path.abspath(__file__)), "translation.py")
  return config_lib.load_experiment(base, ",".join(filter(None, ["method=pix2pix,data=edges2fashion", arg])))
