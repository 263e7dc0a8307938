"""TFDS builder `cub_captions`: CUB-200-2011 birds with Reed et al.'s ten captions per image, from files a user has.

The text-to-image papers' bird benchmark (StackGAN, AttnGAN, DF-GAN): Wah et al. 2011's 11,788 photographs of 200
species, each with the 10 captions of Reed et al. 2016 ("Learning Deep Representations of Fine-Grained Visual
Descriptions", reedscot/cvpr2016), split by species as those papers split it: the 150 classes of
`trainvalclasses.txt` train (8,855 images), the 50 of `testclasses.txt` test (2,933). Nothing is downloaded:
put in the manual_dir (TFDS's default, <data_dir>/downloads/manual/):

  CUB_200_2011/   images.txt, bounding_boxes.txt, images/<class>/<name>.jpg      (the CUB-200-2011 archive)
  cvpr2016_cub/   trainvalclasses.txt, testclasses.txt, text_c10/<class>/<name>.txt    (Reed et al.'s archive)

Images are cropped around the bird's box as AttnGAN's loader does (taoxugit/AttnGAN code/datasets.py get_imgs: a
square of side 1.5 x the box's longer side, centred on the box, clipped to the photograph), then resized to the
config's side (64, 128 or 256; PIL bicubic). Captions are stored as AttnGAN's tokenizer reads them (lower case,
the words of \\w+, joined by single spaces) so that the pipeline's caption stream (split on spaces) gives its
words; the vocabulary (`<pad>`, `<unk>`, then every word of the train captions, sorted) and max_length 18
(AttnGAN's TEXT.WORDS_NUM) are stored in the metadata. Features: image, captions (10), label (the species,
0-199 in CUB's numbering), filename.
"""
import os
import re

import numpy as np
import tensorflow_datasets as tfds

NUM_CAPTIONS = 10
MAX_LENGTH = 18               # AttnGAN's cfg TEXT.WORDS_NUM.
BOX_MARGIN = 0.75             # Half the crop's side, in units of the box's longer side (get_imgs: r = 0.75 max(w, h)).
_WORD = re.compile(r"\w+")


def normalise(caption: str) -> str:
  """AttnGAN's RegexpTokenizer(r'\\w+') on the lower-cased caption, the words joined by single spaces."""
  return " ".join(_WORD.findall(caption.lower()))


def crop_box(width: int, height: int, box):
  """(left, top, right, bottom) of get_imgs' crop for a bounding box (x, y, w, h) in a width x height image."""
  x, y, w, h = box
  r = int(np.maximum(w, h) * BOX_MARGIN)
  cx, cy = int((2 * x + w) / 2), int((2 * y + h) / 2)
  return max(0, cx - r), max(0, cy - r), min(width, cx + r), min(height, cy + r)


class SideConfig(tfds.core.BuilderConfig):
  """A builder config named by the images' side (cub_captions/64, coco_captions_text/256, ...)."""

  def __init__(self, *, size: int, **kwargs):
    super().__init__(name=str(size), description=f"{size}x{size} images", **kwargs)
    self.size = size


class CubCaptions(tfds.core.GeneratorBasedBuilder):
  """CUB-200-2011 with Reed et al.'s captions (the module docstring)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "AttnGAN's crops and tokenisation, Reed et al.'s class split."}
  BUILDER_CONFIGS = [SideConfig(size=64), SideConfig(size=128), SideConfig(size=256)]
  MANUAL_DOWNLOAD_INSTRUCTIONS = (
      "Put CUB_200_2011/ (images.txt, bounding_boxes.txt, images/) from "
      "https://www.vision.caltech.edu/datasets/cub_200_2011/ and cvpr2016_cub/ (trainvalclasses.txt, "
      "testclasses.txt, text_c10/) from Reed et al.'s https://github.com/reedscot/cvpr2016 in the manual_dir.")

  def _info(self):
    size = self.builder_config.size
    return self.dataset_info_from_configs(
        description=__doc__,
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(size, size, 3)),
            "captions": tfds.features.Sequence(tfds.features.Text(), length=NUM_CAPTIONS),
            "label": tfds.features.ClassLabel(num_classes=200),
            "filename": tfds.features.Text(),
        }),
        metadata=tfds.core.MetadataDict(max_length=MAX_LENGTH),
        citation="Wah et al. 2011, The Caltech-UCSD Birds-200-2011 Dataset; Reed et al. 2016, Learning Deep "
                 "Representations of Fine-Grained Visual Descriptions.",
        disable_shuffling=True,
    )

  def _split_generators(self, dl_manager):
    root = dl_manager.manual_dir
    cub, reed = os.path.join(root, "CUB_200_2011"), os.path.join(root, "cvpr2016_cub")
    required = [os.path.join(cub, "images.txt"), os.path.join(cub, "bounding_boxes.txt"),
                os.path.join(reed, "trainvalclasses.txt"), os.path.join(reed, "testclasses.txt")]
    missing = [p for p in required if not os.path.exists(p)]
    if missing:
      from gan_jax.errors import UserError  # pylint: disable=g-import-not-at-top
      raise UserError(f"cub_captions needs {', '.join(missing)}: {self.MANUAL_DOWNLOAD_INSTRUCTIONS}")
    images = dict(line.split() for line in _lines(os.path.join(cub, "images.txt")))      # id -> class/name.jpg
    boxes = {i: tuple(float(v) for v in rest) for i, *rest in
             (line.split() for line in _lines(os.path.join(cub, "bounding_boxes.txt")))}
    by_split = {split: set(_lines(os.path.join(reed, f"{split}classes.txt"))) for split in ("trainval", "test")}
    entries = {"train": [], "test": []}
    for image_id, path in sorted(images.items(), key=lambda item: int(item[0])):
      species = path.split("/")[0]
      for split, name in (("trainval", "train"), ("test", "test")):
        if species in by_split[split]:
          entries[name].append((path, boxes[image_id]))
    captions = {split: [self._captions(reed, path) for path, _ in items] for split, items in entries.items()}
    words = sorted({w for group in captions["train"] for caption in group for w in caption.split()})
    self.info.metadata["vocabulary"] = ["<pad>", "<unk>"] + words
    return {split: self._generate_examples(cub, items, captions[split]) for split, items in entries.items()}

  @staticmethod
  def _captions(reed, path):
    stem = os.path.splitext(path)[0]
    lines = [normalise(line) for line in _lines(os.path.join(reed, "text_c10", stem + ".txt"))]
    lines = [line for line in lines if line]
    if len(lines) < NUM_CAPTIONS:
      from gan_jax.errors import UserError  # pylint: disable=g-import-not-at-top
      raise UserError(f"cub_captions: text_c10/{stem}.txt has {len(lines)} captions, not {NUM_CAPTIONS}")
    return lines[:NUM_CAPTIONS]

  def _generate_examples(self, cub, items, captions):
    from PIL import Image  # pylint: disable=g-import-not-at-top
    size = self.builder_config.size
    for (path, box), texts in zip(items, captions):
      with Image.open(os.path.join(cub, "images", path)) as photo:
        photo = photo.convert("RGB")
        photo = photo.crop(crop_box(photo.width, photo.height, box)).resize((size, size), Image.BICUBIC)
      yield path, {"image": np.asarray(photo, np.uint8), "captions": texts, "label": int(path.split(".")[0]) - 1,
                   "filename": path}


def _lines(path):
  with open(path) as f:
    return [line.strip() for line in f if line.strip()]
