"""The cub_captions builder (data/cub_captions.py) on a fake manual_dir laid out as CUB-200-2011's and Reed et al.'s
archives: the class split, AttnGAN's crops and tokenisation, the vocabulary, the pipeline's caption stream, and the
one-line error that names the missing files."""
import os

import numpy as np
import pytest
from PIL import Image

from gan_jax import data
from gan_jax.data import cub_captions as cub
from gan_jax.errors import UserError

SPECIES = {"001.Black_footed_Albatross": "trainval", "002.Laysan_Albatross": "trainval", "003.Sooty_Albatross": "test"}


def _fake_manual_dir(root):
  rng = np.random.default_rng(0)
  cub_dir, reed = os.path.join(root, "CUB_200_2011"), os.path.join(root, "cvpr2016_cub")
  images, boxes, expected = [], [], {}
  for c, species in enumerate(SPECIES):
    for k in range(2):
      path = f"{species}/{species.split('.')[1]}_{k}.jpg"
      image_id = len(images) + 1
      width, height = 60 + 10 * k, 50
      os.makedirs(os.path.join(cub_dir, "images", species), exist_ok=True)
      Image.fromarray(rng.integers(0, 256, (height, width, 3), np.uint8)).save(
          os.path.join(cub_dir, "images", path), quality=95)
      box = (5.0 + c, 8.0, 30.0, 20.0 + k)
      images.append(f"{image_id} {path}")
      boxes.append(f"{image_id} " + " ".join(str(v) for v in box))
      os.makedirs(os.path.join(reed, "text_c10", species), exist_ok=True)
      lines = [f"This bird has a Red crown, and a {c}{k}-{j} white belly." for j in range(10)]
      with open(os.path.join(reed, "text_c10", path.replace(".jpg", ".txt")), "w") as f:
        f.write("\n".join(lines) + "\n")
      expected[path] = (box, lines)
  with open(os.path.join(cub_dir, "images.txt"), "w") as f:
    f.write("\n".join(images) + "\n")
  with open(os.path.join(cub_dir, "bounding_boxes.txt"), "w") as f:
    f.write("\n".join(boxes) + "\n")
  for split in ("trainval", "test"):
    with open(os.path.join(reed, f"{split}classes.txt"), "w") as f:
      f.write("\n".join(s for s, where in SPECIES.items() if where == split) + "\n")
  return expected


def test_normalise_and_crop_follow_attngan():
  assert cub.normalise("This bird has a Red crown,  and white-belly.") == "this bird has a red crown and white belly"
  # get_imgs: r = int(0.75 max(w, h)) around the box's centre, clipped to the photograph.
  assert cub.crop_box(100, 80, (10.0, 20.0, 40.0, 30.0)) == (0, 5, 60, 65)
  assert cub.crop_box(100, 80, (70.0, 60.0, 20.0, 10.0)) == (65, 50, 95, 80)


def test_the_builder_prepares_a_manual_copy_and_the_pipeline_serves_its_captions(tmp_path):
  data_dir = tmp_path / "tfds"
  with pytest.raises(UserError, match="could not be prepared from its files: Put CUB_200_2011/ .*downloads/manual"):
    data.load_builder("cub_captions/64", str(data_dir))
  manual = data_dir / "downloads" / "manual"
  manual.mkdir(parents=True)
  (manual / "CUB_200_2011").mkdir()
  with pytest.raises(UserError, match="cub_captions needs .*bounding_boxes.txt.*trainvalclasses.txt"):
    data.load_builder("cub_captions/64", str(data_dir))
  expected = _fake_manual_dir(str(manual))
  builder = data.load_builder("cub_captions/64", str(data_dir))
  assert builder.info.splits["train"].num_examples == 4 and builder.info.splits["test"].num_examples == 2
  vocabulary = builder.info.metadata["vocabulary"]
  assert vocabulary[:2] == ["<pad>", "<unk>"] and "crown" in vocabulary and "20" not in vocabulary  # Train words only.
  assert builder.info.metadata["max_length"] == cub.MAX_LENGTH
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  served = tfds.as_numpy(builder.as_dataset(split="test", batch_size=-1, shuffle_files=False))
  for i, path in enumerate(p.decode() for p in served["filename"]):
    box, lines = expected[path]
    assert path.startswith("003.") and served["label"][i] == 2
    assert [c.decode() for c in served["captions"][i]] == [cub.normalise(line) for line in lines]
    with Image.open(data_dir / "downloads" / "manual" / "CUB_200_2011" / "images" / path) as photo:
      crop = photo.convert("RGB").crop(cub.crop_box(photo.width, photo.height, box)).resize((64, 64), Image.BICUBIC)
    np.testing.assert_array_equal(served["image"][i], np.asarray(crop))
  source = data.Source(name="cub_captions/64", data_dir=str(data_dir), split="test",
                       features=(("caption", "captions", (cub.NUM_CAPTIONS, cub.MAX_LENGTH)),))
  ids = data.load_examples(source)["caption"]
  words = [vocabulary[i] for i in ids[0, 0] if i]
  assert words == ["this", "bird", "has", "a", "red", "crown", "and", "a", "<unk>", "0", "white", "belly"]
