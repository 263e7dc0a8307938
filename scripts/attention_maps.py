"""AttnGAN's word attention drawn, as the paper's Fig. 2 and 4 show it: for each caption, the generated image and,
for each of its words, where the last attending stage drew from that word.

  python scripts/attention_maps.py --workdir=runs/attngan_shapes --text="a small red circle above a big blue box" \\
      --out=attention.png [--num=2] [--seed=S]

--text is a caption or a file of captions (one per line). Each caption gives --num rows (different z); a row is
the image, then per word its attention map (the softmax over words of every pixel, at the stage's side, scaled by
the row's largest weight and shown over the image), with the word written under it.
"""
import os
import sys

import numpy as np
from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gan_jax import cli, errors  # noqa: E402

_SCALE = 4   # Pixels per image pixel.


def picture(images, attentions, ids, vocabulary):
  """uint8 [rows x (S + label), (1 + T) columns x S, 3]: each row the image, then its words' attention maps."""
  from PIL import Image, ImageDraw  # pylint: disable=g-import-not-at-top
  from gan_jax import images as images_lib  # pylint: disable=g-import-not-at-top
  n, side = images.shape[0], images.shape[1] * _SCALE
  length = int(np.max(np.sum(ids > 0, axis=1)))
  label, pad = 12, 2
  canvas = Image.new("RGB", ((1 + length) * (side + pad) + pad, n * (side + label + pad) + pad), (255, 255, 255))
  draw = ImageDraw.Draw(canvas)
  for r in range(n):
    image = np.repeat(np.repeat(images_lib.to_uint8(images[r]), _SCALE, 0), _SCALE, 1)
    top = pad + r * (side + label + pad)
    canvas.paste(Image.fromarray(image), (pad, top))
    words = [i for i in ids[r] if i]
    weights = attentions[r][..., :len(words)]
    weights = weights / max(float(weights.max()), 1e-8)
    for t, word in enumerate(words):
      w = np.kron(weights[..., t], np.ones((side // weights.shape[0],) * 2))[..., None]
      heat = (0.35 * image + 0.65 * 255 * w * np.array([1.0, 0.9, 0.2])).clip(0, 255).astype(np.uint8)
      left = pad + (1 + t) * (side + pad)
      canvas.paste(Image.fromarray(heat), (left, top))
      draw.text((left, top + side), vocabulary[word][:10], fill=(0, 0, 0))
  return np.asarray(canvas)


def run():
  """The command line; its flags exist only when this file runs as a program (tests import `picture` beside
  gan_jax.main, whose --workdir would otherwise be defined twice)."""
  workdir = flags.DEFINE_string("workdir", None, "Workdir of an AttnGAN run.")
  text = flags.DEFINE_string("text", None, "A caption, or a file of captions one per line.")
  out = flags.DEFINE_string("out", None, "Output PNG path.")
  num = flags.DEFINE_integer("num", 1, "Rows (latents) per caption.")
  seed = flags.DEFINE_integer("seed", None, "Seed of the latents; default: the run's config.seed.")

  def main(argv):
    cli.check_command_line(argv, workdir=workdir.value, text=text.value, out=out.value)
    import jax  # pylint: disable=g-import-not-at-top
    from gan_jax import images as images_lib, sample  # pylint: disable=g-import-not-at-top
    with cli.user_errors_reported(False):
      captions = sample.load_captions(text.value)
      config, objective, state = sample.load_run(workdir.value)
      if not hasattr(objective, "attention_maps"):
        raise errors.UserError(f"{workdir.value} is a {config.objective!r} run; its generator has no word attention")
      order = np.repeat(np.arange(len(captions)), num.value)
      key = config.seed if seed.value is None else seed.value
      conditions = objective.conditions(jax.random.PRNGKey(key), len(order), text=[captions[i] for i in order])
      generated, attentions = objective.attention_maps(state.ema, conditions)
    figure = picture(np.asarray(generated), np.asarray(attentions[-1]), conditions["text"], objective.vocabulary)
    try:
      images_lib.save_png(figure, out.value)
    except OSError as e:
      errors.exit_with(f"cannot write output: {e}")
    print(f"wrote {len(order)} rows to {out.value}")

  app.run(main, flags_parser=cli.parse_flags)


if __name__ == "__main__":
  run()
