"""The captioned_shapes parser (metrics/shapes_parser.py): its scoring rules on hand-made parses, and the bundled
parser's reading of real renders (the ceiling of the text-to-image scores it gives), and the parser as the feature
extractor of FID, precision/recall and diversity on captioned_shapes."""
import numpy as np
import pytest

from gan_jax import config as config_lib, metrics
from gan_jax.data import captioned_shapes as cs
from gan_jax.errors import UserError
from gan_jax.metrics import scores, shapes_parser as sp


def _facts(examples):
  return {name: np.stack([np.asarray(e[name]) for e in examples]) for name in sp.FACTS}


def _parse_as(monkeypatch, shapes, colours, sizes):
  monkeypatch.setattr(sp, "parse", lambda params, images, width=16: (np.asarray(shapes), np.asarray(colours),
                                                                      np.asarray(sizes)))


def test_cell_targets_and_the_facts_array_round_trip():
  examples = [cs.example("train", i, 32) for i in range(3)]   # Two objects, two objects, one object.
  facts = _facts(examples)
  shape, colour, size, occupied = sp.cell_targets(facts)
  assert occupied.sum(axis=1).tolist() == [2, 2, 1]
  for i, e in enumerate(examples):
    for k in range(int(e["num_objects"])):
      cell = e["row"][k] * 3 + e["column"][k]
      assert (shape[i, cell], colour[i, cell], size[i, cell]) == (e["shape"][k] + 1, e["colour"][k], e["size"][k])
  back = sp.array_to_facts(sp.facts_to_array(facts))
  for name in sp.FACTS:
    np.testing.assert_array_equal(back[name], facts[name])


def test_scoring_rules_on_hand_made_parses(monkeypatch):
  examples = [cs.example("train", i, 32) for i in range(3)]
  facts = _facts(examples)
  shape, colour, size, _ = sp.cell_targets(facts)
  _parse_as(monkeypatch, shape, colour, size)
  perfect = sp.score(None, np.zeros((3, 32, 32, 3)), facts)
  assert all(v == 1.0 for v in perfect.values()), perfect
  # Example 2 (one object): its colour wrong; example 0 (two objects): the two objects' cells swapped, so every
  # attribute is still found but the relation is wrong.
  wrong_colour = colour.copy()
  cell = facts["row"][2][0] * 3 + facts["column"][2][0]
  wrong_colour[2, cell] = (wrong_colour[2, cell] + 1) % 8
  swapped = [a.copy() for a in (shape, wrong_colour, size)]
  cells = [facts["row"][0][k] * 3 + facts["column"][0][k] for k in range(2)]
  for a in swapped:
    a[0, cells[0]], a[0, cells[1]] = a[0, cells[1]], a[0, cells[0]]
  _parse_as(monkeypatch, *swapped)
  result = sp.score(None, np.zeros((3, 32, 32, 3)), facts)
  assert result["relation"] == 0.5 and result["place"] == 1.0 and result["shape"] == 1.0
  assert result["colour"] == pytest.approx(4 / 5) and result["exact"] == pytest.approx(1 / 3)
  # An empty canvas: no object anywhere, nothing right.
  _parse_as(monkeypatch, np.zeros((3, 9), int), colour, size)
  empty = sp.score(None, np.zeros((3, 32, 32, 3)), facts)
  assert empty["place"] == 0.0 and empty["relation"] == 0.0 and empty["exact"] == 0.0 and empty["objects"] == 0.0


def test_the_bundled_parser_reads_real_renders(monkeypatch):
  params, meta = sp.load()
  assert meta["real_accuracy"]["test"]["exact"] > 0.97 and meta["real_accuracy"]["test_compositional"]["exact"] > 0.9
  examples = [cs.example("test", i, 32) for i in range(300)]
  images = np.stack([e["image"] for e in examples]).astype(np.float32) / 127.5 - 1.0
  result = sp.score(params, images, _facts(examples), width=meta["width"])
  assert result["exact"] > 0.95 and result["objects"] > 0.97, result
  # The evaluator `attributes` is the same score through the metrics registry.
  facts_array = sp.facts_to_array(_facts(examples))
  assert metrics._FACT_EVALUATORS["attributes"](images, facts_array) == result  # pylint: disable=protected-access
  with pytest.raises(Exception, match="not found"):
    sp.load("/nonexistent/parser.npz")


def test_the_parser_as_a_feature_extractor(monkeypatch):
  # config.eval_features = "parser:captioned_shapes": the 128-unit layer's pre-activations, for FID, precision/recall
  # and diversity. Scenes re-rendered with a fresh jitter (render_facts, the diversity evaluator's real side) read
  # back as the same facts and lie close to the originals; recoloured ones lie far.
  extractor = metrics.extractor("parser:captioned_shapes")
  assert extractor.name.startswith("parser-captioned_shapes-") and not extractor.has_logits
  examples = [cs.example("test", i, 32) for i in range(240)]
  images, facts = np.stack([e["image"] for e in examples]), _facts(examples)
  features, probs = extractor.features_and_probs(images)
  assert features.shape == (240, 128) and probs.shape == (240, 0)
  params, meta = sp.load()
  direct = sp.Parser(meta["width"]).apply({"params": params}, images.astype(np.float32) / 127.5 - 1.0)["features"]
  np.testing.assert_allclose(features, direct, rtol=1e-4, atol=1e-4)
  again = cs.render_facts(facts, 32, np.random.default_rng(1))
  assert again.shape == images.shape and np.mean(np.any(again != images, axis=(1, 2, 3))) > 0.9   # Fresh jitter.
  assert sp.score(params, again.astype(np.float32) / 127.5 - 1.0, facts, width=meta["width"])["exact"] > 0.95
  recoloured = cs.render_facts(dict(facts, colour=(facts["colour"] + 1) % sp.NUM_COLOURS), 32,
                               np.random.default_rng(1))
  same, other = (scores.fid(features, extractor.features_and_probs(x)[0]) for x in (again, recoloured))
  assert same < 0.3 * other, (same, other)
  # Images of another side are resized to the parser's: each scene drawn at 64x64 is nearest its own 32x32 drawing.
  at32, at64 = (cs.render_facts(facts, side, np.random.default_rng(2)) for side in (32, 64))
  a, b = extractor.features_and_probs(at32)[0], extractor.features_and_probs(at64)[0]
  nearest = np.argmin(np.sum((b[:, None] - a[None]) ** 2, axis=-1), axis=1)
  assert np.mean(nearest == np.arange(len(a))) > 0.9
  # The config check names what is wrong.
  config = config_lib.base_config()
  config.evals, config.eval_features = ("fid",), "parser:nope"
  with pytest.raises(UserError, match="no file .*nope.npz .bundled parsers: captioned_shapes"):
    metrics.check(config)
  config.evals, config.eval_features = ("fid", "inception_score"), "parser:captioned_shapes"
  with pytest.raises(UserError, match="inception_score needs class probabilities"):
    metrics.check(config)
