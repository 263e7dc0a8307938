"""Samples from a workdir's latest checkpoint (EMA generator): `python -m gan_jax.sample --workdir=W --num=N
--out=F.npz [--seed=S] [--grid=F.png]`. Writes key `images` (uint8 [N, H, W, C]) for image models, `points`
(float32 [N, D]) for vector models such as the 2D benchmark's. Same seed, same samples.
"""
import os

from absl import app, flags
import jax
import numpy as np

from gan_jax import errors

_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir of a training run (holds config.json, checkpoints/).")
_NUM = flags.DEFINE_integer("num", 64, "Number of samples.")
_OUT = flags.DEFINE_string("out", None, "Output .npz path.")
_SEED = flags.DEFINE_integer("seed", None, "Seed of the latents; default: the run's config.seed.")
_GRID = flags.DEFINE_string("grid", None, "Optional PNG path for a grid (images) or scatter plot (points).")
_BATCH = flags.DEFINE_integer("batch_size", 256, "Samples generated per call.")
_VERBOSE = flags.DEFINE_bool("verbose", False, "Show tracebacks for user errors.")


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
  gan, _, _, state, checkpointer = train.restore_or_init(config, workdir, mesh)
  checkpointer.close()
  if checkpointer.latest_step() is None:
    raise UserError(f"{workdir}/checkpoints holds no complete checkpoint")
  seed = config.seed if seed is None else seed
  z = jax.random.normal(jax.random.PRNGKey(seed), (num, gan.latent_dim))  # [num, latent_dim]
  samples = steps.generate_in_batches(gan, state.ema_g, z, batch_size)
  return images.to_uint8(samples) if gan.makes_images else samples


def main(argv):
  if len(argv) > 1:
    errors.exit_with(f"unexpected arguments: {' '.join(argv[1:])}")
  if not _WORKDIR.value or not _OUT.value:
    errors.exit_with("--workdir and --out are required")
  try:
    samples = sample(_WORKDIR.value, _NUM.value, _SEED.value, _BATCH.value)
    from gan_jax import images  # pylint: disable=g-import-not-at-top
    points = samples.dtype != np.uint8
    np.savez_compressed(_OUT.value, **{"points" if points else "images": samples})
    if _GRID.value:
      images.save_png(images.scatter(samples) if points else images.grid(samples), _GRID.value,
                      scale=1 if points else 4)
  except errors.UserError as e:
    if _VERBOSE.value:
      raise
    errors.exit_with(e)
  except OSError as e:
    errors.exit_with(f"cannot write output: {e}")
  print(f"wrote {samples.shape[0]} samples {samples.shape[1:]} to {_OUT.value}")


if __name__ == "__main__":
  app.run(main)
