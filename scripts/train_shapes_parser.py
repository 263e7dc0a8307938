"""Trains the captioned_shapes parser (gan_jax/metrics/shapes_parser.py) on rendered scenes and saves it as .npz.

  python scripts/train_shapes_parser.py --out=gan_jax/metrics/weights/parsers/captioned_shapes.npz [--data_dir=DIR]

The bundled parser is this command's output. It trains on --num_scenes scenes rendered as the dataset renders them
but with every colour-shape pair (captioned_shapes.example's "parser" stream): trained on the train split, which
never shows the held-out pairs, it read their shapes right 66% of the time, and the compositional scores would have
measured the parser. Its accuracy on the real test and compositional splits (every stated fact of every image, as
`shapes_parser.score` reads samples) is in its meta and the JSON beside --out: the ceiling of the text-to-image
scores it gives.
"""
import json
import os
import sys
import time

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gan_jax import cli, errors  # noqa: E402

_DATASET = flags.DEFINE_string("dataset", "captioned_shapes/32", "captioned_shapes/32 or /64.")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "TFDS data_dir.")
_STEPS = flags.DEFINE_integer("steps", 6000, "Training steps (batch 64).")
_NUM_SCENES = flags.DEFINE_integer("num_scenes", 20_000, "Rendered training scenes.")
_WIDTH = flags.DEFINE_integer("width", 24, "Channels of the parser's first convolution.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of initialisation and batches.")
_OUT = flags.DEFINE_string("out", None, "Output .npz path.")


def load_split(dataset, data_dir, split, shape):
  """(float images [N, ...] in [-1, 1], facts {name: [N, ...]}) of a split of captioned_shapes."""
  from gan_jax import data  # pylint: disable=g-import-not-at-top
  from gan_jax.metrics import shapes_parser  # pylint: disable=g-import-not-at-top
  features = (("x", "image", shape),) + shapes_parser.fact_features()
  examples = data.load_examples(data.Source(name=dataset, split=split, data_dir=data_dir, features=features))
  return examples["x"], {name: examples[name].astype("int32") for name in shapes_parser.FACTS}


def main(argv):
  cli.check_command_line(argv, out=_OUT.value)
  import numpy as np  # pylint: disable=g-import-not-at-top
  from gan_jax import data  # pylint: disable=g-import-not-at-top
  from gan_jax.data import captioned_shapes  # pylint: disable=g-import-not-at-top
  from gan_jax.metrics import shapes_parser  # pylint: disable=g-import-not-at-top
  with cli.user_errors_reported(False):
    for flag in (_STEPS, _NUM_SCENES, _WIDTH):
      if flag.value < 1:
        raise errors.UserError(f"--{flag.name} must be a positive integer, got {flag.value}")
    builder = data.load_builder(_DATASET.value, _DATA_DIR.value)
    if not all(name in builder.info.features for name in shapes_parser.FACTS):
      raise errors.UserError(f"dataset {_DATASET.value!r} has no scene facts to train the parser on")
    shape = tuple(builder.info.features["image"].shape)
    scenes = [captioned_shapes.example("parser", i, shape[0]) for i in range(_NUM_SCENES.value)]
    images = np.stack([e["image"] for e in scenes]).astype(np.float32) / 127.5 - 1.0
    facts = {name: np.stack([np.asarray(e[name]) for e in scenes]).astype(np.int32) for name in shapes_parser.FACTS}
    start = time.perf_counter()
    params = shapes_parser.train(images, facts, width=_WIDTH.value, steps=_STEPS.value, seed=_SEED.value)
    train_s = time.perf_counter() - start
    accuracy = {split: {k: round(v, 4) for k, v in shapes_parser.score(
        params, *load_split(_DATASET.value, _DATA_DIR.value, split, shape), width=_WIDTH.value).items()}
                for split in ("test", "test_compositional")}
    meta = dict(dataset=_DATASET.value, steps=_STEPS.value, seed=_SEED.value, width=_WIDTH.value,
                num_train=len(images), train_data="rendered scenes of every colour-shape pair",
                train_s=round(train_s, 1), real_accuracy=accuracy)
    shapes_parser.save(_OUT.value, params, meta)
    with open(os.path.splitext(_OUT.value)[0] + ".json", "w") as f:
      f.write(json.dumps(meta) + "\n")
  print(f"wrote {_OUT.value} ({train_s:.0f} s): on real images " + "; ".join(
      f"{split} exact {a['exact']:.4f} (shape {a['shape']:.4f}, colour {a['colour']:.4f}, size {a['size']:.4f}, "
      f"place {a['place']:.4f}, relation {a['relation']:.4f}, objects {a['objects']:.4f})"
      for split, a in accuracy.items()))


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
