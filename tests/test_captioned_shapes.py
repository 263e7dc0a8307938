"""The offline `captioned_shapes` builder: rendered scenes, captions that state their facts, the held-out pairs of the
compositional split, the vocabulary and the tokenizer."""
import re

import numpy as np
import pytest
import tensorflow_datasets as tfds

from gan_jax.data import captioned_shapes as cs

NUM = 400   # Examples per split checked (the generator, not the prepared dataset: a few seconds).


@pytest.fixture(scope="module")
def examples():
  return {split: [cs.example(split, i, 32) for i in range(NUM)] for split in cs.SPLITS}


def _words_of(table, value):
  return set(table[value])


def _objects(ex):
  return [{key: int(ex[key][i]) for key in ("colour", "shape", "size", "row", "column")}
          for i in range(int(ex["num_objects"]))]


def test_examples_are_deterministic_per_split_and_index():
  a, b = cs.example("train", 7, 32), cs.example("train", 7, 32)
  np.testing.assert_array_equal(a["image"], b["image"])
  assert a["captions"] == b["captions"]
  other = cs.example("test", 7, 32)
  assert other["captions"] != a["captions"] or not np.array_equal(other["image"], a["image"])
  assert cs.example("train", 7, 64)["captions"] == a["captions"]    # The side changes the pixels only.
  assert cs.example("train", 7, 64)["image"].shape == (64, 64, 3) and a["image"].dtype == np.uint8


def test_relations_are_exact_on_the_grid_and_every_caption_states_every_fact(examples):
  counts = {1: 0, 2: 0}
  for ex in examples["train"]:
    objects = _objects(ex)
    counts[len(objects)] += 1
    if len(objects) == 2:
      first, second = objects
      relation = cs.RELATIONS[int(ex["relation"])]
      if relation in ("left of", "right of"):
        assert first["row"] == second["row"]
        assert (first["column"] < second["column"]) == (relation == "left of")
      else:
        assert first["column"] == second["column"]
        assert (first["row"] < second["row"]) == (relation == "above")
    else:
      assert int(ex["relation"]) == -1 and list(ex["colour"][1:]) == [-1]
    for caption in ex["captions"]:
      ids, length = cs.tokenize(caption)
      assert 0 < length <= cs.MAX_LENGTH and 1 not in ids[:length]          # No word outside the vocabulary.
      for obj in objects:
        object_words = [_words_of(cs.COLOUR_WORDS, cs.COLOUR_NAMES[obj["colour"]]),
                        _words_of(cs.SHAPE_WORDS, cs.SHAPES[obj["shape"]]),
                        _words_of(cs.SIZE_WORDS, cs.SIZES[obj["size"]])]
        assert all(words & set(caption.split()) for words in object_words), caption
      if len(objects) == 1:
        assert any(place in caption for place in cs.PLACE_WORDS[(objects[0]["row"], objects[0]["column"])])
      else:  # The relation as written, read from whichever object the caption names first.
        relation = cs.RELATIONS[int(ex["relation"])]
        said = [r for r in cs.RELATIONS if any(re.search(rf"\b{w}\b", caption) for w in cs.RELATION_WORDS[r])]
        assert relation in said or cs.INVERSE[relation] in said, caption
  assert min(counts.values()) > 0.4 * NUM


def test_two_object_captions_name_either_object_first_with_the_relation_turned_round():
  ex = cs.example("train", 1, 32)   # A yellow cross right of a red circle (asserted below).
  assert cs.RELATIONS[int(ex["relation"])] == "right of"
  assert [cs.COLOUR_NAMES[c] for c in ex["colour"]] == ["yellow", "red"]
  orders = set()
  for caption in ex["captions"]:
    yellow_first = caption.split().index("yellow") < caption.split().index("red")
    orders.add(yellow_first)
    assert ("right" in caption) == yellow_first and ("left" in caption) != yellow_first, caption
  assert orders == {True, False}


def test_held_out_pairs_appear_only_in_the_compositional_split(examples):
  def pairs(ex):
    return {(cs.COLOUR_NAMES[c], cs.SHAPES[s]) for c, s in zip(ex["colour"], ex["shape"]) if c >= 0}

  held_out_bigrams = {f"{c} {s}" for colour, shape in cs.HELD_OUT for c in cs.COLOUR_WORDS[colour]
                      for s in cs.SHAPE_WORDS[shape]}
  for split in ("train", "test"):
    for ex in examples[split]:
      assert not pairs(ex) & set(cs.HELD_OUT) and not ex["held_out"]
      assert not any(bigram in caption for caption in ex["captions"] for bigram in held_out_bigrams)
  for ex in examples["test_compositional"]:
    assert pairs(ex) & set(cs.HELD_OUT) and ex["held_out"]
  seen = {pair for ex in examples["train"] for pair in pairs(ex)}
  assert len(seen) == 8 * 5 - len(cs.HELD_OUT)   # Every other pair is trained on.
  # The parser's scenes (no split of the dataset) show every pair, held-out ones at their share.
  parser_pairs = [pair for i in range(NUM) for pair in pairs(cs.example("parser", i, 32))]
  assert len(set(parser_pairs)) == 40 and 0.05 < np.mean([p in cs.HELD_OUT for p in parser_pairs]) < 0.25


