"""The captioned_shapes parser: reads a scene back into facts, to score text-to-image samples against their captions.

A CNN trained on real renders (scripts/train_shapes_parser.py; bundled: weights/parsers/captioned_shapes.npz, with
its held-out accuracy) predicts, for each cell of the 3x3 grid, whether an object stands there and which shape
(6 classes: empty or one of the 5 shapes), its colour (8) and size (2). `score` compares a sample's parse with the
facts its caption states (captioned_shapes' features: every caption of an image states every fact):

- one object: its place (an object in the stated cell) and its shape, colour and size, read in that cell;
- two objects: each one's shape, colour and size, read from the detected object that matches the most of them
  (the other for the second), and the relation between their cells (the dataset's: the same row with the first
  to the left, or right, or the same column with the first above, or below).

`exact` is every stated fact right; `objects` the share of samples with as many objects as stated. The parser's own
accuracy on real images is the ceiling of these numbers (the text-to-image issue asks for near 100%).
"""
import functools
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan_jax import weights

BUNDLED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "weights", "parsers", "captioned_shapes.npz")
NUM_CELLS, NUM_SHAPES, NUM_COLOURS, NUM_SIZES = 9, 5, 8, 2
FACTS = ("num_objects", "relation", "colour", "shape", "size", "row", "column")  # The dataset's fact features.


class Parser(nn.Module):
  """Four 3x3 convolutions (width, 2 width stride 2, 2 width, 4 width stride 2) with ReLU to a quarter-side map,
  flattened (the cells' positions matter), a 128-unit layer and per-cell logits: shape [B, 9, 6] (0: empty),
  colour [B, 9, 8], size [B, 9, 2]; and "features", the 128-unit layer's pre-activations [B, 128] (what
  `Extractor` gives FID and the other feature metrics)."""
  width: int = 16

  @nn.compact
  def __call__(self, x):
    for features, stride in ((self.width, 1), (2 * self.width, 2), (2 * self.width, 1), (4 * self.width, 2)):
      x = nn.relu(nn.Conv(features, (3, 3), strides=stride)(x))
    features = nn.Dense(128)(x.reshape(x.shape[0], -1))
    logits = nn.Dense(NUM_CELLS * (1 + NUM_SHAPES + NUM_COLOURS + NUM_SIZES))(nn.relu(features))
    logits = logits.reshape(x.shape[0], NUM_CELLS, -1)
    return {"shape": logits[..., :1 + NUM_SHAPES], "colour": logits[..., 1 + NUM_SHAPES:1 + NUM_SHAPES + NUM_COLOURS],
            "size": logits[..., 1 + NUM_SHAPES + NUM_COLOURS:], "features": features}


def cell_targets(facts: dict):
  """Per-cell targets of facts {name: [N, ...]}: shape [N, 9] (0 empty, k + 1 shape k), colour and size [N, 9], and
  the occupied mask [N, 9]."""
  n = len(facts["num_objects"])
  shape, colour, size = (np.zeros((n, NUM_CELLS), np.int32) for _ in range(3))
  occupied = np.zeros((n, NUM_CELLS), bool)
  for k in range(2):
    present = np.asarray(facts["num_objects"]) > k
    rows = np.nonzero(present)[0]
    cells = (np.asarray(facts["row"])[rows, k] * 3 + np.asarray(facts["column"])[rows, k]).astype(np.int64)
    shape[rows, cells] = np.asarray(facts["shape"])[rows, k] + 1
    colour[rows, cells] = np.asarray(facts["colour"])[rows, k]
    size[rows, cells] = np.asarray(facts["size"])[rows, k]
    occupied[rows, cells] = True
  return shape, colour, size, occupied


@functools.lru_cache(maxsize=None)
def _training(width, steps, batch_size, learning_rate):
  module = Parser(width)
  tx = optax.adam(optax.cosine_decay_schedule(learning_rate, steps))

  @jax.jit
  def step(params, opt_state, images, targets, key):
    index = jax.random.choice(key, len(images), (batch_size,), replace=False)
    shape, colour, size, occupied = (t[index] for t in targets)

    def loss_fn(p):
      logits = module.apply({"params": p}, images[index])
      ce = optax.softmax_cross_entropy_with_integer_labels
      mask = occupied.astype(jnp.float32)
      return (jnp.mean(ce(logits["shape"], shape)) + jnp.sum(ce(logits["colour"], colour) * mask) / jnp.sum(mask)
              + jnp.sum(ce(logits["size"], size) * mask) / jnp.sum(mask))

    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  return jax.jit(lambda key, example: module.init(key, example)["params"]), tx, step


