"""Progressive growing (models/progan.py, objectives/progan.py): pixel norm and minibatch std on hand-built inputs,
the fade-in's end points, the authors' schedule, the faded reals, the optimizer restart, the EMA's copy of the
schedule, the drift term, and a run resumed mid-transition."""
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import (assert_states_equal, init_state, init_variables, resume_a_copy_without_its_last_checkpoint,
                      tiny_config)
from gan_jax import config as config_lib, train
from gan_jax.errors import UserError
from gan_jax.models import progan as pg, stylegan2
from gan_jax.objectives import progan as pg_objective


def test_pixel_norm_divides_each_pixels_features_by_their_root_mean_square():
  x = jnp.asarray([[[[3.0, 4.0], [0.0, 2.0]]]])        # [1, 1, 2, 2]: two pixels of two features.
  np.testing.assert_allclose(pg.pixel_norm(x)[0, 0], [[3 / math.sqrt(12.5), 4 / math.sqrt(12.5)],
                                                       [0.0, 2 / math.sqrt(2.0)]], rtol=1e-6)


def test_minibatch_std_over_groups_of_four_appends_each_groups_mean_std():
  # 8 samples, groups of 4: sample n is in group n mod 2 (the authors' reshape [G, -1, ...]). Group 0 (samples 0, 2,
  # 4, 6) is constant, std sqrt(1e-8); group 1 (1, 3, 5, 7) is 0, 2, 0, 2 in every feature, std 1.
  values = jnp.asarray([1.0, 0.0, 1.0, 2.0, 1.0, 0.0, 1.0, 2.0])
  x = jnp.broadcast_to(values[:, None, None, None], (8, 2, 2, 3))
  y = stylegan2.minibatch_std(x, group_size=4)
  assert y.shape == (8, 2, 2, 4)
  np.testing.assert_array_equal(y[..., :3], x)
  np.testing.assert_allclose(y[:, 0, 0, 3], [1e-4, 1.0] * 4, rtol=1e-5)


def _tiny_networks():
  models = pg.make_models(resolution=8, channels=1, latent_dim=16, channel_base=32, channel_max=8)
  z = jax.random.normal(jax.random.PRNGKey(0), (4, 16))
  g_vars = init_variables(models.generator, jax.random.PRNGKey(1), z)
  d_vars = init_variables(models.discriminator, jax.random.PRNGKey(2), jnp.zeros((4, 8, 8, 1)))
  return models, z, g_vars, d_vars


def _at(variables, level, alpha):
  return {**variables, pg.SCHEDULE: {"level": jnp.int32(level), "alpha": jnp.float32(alpha)}}


def test_every_block_exists_from_initialisation():
  models, _, g_vars, d_vars = _tiny_networks()
  assert {"torgb_4", "torgb_8", "b4_dense", "b8_conv0", "b8_conv1"} <= set(g_vars["params"])
  assert {"fromrgb_4", "fromrgb_8", "b8_conv0", "b4_dense1"} <= set(d_vars["params"])
  assert models.generator.num_levels == 2


def test_fade_in_at_alpha_0_and_1_equals_the_lower_and_the_higher_resolution():
  models, z, g_vars, d_vars = _tiny_networks()
  g, d = models.generator, models.discriminator
  low = g.clone(stage=(0, False)).apply(_at(g_vars, 0, 1.0), z)                     # [4, 4, 4, 1]
  high = g.clone(stage=(1, False)).apply(_at(g_vars, 1, 1.0), z)                    # [4, 8, 8, 1]
  fading = g.clone(stage=(1, True))
  np.testing.assert_allclose(fading.apply(_at(g_vars, 1, 0.0), z), pg.upscale(low), atol=1e-6)
  np.testing.assert_allclose(fading.apply(_at(g_vars, 1, 1.0), z), high, atol=1e-6)
  half = fading.apply(_at(g_vars, 1, 0.25), z)
  np.testing.assert_allclose(half, 0.75 * pg.upscale(low) + 0.25 * high, atol=1e-6)
  # Sampling (stage None) runs every block and returns the schedule's image at the full resolution.
  np.testing.assert_allclose(g.apply(_at(g_vars, 0, 1.0), z), pg.upscale(low), atol=1e-6)
  np.testing.assert_allclose(g.apply(_at(g_vars, 1, 0.25), z), half, atol=1e-6)
  # D: at alpha 0 the new block is bypassed (fromRGB of the pooled image), at 1 it is the 8x8 network.
  x = jax.random.normal(jax.random.PRNGKey(3), (4, 8, 8, 1))
  d_fading = d.clone(stage=(1, True))
  np.testing.assert_allclose(d_fading.apply(_at(d_vars, 1, 0.0), x),
                             d.clone(stage=(0, False)).apply(_at(d_vars, 0, 1.0), pg.downscale(x)), atol=1e-5)
  np.testing.assert_allclose(d_fading.apply(_at(d_vars, 1, 1.0), x),
                             d.clone(stage=(1, False)).apply(_at(d_vars, 1, 1.0), x), atol=1e-5)


