"""The DAMSM of AttnGAN (models/damsm.py): the text encoder over padded captions, and the matching losses against a
loop-by-loop port of the authors' words_loss and sent_loss (taoxugit/AttnGAN code/miscc/losses.py)."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import config as config_lib, metrics
from gan_jax.models import damsm

from conftest import REPO


def _softmax(x, axis):
  e = np.exp(x - x.max(axis=axis, keepdims=True))
  return e / e.sum(axis=axis, keepdims=True)


def _cross_entropy(logits):
  return float(np.mean([-np.log(_softmax(row, 0)[i]) for i, row in enumerate(logits)]))


def _authors_losses(words, lengths, sentences, regions, codes, g1, g2, g3):
  """words_loss and sent_loss as the authors' loops compute them, in numpy: words [B, T, D], regions [B, R, D]."""
  batch = len(words)
  similarities = []
  for i in range(batch):
    word = words[i, :lengths[i]]                                    # [n, D], the i-th caption's words
    rows = []
    for j in range(batch):                                          # func_attention(word, context=image j)
      attn = regions[j] @ word.T                                    # [R, n] Eq. 7
      attn = _softmax(attn, axis=1)                                 # over words, Eq. 8
      attn = _softmax(attn.T * g1, axis=1)                          # [n, R] over regions, Eq. 9
      context = attn @ regions[j]                                   # [n, D]
      cos = np.sum(word * context, 1) / np.maximum(np.linalg.norm(word, axis=1) * np.linalg.norm(context, axis=1), 1e-8)
      rows.append(np.log(np.sum(np.exp(g2 * cos))))
    similarities.append(rows)                                       # similarities[:, i]: caption i with each image
  similarities = np.array(similarities).T * g3                      # [images, captions]
  cos = (codes @ sentences.T) / np.maximum(np.outer(np.linalg.norm(codes, axis=1), np.linalg.norm(sentences, axis=1)),
                                           1e-8) * g3
  return {"w_loss0": _cross_entropy(similarities), "w_loss1": _cross_entropy(similarities.T),
          "s_loss0": _cross_entropy(cos), "s_loss1": _cross_entropy(cos.T)}


def test_matching_losses_equal_the_authors_loops():
  rng = np.random.default_rng(0)
  batch, length, dim, regions = 4, 6, 8, 9
  lengths = np.array([6, 3, 1, 4])
  words = rng.normal(size=(batch, length, dim)).astype(np.float32)
  words[np.arange(length)[None] >= lengths[:, None]] = 0.0
  mask = np.arange(length)[None] < lengths[:, None]
  sentences, codes = rng.normal(size=(2, batch, dim)).astype(np.float32)
  image_regions = rng.normal(size=(batch, 3, 3, dim)).astype(np.float32)
  ours = damsm.damsm_losses(jnp.asarray(words), jnp.asarray(mask), sentences, image_regions, codes)
  expected = _authors_losses(words.astype(np.float64), lengths, sentences, image_regions.reshape(batch, regions, dim),
                             codes, damsm.GAMMA1, damsm.GAMMA2, damsm.GAMMA3)
  for key, value in expected.items():
    assert float(ours[key]) == pytest.approx(value, rel=1e-4), key
  # Words past a caption's length change nothing, whatever they hold.
  noisy = np.where(mask[..., None], words, rng.normal(size=words.shape)).astype(np.float32)
  again = damsm.damsm_losses(jnp.asarray(noisy), jnp.asarray(mask), sentences, image_regions, codes)
  for key in expected:
    assert float(again[key]) == pytest.approx(float(ours[key]), rel=1e-6)
  # Masked pairs (same facts) are no negatives: with every off-diagonal pair masked, each softmax is certain.
  everything = damsm.matching_losses(jnp.asarray(rng.normal(size=(4, 4))), same=jnp.ones((4, 4), bool))
  assert [float(x) for x in everything] == [0.0, 0.0]


def test_matched_pairs_score_higher_and_the_loss_falls_with_them():
  rng = np.random.default_rng(1)
  regions = rng.normal(size=(5, 4, 8)).astype(np.float32)
  words = regions[:, :3] + 0.1 * rng.normal(size=(5, 3, 8)).astype(np.float32)   # Caption b's words: image b's regions.
  similarity = damsm.word_similarity(jnp.asarray(words), jnp.ones((5, 3), bool), jnp.asarray(regions))
  assert np.all(np.argmax(np.asarray(similarity), axis=1) == np.arange(5))
  shuffled = damsm.matching_losses(similarity[:, ::-1])[0]
  assert float(damsm.matching_losses(similarity)[0]) < float(shuffled)


def test_text_encoder_reads_each_caption_over_its_own_length():
  encoder = damsm.TextEncoder(vocab_size=20, embed_dim=8, hidden=6)
  ids = jnp.array([[3, 4, 5, 0, 0], [3, 4, 5, 6, 7]])
  variables = encoder.init(jax.random.PRNGKey(0), ids)
  words, sentence = encoder.apply(variables, ids)
  assert words.shape == (2, 5, 6) and sentence.shape == (2, 6)
  np.testing.assert_array_equal(words[0, 3:], 0.0)                               # Padding is zero.
  alone, alone_sentence = encoder.apply(variables, ids[:1, :3])                   # The same caption, unpadded.
  np.testing.assert_allclose(words[0, :3], alone[0], atol=1e-6)
  np.testing.assert_allclose(sentence[0], alone_sentence[0], atol=1e-6)
  # The sentence is the forward direction's last state and the backward direction's state at the first word.
  np.testing.assert_allclose(sentence[0, :3], words[0, 2, :3], atol=1e-6)
  np.testing.assert_allclose(sentence[0, 3:], words[0, 0, 3:], atol=1e-6)
  embedding = variables["params"]["embed"]["embedding"]
  assert float(jnp.max(jnp.abs(embedding))) <= 0.1 and float(jnp.min(embedding)) < -0.05
  dropped, _ = encoder.apply(variables, ids, train=True, rngs={"dropout": jax.random.PRNGKey(1)})
  assert not np.allclose(dropped, words)


