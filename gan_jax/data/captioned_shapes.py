"""Offline TFDS builder `captioned_shapes`: procedurally rendered shapes with templated captions, for text-to-image.

One or two objects on a mid-grey background (BACKGROUND, as in CLEVR's scenes), each a shape (SHAPES), a colour
(COLOURS), a size (small, large) and a cell of a 3x3 grid with jitter; two objects stand in one row or one column,
so that their relation (left of, right of, above, below) is exact. Rendered with Pillow at SUPERSAMPLE times the
size and reduced by area averaging (anti-aliased edges), deterministic: example i of a split draws everything from
np.random.default_rng((SEED, split number, i)). Builder configs `32` (the default) and `64` give the side.

Each image has NUM_CAPTIONS captions from templates, with synonyms (small / little / tiny, square / box, left of /
to the left of, ...) and word-order variation (a two-object caption names either object first, with the relation
turned round). Every caption states every fact of its image: each object's size, colour and shape, and for one
object its place (`in the top left corner`), for two their relation. So a caption's facts are the image's, stored
as features: `colour`, `shape`, `size`, `row`, `column` ([2] each, -1 for an absent second object),
`num_objects`, `relation` (from object 0 to object 1; -1 for one object), and `held_out`.

The compositional split (Park et al. 2021, "Benchmark for Compositional Text-to-Image Synthesis", NeurIPS Datasets
and Benchmarks): the colour-shape pairs of HELD_OUT never appear in `train` or `test` (images or captions);
`test_compositional` has at least one object of a held-out pair in every image, so a model is asked for
combinations of words it has seen only apart. Splits: train 20,000, test 2,000, test_compositional 2,000.

The vocabulary (VOCABULARY: `<pad>` 0, `<unk>` 1, then every word the templates can write, sorted) is a function
of this file and is stored with the dataset (its metadata, `vocabulary`); `tokenize` maps a caption to padded ids
and a length.
"""
import itertools

import numpy as np
import tensorflow_datasets as tfds

SEED = 0
SUPERSAMPLE = 4
# Mid-grey, 0 in [-1, 1] (version 1.1.0; 1.0.0 drew on black): a generator whose last layer is tanh reaches the
# background without saturating it (DF-GAN's, with no normalisation, pushed a black background to tanh's bound,
# where no gradient passes: docs/reproductions.md#text-to-image-on-captioned-shapes).
BACKGROUND = (128, 128, 128)
NUM_CAPTIONS = 5
SPLITS = {"train": 20_000, "test": 2_000, "test_compositional": 2_000}

# Each fact's values, and the words a caption may use for each value (the first is the canonical one).
COLOURS = {"red": (220, 40, 40), "green": (40, 180, 60), "blue": (50, 90, 235), "yellow": (235, 215, 40),
           "purple": (150, 60, 210), "cyan": (40, 205, 215), "orange": (245, 140, 30), "white": (235, 235, 235)}
COLOUR_WORDS = {name: (name,) for name in COLOURS} | {"purple": ("purple", "violet")}
SHAPE_WORDS = {"circle": ("circle", "disc"), "square": ("square", "box"), "triangle": ("triangle",),
               "cross": ("cross", "plus"), "diamond": ("diamond", "rhombus")}
SIZE_WORDS = {"small": ("small", "little", "tiny"), "large": ("large", "big")}
SIZE_DIAMETER = {"small": 0.55, "large": 0.85}  # Of a grid cell: 5.9 and 9.1 pixels at 32x32.
JITTER = 0.12                                    # Largest shift of an object's centre, in cells.
RELATION_WORDS = {"left of": ("left of", "to the left of"), "right of": ("right of", "to the right of"),
                  "above": ("above", "over"), "below": ("below", "under", "beneath")}