def test_reals_are_pooled_to_the_stage_and_faded_as_the_authors_process_reals():
  x = jnp.arange(64.0).reshape(1, 1, 8, 8, 1)            # [num_stacked, B, 8, 8, 1]
  pooled = pg_objective.reals_at(x, 0, 1, False, 1.0)
  assert pooled.shape == (1, 1, 4, 4, 1)
  np.testing.assert_allclose(pooled[0, 0, 0, :2, 0], [(0 + 1 + 8 + 9) / 4, (2 + 3 + 10 + 11) / 4])
  np.testing.assert_array_equal(pg_objective.reals_at(x, 1, 1, True, 1.0), x)
  blurred = pg.upscale(pg.downscale(x[0]))[None]
  np.testing.assert_allclose(pg_objective.reals_at(x, 1, 1, True, 0.0), blurred)
  np.testing.assert_allclose(pg_objective.reals_at(x, 1, 1, True, 0.3), 0.7 * blurred + 0.3 * x, rtol=1e-6)


def _objective(data_dir, **kwargs):
  config = tiny_config("progan_digits.py", data_dir, batch_size=100)
  config.objective_kwargs.update(kwargs)
  return train.build(config)


def test_schedule_follows_the_authors_training_schedule(data_dir):
  # 100 images a step, 1 kimg stabilising then 1 kimg fading, two levels (4x4, 8x8). TrainingSchedule's lod at kimg
  # k is 1 - max(k - 1, 0) / 1 until k = 2: steps 0-10 stable at 4x4 (k = 1.0 is still lod 1), steps 11-19 fading
  # with alpha = k - 1 (lod 0.5 at k = 1.5: alpha 0.5), then 8x8 from step 20 on.
  objective, _ = _objective(data_dir, stabilise_kimg=1.0, transition_kimg=1.0)
  assert [objective.stage_at(s) for s in (0, 10, 11, 19, 20, 500)] == [(0, False), (0, False), (1, True), (1, True),
                                                                         (1, False), (1, False)]
  assert objective.progress_at(15) == (1, True, pytest.approx(0.5))
  assert [objective.stage_start(s) for s in ((0, False), (1, True), (1, False))] == [0, 11, 20]
  np.testing.assert_allclose([float(objective.alpha_at(jnp.int32(s), (1, True))) for s in (11, 15, 19)],
                             [0.1, 0.5, 0.9], rtol=1e-5)
  # The authors' '-nogrowing' (initial resolution = the model's): one stage, the top level.
  flat, _ = _objective(data_dir, initial_resolution=8, stabilise_kimg=0.0, transition_kimg=0.0)
  assert {flat.stage_at(s) for s in range(0, 1000, 7)} == {(1, False)}