def train(images, facts: dict, *, width=16, steps=3000, batch_size=64, learning_rate=1e-3, seed=0):
  """Params of a Parser trained on float32 images [N, H, W, 3] in [-1, 1] with their facts (Adam, cosine decay)."""
  init, tx, step = _training(width, steps, batch_size, learning_rate)
  key = jax.random.PRNGKey(seed)
  params = init(key, jnp.zeros((1, *images.shape[1:])))
  opt_state = tx.init(params)
  images, targets = jnp.asarray(images), tuple(jnp.asarray(t) for t in cell_targets(facts))
  for i in range(steps):
    params, opt_state, _ = step(params, opt_state, images, targets, jax.random.fold_in(key, i + 1))
  return params


def parse(params, images, width=16, batch_size=500):
  """Per-cell predictions of float images [N, H, W, 3] in [-1, 1]: (shape [N, 9] with 0 empty, colour, size)."""
  apply = _apply(width)
  parts = [apply(params, jnp.asarray(images[i:i + batch_size])) for i in range(0, len(images), batch_size)]
  return tuple(np.concatenate([np.asarray(p[k]) for p in parts]) for k in range(3))


@functools.lru_cache(maxsize=None)
def _apply(width):
  module = Parser(width)

  def predict(params, x):
    logits = module.apply({"params": params}, x)
    return tuple(jnp.argmax(logits[k], axis=-1) for k in ("shape", "colour", "size"))

  return jax.jit(predict)


_RELATIONS = {0: (0, -1), 1: (0, 1), 2: (-1, 0), 3: (1, 0)}  # left of, right of, above, below: sign of (dr, dc).


def _relation_holds(relation, first, second):
  """The dataset's relation between two cells (row, column): same row and the column order, or same column and the
  row order."""
  (r0, c0), (r1, c1) = first, second
  dr, dc = _RELATIONS[int(relation)]
  if dr == 0:
    return r0 == r1 and np.sign(c0 - c1) == dc
  return c0 == c1 and np.sign(r0 - r1) == dr


