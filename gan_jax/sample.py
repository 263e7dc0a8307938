"""Samples from a workdir's latest checkpoint (EMA generator): `python -m gan_jax.sample --workdir=W --num=N
--out=F.npz [--seed=S] [--grid=F.png]`. Writes key `images` (uint8 [N, H, W, C]) for image models, `points`
(float32 [N, D]) for vector models such as the 2D benchmark's. Same seed, same samples.
"""
import os

from absl import app, flags
import jax
import numpy as np

from gan_jax import cli, errors


def sample(workdir: str, num: int, seed=None, batch_size: int = 256) -> np.ndarray:
  """[num, ...] from the EMA generator of the latest checkpoint in `workdir`: uint8 images or float32 points.

  Latents are drawn all at once from `seed` (default config.seed), so sample i is the same whatever `num`.
  """
  from gan_jax import config as config_lib, images, sharding, steps, train  # pylint: disable=g-import-not-at-top
  from gan_jax.errors import UserError  # pylint: disable=g-import-not-at-top
  if num < 1:
    raise UserError(f"--num must be positive, got {num}")
  config = config_lib.load_json(workdir)
  config_lib.validate(config)
  mesh = sharding.make_mesh()
  if not os.path.isdir(os.path.join(workdir, "checkpoints")):
    raise UserError(f"{workdir} has no checkpoints/ to sample from")
  gan, state, checkpointer, _ = train.restore_or_init(config, workdir, mesh)
  checkpointer.close()
  if checkpointer.latest_step() is None:
    raise UserError(f"{workdir}/checkpoints holds no complete checkpoint")
  seed = config.seed if seed is None else seed
  z = jax.random.normal(jax.random.PRNGKey(seed), (num, gan.latent_dim))  # [num, latent_dim]
  samples = steps.generate_in_batches(gan, state.ema_g, z, batch_size)
  return images.to_uint8(samples) if gan.makes_images else samples


def run():
  """The command line; its flags exist only when this module runs as a program."""
  workdir = flags.DEFINE_string("workdir", None, "Workdir of a training run (holds config.json, checkpoints/).")
  num = flags.DEFINE_integer("num", 64, "Number of samples.")
  out = flags.DEFINE_string("out", None, "Output .npz path.")
  seed = flags.DEFINE_integer("seed", None, "Seed of the latents; default: the run's config.seed.")
  grid = flags.DEFINE_string("grid", None, "Optional PNG path for a grid (images) or scatter plot (points).")
  batch_size = flags.DEFINE_integer("batch_size", 256, "Samples generated per call.")
  verbose = flags.DEFINE_bool("verbose", False, "Show tracebacks for user errors.")

  def main(argv):
    cli.check_command_line(argv, workdir=workdir.value, out=out.value)
    from gan_jax import images  # pylint: disable=g-import-not-at-top
    with cli.user_errors_reported(verbose.value):
      samples = sample(workdir.value, num.value, seed.value, batch_size.value)
    points = samples.dtype != np.uint8
    try:
      np.savez_compressed(out.value, **{"points" if points else "images": samples})
      if grid.value:
        images.save_png(images.scatter(samples) if points else images.grid(samples), grid.value,
                        scale=1 if points else 4)
    except OSError as e:
      errors.exit_with(f"cannot write output: {e}")
    print(f"wrote {samples.shape[0]} samples {samples.shape[1:]} to {out.value}")

  app.run(main, flags_parser=cli.parse_flags)


if __name__ == "__main__":
  run()