INVERSE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}
PLACE_WORDS = {(0, 0): ("in the top left corner", "at the top left"), (0, 1): ("at the top", "in the top middle"),
               (0, 2): ("in the top right corner", "at the top right"), (1, 0): ("on the left", "at the left side"),
               (1, 1): ("in the centre", "in the middle"), (1, 2): ("on the right", "at the right side"),
               (2, 0): ("in the bottom left corner", "at the bottom left"),
               (2, 1): ("at the bottom", "in the bottom middle"),
               (2, 2): ("in the bottom right corner", "at the bottom right")}
SHAPES, SIZES, RELATIONS = tuple(SHAPE_WORDS), tuple(SIZE_WORDS), tuple(RELATION_WORDS)
COLOUR_NAMES = tuple(COLOURS)
# One held-out colour per shape (5 of the 40 pairs).
HELD_OUT = (("red", "triangle"), ("green", "cross"), ("blue", "circle"), ("yellow", "diamond"), ("purple", "square"))

# Templates: {o} an object phrase ("a small red circle"), {p} a place, {r} a relation, {o2} the second object.
ONE_OBJECT = ("{o} {p}", "there is {o} {p}", "{p} there is {o}", "{p} is {o}")
TWO_OBJECTS = ("{o} {r} {o2}", "there is {o} {r} {o2}", "{o} is {r} {o2}", "{o} sits {r} {o2}")
OBJECT = ("a {size} {colour} {shape}", "a {colour} {shape} that is {size}")


def _words():
  phrases = [*ONE_OBJECT, *TWO_OBJECTS, *OBJECT, *itertools.chain(*COLOUR_WORDS.values(), *SHAPE_WORDS.values(),
                                                                  *SIZE_WORDS.values(), *RELATION_WORDS.values(),
                                                                  *PLACE_WORDS.values())]
  words = {"an"}   # _object_phrase's article before a vowel.
  for phrase in phrases:
    words.update(w for w in phrase.split() if not w.startswith("{"))
  return sorted(words)


VOCABULARY = ("<pad>", "<unk>", *_words())
_IDS = {word: i for i, word in enumerate(VOCABULARY)}
# The longest caption the templates can write: two objects in the longer object form, the longest relation.
MAX_LENGTH = max(len(t.split()) for t in TWO_OBJECTS) - 3 + 2 * max(len(o.split()) for o in OBJECT) + max(
    len(w.split()) for w in itertools.chain(*RELATION_WORDS.values()))


def tokenize(caption: str, max_length: int = MAX_LENGTH, ids_of: dict = None):
  """(ids int32 [max_length], length): the caption's words (lower case, split on spaces) as vocabulary ids
  (`ids_of` {word: id}, VOCABULARY's by default), `<unk>` (1) for words outside it, cut at max_length and padded
  with `<pad>` (0)."""
  ids_of = _IDS if ids_of is None else ids_of
  words = caption.lower().split()[:max_length]
  ids = np.zeros(max_length, np.int32)
  ids[:len(words)] = [ids_of.get(w, 1) for w in words]
  return ids, len(words)


def _object_phrase(rng, obj):
  """'a small red circle' or 'a red circle that is small', synonyms drawn; 'an' before a vowel (an orange box)."""
  template = OBJECT[rng.integers(len(OBJECT))]
  phrase = template.format(size=_pick(rng, SIZE_WORDS[obj["size"]]), colour=_pick(rng, COLOUR_WORDS[obj["colour"]]),
                           shape=_pick(rng, SHAPE_WORDS[obj["shape"]]))
  return "an" + phrase[1:] if phrase.split()[1][0] in "aeiou" else phrase


def _pick(rng, options):
  return options[rng.integers(len(options))]


def caption(rng, objects, relation):
  """One caption of a scene: `objects` [{size, colour, shape, row, column}] (one or two), `relation` from the first
  to the second (None for one object). A two-object caption names the second object first half the time."""
  if len(objects) == 1:
    return _pick(rng, ONE_OBJECT).format(o=_object_phrase(rng, objects[0]),
                                         p=_pick(rng, PLACE_WORDS[(objects[0]["row"], objects[0]["column"])]))
  first, second = objects
  if rng.random() < 0.5:
    first, second, relation = second, first, INVERSE[relation]
  return _pick(rng, TWO_OBJECTS).format(o=_object_phrase(rng, first), r=_pick(rng, RELATION_WORDS[relation]),
                                        o2=_object_phrase(rng, second))


