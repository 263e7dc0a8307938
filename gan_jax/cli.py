"""What every command line (main, sample, sweep) shares: flag parsing and config loading that report bad
input as one `gan_jax: error:` line, user errors without a traceback unless --verbose, quiet libraries.
"""
import contextlib
import logging as py_logging
import os
import re

from absl import flags, logging

from gan_jax import errors


def parse_flags(argv):
  """absl's parser, with bad flags and configs reported as one `gan_jax: error:` line (pass to app.run)."""
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    errors.exit_with(e)
  except errors.UserError as e:  # Raised by a config file's get_config(arg).
    errors.exit_with(e)
  except (AttributeError, KeyError) as e:  # ml_collections on --config.<a key the config does not have>=v.
    errors.exit_with(unknown_key_message(e, argv))
  except (TypeError, ValueError) as e:  # ml_collections on a value of the wrong type.
    overrides = " ".join(a for a in argv if a.startswith("--config."))
    errors.exit_with(f"bad config override in {overrides or 'the command line'}: {errors.first_line(e)} (the "
                     "experiment file and gan_jax/config.py list the keys and their types)")


def unknown_key_message(error, argv) -> str:
  """`unknown config key 'los'; did you mean 'loss'?` from ml_collections' KeyError/AttributeError, whose text is
  the key and, when it finds one, a suggestion on the next line."""
  text = str(error.args[0]) if error.args else str(error)
  key = (re.findall(r"[\w.]+", text) or ["?"])[0]
  suggestion = re.search(r'Did you mean "([^"]+)"', text)
  flags_given = [a.split("=", 1)[0][len("--config."):] for a in argv if a.startswith("--config.")]
  path = next((f for f in flags_given if key in f.split(".")), key)  # The full dotted path the user typed.
  message = f"unknown config key {path!r}"
  if suggestion:
    message += f"; did you mean {'.'.join(path.split('.')[:-1] + [suggestion.group(1)])!r}?"
  return message + " (the experiment file and gan_jax/config.py list the keys)"


def check_command_line(argv, **required) -> None:
  """Exits with one error line on stray arguments or a missing required flag (given as name=value); then
  quiets the libraries. The first thing every command's main(argv) does."""
  if len(argv) > 1:
    errors.exit_with(f"unexpected arguments: {' '.join(argv[1:])}")
  missing = [f"--{name}" for name, value in required.items() if not value]
  if missing:
    errors.exit_with(f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} required")
  quiet_libraries(verbose="verbose" in flags.FLAGS and flags.FLAGS["verbose"].value)


def load_config(config_flag):
  """The value of a config_flags flag, or one error line (config_flags reports an unloadable file late)."""
  try:
    config = config_flag.value
    if config is not None:
      config.keys()
  except OSError as e:
    reason = [line.strip() for line in str(e).splitlines() if line.strip()][-1]
    errors.exit_with(f"cannot load the --config file: {reason}")
  if config is None:
    errors.exit_with("--config is required (e.g. --config=experiments/dcgan_digits.py)")
  return config


def quiet_libraries(verbose: bool = False):
  """The console a researcher wants: gan_jax's own lines with the time of day, and every library's warnings;
  the libraries' INFO lines (TensorFlow's, TFDS's, JAX's backends, orbax's, clu's metric echo) and TensorFlow's C++
  log only with --verbose, which also brings back absl's full prefix."""
  if verbose:
    return
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # Before TensorFlow is imported (the commands import it late).
  handler = logging.get_absl_handler()
  handler.setFormatter(py_logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
  own = os.sep + "gan_jax" + os.sep
  handler.addFilter(lambda record: record.levelno >= py_logging.WARNING or own in record.pathname)


@contextlib.contextmanager
def user_errors_reported(verbose: bool):
  """Turns a UserError raised inside into `gan_jax: error: ...` and exit 2 (re-raised when `verbose`)."""
  try:
    yield
  except errors.UserError as e:
    if verbose:
      raise
    logging.flush()
    errors.exit_with(e)
