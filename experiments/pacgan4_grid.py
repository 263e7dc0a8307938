"""PacGAN4: the mode-collapse benchmark (PacGAN, Lin et al. 2018, Table 1) on grid25.

  python -m gan_jax.main --config=experiments/pacgan4_grid.py --workdir=runs/pacgan4_grid

The protocol and its arguments are in experiments/mode_collapse.py (e.g. `:steps=20000,runlocal`).
"""
import os

from gan_jax import config as config_lib


def get_config(arg=None):
  base = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mode_collapse.py")
  return config_lib.load_experiment(base, ",".join(filter(None, ["data=grid25,variant=pacgan4", arg])))
