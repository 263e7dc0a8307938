"""Samples from a workdir's latest checkpoint (EMA generator): `python -m gan_jax.sample --workdir=W --num=N
--out=F.npz [--seed=S] [--grid=F.png] [--labels=3 | 1,4,7 | all | FILE] [--inputs=FILE] [--text=CAPTION | FILE]`.

Writes key `images` (uint8 [N, H, W, C]) for image models, `points` (float32 [N, D]) for vector models such as
the 2D benchmark's, and the generator's inputs other than its latents: `labels` (int32 [N]) for class-conditional
models (one class, a list cycled through, `all` classes in turn, the default, or a .npy/.txt file of class ids),
`inputs` for generators that take an input image (a .npy/.npz array or a directory of PNGs; their --grid shows each
input beside its translation, and beside its true target where the run's evaluation split gives one), `text` (word
ids [N, T]) for text-to-image generators given --text (a caption, or a file of them). What a run's
generator takes is its objective's `conditions`; asking one for inputs it does not take is an error. Same seed,
same samples.
"""
import inspect
import os

from absl import app, flags
import jax
import numpy as np

from gan_jax import cli, errors


def parse_labels(spec, num: int):
  """`--labels` -> int32 [num], or None for "all" (the objective's balanced default): one class ("3"), a list
  cycled through ("1,4,7"), or a .npy / .txt file of class ids (cycled through)."""
  from gan_jax.errors import UserError  # pylint: disable=g-import-not-at-top
  if spec in (None, "all"):
    return None
  if os.path.isfile(spec):
    classes = np.load(spec) if spec.endswith(".npy") else np.loadtxt(spec, dtype=np.int64, ndmin=1)
  else:
    try:
      classes = [int(c) for c in spec.split(",")]
    except ValueError:
      raise UserError(f"--labels {spec!r} is not a class id, a comma-separated list of them, 'all', or a file") from None
  classes = np.asarray(classes).reshape(-1)
  if not len(classes) or not np.issubdtype(classes.dtype, np.integer):
    raise UserError(f"--labels {spec!r} holds no class ids")
  return np.resize(classes.astype(np.int32), num)


def load_inputs(path, num: int) -> np.ndarray:
  """`--inputs` -> float32 images [num, H, W, C] in [-1, 1]: a .npy array, the first array of a .npz, or the PNGs
  of a directory in name order (uint8 arrays are scaled from [0, 255]); cycled through to `num`."""
  from gan_jax import images  # pylint: disable=g-import-not-at-top
  from gan_jax.errors import UserError  # pylint: disable=g-import-not-at-top
  try:
    if os.path.isdir(path):
      names = sorted(n for n in os.listdir(path) if n.lower().endswith(".png"))
      array = np.stack([images.load_png(os.path.join(path, n)) for n in names]) if names else np.zeros((0,))
    else:
      loaded = np.load(path)
      array = loaded[loaded.files[0]] if isinstance(loaded, np.lib.npyio.NpzFile) else loaded
  except (OSError, ValueError) as e:
    raise UserError(f"cannot read --inputs {path}: {errors.first_line(e)}") from None
  if array.ndim == 3:
    array = array[..., None]
  if array.ndim != 4 or not len(array):
    raise UserError(f"--inputs {path} holds no images [N, H, W, C] (got shape {array.shape})")
  if array.dtype == np.uint8:
    array = array.astype(np.float32) / 127.5 - 1.0
  return np.resize(array.astype(np.float32), (num, *array.shape[1:]))


def load_captions(spec: str) -> list:
  """`--text` -> caption strings: the lines of a file when `spec` is one, else `spec` itself."""
  from gan_jax.errors import UserError  # pylint: disable=g-import-not-at-top
  if os.path.isfile(spec):
    try:
      with open(spec) as f:
        captions = [line.strip() for line in f if line.strip()]
    except (OSError, UnicodeDecodeError) as e:
      raise UserError(f"cannot read --text {spec}: {errors.first_line(e)}") from None
    if not captions:
      raise UserError(f"--text {spec} holds no captions")
    return captions
  if not spec.strip():
    raise UserError("--text is empty")
  return [spec]


def load_run(workdir: str):
  """(config, objective, state) of the newest intact checkpoint of the training run in `workdir` (its EMA
  networks are state.ema); UserError when there is none."""
  from gan_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  from gan_jax.errors import UserError  # pylint: disable=g-import-not-at-top
  config = config_lib.load_json(workdir)
  objective = config_lib.validate(config)
  if not os.path.isdir(os.path.join(workdir, "checkpoints")):
    raise UserError(f"{workdir} has no checkpoints/ to sample from")
  from gan_jax import sharding, train  # pylint: disable=g-import-not-at-top  (TensorFlow: after the checks)
  objective, state, checkpointer, _ = train.restore_or_init(config, workdir, sharding.make_mesh(), objective)
  checkpointer.close()
  if checkpointer.latest_step() is None:
    raise UserError(f"{workdir}/checkpoints holds no complete checkpoint")
  return config, objective, state


