"""Progressive growing (Karras et al. 2018) on digits: experiments/progan.py with data=digits.

  python -m gan_jax.main --config=experiments/progan_digits.py --workdir=runs/progan_digits

Arguments are passed on (e.g. `:grow=0` for the same networks at full resolution from the start, `:runlocal`);
the settings and their sources are in experiments/progan.py.
"""
import os

from gan_jax import config as config_lib


def get_config(arg=None):
  base = os.path.join(os.path.dirname(os.path.abspath(__file__)), "progan.py")
  return config_lib.load_experiment(base, ",".join(filter(None, ["data=digits", arg])))
