"""Command line: `python -m gan_jax.main --config=experiments/X.py[:arg] --workdir=DIR [--config.key=value]`.

Parses flags, joins the other processes of a multi-host run (jax.distributed), then calls
`train.train_and_evaluate`. User errors print one line and exit 2. `--list_experiments` prints the experiment
configs and `--config_help` every config key with its default and meaning.

Multi-host: run the same command in every process with `--distributed` where JAX finds the cluster itself
(SLURM, Open MPI, Cloud TPU), or with `--coordinator_address=HOST:PORT --num_processes=N --process_id=I`
(scripts/launch_local.sh; README, "Running at scale").
"""
import sys

from absl import app, flags
from ml_collections import config_flags

from gan_jax import cli, errors

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file, e.g. "
                                          "experiments/dcgan_digits.py or experiments/dcgan_digits.py:runlocal.",
                                          lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for config.json, checkpoints, logs and samples.")
_VERBOSE = flags.DEFINE_bool("verbose", False, "Show tracebacks for user errors, and the libraries' log lines.")
_DISTRIBUTED = flags.DEFINE_bool("distributed", False, "Join a multi-process run whose cluster JAX detects "
                                 "(SLURM, Open MPI, Cloud TPU); implied by --coordinator_address.")
_COORDINATOR = flags.DEFINE_string("coordinator_address", None, "HOST:PORT of process 0, for "
                                   "jax.distributed.initialize.")
_NUM_PROCESSES = flags.DEFINE_integer("num_processes", None, "Processes in the run (with --coordinator_address).")
_PROCESS_ID = flags.DEFINE_integer("process_id", None, "This process's index in [0, num_processes).")


def initialize_distributed() -> None:
  """jax.distributed.initialize from the flags; nothing for a single-process run."""
  explicit = {"coordinator_address": _COORDINATOR.value, "num_processes": _NUM_PROCESSES.value,
              "process_id": _PROCESS_ID.value}
  given = [k for k, v in explicit.items() if v is not None]
  if not _DISTRIBUTED.value and not given:
    return
  if given and len(given) < 3 and _COORDINATOR.value is not None:
    missing = [f"--{k}" for k in explicit if k not in given]
    errors.exit_with(f"--coordinator_address needs {' and '.join(missing)} too (or --distributed alone on a "
                     "cluster JAX detects)")
  if _NUM_PROCESSES.value is not None and _PROCESS_ID.value is not None and not (
      0 <= _PROCESS_ID.value < _NUM_PROCESSES.value):
    errors.exit_with(f"--process_id {_PROCESS_ID.value} is not in [0, {_NUM_PROCESSES.value})")
  import jax  # pylint: disable=g-import-not-at-top
  try:
    jax.distributed.initialize(**{k: explicit[k] for k in given})
  except (RuntimeError, ValueError) as e:
    errors.exit_with(f"cannot join the distributed run: {errors.first_line(e)}")


_LIST_EXPERIMENTS = flags.DEFINE_bool("list_experiments", False, "Print every experiment config with the first line "
                                      "of its docstring, and exit.")
_CONFIG_HELP = flags.DEFINE_bool("config_help", False, "Print every config key with its default and meaning "
                                 "(gan_jax/config.py), and exit.")


def list_experiments() -> str:
  """'experiments/<name>.py  <first docstring line>' for every experiment config, sorted."""
  import ast  # pylint: disable=g-import-not-at-top
  import glob  # pylint: disable=g-import-not-at-top
  import os  # pylint: disable=g-import-not-at-top
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  lines = []
  for path in sorted(glob.glob(os.path.join(root, "experiments", "*.py"))):
    with open(path) as f:
      doc = ast.get_docstring(ast.parse(f.read())) or ""
    lines.append(f"experiments/{os.path.basename(path):28s} {' '.join(doc.split(chr(10) + chr(10))[0].split())}")
  return "\n".join(lines)


def config_help() -> str:
  """'key = default  # meaning' for every key of base_config, the meaning from the comment beside it in config.py."""
  import inspect  # pylint: disable=g-import-not-at-top
  import re  # pylint: disable=g-import-not-at-top
  from gan_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  comments = {}
  for line in inspect.getsource(config_lib.base_config).splitlines():
    match = re.match(r"\s*c\.([\w.]+)\s*=.*?#\s*(.*)$", line)
    if match:
      comments[match.group(1)] = match.group(2)
  flat = config_lib.flatten(config_lib.base_config())
  return "\n".join(f"{key} = {value!r}" + (f"  # {comments[key]}" if key in comments else "")
                   for key, value in flat.items())


def main(argv):
  if _LIST_EXPERIMENTS.value or _CONFIG_HELP.value:
    print(list_experiments() if _LIST_EXPERIMENTS.value else config_help())
    return
  cli.check_command_line(argv, workdir=_WORKDIR.value)
  config = cli.load_config(_CONFIG)
  from gan_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  with cli.user_errors_reported(_VERBOSE.value):
    objective = config_lib.validate(config)  # Before TensorFlow and the distributed runtime: fails at once.
  initialize_distributed()
  from gan_jax import train  # pylint: disable=g-import-not-at-top  (heavy; after flags are checked)
  with cli.user_errors_reported(_VERBOSE.value):
    train.train_and_evaluate(config, _WORKDIR.value, objective)


def run():
  app.run(main, flags_parser=cli.parse_flags)


if __name__ == "__main__":
  sys.exit(run())