def sample(workdir: str, num: int, seed=None, batch_size: int = 256, **given):
  """(samples [num, ...], conditions): uint8 images or float32 points from the EMA generator of the latest
  checkpoint in `workdir`, and the inputs it was given (objective.conditions: latents, labels, input images).
  `given` are conditions the caller chooses (labels=int32 [num], inputs=float32 images); the others are drawn.

  Latents are drawn all at once from `seed` (default config.seed), so sample i is the same whatever `num`.
  """
  from gan_jax import images  # pylint: disable=g-import-not-at-top
  from gan_jax.errors import UserError  # pylint: disable=g-import-not-at-top
  if num < 1:
    raise UserError(f"--num must be positive, got {num}")
  config, objective, state = load_run(workdir)
  given = {k: v for k, v in given.items() if v is not None}
  takes = [p for p in inspect.signature(objective.conditions).parameters if p not in ("key", "num")]
  refused = sorted(set(given) - set(takes))
  if refused:
    raise UserError(f"this run's generator (objective {config.objective!r}) takes no --{refused[0]}; it takes: "
                    f"{', '.join('--' + t for t in takes) or 'no inputs'}")
  seed = config.seed if seed is None else seed
  conditions = objective.conditions(jax.random.PRNGKey(seed), num, **given)
  samples = objective.generate(state.ema, conditions, batch_size)
  return (images.to_uint8(samples) if samples.ndim == 4 else samples), conditions


def translator(workdir: str):
  """A function float32 images [N, H, W, C] in [-1, 1] -> float32 translations [N, ...] by the sampled generator of
  the translation run in `workdir` (pix2pix, CycleGAN: its config's direction), with the shape of the images it
  takes (the objective's `input_shape`) as `.input_shape`; UserError for a run whose generator takes no input
  images."""
  from gan_jax.errors import UserError  # pylint: disable=g-import-not-at-top
  config, objective, state = load_run(workdir)
  if "inputs" not in inspect.signature(objective.conditions).parameters:
    raise UserError(f"{workdir} is a {config.objective!r} run, whose generator takes no input images")

  def translate(images):
    return np.asarray(objective.generate(state.ema, {"inputs": images}), np.float32)

  translate.input_shape = tuple(objective.input_shape)
  return translate


def run():
  """The command line; its flags exist only when this module runs as a program."""
  workdir = flags.DEFINE_string("workdir", None, "Workdir of a training run (holds config.json, checkpoints/).")
  num = flags.DEFINE_integer("num", 64, "Number of samples.")
  out = flags.DEFINE_string("out", None, "Output .npz path.")
  seed = flags.DEFINE_integer("seed", None, "Seed of the latents; default: the run's config.seed.")
  grid = flags.DEFINE_string("grid", None, "Optional PNG path for a grid (images) or scatter plot (points).")
  batch_size = flags.DEFINE_integer("batch_size", 256, "Samples generated per call.")
  verbose = flags.DEFINE_bool("verbose", False, "Show tracebacks for user errors, and the libraries' log lines.")
  labels = flags.DEFINE_string("labels", None, "Class-conditional models: a class id, a comma-separated list "
                               "(cycled through), 'all' (balanced; the default), or a .npy/.txt file of ids.")
  inputs = flags.DEFINE_string("inputs", None, "Generators that take an input image: a .npy/.npz array "
                               "[N, H, W, C] (uint8, or float in [-1, 1]) or a directory of PNGs.")
  text = flags.DEFINE_string("text", None, "Text-to-image generators: a caption, or a file of captions one per "
                             "line (cycled through --num).")

  def main(argv):
    cli.check_command_line(argv, workdir=workdir.value, out=out.value)
    from gan_jax import images  # pylint: disable=g-import-not-at-top
    with cli.user_errors_reported(verbose.value):
      given = {"labels": parse_labels(labels.value, num.value)}
      if inputs.value is not None:
        given["inputs"] = load_inputs(inputs.value, num.value)
      if text.value is not None:
        given["text"] = load_captions(text.value)
      samples, conditions = sample(workdir.value, num.value, seed.value, batch_size.value, **given)
    points = samples.dtype != np.uint8
    extra = {k: v for k, v in conditions.items() if k != "z"}  # The latents are not written.
    try:
      np.savez_compressed(out.value, **{"points" if points else "images": samples}, **extra)
      if grid.value:
        if points:
          picture = images.scatter(samples)
        elif "inputs" in conditions:  # Translations: input | output (| target, where known) side by side.
          known = [conditions[k] for k in ("inputs", "targets") if k in conditions]
          picture = images.side_by_side(images.to_uint8(known[0]), samples, *map(images.to_uint8, known[1:]))
        else:
          picture = images.grid(samples)
        images.save_png(picture, grid.value, scale=1 if points else 4)
    except OSError as e:
      errors.exit_with(f"cannot write output: {e}")
    print(f"wrote {samples.shape[0]} samples {samples.shape[1:]} to {out.value}")

  app.run(main, flags_parser=cli.parse_flags)


if __name__ == "__main__":
  run()
