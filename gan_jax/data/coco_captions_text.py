"""TFDS builder `coco_captions_text`: COCO 2014 with 5 captions per image, as text-to-image training reads it.

Derived from TFDS's `coco_captions` (Karpathy & Li's splits of COCO 2014), prepared in the same data_dir (its
download, or `tfds build coco_captions --data_dir=D` elsewhere): AttnGAN's COCO protocol (Xu et al. 2018, Sec. 5;
taoxugit/AttnGAN code/datasets.py) trains on COCO 2014 train (82,783 images) and tests on COCO 2014 val (40,504),
which are `train` and `val+test+restval` there. Each image is resized so that its shorter side is the config's
side (64, 128 or 256; PIL bicubic) and centre-cropped square (AttnGAN resizes the shorter side and crops at random
in training); its first 5 captions (TEXT.CAPTIONS_PER_IMAGE 5 on COCO) are stored as AttnGAN's tokenizer reads
them (cub_captions.normalise); the vocabulary of the train captions, `<pad>` and `<unk>` first, and max_length 18
go in the metadata. Features: image, captions (5), image_id.
"""
import numpy as np
import tensorflow_datasets as tfds

from gan_jax.data.cub_captions import MAX_LENGTH, SideConfig, normalise

NUM_CAPTIONS = 5
SPLITS = {"train": "train", "test": "val+test+restval"}   # This dataset's split: coco_captions' (COCO 2014 val).


def square(image, size: int):
  """uint8 [size, size, 3]: the shorter side resized to `size` (bicubic), the longer centre-cropped."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  photo = Image.fromarray(np.asarray(image, np.uint8)).convert("RGB")
  scale = size / min(photo.width, photo.height)
  width, height = max(size, round(photo.width * scale)), max(size, round(photo.height * scale))
  photo = photo.resize((width, height), Image.BICUBIC)
  left, top = (width - size) // 2, (height - size) // 2
  return np.asarray(photo.crop((left, top, left + size, top + size)), np.uint8)


def source_examples(data_dir, split: str, images: bool = True):
  """(image or None, caption strings, image id) of each example of coco_captions' `split`, in its order."""
  from gan_jax.errors import UserError  # pylint: disable=g-import-not-at-top
  source = tfds.builder("coco_captions", data_dir=data_dir)
  if not source.is_prepared():
    raise UserError(f"coco_captions_text is made from coco_captions, which is not prepared in {data_dir}: with "
                    f"network access run tfds build coco_captions --data_dir={data_dir} (COCO 2014, about 20 GB)")
  decoders = None if images else {"image": tfds.decode.SkipDecoding()}
  for example in tfds.as_numpy(source.as_dataset(split=split, shuffle_files=False, decoders=decoders)):
    yield (example["image"] if images else None, [t.decode() for t in example["captions"]["text"]],
           int(example["image/id"]))


class CocoCaptionsText(tfds.core.GeneratorBasedBuilder):
  """COCO 2014 captions for text to image (the module docstring)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "AttnGAN's COCO splits, 5 captions, centre crops."}
  BUILDER_CONFIGS = [SideConfig(size=64), SideConfig(size=128), SideConfig(size=256)]

  def _info(self):
    size = self.builder_config.size
    return self.dataset_info_from_configs(
        description=__doc__,
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(size, size, 3)),
            "captions": tfds.features.Sequence(tfds.features.Text(), length=NUM_CAPTIONS),
            "image_id": tfds.features.Tensor(shape=(), dtype=np.int64),
        }),
        metadata=tfds.core.MetadataDict(max_length=MAX_LENGTH),
        citation="Lin et al. 2014, Microsoft COCO; Karpathy & Li 2015 (the splits).",
        disable_shuffling=True,
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Made from coco_captions in the same data_dir.
    root = self.data_dir_root
    words = set()
    for _, captions, _ in source_examples(root, SPLITS["train"], images=False):
      words.update(w for caption in captions[:NUM_CAPTIONS] for w in normalise(caption).split())
    self.info.metadata["vocabulary"] = ["<pad>", "<unk>"] + sorted(words)
    return {name: self._generate_examples(root, split) for name, split in SPLITS.items()}

  def _generate_examples(self, root, split):
    size = self.builder_config.size
    for image, captions, image_id in source_examples(root, split):
      texts = [normalise(c) for c in captions][:NUM_CAPTIONS]
      if len(texts) < NUM_CAPTIONS:   # A handful of COCO images have fewer: the last one repeated.
        texts += texts[-1:] * (NUM_CAPTIONS - len(texts))
      yield image_id, {"image": square(image, size), "captions": texts, "image_id": image_id}
