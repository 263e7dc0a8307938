"""Regularisers and constraints against closed forms; PacGAN packing; unrolled GAN; reused fakes; simultaneous
updates."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import augment, config as config_lib, regularizers, steps, train
from gan_jax.objectives import gan as gan_objective
from gan_jax.errors import UserError

from conftest import REPO, init_state, tiny_config

W = jnp.array([0.6, -1.2, 2.0])  # A linear critic D(x) = w.x + b has input gradient w everywhere.


def _linear_critic(x):
  return x.reshape(x.shape[0], -1) @ W + 0.3


def _batch(key, n=16):
  return jax.random.normal(key, (n, 3))


def test_gradient_penalty_on_a_linear_critic():
  real, fake = _batch(jax.random.PRNGKey(0)), _batch(jax.random.PRNGKey(1)) + 5.0
  gp = regularizers.gradient_penalty(_linear_critic, real, fake, jax.random.PRNGKey(2))
  np.testing.assert_allclose(gp, (np.linalg.norm(W) - 1.0) ** 2, rtol=1e-5)
  assert float(regularizers.gradient_penalty(lambda x: x @ (W / jnp.linalg.norm(W)), real, fake,
                                             jax.random.PRNGKey(2))) < 1e-10  # 1-Lipschitz: no penalty.


def test_gradient_penalty_interpolates_between_real_and_fake():
  # D(x) = ||x||^2 / 2 has gradient x: the penalty sees only points on the segments real -> fake.
  real, fake = jnp.zeros((1000, 1)), jnp.full((1000, 1), 4.0)
  gp = regularizers.gradient_penalty(lambda x: 0.5 * jnp.sum(x ** 2, axis=1), real, fake, jax.random.PRNGKey(0))
  # x_hat = 4 (1 - e), e ~ U[0, 1]: E[(|4u| - 1)^2] for u ~ U[0, 1] = 16/3 - 4 + 1 = 7/3.
  np.testing.assert_allclose(gp, 7.0 / 3.0, rtol=0.05)


def test_r1_and_dragan_on_a_linear_critic():
  real = _batch(jax.random.PRNGKey(0))
  np.testing.assert_allclose(regularizers.gradient_norm_squared(_linear_critic, real), float(W @ W), rtol=1e-5)
  np.testing.assert_allclose(regularizers.dragan_penalty(_linear_critic, real, jax.random.PRNGKey(3)),
                             (np.linalg.norm(W) - 1.0) ** 2, rtol=1e-5)


def test_weight_clipping_bounds():
  params = {"a": jnp.array([-3.0, 0.005, 0.2]), "b": {"c": jnp.array([[0.01, -0.02]])}}
  clipped = regularizers.clip_weights(params, 0.01)
  np.testing.assert_array_equal(clipped["a"], np.float32([-0.01, 0.005, 0.01]))
  np.testing.assert_array_equal(clipped["b"]["c"], np.float32([[0.01, -0.01]]))


def test_pack_concatenates_consecutive_samples_on_the_last_axis():
  points = jnp.arange(12.0).reshape(6, 2)
  np.testing.assert_array_equal(gan_objective.pack(points, 3), [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]])
  images = jax.random.normal(jax.random.PRNGKey(0), (4, 5, 5, 3))
  packed = gan_objective.pack(images, 2)
  assert packed.shape == (2, 5, 5, 6)
  np.testing.assert_array_equal(packed[1, ..., 3:], images[3])
  np.testing.assert_array_equal(gan_objective.pack(images, 1), images)


def test_per_slot_statistics_run_g_on_each_pack_slot_as_the_pacgan_code_does():
  # PacGAN's code calls G once per slot, so BatchNorm normalises each slot's B samples on its own; the running
  # averages take the slots' mean batch statistics. Slot i holds samples i, i + m, ... (what `pack` groups).
  gan = train.build(tiny_config(os.path.join(REPO, "experiments", "pacgan3_ring.py"), None))[0].models
  m, batch = 3, 5
  z = jax.random.normal(jax.random.PRNGKey(1), (batch * m, gan.latent_dim)) * jnp.arange(1.0, batch * m + 1)[:, None]
  variables = gan.generator.init(jax.random.PRNGKey(0), z, train=False)
  samples, new_state = gan_objective.generate_per_slot(gan, variables, z, m)
  assert samples.shape == (batch * m, 2)
  per_slot = [gan_objective.generate(gan, variables, z[i::m], True) for i in range(m)]
  for i, (slot_samples, _) in enumerate(per_slot):
    np.testing.assert_allclose(samples[i::m], slot_samples, rtol=1e-5, atol=1e-6)
  expected = jax.tree.map(lambda *s: sum(s) / m, *[state for _, state in per_slot])
  for got, want in zip(jax.tree.leaves(new_state), jax.tree.leaves(expected), strict=True):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
  whole, _ = gan_objective.generate(gan, variables, z, True)  # One call over all samples normalises differently.
  assert np.abs(np.asarray(whole) - np.asarray(samples)).max() > 1e-2


def test_per_slot_statistics_are_the_default_and_change_only_packed_steps(data_dir):
  per_slot = _one_step(_ring(data_dir, pack=3))[0]
  whole = _one_step(_ring(data_dir, pack=3, pack_slot_statistics=False))[0]
  for a, b in zip(jax.tree.leaves(_g(per_slot)), jax.tree.leaves(_g(whole)), strict=True):
    assert not np.allclose(a, b)  # Every G parameter moved differently.
  unpacked = [_one_step(_ring(data_dir, pack_slot_statistics=flag))[0] for flag in (True, False)]
  for a, b in zip(jax.tree.leaves(unpacked[0]), jax.tree.leaves(unpacked[1]), strict=True):
    np.testing.assert_array_equal(a, b)
  # A workdir written before the key existed resumes as it ran: G over the whole batch.
  assert config_lib.with_defaults({"pack": 3}).pack_slot_statistics is False
  assert config_lib.base_config().pack_slot_statistics is True


def _one_step(config):
  objective, txs = train.build(config)
  real = jax.random.normal(jax.random.PRNGKey(7), (config.num_critic_steps, config.batch_size * config.pack, 2))
  return jax.jit(steps.make_train_step(objective, txs))(init_state(objective, config.seed, txs), {"x": real})


def _g(state):
  return state.nets["g"].params


def _d(state):
  return state.nets["d"].params


def _assert_trees_close(a, b, **tolerance):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    np.testing.assert_allclose(x, y, **tolerance)


def _differ(a, b) -> bool:
  """Whether any leaf of two trees of the same structure differs beyond float32 rounding."""
  return any(not np.allclose(x, y, rtol=1e-6, atol=1e-7)
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


def _ring(data_dir, **overrides):
  # gan_ring.py trains with simultaneous updates (PacGAN's code); these tests take the alternating step
  # (Goodfellow et al. 2014, Algorithm 1) unless they ask otherwise.
  return tiny_config(os.path.join(REPO, "experiments", "gan_ring.py"), data_dir,
                     **{"simultaneous_updates": False, **overrides})


def test_unrolling_through_a_frozen_lookahead_is_the_plain_step_and_a_moving_one_changes_g(data_dir):
  # Metz et al. 2017, Eq. 5-7: G's loss is taken against D after k look-ahead updates. With D's learning rate 0
  # the look-ahead leaves D where it is, so G's update must be the plain step's (its gradient through the
  # look-ahead is 0): this exercises the whole unrolling path, differentiation included.
  frozen = {"optimizer.d.learning_rate": 0.0}
  plain, _ = _one_step(_ring(data_dir, **frozen))
  unrolled, _ = _one_step(_ring(data_dir, unrolled_steps=2, **frozen))
  _assert_trees_close(plain, unrolled, rtol=1e-5, atol=1e-7)
  plain_state, plain_metrics = _one_step(_ring(data_dir))
  unrolled_state, unrolled_metrics = _one_step(_ring(data_dir, unrolled_steps=2))
  assert np.isfinite(float(unrolled_metrics["g_grad_norm"]))
  # D's update is the same; G's differs because its loss looks 2 moving D updates ahead.
  _assert_trees_close(_d(unrolled_state), _d(plain_state), rtol=0, atol=0)
  assert _differ(_g(unrolled_state), _g(plain_state))
  assert not np.allclose(float(unrolled_metrics["g_grad_norm"]), float(plain_metrics["g_grad_norm"]))


def test_unrolled_gs_gradient_is_finite_however_xla_fuses_ds_maxout(data_dir):
  # The intermittent NaN of unrolled GAN: jnp.max's gradient divides by the number of elements equal to the
  # maximum, and XLA may recompute maxout's inputs in a fusion that rounds differently, so that none is equal and
  # the gradient is 0 / 0. Compiled at the CPU backend's optimisation level 0 the unrolled step hit it on every
  # call (G's gradient and parameters NaN); layers.max_by_selection routes the gradient by the arg-max instead.
  config = _ring(data_dir, unrolled_steps=2)
  objective, txs = train.build(config)
  state = init_state(objective, config.seed, txs)
  batch = {"x": jax.random.normal(jax.random.PRNGKey(7), (1, config.batch_size, 2))}
  step = jax.jit(steps.make_train_step(objective, txs)).lower(state, batch).compile(
      compiler_options={"xla_backend_optimization_level": 0})
  new_state, metrics = step(state, batch)
  assert np.isfinite(float(metrics["g_grad_norm"])) and float(metrics["g_grad_norm"]) > 0.0
  assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(_g(new_state)))


@pytest.mark.parametrize("critic_steps", [1, 2])
def test_reused_fakes_give_the_step_of_fresh_fakes_with_the_same_latents(data_dir, monkeypatch, critic_steps):
  # config.reuse_fakes pulls G's loss back through the last critic step's forward pass instead of a second one.
  # With latents that do not depend on the key, the fresh pass sees the same z, so both must give one update.
  z = jax.random.normal(jax.random.PRNGKey(3), (64, 2))
  monkeypatch.setattr(gan_objective.models_lib, "sample_latents", lambda models, key, n: z[:n])
  fresh = _one_step(_ring(data_dir, num_critic_steps=critic_steps))
  reused = _one_step(_ring(data_dir, num_critic_steps=critic_steps, reuse_fakes=True))
  _assert_trees_close(fresh, reused, rtol=1e-6, atol=1e-7)
  monkeypatch.undo()  # Real latents: the G update's own draw differs from the D update's, and so does G.
  fresh_state, _ = _one_step(_ring(data_dir))
  reused_state, _ = _one_step(_ring(data_dir, reuse_fakes=True))
  assert _differ(_g(fresh_state), _g(reused_state))


def test_reused_fakes_are_refused_with_unrolling(data_dir):
  with pytest.raises(UserError, match="reuse_fakes needs config.unrolled_steps 0"):
    config_lib.validate(_ring(data_dir, reuse_fakes=True, unrolled_steps=2))


def test_simultaneous_updates_take_g_against_d_before_its_update(data_dir):
  # Simultaneous gradient descent: D's update is that of the alternating step with the same fakes, and G's
  # gradient is taken against D as it was before: G's update equals the alternating one where D does not move.
  frozen_d = {"optimizer.d.learning_rate": 0.0}
  simultaneous, s_metrics = _one_step(_ring(data_dir, simultaneous_updates=True))
  alternating, _ = _one_step(_ring(data_dir, reuse_fakes=True))
  frozen, f_metrics = _one_step(_ring(data_dir, reuse_fakes=True, **frozen_d))
  _assert_trees_close(_d(simultaneous), _d(alternating), rtol=0, atol=0)
  _assert_trees_close(_g(simultaneous), _g(frozen), rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(float(s_metrics["g_loss"]), float(f_metrics["g_loss"]), rtol=1e-6)
  assert _differ(_g(simultaneous), _g(alternating))
  for bad in ({"num_critic_steps": 2}, {"unrolled_steps": 1}):
    with pytest.raises(UserError, match="simultaneous_updates needs config.num_critic_steps 1"):
      config_lib.validate(_ring(data_dir, simultaneous_updates=True, **bad))


@pytest.mark.parametrize("overrides,term", [
    ({"regularizer.gradient_penalty": 10.0, "loss": "wasserstein"}, "d_reg_gradient_penalty"),
    ({"regularizer.r1": 1.0}, "d_reg_r1"), ({"regularizer.r2": 1.0}, "d_reg_r2"),
    ({"regularizer.dragan": 10.0}, "d_reg_dragan"), ({"regularizer.zcr_d": 5.0}, "d_reg_zcr")])
def test_regularizer_terms_are_applied_and_logged_with_their_weight(data_dir, overrides, term):
  # The logged term is the weighted penalty at D's parameters before the update: doubling the weight doubles it
  # exactly (same inputs and keys), and the penalty moves D.
  (key, weight), = [(k, v) for k, v in overrides.items() if k.startswith("regularizer.")]
  once_state, once = _one_step(_ring(data_dir, **overrides))
  _, twice = _one_step(_ring(data_dir, **{**overrides, key: 2 * weight}))
  assert float(once[term]) > 0.0
  np.testing.assert_allclose(float(twice[term]), 2 * float(once[term]), rtol=1e-6)
  without_state, without = _one_step(_ring(data_dir, **{**overrides, key: 0.0}))
  assert term not in without and _differ(_d(once_state), _d(without_state))


def test_orthogonal_regularisation_of_g_is_logged_with_its_weight_and_added_to_gs_gradient(data_dir):
  # BigGAN (Brock et al. 2019, Sec. 3.1): beta x the penalty at G's parameters before the update is logged, and its
  # gradient is added to G's (as the authors' train_fns.py adds it): G then moves as a step on loss + penalty.
  beta = 0.5
  config = _ring(data_dir, **{"regularizer.g_orthogonal": beta})
  objective, txs = train.build(config)
  start = init_state(objective, config.seed, txs)
  with_ortho, metrics = _one_step(config)
  np.testing.assert_allclose(float(metrics["g_reg_orthogonal"]), beta * float(regularizers.orthogonal(_g(start))),
                             rtol=1e-5)
  plain, plain_metrics = _one_step(_ring(data_dir))
  assert "g_reg_orthogonal" not in plain_metrics and _differ(_g(with_ortho), _g(plain))
  _assert_trees_close(_d(with_ortho), _d(plain), rtol=0, atol=0)  # D's update does not see G's penalty.


def test_consistency_regularisation_against_hand_computed_terms(data_dir, monkeypatch):
  # bCR and zCR (Zhao et al. 2021, Eq. 3-6) on a DCGAN's images, with T replaced by a mirror: D's logged CR term
  # on the reals is lambda_real x mean (D(x) - D(mirror x))^2 at D's parameters before the update, computed here by
  # hand; the fakes' term and zCR's D term are positive, zCR's G term is -lambda_gen x a positive distance. With
  # the identity for T the CR terms are 0 exactly.
  weights = {"regularizer.cr_real": 10.0, "regularizer.cr_fake": 10.0, "regularizer.zcr_d": 5.0,
             "regularizer.zcr_g": 0.5}
  config = tiny_config("dcgan_digits.py", data_dir, **weights)
  objective, txs = train.build(config)
  start = init_state(objective, config.seed, txs)
  real = jax.random.uniform(jax.random.PRNGKey(7), (1, config.batch_size, *objective.models.data_shape),
                            minval=-1.0, maxval=1.0)

  def logits(x):
    return gan_objective._discriminate(objective.models, start.variables("d"), x)[0]  # pylint: disable=protected-access

  mirrored = 10.0 * np.mean(np.square(logits(real[0]) - logits(real[0][:, :, ::-1])))
  assert mirrored > 1e-6   # The mirror moves D's outputs: the comparison is not of zeros.
  for transform, want in ((lambda key, x, flip, ratio: x[:, :, ::-1], mirrored), (lambda key, x, flip, ratio: x, 0.0)):
    monkeypatch.setattr(augment, "consistency_transform", transform)  # Read when the step is traced.
    _, metrics = jax.jit(steps.make_train_step(objective, txs))(start, {"x": real})
    np.testing.assert_allclose(float(metrics["d_reg_cr_real"]), want, rtol=1e-5)
    assert (float(metrics["d_reg_cr_fake"]) > 0.0) == (want > 0.0) and float(metrics["d_reg_cr_fake"]) >= 0.0
    assert float(metrics["d_reg_zcr"]) > 0.0 and float(metrics["g_reg_zcr"]) < 0.0


@pytest.mark.parametrize("overrides,message", [
    ({"regularizer.cr_real": 10.0}, "makes points"),
    ({"regularizer.zcr_g": 0.5, "simultaneous_updates": True}, "zcr_g is not implemented with"),
    ({"regularizer.zcr_sigma": 0.0}, "zcr_sigma must be > 0"),
    ({"regularizer.cr_translation": 1.0}, r"cr_translation must be in \[0, 1\)"),
    ({"regularizer.cr_fake": -1.0}, "cr_fake must be >= 0")])
def test_bad_consistency_settings_are_refused(data_dir, overrides, message):
  with pytest.raises(UserError, match=message):
    config_lib.validate(_ring(data_dir, **overrides))


def test_the_ema_copies_g_before_ema_start(data_dir):
  # BigGAN-PyTorch's utils.ema: decay 0 before iteration ema_start (counted from 1), the set decay from then on.
  config = _ring(data_dir, ema_start=2, ema_decay=0.5)
  objective, txs = train.build(config)
  step = jax.jit(steps.make_train_step(objective, txs))
  state = init_state(objective, config.seed, txs)
  real = {"x": jax.random.normal(jax.random.PRNGKey(7), (1, config.batch_size, 2))}
  state, _ = step(state, real)  # Update 1 < ema_start: a copy.
  _assert_trees_close(state.ema["g"], state.variables("g"), rtol=0, atol=0)
  before = state.ema["g"]
  state, _ = step(state, real)  # Update 2: 0.5 (the warm-up's (1 + 1) / (10 + 1) = 0.18 is the smaller decay).
  decay = min(0.5, 2 / 11)
  _assert_trees_close(state.ema["g"], jax.tree.map(lambda e, n: decay * e + (1 - decay) * n, before,
                                                   state.variables("g")), rtol=1e-6, atol=1e-7)
  assert _differ(state.ema["g"], state.variables("g"))
  with pytest.raises(UserError, match="config.ema_start must be a non-negative integer"):
    config_lib.validate(_ring(data_dir, ema_start=-1))


def test_lazy_r1_is_an_update_of_its_own_every_kth_d_update_weighted_by_k_with_adams_correction(data_dir):
  # Karras et al. 2020, Sec. 3.1 and App. B: with lazy_every = k, R1 leaves D's main loss and becomes an update of
  # its own on every k-th D update, weighted by k so its average is unchanged; D's optimizer then runs with the
  # learning rate times c and Adam's betas to the power c, c = k / (k + 1).
  from ml_collections import ConfigDict
  from gan_jax import optimizers
  real = _batch(jax.random.PRNGKey(0))
  eager_reg = ConfigDict(dict(gradient_penalty=0.0, r1=2.0, r2=0.0, dragan=0.0, lazy_every=1))
  lazy_reg = ConfigDict(dict(gradient_penalty=0.0, r1=2.0, r2=0.0, dragan=0.0, lazy_every=4))
  key = jax.random.PRNGKey(1)
  eager = float(gan_objective.regularizer_terms(eager_reg, _linear_critic, real, real, key)["r1"])
  np.testing.assert_allclose(eager, 0.5 * 2.0 * float(W @ W), rtol=1e-5)  # gamma/2 E||grad D||^2
  assert "r1" not in gan_objective.regularizer_terms(lazy_reg, _linear_critic, real, real, key)
  np.testing.assert_allclose(float(gan_objective.lazy_terms(lazy_reg, _linear_critic, real, real)["r1"]), 4 * eager,
                             rtol=1e-5)
  assert gan_objective.lazy_terms(eager_reg, _linear_critic, real, real) == {}

  spec = dict(name="adam", learning_rate=2e-4, b1=0.5, b2=0.999)
  c = 16 / 17
  assert optimizers.lazy_corrected(spec, 16) == dict(name="adam", learning_rate=2e-4 * c, b1=0.5 ** c, b2=0.999 ** c)
  assert optimizers.lazy_corrected(spec, 1) == spec

  lazy_config = _ring(data_dir, **{"regularizer.r1": 1.0, "regularizer.lazy_every": 2})
  objective, txs = train.build(lazy_config)
  assert objective.lazy_intervals() == {"d": 2}
  step = jax.jit(steps.make_train_step(objective, txs))
  real = jax.random.normal(jax.random.PRNGKey(7), (1, lazy_config.batch_size, 2))
  state = init_state(objective, lazy_config.seed, txs)
  logged = []
  for _ in range(3):
    state, metrics = step(state, {"x": real})
    logged.append(float(metrics["d_reg_r1"]))
  assert logged[0] > 0 and logged[1] == 0 and logged[2] > 0   # D updates 0 and 2 only.
  # Without R1 or R2 nothing is lazy, so D's optimizer is as configured.
  assert train.build(_ring(data_dir, **{"regularizer.lazy_every": 2}))[0].lazy_intervals() == {}


def test_weight_clipping_holds_after_an_update(data_dir):
  state, _ = _one_step(_ring(data_dir, **{"regularizer.weight_clip": 0.01, "loss": "wasserstein"}))
  assert max(float(jnp.max(jnp.abs(p))) for p in jax.tree.leaves(_d(state))) <= 0.01


def test_penalties_see_packed_inputs(data_dir):
  # PacGAN + WGAN-GP: D's input is a pack of m samples, so the penalty interpolates and takes one gradient
  # norm per pack (Gulrajani et al.'s x_hat is D's input). With a linear critic on packs the per-pack
  # gradient is w for every pack, whatever m.
  from ml_collections import ConfigDict
  reg = ConfigDict(dict(gradient_penalty=1.0, r1=0.0, r2=0.0, dragan=0.0, lazy_every=1))
  w = jnp.arange(1.0, 5.0)                      # Critic on packs of two 2-d points: [B, 4] -> [B]
  real = gan_objective.pack(jax.random.normal(jax.random.PRNGKey(0), (8, 2)), 2)
  fake = gan_objective.pack(jax.random.normal(jax.random.PRNGKey(1), (8, 2)), 2)
  terms = gan_objective.regularizer_terms(reg, lambda x: x @ w, real, fake, jax.random.PRNGKey(2))
  np.testing.assert_allclose(terms["gradient_penalty"], (np.linalg.norm(w) - 1.0) ** 2, rtol=1e-5)


def test_a_lazy_phase_runs_every_kth_step_and_keeps_the_carry_of_the_others():
  # objectives.Phase(every=k), as StyleGAN2-ADA's Greg and Dreg: its update and metrics on steps 0, k, 2k...,
  # zeros for its metrics on the others; what it adds to the carry never reaches the phases after it.
  import types  # pylint: disable=g-import-not-at-top
  from gan_jax import objectives, state as state_lib  # pylint: disable=g-import-not-at-top

  def eager(state, batch, key, carry):
    return state, {"seen": jnp.float32(len(carry))}, {**carry, "eager": batch}

  def lazy(state, batch, key, carry):
    count = state.extra["count"] + carry["eager"]
    return state.replace(extra={"count": count}), {"count": count}, {**carry, "lazy": count}

  def last(state, batch, key, carry):
    return state, {"carried": jnp.float32(len(carry))}, carry

  phases = [objectives.Phase("eager", (), eager), objectives.Phase("lazy", (), lazy, every=3),
            objectives.Phase("last", (), last)]
  toy = types.SimpleNamespace(phases=lambda txs, sharding: phases, config=types.SimpleNamespace(ema_decay=0.0))
  step = jax.jit(steps.make_train_step(toy, {}))
  state = state_lib.new_state(jax.random.PRNGKey(0), {}, extra={"count": jnp.float32(0)})
  counts = []
  for _ in range(7):
    state, metrics = step(state, jnp.float32(1))
    counts.append(float(metrics["count"]))
    assert float(metrics["seen"]) == 0 and float(metrics["carried"]) == 1   # Only "eager" reaches "last".
  assert counts == [1, 0, 0, 2, 0, 0, 3] and float(state.extra["count"]) == 3 and int(state.step) == 7
