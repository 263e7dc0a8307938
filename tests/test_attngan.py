"""AttnGAN (models/attngan.py, objectives/attngan.py): the stages' shapes, word attention over each caption's own
words, the discriminators' layouts against the authors', the KL term against its closed form, and a run whose
generator loss is the sum the paper states, with the DAMSM encoders frozen in the state."""
import importlib.util
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import config as config_lib, evaluate, models, sample, train
from gan_jax.errors import UserError
from gan_jax.models import attngan
from gan_jax.objectives import attngan as attngan_objective

from conftest import REPO, tiny_config


def _caption(batch=2, length=5, dim=16, valid=(3, 5)):
  words = jax.random.normal(jax.random.PRNGKey(7), (batch, length, dim))
  mask = jnp.arange(length)[None, :] < jnp.asarray(valid)[:, None]
  return words, mask, jax.random.normal(jax.random.PRNGKey(8), (batch, dim))


def test_stages_attend_over_each_captions_own_words():
  gan = models.make("attngan", dict(resolution=32, ngf=4, ndf=4, condition_dim=6, text_dim=16))
  assert gan.latent_dim == 100 + 6 and gan.discriminator.resolutions == (8, 16, 32)
  words, mask, sentence = _caption()
  z = jax.random.normal(jax.random.PRNGKey(0), (2, gan.latent_dim))
  g_vars = gan.generator.init(jax.random.PRNGKey(1), z, sentence, words, mask)
  stages = jax.jit(lambda v, w: gan.generator.apply(v, z, sentence, w, mask, method="stages"))
  images, attentions, mu, logvar = stages(g_vars, words)
  assert [i.shape for i in images] == [(2, 8, 8, 3), (2, 16, 16, 3), (2, 32, 32, 3)]
  assert [a.shape for a in attentions] == [(2, 8, 8, 5), (2, 16, 16, 5)] and mu.shape == logvar.shape == (2, 6)
  for attention in attentions:   # Every pixel's softmax over its caption's words; none on padding.
    np.testing.assert_allclose(np.sum(attention, -1), 1.0, rtol=1e-5)
    assert float(jnp.max(attention[0, ..., 3:])) == 0.0 and float(jnp.min(attention[1, ..., 3:])) > 0.0
  # Caption 0's padded words change nothing (the authors' mask, repeated batch-minor, masks other captions').
  changed = words.at[0, 3:].set(100.0)
  np.testing.assert_allclose(stages(g_vars, changed)[0][-1][0], images[-1][0], atol=1e-6)
  assert float(jnp.max(jnp.abs(stages(g_vars, changed)[0][-1][1] - images[-1][1]))) == 0.0
  # G's call is the last stage; the condition's eps is z's tail (sampling is a function of z).
  np.testing.assert_allclose(gan.generator.apply(g_vars, z, sentence, words, mask), images[-1], atol=1e-6)
  other_eps = z.at[:, 100:].set(0.0)
  assert float(jnp.max(jnp.abs(gan.generator.apply(g_vars, other_eps, sentence, words, mask) - images[-1]))) > 1e-4


def test_discriminators_follow_the_authors_layouts():
  def layout(resolution):
    d = attngan.StageDiscriminator(resolution, ndf=2)
    x = jnp.zeros((2, resolution, resolution, 3))
    variables = d.init(jax.random.PRNGKey(0), x, method="features")
    features = d.apply(variables, x, method="features", mutable=["batch_stats"])[0]
    convs = {k: v["kernel"].shape for k, v in variables["params"].items() if "bn" not in k}
    return features.shape, convs
  # D_NET64 (encode_image_by_16times: ndf, 2, 4, 8 ndf) and D_NET256 (two more down-sampling blocks, two 3x3 back).
  shape, convs = layout(64)
  assert shape == (2, 4, 4, 16) and [convs[f"down{i}"][-1] for i in range(4)] == [2, 4, 8, 16]
  shape, convs = layout(256)
  assert shape == (2, 4, 4, 16) and [convs[f"down{i}"][-1] for i in range(6)] == [2, 4, 8, 16, 32, 64]
  assert [convs[f"back{j}"] for j in range(2)] == [(3, 3, 64, 32), (3, 3, 32, 16)]
  shape, convs = layout(8)     # The smallest keeps encode_image_by_16times' last layer.
  assert shape == (2, 4, 4, 16) and convs["down0"] == (4, 4, 3, 16)
  with pytest.raises(UserError, match="resolution"):
    models.make("attngan", dict(resolution=16, num_stages=3))      # Its first stage would be 4x4.