def _from_background(image):
  """Each pixel's largest channel difference from the background colour."""
  return np.abs(image.astype(np.float64) - np.asarray(cs.BACKGROUND, np.float64)).max(axis=-1)


def test_rendering_puts_each_shape_in_its_cell_in_its_colour(examples):
  for ex in examples["train"][:100]:
    if int(ex["num_objects"]) != 1:
      continue
    obj, = _objects(ex)
    image = ex["image"].astype(np.float64)
    away = _from_background(ex["image"])
    assert np.median(away) == 0        # Most pixels are the mid-grey background.
    ys, xs = np.nonzero(away > 40)
    assert int(ys.mean() // (32 / 3)) == obj["row"] and int(xs.mean() // (32 / 3)) == obj["column"]
    # The pixels furthest from the background are the object's colour (anti-aliasing blends the edges with grey).
    core = image[away >= away.max() - 1].mean(axis=0)
    np.testing.assert_allclose(core, cs.COLOURS[cs.COLOUR_NAMES[obj["colour"]]], atol=3)
  areas = {size: [] for size in cs.SIZES}
  for ex in examples["train"]:
    if int(ex["num_objects"]) == 1 and cs.SHAPES[int(ex["shape"][0])] == "square":
      areas[cs.SIZES[int(ex["size"][0])]].append((_from_background(ex["image"]) > 40).sum())
  assert np.mean(areas["large"]) > 2 * np.mean(areas["small"])


def test_tokenize_pads_cuts_and_marks_unknown_words():
  ids, length = cs.tokenize("A Small red CIRCLE zebra", max_length=8)
  assert length == 5 and ids.dtype == np.int32 and list(ids[5:]) == [0, 0, 0]
  assert [cs.VOCABULARY[i] for i in ids[:5]] == ["a", "small", "red", "circle", "<unk>"]
  ids, length = cs.tokenize("a small red circle left of a big blue square", max_length=4)
  assert length == 4 and [cs.VOCABULARY[i] for i in ids] == ["a", "small", "red", "circle"]
  assert cs.VOCABULARY[:2] == ("<pad>", "<unk>") and len(set(cs.VOCABULARY)) == len(cs.VOCABULARY)


def test_the_prepared_dataset_serves_the_examples_and_stores_the_vocabulary(tmp_path, monkeypatch):
  monkeypatch.setattr(cs, "SPLITS", {"train": 6, "test": 3, "test_compositional": 3})
  builder = tfds.builder("captioned_shapes/32", data_dir=str(tmp_path))
  builder.download_and_prepare()
  assert {s: builder.info.splits[s].num_examples for s in cs.SPLITS} == cs.SPLITS
  assert builder.info.metadata["vocabulary"] == list(cs.VOCABULARY)
  assert builder.info.metadata["held_out"] == [list(p) for p in cs.HELD_OUT]
  served = tfds.as_numpy(builder.as_dataset(split="test_compositional", batch_size=-1, shuffle_files=False))
  for i in range(3):
    expected = cs.example("test_compositional", i, 32)
    np.testing.assert_array_equal(served["image"][i], expected["image"])
    assert [c.decode() for c in served["captions"][i]] == expected["captions"]
    for key in ("colour", "shape", "size", "row", "column", "num_objects", "relation", "held_out"):
      np.testing.assert_array_equal(served[key][i], expected[key])
  reloaded = tfds.builder_from_directory(builder.data_dir)   # The vocabulary travels with the files.
  assert reloaded.info.metadata["vocabulary"] == list(cs.VOCABULARY)


def test_the_pipeline_serves_captions_as_the_tokenizers_ids(tmp_path, monkeypatch):
  from gan_jax import data  # pylint: disable=g-import-not-at-top
  from gan_jax.errors import UserError  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(cs, "SPLITS", {"train": 6, "test": 3, "test_compositional": 3})
  shape = (cs.NUM_CAPTIONS, cs.MAX_LENGTH)
  source = data.Source(name="captioned_shapes/32", data_dir=str(tmp_path), split="test",
                       features=(("x", "image", (32, 32, 3)), ("caption", "captions", shape)))
  served = data.load_examples(source)
  assert served["caption"].shape == (3, *shape) and served["caption"].dtype == np.int32
  for i in range(3):
    expected = cs.example("test", i, 32)
    np.testing.assert_array_equal(served["caption"][i], [cs.tokenize(c)[0] for c in expected["captions"]])
    assert list((served["caption"][i] > 0).sum(axis=1)) == [cs.tokenize(c)[1] for c in expected["captions"]]
    np.testing.assert_allclose(served["x"][i], expected["image"] / 127.5 - 1.0, atol=1e-5)
  wrong = data.Source(name="captioned_shapes/32", data_dir=str(tmp_path), split="test",
                      features=(("caption", "captions", (3, cs.MAX_LENGTH)),))
  with pytest.raises(UserError, match="holds 5 captions per example"):
    data.load_examples(wrong)