def scene(rng, pairs: str = "seen"):
  """(objects, relation) of one image: one or two objects with uniform attributes; their colour-shape pairs never
  HELD_OUT ("seen", the train and test splits), one of them (either) HELD_OUT ("held_out", the compositional
  split), or any of the 40 ("any": the parser's training scenes)."""
  num = int(rng.integers(1, 3))
  everything = [(c, s) for c in COLOUR_NAMES for s in SHAPES]
  allowed = everything if pairs == "any" else [p for p in everything if p not in HELD_OUT]
  chosen = [allowed[rng.integers(len(allowed))] for _ in range(num)]
  if pairs == "held_out":
    chosen = [HELD_OUT[rng.integers(len(HELD_OUT))]] + [everything[rng.integers(len(everything))]
                                                        for _ in range(num - 1)]
    if num == 2 and rng.random() < 0.5:
      chosen = chosen[::-1]
  pairs = chosen
  relation = None
  if num == 1:
    cells = [(int(rng.integers(3)), int(rng.integers(3)))]
  else:
    relation = _pick(rng, RELATIONS)
    line, (a, b) = int(rng.integers(3)), sorted(rng.choice(3, 2, replace=False).tolist())
    if relation in ("right of", "below"):
      a, b = b, a
    cells = [(line, a), (line, b)] if relation in ("left of", "right of") else [(a, line), (b, line)]
  objects = [{"colour": c, "shape": s, "size": _pick(rng, SIZES), "row": r, "column": k,
              "offset": rng.uniform(-JITTER, JITTER, 2)} for (c, s), (r, k) in zip(pairs, cells)]
  return objects, relation


def render(objects, size: int):
  """uint8 [size, size, 3]: the objects drawn at SUPERSAMPLE x size and reduced by area averaging."""
  from PIL import Image, ImageDraw  # pylint: disable=g-import-not-at-top
  big = size * SUPERSAMPLE
  image = Image.new("RGB", (big, big), BACKGROUND)
  draw = ImageDraw.Draw(image)
  cell = big / 3
  for obj in objects:
    cx = (obj["column"] + 0.5 + obj["offset"][1]) * cell
    cy = (obj["row"] + 0.5 + obj["offset"][0]) * cell
    r = SIZE_DIAMETER[obj["size"]] * cell / 2
    colour = COLOURS[obj["colour"]]
    if obj["shape"] == "circle":
      draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    elif obj["shape"] == "square":
      h = r * 0.85
      draw.rectangle((cx - h, cy - h, cx + h, cy + h), fill=colour)
    elif obj["shape"] == "triangle":
      draw.polygon([(cx, cy - r), (cx - r * 0.866, cy + r * 0.5), (cx + r * 0.866, cy + r * 0.5)], fill=colour)
    elif obj["shape"] == "cross":
      w = r * 0.36
      draw.rectangle((cx - r, cy - w, cx + r, cy + w), fill=colour)
      draw.rectangle((cx - w, cy - r, cx + w, cy + r), fill=colour)
    else:  # diamond
      draw.polygon([(cx, cy - r), (cx + r * 0.75, cy), (cx, cy + r), (cx - r * 0.75, cy)], fill=colour)
  return np.asarray(image.resize((size, size), Image.BOX), np.uint8)


def render_facts(facts: dict, size: int, rng) -> np.ndarray:
  """uint8 [N, size, size, 3]: each scene of facts {name: [N, ...]} (the dataset's fact features) drawn again with
  a fresh jitter from `rng`: the images a caption stating those facts describes, as many as asked (the `diversity`
  evaluator's real spread for a fixed caption)."""
  images = []
  for i in range(len(facts["num_objects"])):
    objects = [{"colour": COLOUR_NAMES[facts["colour"][i][k]], "shape": SHAPES[facts["shape"][i][k]],
                "size": SIZES[facts["size"][i][k]], "row": int(facts["row"][i][k]),
                "column": int(facts["column"][i][k]), "offset": rng.uniform(-JITTER, JITTER, 2)}
               for k in range(int(facts["num_objects"][i]))]
    images.append(render(objects, size))
  return np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8)


