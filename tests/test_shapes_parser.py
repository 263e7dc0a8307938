"""The captioned_shapes parser (metrics/shapes_parser.py): its scoring rules on hand-made parses, and the bundled
parser's reading of real renders (the ceiling of the text-to-image scores it gives)."""
import numpy as np
import pytest

from gan_jax import metrics
from gan_jax.data import captioned_shapes as cs
from gan_jax.metrics import shapes_parser as sp


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
