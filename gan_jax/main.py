"""Command line: `python -m gan_jax.main --config=experiments/X.py[:arg] --workdir=DIR [--config.key=value]`.

Parses flags, then calls `train.train_and_evaluate`. User errors print one line and exit 2.
"""
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from gan_jax import errors

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file, e.g. "
                                          "experiments/dcgan_digits.py or experiments/dcgan_digits.py:runlocal.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for config.json, checkpoints, logs and samples.")
_VERBOSE = flags.DEFINE_bool("verbose", False, "Show tracebacks for user errors.")


def parse_flags(argv):
  """absl's parser, with bad flags and configs reported as one `gan_jax: error:` line."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    errors.exit_with(e)
  except errors.UserError as e:  # Raised by a config file's get_config(arg).
    errors.exit_with(e)
  except (AttributeError, KeyError, TypeError, ValueError) as e:  # ml_collections on a bad --config.x=v.
    overrides = " ".join(a for a in argv if a.startswith("--config."))
    errors.exit_with(f"bad config override in {overrides or 'the command line'}: {e} is not a config key, or "
                     "the value has the wrong type (the experiment file and gan_jax/config.py list the keys)")


def _quiet_libraries():
  """Keeps orbax's and TensorFlow's INFO chatter out of the console; warnings still show."""
  import logging as py_logging  # pylint: disable=g-import-not-at-top
  logging.get_absl_handler().addFilter(
      lambda record: record.levelno >= py_logging.WARNING or "/orbax/" not in record.pathname)


def main(argv):
  _quiet_libraries()
  if len(argv) > 1:
    errors.exit_with(f"unexpected arguments: {' '.join(argv[1:])}")
  try:
    config = _CONFIG.value
    if config is not None:
      config.keys()  # config_flags reports a file it could not load only when the config is first used.
  except OSError as e:
    reason = [line.strip() for line in str(e).splitlines() if line.strip()][-1]
    errors.exit_with(f"cannot load the --config file: {reason}")
  if config is None:
    errors.exit_with("--config is required (e.g. --config=experiments/dcgan_digits.py)")
  if not _WORKDIR.value:
    errors.exit_with("--workdir is required")
  from gan_jax import train  # pylint: disable=g-import-not-at-top  (heavy; after flags are checked)
  try:
    train.train_and_evaluate(config, _WORKDIR.value)
  except errors.UserError as e:
    if _VERBOSE.value:
      raise
    logging.flush()
    errors.exit_with(e)


def run():
  app.run(main, flags_parser=parse_flags)


if __name__ == "__main__":
  sys.exit(run())
