"""Command line: `python -m gan_jax.main --config=experiments/X.py[:arg] --workdir=DIR [--config.key=value]`.

Parses flags, then calls `train.train_and_evaluate`. User errors print one line and exit 2.
"""
import sys

from absl import app, flags
from ml_collections import config_flags

from gan_jax import cli

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file, e.g. "
                                          "experiments/dcgan_digits.py or experiments/dcgan_digits.py:runlocal.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for config.json, checkpoints, logs and samples.")
_VERBOSE = flags.DEFINE_bool("verbose", False, "Show tracebacks for user errors.")


def main(argv):
  cli.check_command_line(argv, workdir=_WORKDIR.value)
  config = cli.load_config(_CONFIG)
  from gan_jax import train  # pylint: disable=g-import-not-at-top  (heavy; after flags are checked)
  with cli.user_errors_reported(_VERBOSE.value):
    train.train_and_evaluate(config, _WORKDIR.value)


def run():
  app.run(main, flags_parser=cli.parse_flags)


if __name__ == "__main__":
  sys.exit(run())
