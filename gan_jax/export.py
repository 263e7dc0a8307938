"""A trained generator as a labelled synthetic dataset other pipelines read directly:

  python -m gan_jax.export --workdir=W --num=N --out=DIR [--labels=all|3|1,4,7|FILE] [--seed=S] [--format=tfds|npz]

`--format=tfds` (the default) writes a TFDS dataset directory, `DIR/<name>/1.0.0`, that any TFDS user opens with
`tfds.builder_from_directory(path)` (features `image` uint8 and, for class-conditional models, `label`; split
`train`); `--format=npz` writes `DIR/<name>.npz` with keys `images` and `labels`. Beside either, `DIR/<name>.json`
records what made it: the workdir, its checkpoint's step, the run's config, the seed, the labels asked for and the
count. Deterministic for a seed: the samples are those of `gan_jax.sample` with the same arguments (latents drawn
all at once from the seed, so sample i does not depend on --num). Unconditional models export images only.
"""
import json
import os

from absl import app, flags
import numpy as np

from gan_jax import cli, errors


def export(workdir: str, num: int, out: str, labels=None, seed=None, fmt: str = "tfds", name=None) -> str:
  """Writes `num` samples of the run in `workdir` to `out` (see the module docstring); returns the path written.
  `labels` is a `--labels` spec for class-conditional models ("all" or None: balanced)."""
  from gan_jax import sample  # pylint: disable=g-import-not-at-top
  from gan_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  from gan_jax.errors import UserError  # pylint: disable=g-import-not-at-top
  if fmt not in ("tfds", "npz"):
    raise UserError(f"--format {fmt!r} is not tfds or npz")
  config, objective, state = sample.load_run(workdir)
  if not getattr(objective.models, "makes_images", False):
    raise UserError("export writes image datasets; this run's model makes vectors (use gan_jax.sample)")
  given = {"labels": sample.parse_labels(labels, num)} if labels not in (None, "all") else {}
  images, conditions = sample.sample(workdir, num, seed, **given)
  class_labels = conditions.get("labels")
  name = name or f"{os.path.basename(os.path.normpath(workdir))}_synthetic"
  record = {"workdir": os.path.abspath(workdir), "step": int(state.step), "seed": config.seed if seed is None else seed,
            "num": int(num), "labels": labels or "all", "format": fmt, "config": config_lib.as_run(config)}
  os.makedirs(out, exist_ok=True)
  if fmt == "npz":
    path = os.path.join(out, f"{name}.npz")
    arrays = {"images": images} if class_labels is None else {"images": images, "labels": class_labels}
    np.savez_compressed(path, **arrays)
  else:
    path = _write_tfds(out, name, images, class_labels, getattr(objective.models, "num_classes", 0), record)
  with open(os.path.join(out, f"{name}.json"), "w") as f:
    json.dump({**record, "path": path}, f, indent=1)
  return path


def _write_tfds(out, name, images, labels, num_classes, record) -> str:
  """A TFDS dataset directory through tfds.dataset_builders.store_as_tfds_dataset, examples in sample order."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  features = {"image": tfds.features.Image(shape=images.shape[1:])}
  examples = {"image": images}
  if labels is not None:
    features["label"] = tfds.features.ClassLabel(num_classes=num_classes)
    examples["label"] = labels.astype(np.int64)
  description = (f"Samples of the gan_jax run in {record['workdir']} at step {record['step']} (seed {record['seed']}, "
                 f"labels {record['labels']}).")
  builder = tfds.dataset_builders.store_as_tfds_dataset(
      name=name, version="1.0.0", features=tfds.features.FeaturesDict(features),
      split_datasets={"train": tf.data.Dataset.from_tensor_slices(examples)}, data_dir=out,
      description=description, disable_shuffling=True)
  return str(builder.data_dir)


def run():
  """The command line; its flags exist only when this module runs as a program."""
  workdir = flags.DEFINE_string("workdir", None, "Workdir of a training run (holds config.json, checkpoints/).")
  num = flags.DEFINE_integer("num", None, "Number of samples to write.")
  out = flags.DEFINE_string("out", None, "Output directory.")
  labels = flags.DEFINE_string("labels", None, "Class-conditional models: 'all' (balanced; the default), a class id, "
                               "a comma-separated list (cycled through), or a .npy/.txt file of ids.")
  seed = flags.DEFINE_integer("seed", None, "Seed of the latents; default: the run's config.seed.")
  fmt = flags.DEFINE_enum("format", "tfds", ["tfds", "npz"], "A TFDS dataset directory or an .npz.")
  name = flags.DEFINE_string("name", None, "Dataset name; default: <workdir name>_synthetic.")
  verbose = flags.DEFINE_bool("verbose", False, "Show tracebacks for user errors, and the libraries' log lines.")

  def main(argv):
    cli.check_command_line(argv, workdir=workdir.value, num=num.value, out=out.value)
    if num.value < 1:
      errors.exit_with(f"--num must be positive, got {num.value}")
    with cli.user_errors_reported(verbose.value):
      path = export(workdir.value, num.value, out.value, labels.value, seed.value, fmt.value, name.value)
    print(f"wrote {num.value} samples to {path}")

  app.run(main, flags_parser=cli.parse_flags)


if __name__ == "__main__":
  run()
