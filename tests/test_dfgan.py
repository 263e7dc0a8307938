"""DF-GAN (models/dfgan.py, objectives/dfgan.py): the networks' shapes and initial identities, MA-GP against its
closed form, the frozen text encoder in the state, caption conditions and `gan_jax.sample --text`."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import config as config_lib, images as images_lib, metrics, sample, train
from gan_jax.errors import UserError
from gan_jax.metrics import scores, shapes_parser
from gan_jax.models import dfgan
from gan_jax.objectives import dfgan as dfgan_objective

from conftest import tiny_config


def test_networks_shapes_and_their_initial_identities():
  g, d = dfgan.Generator(32, 3, ngf=4), dfgan.Discriminator(32, ndf=4)
  z, s = jnp.ones((2, 100)), jnp.ones((2, 16))
  g_vars = g.init(jax.random.PRNGKey(0), z, s)
  images = g.apply(g_vars, z, s)
  assert images.shape == (2, 32, 32, 3) and float(jnp.max(jnp.abs(images))) <= 1.0
  assert [k for k in g_vars["params"] if k.startswith("block")] == ["block0", "block1", "block2"]  # 4 -> 32
  d_vars = d.init(jax.random.PRNGKey(1), images, s)
  assert d.apply(d_vars, images, s).shape == (2,)
  assert d.apply(d_vars, images, method="features").shape == (2, 4, 4, 32)         # 8 ndf at 4x4
  # Affine starts as the identity (gamma 1, beta 0) whatever the condition; D's residual branches start off.
  affine = dfgan.Affine(5)
  x, c = jax.random.normal(jax.random.PRNGKey(2), (3, 4, 4, 5)), jax.random.normal(jax.random.PRNGKey(3), (3, 7))
  np.testing.assert_allclose(affine.apply(affine.init(jax.random.PRNGKey(4), x, c), x, c), x, atol=1e-6)
  block = dfgan.DBlock(8)
  block_vars = block.init(jax.random.PRNGKey(5), x)
  params = block_vars["params"]
  expected = jax.lax.reduce_window(x @ params["conv_s"]["kernel"][0, 0] + params["conv_s"]["bias"], 0.0, jax.lax.add,
                                   (1, 2, 2, 1), (1, 2, 2, 1), "VALID") / 4
  np.testing.assert_allclose(block.apply(block_vars, x), expected, atol=1e-5)


def test_ma_gp_is_the_weighted_power_of_the_joint_gradient_norm():
  a, b = jnp.arange(12.0).reshape(2, 2, 3) / 10, jnp.array([0.5, -1.0])
  d_fn = lambda x, s: jnp.sum(x.reshape(len(x), -1) * a.reshape(-1), 1) + s @ b   # A linear D: constant gradient.
  norm = np.sqrt(np.sum(np.square(a)) + np.sum(np.square(b)))
  images, sentences = jnp.ones((4, 2, 2, 3)), jnp.ones((4, 2))
  assert float(dfgan_objective.ma_gp(d_fn, images, sentences)) == pytest.approx(2.0 * norm ** 6, rel=1e-5)
  assert float(dfgan_objective.ma_gp(d_fn, images, sentences, 1.0, 2.0)) == pytest.approx(norm ** 2, rel=1e-5)


@pytest.mark.xdist_group("dfgan")   # With test_train's dfgan_shapes run: the same programs.
def test_a_run_keeps_its_text_encoder_frozen_and_samples_from_captions(data_dir, tmp_path):
  config = tiny_config("dfgan_shapes.py", data_dir)
  objective = config_lib.validate(config)
  with pytest.raises(UserError, match="needs config.objective_kwargs.damsm"):
    dfgan_objective.make(config, objective.models, damsm="")
  config.total_steps = 1
  state = train.train_and_evaluate(config, str(tmp_path))
  assert set(state.nets) == {"g", "d"} and set(state.ema) == {"g", "text"}
  for before, after in zip(jax.tree.leaves(objective.text_params), jax.tree.leaves(state.ema["text"]["params"])):
    np.testing.assert_array_equal(before, after)
  # The evaluation at the end: the parser's FID and precision/recall, and diversity for a fixed caption (10 captions
  # of 10 latents at runlocal's 100 samples) against each caption's scene rendered anew.
  with open(tmp_path / "eval.json") as f:
    record = json.loads(f.readlines()[-1])
  assert record["features"].startswith("parser-captioned_shapes-") and record["fid/fid"] > 0
  samples, groups, real = objective.diversity_samples(state.ema, config.seed)
  assert samples.shape == (100, 32, 32, 3) and real.shape == (100, 32, 32, 3)
  np.testing.assert_array_equal(groups, np.repeat(np.arange(10), 10))
  params, meta = shapes_parser.load()
  facts = shapes_parser.array_to_facts(objective.evaluation_captions()[1][groups])
  assert shapes_parser.score(params, real / 127.5 - 1.0, facts, width=meta["width"])["exact"] > 0.9
  extractor = metrics.extractor(config.eval_features)
  expected = scores.caption_diversity(extractor.features_and_probs(images_lib.to_uint8(samples))[0], groups,
                                      extractor.features_and_probs(real)[0], groups)
  assert {k: record[f"diversity/{k}"] for k in expected} == pytest.approx(expected)
  # The grid: rows of one caption each (the test split's first), cycled.
  grid = objective.conditions(jax.random.PRNGKey(0), 16)
  assert grid["text"].shape == (16, objective.max_length)
  captions = tmp_path / "captions.txt"
  captions.write_text("a small red circle above a big blue box\n\nthere is a tiny white cross on the left\n")
  images, conditions = sample.sample(str(tmp_path), 4, text=sample.load_captions(str(captions)))
  assert images.shape == (4, 32, 32, 3) and images.dtype == np.uint8
  np.testing.assert_array_equal(conditions["text"][0], conditions["text"][2])                 # Cycled.
  assert [objective.vocabulary[i] for i in conditions["text"][1] if i] == "there is a tiny white cross on the left".split()
  one, _ = sample.sample(str(tmp_path), 2, text=["a small red circle above a big blue box"])
  np.testing.assert_array_equal(one[0], images[0])            # Same seed, same caption: the same image.
  assert "zebra" not in objective.vocabulary and objective.tokenize(["a zebra"])[0, 1] == 1      # <unk>
  with pytest.raises(UserError, match="takes no --labels; it takes: --text"):
    sample.sample(str(tmp_path), 2, labels=np.zeros(2, np.int32))
  with pytest.raises(UserError, match="--text is empty"):
    sample.load_captions("  ")