def score(params, images, facts: dict, width=16) -> dict:
  """{"shape", "colour", "size", "place" (one-object captions), "relation" (two-object), "exact", "objects"}: the
  fraction of stated facts the samples get right, float images [N, H, W, 3] in [-1, 1] against facts {name: [N,
  ...]} (the module docstring)."""
  shapes, colours, sizes = parse(params, images, width)
  counts = {k: [0, 0] for k in ("shape", "colour", "size", "place", "relation", "exact", "objects")}

  def tally(name, ok):
    counts[name][0] += int(ok)
    counts[name][1] += 1
    return ok

  for i in range(len(images)):
    num = int(facts["num_objects"][i])
    detected = [(cell // 3, cell % 3, shapes[i, cell] - 1, colours[i, cell], sizes[i, cell])
                for cell in range(NUM_CELLS) if shapes[i, cell] > 0]
    tally("objects", len(detected) == num)
    stated = [(int(facts["shape"][i][k]), int(facts["colour"][i][k]), int(facts["size"][i][k])) for k in range(num)]
    if num == 1:
      cell = int(facts["row"][i][0]) * 3 + int(facts["column"][i][0])
      found = [d for d in detected if d[0] * 3 + d[1] == cell]
      got = found[0][2:] if found else (-1, -1, -1)
      ok = [tally("place", bool(found))]
    else:
      remaining, chosen = list(detected), []
      for want in stated:   # The detected object matching the most attributes, then the next for the second.
        best = max(remaining, key=lambda d: sum(a == b for a, b in zip(d[2:], want)), default=None)
        chosen.append(best)
        if best is not None:
          remaining.remove(best)
      ok = [tally("relation", None not in chosen and _relation_holds(facts["relation"][i], chosen[0][:2],
                                                                      chosen[1][:2]))]
    for k, want in enumerate(stated):
      got = (got if num == 1 else (chosen[k][2:] if chosen[k] is not None else (-1, -1, -1)))
      ok += [tally(name, int(g) == w) for name, g, w in zip(("shape", "colour", "size"), got, want)]
    tally("exact", all(ok))
  return {k: (hit / total if total else float("nan")) for k, (hit, total) in counts.items()}


def fact_features() -> tuple:
  """The facts as data.Source features (role, feature, shape): scalars num_objects and relation, pairs the rest."""
  return tuple((name, name, () if name in ("num_objects", "relation") else (2,)) for name in FACTS)


def facts_to_array(facts: dict) -> np.ndarray:
  """int32 [N, 12]: FACTS side by side (num_objects, relation, then each pair), what a sampler carries as
  conditions["facts"]."""
  return np.concatenate([np.asarray(facts[name], np.int32).reshape(len(facts["num_objects"]), -1)
                         for name in FACTS], axis=1)


def array_to_facts(array) -> dict:
  array = np.asarray(array, np.int32)
  return {"num_objects": array[:, 0], "relation": array[:, 1], **{
      name: array[:, 2 + 2 * i:4 + 2 * i] for i, name in enumerate(FACTS[2:])}}


_loaded = {}


def evaluate(samples, facts_array) -> dict:
  """`score` of float samples [N, H, W, 3] against facts [N, 12] (facts_to_array's) under the bundled parser: the
  evaluator `attributes` (gan_jax/metrics)."""
  if "bundled" not in _loaded:
    _loaded["bundled"] = load()
  params, meta = _loaded["bundled"]
  return score(params, samples, array_to_facts(facts_array), width=meta.get("width", 16))


class Extractor:
  """The parser as the feature extractor of FID, KID, precision/recall and `diversity` on captioned_shapes:
  config.eval_features `parser:captioned_shapes` (the bundled parser) or `parser:<file.npz>`. Its features are the
  128-unit layer's pre-activations (full rank, as classifier.py's), which must tell shape, colour, size and place
  of every object apart: the facts captions state, where Inception's features know nothing of these renders and a
  classifier's would see one label. It has no class probabilities ([N, 0]), so no Inception Score. `name`
  (`parser-<file>-<sha256 prefix>`) identifies the features: report it with every score."""
  has_logits = False

  def __init__(self, spec):
    from gan_jax.metrics import reference  # pylint: disable=g-import-not-at-top
    path = resolve_path(spec)
    self.params, self.meta = load(path)
    self.name = f"parser-{os.path.basename(path)[:-4]}-{reference.file_digest(path)}"
    self.resolution = int(str(self.meta.get("dataset", "captioned_shapes/32")).rsplit("/", 1)[-1])
    module = Parser(self.meta.get("width", 16))
    self._apply = jax.jit(lambda params, x: module.apply({"params": params}, x)["features"])

  def features_and_probs(self, images, batch_size=500):
    """(features float32 [N, 128] of uint8 images [N, H, W, 3], resized to the parser's side when they differ;
    probabilities [N, 0])."""
    features = []
    for i in range(0, len(images), batch_size):
      x = jnp.asarray(images[i:i + batch_size], jnp.float32) / 127.5 - 1.0
      if x.shape[1:3] != (self.resolution,) * 2:
        x = jax.image.resize(x, (x.shape[0], self.resolution, self.resolution, x.shape[3]), "bilinear")
      features.append(np.asarray(self._apply(self.params, x), np.float32))
    features = np.concatenate(features) if features else np.zeros((0, 128), np.float32)
    return features, np.zeros((len(features), 0), np.float32)


def resolve_path(spec) -> str:
  """A file path, or the name of a bundled parser (`captioned_shapes` -> the bundled file)."""
  if os.sep in spec or spec.endswith(".npz"):
    return spec
  return os.path.join(os.path.dirname(BUNDLED), f"{spec}.npz")


def bundled_names():
  return tuple(sorted(f[:-4] for f in os.listdir(os.path.dirname(BUNDLED)) if f.endswith(".npz")))


def save(path, params, meta) -> None:
  weights.save(path, params, meta)


def load(path=BUNDLED):
  """(params, meta) of a saved parser (the bundled one by default)."""
  return weights.read(path, "shapes parser", "train one with scripts/train_shapes_parser.py")