PARSER_STREAM = 7   # The rng stream of the parser's training scenes (0-2 are the splits').


def example(split: str, index: int, size: int) -> dict:
  """Example `index` of `split` at side `size`: the image, its captions and its facts (the module docstring).
  split "parser" is no split of the dataset: scenes of any colour-shape pair, which the shapes parser
  (gan_jax/metrics/shapes_parser.py) trains on, so that it reads the held-out pairs as well as the others."""
  stream = PARSER_STREAM if split == "parser" else list(SPLITS).index(split)
  rng = np.random.default_rng((SEED, stream, index))
  objects, relation = scene(rng, {"test_compositional": "held_out", "parser": "any"}.get(split, "seen"))
  facts = {key: np.array([o[key] if key in ("row", "column") else names.index(o[key]) for o in objects]
                         + [-1] * (2 - len(objects)), np.int32)
           for key, names in (("colour", COLOUR_NAMES), ("shape", SHAPES), ("size", SIZES), ("row", None),
                              ("column", None))}
  return {"image": render(objects, size), "captions": [caption(rng, objects, relation) for _ in range(NUM_CAPTIONS)],
          "num_objects": np.int32(len(objects)), "relation": np.int32(RELATIONS.index(relation) if relation else -1),
          "held_out": any((o["colour"], o["shape"]) in HELD_OUT for o in objects), **facts}


class CaptionedShapesConfig(tfds.core.BuilderConfig):

  def __init__(self, *, size: int, **kwargs):
    super().__init__(name=str(size), description=f"{size}x{size} RGB images", **kwargs)
    self.size = size


class CaptionedShapes(tfds.core.GeneratorBasedBuilder):
  """Rendered shapes with templated captions (the module docstring)."""

  VERSION = tfds.core.Version("1.1.0")
  RELEASE_NOTES = {"1.0.0": "One or two shapes, 5 captions each, the compositional split of 5 colour-shape pairs.",
                   "1.1.0": "A mid-grey background (BACKGROUND) in place of black; everything else as 1.0.0."}
  BUILDER_CONFIGS = [CaptionedShapesConfig(size=32), CaptionedShapesConfig(size=64)]

  def _info(self):
    pair = lambda: tfds.features.Tensor(shape=(2,), dtype=np.int32)
    return self.dataset_info_from_configs(
        description=__doc__,
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(self.builder_config.size, self.builder_config.size, 3)),
            "captions": tfds.features.Sequence(tfds.features.Text(), length=NUM_CAPTIONS),
            "num_objects": tfds.features.Tensor(shape=(), dtype=np.int32),
            "relation": tfds.features.Tensor(shape=(), dtype=np.int32),
            "held_out": tfds.features.Tensor(shape=(), dtype=np.bool_),
            "colour": pair(), "shape": pair(), "size": pair(), "row": pair(), "column": pair(),
        }),
        metadata=tfds.core.MetadataDict(vocabulary=list(VOCABULARY), colours=list(COLOUR_NAMES),
                                        shapes=list(SHAPES), sizes=list(SIZES), relations=list(RELATIONS),
                                        held_out=[list(p) for p in HELD_OUT], max_length=MAX_LENGTH),
        citation="Park et al. 2021, Benchmark for Compositional Text-to-Image Synthesis (the held-out pairs).",
        disable_shuffling=True,   # Example i of a split is example(split, i): served in that order.
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Rendered here.
    return {split: self._generate_examples(split) for split in SPLITS}

  def _generate_examples(self, split):
    for index in range(SPLITS[split]):
      yield index, example(split, index, self.builder_config.size)
