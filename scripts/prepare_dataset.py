"""Prepares a TFDS dataset from a local copy of its original files, with no network access (gan_jax/data/local_copy.py).

  python scripts/prepare_dataset.py --name=mnist --from=DIR [--data_dir=D]
  python scripts/prepare_dataset.py --name=fashion_mnist --from=DIR [--data_dir=D] [--registered_only]

DIR holds the four original .gz files (train-images-idx3-ubyte.gz, ...). Each is checked against the size and sha256
TFDS registered for it (or, unless --registered_only, against the sha256 of the original's decompressed bytes: a
re-compressed copy) before TFDS prepares the dataset from it exactly as from a download. Prints where the dataset is;
train with --config.data.data_dir=D (D defaults to TFDS's data_dir, ~/tensorflow_datasets).
"""
import os
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gan_jax import cli  # noqa: E402
from gan_jax.data import local_copy  # noqa: E402

_NAME = flags.DEFINE_enum("name", None, local_copy.NAMES, "The TFDS dataset to prepare.")
_FROM = flags.DEFINE_string("from", None, "Directory holding the dataset's original files.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "TFDS data_dir to prepare it in (default: TFDS's).")
_REGISTERED_ONLY = flags.DEFINE_bool("registered_only", False, "Accept only files whose sha256 is TFDS's registered "
                                     "one (refuse re-compressed copies of the originals).")


def main(argv):
  cli.check_command_line(argv, name=_NAME.value, **{"from": _FROM.value})
  with cli.user_errors_reported(False):
    accepted = local_copy.verify(_NAME.value, _FROM.value, _REGISTERED_ONLY.value)
    builder = local_copy.prepare(_NAME.value, _FROM.value, _DATA_DIR.value, _REGISTERED_ONLY.value)
  for how in (local_copy.REGISTERED, local_copy.CONTENTS):
    files = [f for f, h in sorted(accepted.items()) if h == how]
    if files:
      print(f"verified by {how}: {', '.join(files)}")
  splits = ", ".join(f"{name} {split.num_examples:,}" for name, split in builder.info.splits.items())
  print(f"{_NAME.value} is prepared in {builder.data_dir} ({splits} examples); use it with "
        f"--config.data.data_dir={builder.data_dir_root}")


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