def test_image_encoder_gives_quarter_side_regions_and_a_global_code():
  encoder = damsm.ImageEncoder(dim=16, width=8)
  images = jnp.zeros((2, 32, 32, 3))
  regions, code = encoder.apply(encoder.init(jax.random.PRNGKey(0), images), images)
  assert regions.shape == (2, 8, 8, 16) and code.shape == (2, 16)


def test_pretraining_learns_to_match_shapes_and_its_file_round_trips(tmp_path, monkeypatch):
  # 200 steps on 480 rendered scenes: R-precision (100 candidates, chance 1%) on 200 of them rises far above chance
  # (held out it takes longer: scripts/pretrain_damsm.py's runs are in docs/reproductions.md); the saved encoders
  # load and encode alike.
  from gan_jax.data import captioned_shapes as cs  # pylint: disable=g-import-not-at-top
  from gan_jax.errors import UserError  # pylint: disable=g-import-not-at-top

  def scenes(split, num):
    examples = [cs.example(split, i, 32) for i in range(num)]
    images = np.stack([e["image"] for e in examples]).astype(np.float32) / 127.5 - 1.0
    ids = np.stack([[cs.tokenize(c)[0] for c in e["captions"]] for e in examples])
    facts = np.stack([np.concatenate([[e["num_objects"], e["relation"]], e["colour"], e["shape"], e["size"],
                                      e["row"], e["column"]]) for e in examples])
    return images, ids, facts

  sizes = dict(vocab_size=len(cs.VOCABULARY), embed_dim=32, hidden=64, width=16)
  images, ids, facts = scenes("train", 480)
  params, history = damsm.train(images, ids, facts, steps=200, batch_size=32, log_every=100, **sizes)
  assert [s for s, _ in history] == [100, 200]
  assert sum(history[-1][1].values()) < 0.9 * 4 * np.log(32)   # Chance: each of the 4 terms log(batch).
  test_images, test_ids = images[:200], ids[:200]
  codes, regions, words, sentences = damsm.encode(params, test_images, test_ids[:, 0], **sizes)
  assert codes.shape == (200, 64) and regions.shape == (200, 8, 8, 64) and words.shape == (200, cs.MAX_LENGTH, 64)
  assert damsm.r_precision(codes, sentences) > 0.1
  assert damsm.r_precision(codes, sentences[::-1]) < 0.05          # Each image against wrong captions: chance.
  path = str(tmp_path / "damsm.npz")
  damsm.save(path, params, dict(vocabulary=list(cs.VOCABULARY), **{k: v for k, v in sizes.items() if k != "vocab_size"}))
  loaded, meta = damsm.load(path)
  assert meta["vocabulary"] == list(cs.VOCABULARY)
  again = damsm.encode(loaded, test_images[:4], test_ids[:4, 0], **sizes)
  np.testing.assert_allclose(again[0], codes[:4], rtol=1e-5, atol=1e-6)
  # The r_precision evaluator: the same score of samples (here real images) against their captions, under the
  # run's DAMSM and under config.eval_retrieval's.
  config = config_lib.load_experiment(os.path.join(REPO, "experiments", "dfgan_shapes.py"), "runlocal")
  config.evals, config.objective_kwargs.damsm, config.eval_retrieval = ("r_precision",), path, path
  scores = metrics.evaluate(config, test_images, {"captions": test_ids[:, 0]})
  assert scores == {"r_precision/damsm": damsm.r_precision(codes, sentences),
                    "r_precision/independent": damsm.r_precision(codes, sentences)}
  # Read once per process: a later evaluation scores under the file read then, until the file changes.
  reads = []
  monkeypatch.setattr(damsm, "load", lambda p: reads.append(p) or (loaded, meta))
  assert metrics.evaluate(config, test_images, {"captions": test_ids[:, 0]}) == scores and reads == []
  os.utime(path, ns=(0, 0))
  metrics.evaluate(config, test_images, {"captions": test_ids[:, 0]})
  assert reads == [path]
  monkeypatch.undo()
  np.save(tmp_path / "other.npy", np.zeros(3))
  with pytest.raises(UserError, match="cannot read DAMSM encoders"):
    damsm.load(str(tmp_path / "other.npy"))
  with pytest.raises(UserError, match="not found"):
    damsm.load(str(tmp_path / "missing.npz"))


def test_r_precision_counts_the_true_caption_ranked_first():
  codes = np.eye(150)[:, :120] + 0.01                 # 120-d codes; rows 120-149 all alike (not distinguishable).
  assert damsm.r_precision(codes[:120], codes[:120]) == 1.0
  assert damsm.r_precision(codes[:120], -codes[:120]) == 0.0
  with pytest.raises(ValueError):
    damsm.r_precision(codes[:50], codes[:50])          # Fewer than 100 candidates.


def test_same_facts_and_caption_choice():
  facts = jnp.array([[1, 2], [1, 2], [3, 2]])
  np.testing.assert_array_equal(damsm.same_facts(facts), [[1, 1, 0], [1, 1, 0], [0, 0, 1]])
  captions = jnp.arange(2 * 5 * 3).reshape(2, 5, 3)
  picked = damsm.pick_captions(jax.random.PRNGKey(0), captions)
  assert picked.shape == (2, 3) and all(any((picked[b] == captions[b, k]).all() for k in range(5)) for b in range(2))