def test_kl_loss_is_the_gaussians_closed_form():
  mu, logvar = jnp.array([[0.5, -1.0]]), jnp.array([[np.log(2.0), 0.0]])
  expected = np.mean([0.5 * (2.0 + 0.25 - 1 - np.log(2.0)), 0.5 * (1.0 + 1.0 - 1)])
  assert float(attngan_objective.kl_loss(mu, logvar)) == pytest.approx(expected, rel=1e-6)
  assert float(attngan_objective.kl_loss(jnp.zeros((3, 4)), jnp.zeros((3, 4)))) == 0.0


@pytest.mark.xdist_group("attngan")   # With test_train's attngan_shapes run: the same programs.
def test_a_run_sums_the_papers_generator_loss_and_keeps_its_encoders_frozen(data_dir, tmp_path):
  config = tiny_config("attngan_shapes.py", data_dir)
  objective = config_lib.validate(config)
  with pytest.raises(UserError, match="needs config.objective_kwargs.damsm"):
    attngan_objective.make(config, objective.models, damsm="")
  bad = tiny_config("attngan_shapes.py", data_dir, loss="hinge")
  with pytest.raises(UserError, match="config.loss must be 'non_saturating'"):
    config_lib.validate(bad)
  state = train.train_and_evaluate(config, str(tmp_path))
  assert set(state.nets) == {"g", "d"} and set(state.ema) == {"g", "text", "image"}
  for name in ("text", "image"):
    for before, after in zip(jax.tree.leaves(objective.damsm[0][name]), jax.tree.leaves(state.ema[name]["params"])):
      np.testing.assert_array_equal(before, after)
  assert "batch_stats" in state.nets["d"].collections and "batch_stats" in state.ema["g"]
  logged = [json.loads(line) for line in open(tmp_path / "metrics.jsonl") if '"g_kl"' in line]
  assert len(logged) == config.total_steps
  for m in logged:   # L_G = adversarial + lambda (words + sentence) + KL, lambda 5.
    assert m["g_loss"] == pytest.approx(m["g_adversarial"] + 5.0 * (m["g_words"] + m["g_sentence"]) + m["g_kl"],
                                        rel=1e-5)
    assert m["d_loss"] == pytest.approx(m["d0_loss"] + m["d1_loss"] + m["d2_loss"], rel=1e-5)
  images, conditions = sample.sample(str(tmp_path), 3, text=["a small red circle above a big blue box"])
  assert images.shape == (3, 32, 32, 3) and len({c.tobytes() for c in conditions["text"]}) == 1
  assert len({i.tobytes() for i in images}) == 3       # One caption, three latents: three images.
  # R-precision after training, under a second retrieval model (here the same random encoders: the same score).
  record = evaluate.evaluate(str(tmp_path), num=20, evals=["r_precision"], retrieval="random",
                             split="test_compositional")
  assert record["r_precision/independent"] == record["r_precision/damsm"] and 0.0 <= record["r_precision/damsm"] <= 1
  assert record["split"] == "test_compositional"
  # scripts/attention_maps.py's picture: the image and one map per word of the caption, per row.
  spec = importlib.util.spec_from_file_location("attention_maps", os.path.join(REPO, "scripts", "attention_maps.py"))
  script = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(script)
  generated, attentions = objective.attention_maps(state.ema, conditions)
  np.testing.assert_array_equal(images, (np.clip(np.round((np.asarray(generated) + 1) * 127.5), 0, 255)))
  assert [a.shape for a in attentions] == [(3, 8, 8, objective.max_length), (3, 16, 16, objective.max_length)]
  figure = script.picture(np.asarray(generated), np.asarray(attentions[-1]), conditions["text"], objective.vocabulary)
  words = int(np.sum(conditions["text"][0] > 0))
  assert figure.shape == (2 + 3 * (128 + 12 + 2), 2 + (1 + words) * (128 + 2), 3)
