"""The coco_captions_text builder (data/coco_captions_text.py) made from TFDS's coco_captions as
tfds.testing.mock_data serves it: AttnGAN's splits, 5 normalised captions, square crops, the vocabulary, and the
one-line error where coco_captions is not prepared."""
import numpy as np
import pytest
import tensorflow_datasets as tfds

from gan_jax import data
from gan_jax.data import coco_captions_text as coco
from gan_jax.data import cub_captions
from gan_jax.errors import UserError


def test_square_resizes_the_shorter_side_and_crops_the_centre():
  image = np.zeros((40, 80, 3), np.uint8)
  image[:, 30:50] = 255                                  # A white band in the middle of the wider side.
  out = coco.square(image, 20)
  assert out.shape == (20, 20, 3)
  assert out[:, 10].min() == 255 and out[:, 0].max() == 0 and out[:, -1].max() == 0


def test_made_from_mocked_coco_captions(tmp_path, monkeypatch):
  data_dir = str(tmp_path)
  with pytest.raises(UserError, match="coco_captions_text is made from coco_captions, which is not prepared"):
    data.load_builder("coco_captions_text/64", data_dir)
  examples = {}
  with tfds.testing.mock_data(num_examples=4):   # coco_captions' features, random values.
    for split in coco.SPLITS.values():
      ds = tfds.builder("coco_captions", data_dir=data_dir).as_dataset(split=split, shuffle_files=False)
      examples[split] = [(e["image"], [t.decode() for t in e["captions"]["text"]], int(e["image/id"]))
                         for e in tfds.as_numpy(ds)]
  examples["train"][0][1][0] = "A Giraffe, standing next to a TREE."      # A caption with case and punctuation.
  monkeypatch.setattr(coco, "source_examples",
                      lambda root, split, images=True: iter([(i if images else None, c, k) for i, c, k in
                                                             examples[split]]))
  builder = data.load_builder("coco_captions_text/64", data_dir)
  assert {s: builder.info.splits[s].num_examples for s in coco.SPLITS} == {"train": 4, "test": 4}
  vocabulary = builder.info.metadata["vocabulary"]
  assert vocabulary[:2] == ["<pad>", "<unk>"] and {"giraffe", "tree"} <= set(vocabulary)
  served = tfds.as_numpy(builder.as_dataset(split="train", batch_size=-1, shuffle_files=False))
  order = {int(k): i for i, k in enumerate(served["image_id"])}
  for image, captions, image_id in examples["train"]:
    i = order[image_id]
    np.testing.assert_array_equal(served["image"][i], coco.square(image, 64))
    expected = [cub_captions.normalise(c) for c in captions][:coco.NUM_CAPTIONS]
    expected += expected[-1:] * (coco.NUM_CAPTIONS - len(expected))
    assert [c.decode() for c in served["captions"][i]] == expected
  assert served["captions"][order[examples["train"][0][2]]][0].decode() == "a giraffe standing next to a tree"
  source = data.Source(name="coco_captions_text/64", data_dir=data_dir, split="train",
                       features=(("caption", "captions", (coco.NUM_CAPTIONS, coco.MAX_LENGTH)),))
  ids = data.load_examples(source)["caption"][order[examples["train"][0][2]], 0]
  assert [vocabulary[i] for i in ids if i] == "a giraffe standing next to a tree".split()
