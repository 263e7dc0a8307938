"""Samples from a workdir's latest checkpoint (EMA generator): `python -m gan_jax.sample --workdir=W --num=N
--out=F.npz [--seed=S] [--grid=F.png] [--labels=3 | 1,4,7 | all]`. Writes key `images` (uint8 [N, H, W, C])
for image models, `points` (float32 [N, D]) for vector models such as the 2D benchmark's, and for
class-conditional models `labels` (int32 [N], the class each sample was asked for: one class, a list cycled
through, or `all` classes in turn, the default). Same seed, same samples.
"""
import os

from absl import app, flags
import jax
import numpy as np

from gan_jax import cli, errors


def parse_labels(spec, num: int, num_classes: int):
  """`--labels` -> int32 [num]: one class ("3"), a list cycled through ("1,4,7"), or "all" (i mod K)."""
  from gan_jax.errors import UserError  # pylint: disable=g-import-not-at-top
  if not num_classes:
    raise UserError("--labels is for class-conditional models; this run's model has no classes")
  if spec in (None, "all"):
    return np.arange(num, dtype=np.int32) % num_classes
  try:
    classes = [int(c) for c in spec.split(",")]
  except ValueError:
    raise UserError(f"--labels {spec!r} is not a class id, a comma-separated list of them, or 'all'") from None
  bad = [c for c in classes if not 0 <= c < num_classes]
  if bad:
    raise UserError(f"--labels {spec!r}: class(es) {bad} not in [0, {num_classes})")
  return np.resize(np.asarray(classes, np.int32), num)


def load_run(workdir: str):
  """(config, models, state) of the newest intact checkpoint of the training run in `workdir` (its EMA
  generator is state.ema_g); UserError when there is none."""
  from gan_jax import config as config_lib, sharding, train  # pylint: disable=g-import-not-at-top
  from gan_jax.errors import UserError  # pylint: disable=g-import-not-at-top
  config = config_lib.load_json(workdir)
  config_lib.validate(config)
  if not os.path.isdir(os.path.join(workdir, "checkpoints")):
    raise UserError(f"{workdir} has no checkpoints/ to sample from")
  gan, state, checkpointer, _ = train.restore_or_init(config, workdir, sharding.make_mesh())
  checkpointer.close()
  if checkpointer.latest_step() is None:
    raise UserError(f"{workdir}/checkpoints holds no complete checkpoint")
  return config, gan, state


def sample(workdir: str, num: int, seed=None, batch_size: int = 256) -> np.ndarray:
  """[num, ...] from the EMA generator of the latest checkpoint in `workdir`: uint8 images or float32 points
  (class-conditional models: all classes in turn)."""
  return sample_with_labels(workdir, num, seed, batch_size)[0]


def sample_with_labels(workdir: str, num: int, seed=None, batch_size: int = 256, labels=None):
  """(samples [num, ...], labels [num] or None): uint8 images or float32 points from the EMA generator of the
  latest checkpoint in `workdir`; class-conditional models generate the classes `labels` asks for (a
  `--labels` spec, see parse_labels; default all in turn), and others refuse `labels`.

  Latents are drawn all at once from `seed` (default config.seed), so sample i is the same whatever `num`.
  """
  from gan_jax import images, models, steps  # pylint: disable=g-import-not-at-top
  from gan_jax.errors import UserError  # pylint: disable=g-import-not-at-top
  if num < 1:
    raise UserError(f"--num must be positive, got {num}")
  config, gan, state = load_run(workdir)
  seed = config.seed if seed is None else seed
  z = models.sample_latents(gan, jax.random.PRNGKey(seed), num)  # [num, latent_dim]
  classes = parse_labels(labels, num, gan.num_classes) if (labels is not None or gan.num_classes) else None
  samples = steps.generate_in_batches(gan, state.ema_g, z, batch_size, labels=classes)
  return (images.to_uint8(samples) if gan.makes_images else samples), classes


def run():
  """The command line; its flags exist only when this module runs as a program."""
  workdir = flags.DEFINE_string("workdir", None, "Workdir of a training run (holds config.json, checkpoints/).")
  num = flags.DEFINE_integer("num", 64, "Number of samples.")
  out = flags.DEFINE_string("out", None, "Output .npz path.")
  seed = flags.DEFINE_integer("seed", None, "Seed of the latents; default: the run's config.seed.")
  grid = flags.DEFINE_string("grid", None, "Optional PNG path for a grid (images) or scatter plot (points).")
  batch_size = flags.DEFINE_integer("batch_size", 256, "Samples generated per call.")
  verbose = flags.DEFINE_bool("verbose", False, "Show tracebacks for user errors.")
  labels = flags.DEFINE_string("labels", None, "Class-conditional models: a class id, a comma-separated list "
                               "(cycled through), or 'all' (balanced; the default).")

  def main(argv):
    cli.check_command_line(argv, workdir=workdir.value, out=out.value)
    from gan_jax import images  # pylint: disable=g-import-not-at-top
    with cli.user_errors_reported(verbose.value):
      samples, classes = sample_with_labels(workdir.value, num.value, seed.value, batch_size.value, labels.value)
    points = samples.dtype != np.uint8
    extra = {} if classes is None else {"labels": classes}
    try:
      np.savez_compressed(out.value, **{"points" if points else "images": samples}, **extra)
      if grid.value:
        images.save_png(images.scatter(samples) if points else images.grid(samples), grid.value,
                        scale=1 if points else 4)
    except OSError as e:
      errors.exit_with(f"cannot write output: {e}")
    print(f"wrote {samples.shape[0]} samples {samples.shape[1:]} to {out.value}")

  app.run(main, flags_parser=cli.parse_flags)


if __name__ == "__main__":
  run()