def test_optimizers_restart_at_each_stage_and_learning_rates_scale_by_level(data_dir):
  objective, txs = _objective(data_dir, stabilise_kimg=1.0, transition_kimg=1.0, lr_by_level=(1.0, 0.5))
  state = init_state(objective, 0, txs)
  schedule = objective.stage_phases(txs, None, (1, True))[0]
  moved = state.replace_net("d", opt_state=jax.tree.map(lambda x: x + 1, state.nets["d"].opt_state))
  for step, restarted in ((11, True), (12, False)):
    out, metrics, _ = schedule.run(moved.replace(step=jnp.int32(step)), None, None, {})
    expected = state.nets["d"].opt_state if restarted else moved.nets["d"].opt_state
    jax.tree.map(np.testing.assert_array_equal, out.nets["d"].opt_state, expected)
    assert float(out.nets["g"].collections[pg.SCHEDULE]["alpha"]) == pytest.approx(step / 10 - 1.0, rel=1e-5)
    assert int(out.nets["d"].collections[pg.SCHEDULE]["level"]) == 1 and float(metrics["level"]) == 1.0
  # lr_by_level: the same state, the update times the level's multiplier.
  grads = jax.tree.map(jnp.ones_like, state.nets["g"].params)
  base, _ = txs["g"].update(grads, state.nets["g"].opt_state, state.nets["g"].params)
  half, _ = pg_objective.scaled(txs["g"], 0.5).update(grads, state.nets["g"].opt_state, state.nets["g"].params)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(b, 0.5 * a, rtol=1e-6), base, half)
  with pytest.raises(UserError, match="lr_by_level"):
    _objective(data_dir, lr_by_level=(1.0,))
  with pytest.raises(UserError, match="initial_resolution"):
    _objective(data_dir, initial_resolution=16)
  with pytest.raises(UserError, match="must be > 0 to grow"):
    _objective(data_dir, stabilise_kimg=0.0, transition_kimg=0.0)


def test_drift_term_is_epsilon_times_the_mean_squared_real_logit(data_dir):
  objective, txs = _objective(data_dir, initial_resolution=8, stabilise_kimg=0.0, transition_kimg=0.0)
  state = init_state(objective, 0, txs)
  real = jax.random.uniform(jax.random.PRNGKey(4), (1, 100, 8, 8, 1), minval=-1.0, maxval=1.0)
  schedule, d_main, _ = objective.stage_phases(txs, None, (1, False))
  state, _, carry = schedule.run(state, {"x": real}, None, {})
  logits = objective.models.discriminator.apply(state.variables("d"), real[0])
  _, metrics, _ = d_main.run(state, {"x": real}, jax.random.PRNGKey(5), carry)
  np.testing.assert_allclose(metrics["d_reg_drift"], 0.001 * np.mean(np.square(logits)), rtol=1e-4)


@pytest.mark.xdist_group("progan")
def test_a_run_resumed_mid_transition_equals_an_uninterrupted_one(data_dir, tmp_path):
  # Batch 8, 0.004 kimg stable then 0.024 kimg fading: step 0 at 4x4, steps 1-3 fading 8x8 in (alpha 1/6, 1/2, 5/6),
  # the optimizers restarted at step 1. Four steps straight; then the same workdir without its last checkpoint,
  # resumed at step 3, in the middle of the transition.
  overrides = {"checkpoint_every": 1, "sample_every": 100, "evals": (), "total_steps": 4,
               "objective_kwargs.transition_kimg": 0.024}
  config = lambda: tiny_config("progan_digits.py", data_dir, **overrides)
  full = train.train_and_evaluate(config(), str(tmp_path / "full"))
  with open(tmp_path / "full" / "metrics.jsonl") as f:
    rows = [r for r in map(json.loads, f) if "fade_alpha" in r]
  assert [(r["level"], round(r["fade_alpha"], 4)) for r in rows] == [(0.0, 1.0), (1.0, 0.1667), (1.0, 0.5),
                                                                      (1.0, 0.8333)]
  resumed = resume_a_copy_without_its_last_checkpoint(config(), tmp_path / "full", 4)
  assert int(resumed.step) == 4
  assert_states_equal(full, resumed)
  # The EMA of G samples at the schedule of the last step: copied, not averaged.
  np.testing.assert_allclose(full.ema["g"][pg.SCHEDULE]["alpha"], 5 / 6, rtol=1e-5)
  assert int(full.ema["g"][pg.SCHEDULE]["level"]) == 1


def test_progan_refuses_other_models_and_what_it_does_not_implement(data_dir):
  config = tiny_config("progan_digits.py", data_dir, pack=2)
  with pytest.raises(UserError, match="pack"):
    config_lib.validate(config)
  config = tiny_config("dcgan_digits.py", data_dir, objective="progan")
  with pytest.raises(UserError, match="model 'progan'"):
    config_lib.validate(config)
  config = tiny_config("progan_digits.py", data_dir)
  config.optimizer.g = dict(config.optimizer.g.to_dict(), lr_schedule="linear_decay", decay_begin=0, decay_end=10)
  with pytest.raises(UserError, match="lr_schedule"):
    config_lib.validate(config)
