"""StyleGAN2's layers and training schedule (models/stylegan2.py, objectives/stylegan2.py) against their definitions:
the modulated convolution against its per-sample form, demodulation's unit variance, the equalized learning rate,
the FIR resampling against scipy.signal, minibatch std on a hand-built batch, the path-length regulariser against
finite differences, style mixing, the projector (its noise regulariser, schedule and recovery of a generated image),
the lazy phases' steps and weights, the half-life EMA, and exact resume."""
import json
import math
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import nbformat
from nbclient import NotebookClient
import numpy as np
import optax
import pytest
import scipy.signal

from conftest import (REPO, assert_states_equal, init_state, init_variables, resume_a_copy_without_its_last_checkpoint,
                      tiny_config)
from gan_jax import config as config_lib, latent, steps, train
from gan_jax.errors import UserError
from gan_jax.models import stylegan2 as sg
from gan_jax.objectives import stylegan2 as sg_objective

FIR2D = np.outer([1.0, 3.0, 3.0, 1.0], [1.0, 3.0, 3.0, 1.0]) / 64.0


def _normal(seed, shape):
  """Test inputs from numpy: an eager jax.random.normal compiles XLA's threefry anew for every shape (0.5 s each)."""
  return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


@pytest.mark.parametrize("up", [False, True])
@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_conv_fast_form_equals_per_sample_weights(up, demodulate):
  # Karras et al. 2020, Eq. 1-3: scaling the activations by s, one shared convolution, then scaling the outputs by d
  # is the convolution with each sample's weight w'' = d * s * w (the authors' grouped 'fused_modconv').
  x, w, s = _normal(0, (3, 6, 6, 5)), _normal(1, (3, 3, 5, 4)) / 3.0, 1.0 + 0.5 * _normal(2, (3, 5))
  fast, grouped = jax.jit(lambda x, w, s: (sg.modulated_conv2d(x, w, s, demodulate=demodulate, up=up),
                                           sg.modulated_conv2d_grouped(x, w, s, demodulate=demodulate, up=up)))(x, w, s)
  assert fast.shape == (3, 12 if up else 6, 12 if up else 6, 4)
  np.testing.assert_allclose(fast, grouped, rtol=1e-4, atol=1e-5)


def test_demodulation_gives_unit_output_variance_for_unit_input():
  # Eq. 3's assumption: i.i.d. unit-variance inputs give unit-variance outputs after demodulation, whatever the
  # weight's and the styles' scale (interior pixels: the zero padding lowers the border's variance).
  x = _normal(0, (64, 20, 20, 16))
  w, s = 7.0 * _normal(1, (3, 3, 16, 8)), 0.1 + jnp.abs(_normal(2, (64, 16)))
  y, undemodulated = jax.jit(lambda x, w, s: (sg.modulated_conv2d(x, w, s)[:, 1:-1, 1:-1],
                                              sg.modulated_conv2d(x, w, s, demodulate=False)[:, 1:-1, 1:-1]))(x, w, s)
  np.testing.assert_allclose(np.var(np.asarray(y), axis=(1, 2)).mean(), 1.0, rtol=0.03)
  assert np.var(np.asarray(undemodulated)) > 10


def test_equalized_learning_rate_scales_at_runtime():
  # Karras et al. 2018, Sec. 4.1; FullyConnectedLayer: stored weights N(0, 1 / lr_mul), used times lr_mul / sqrt(in);
  # the stored bias is bias_init / lr_mul, used times lr_mul. So the output is the stored parameters' linear map
  # with those scales, and the weights as used have standard deviation 1 / sqrt(in).
  layer = sg.EqDense(256, lr_mul=0.01, bias_init=1.0)
  variables = init_variables(layer, jax.random.PRNGKey(0), jnp.zeros((1, 512)))
  kernel, bias = variables["params"]["kernel"], variables["params"]["bias"]
  np.testing.assert_allclose(np.std(kernel), 1 / 0.01, rtol=0.02)
  np.testing.assert_allclose(bias, 100.0)
  x = _normal(1, (4, 512))
  np.testing.assert_allclose(jax.jit(layer.apply)(variables, x), x @ (kernel * 0.01 / math.sqrt(512)) + 1.0,
                             rtol=1e-5, atol=1e-5)
  # The gradient of the stored kernel is the runtime scale times the plain one: what equalizes the learning rate.
  grad = jax.jit(jax.grad(lambda k: jnp.sum(layer.apply({"params": {"kernel": k, "bias": bias}}, x))))(kernel)
  np.testing.assert_allclose(grad, jnp.sum(x, 0)[:, None] * 0.01 / math.sqrt(512) * jnp.ones((1, 256)), rtol=1e-5)
  conv = sg.EqConv(8, kernel_size=3, activation=False)
  conv_vars = init_variables(conv, jax.random.PRNGKey(2), jnp.zeros((1, 5, 5, 4)))
  x = _normal(3, (2, 5, 5, 4))
  plain = jax.lax.conv_general_dilated(x, conv_vars["params"]["kernel"] / math.sqrt(4 * 9), (1, 1), "SAME",
                                       dimension_numbers=("NHWC", "HWIO", "NHWC"))
  np.testing.assert_allclose(jax.jit(conv.apply)(conv_vars, x), plain, rtol=1e-5, atol=1e-5)


def test_fir_resampling_matches_scipy_signal():
  # upfirdn2d.upsample2d / downsample2d with the [1, 3, 3, 1] filter and their paddings, against scipy's full 2D
  # convolution of the zero-inserted (up) or plain (down) image, cropped where those paddings put the output.
  x = np.asarray(_normal(0, (1, 6, 6, 1)))
  zero_inserted = np.zeros((12, 12))
  zero_inserted[::2, ::2] = x[0, :, :, 0]
  full_up = scipy.signal.convolve2d(zero_inserted, 4 * FIR2D, mode="full")          # 15 x 15
  np.testing.assert_allclose(sg.upsample2d(jnp.asarray(x))[0, :, :, 0], full_up[1:13, 1:13], rtol=1e-5, atol=1e-6)
  full_down = scipy.signal.convolve2d(x[0, :, :, 0], FIR2D, mode="full")            # 9 x 9
  np.testing.assert_allclose(sg.downsample2d(jnp.asarray(x))[0, :, :, 0], full_down[2:7:2, 2:7:2], rtol=1e-5,
                             atol=1e-6)
  # The up-sampling 3x3 convolution: the authors' padding (3, 2) of the zero-inserted image before the filter
  # and a valid convolution.
  w = np.asarray(_normal(1, (3, 3, 1, 1)))
  padded = np.pad(zero_inserted, ((3, 2), (3, 2)))
  filtered = scipy.signal.convolve2d(padded, 4 * FIR2D, mode="valid")                 # 14 x 14
  want = scipy.signal.correlate2d(filtered, w[:, :, 0, 0], mode="valid")               # 12 x 12
  np.testing.assert_allclose(sg.conv2d_resample(jnp.asarray(x), jnp.asarray(w), up=True)[0, :, :, 0], want,
                             rtol=1e-4, atol=1e-5)
  # The down-sampling one: the filter with padding (2, 2), then a valid convolution of stride 2.
  filtered = scipy.signal.convolve2d(np.pad(x[0, :, :, 0], 2), FIR2D, mode="valid")   # 7 x 7
  want = scipy.signal.correlate2d(filtered, w[:, :, 0, 0], mode="valid")[::2, ::2]     # 3 x 3
  np.testing.assert_allclose(sg.conv2d_resample(jnp.asarray(x), jnp.asarray(w), down=True)[0, :, :, 0], want,
                             rtol=1e-4, atol=1e-5)


def test_minibatch_std_on_a_hand_built_batch():
  # Groups of 2 in a batch of 4: samples {0, 2} and {1, 3} (the authors' reshape(G, -1, ...)). Sample values are
  # constant per sample: 0, 1, 4, 9 -> the groups' stds are |4 - 0| / 2 = 2 and |9 - 1| / 2 = 4, appended to every
  # pixel of each member.
  x = jnp.broadcast_to(jnp.array([0.0, 1.0, 4.0, 9.0])[:, None, None, None], (4, 3, 3, 2))
  y = sg.minibatch_std(x, group_size=2)
  assert y.shape == (4, 3, 3, 3)
  np.testing.assert_allclose(y[..., :2], x)
  np.testing.assert_allclose(y[:, 0, 0, 2], [2.0, 4.0, 2.0, 4.0], rtol=1e-5)
  assert np.ptp(np.asarray(y[..., 2]).reshape(4, -1), axis=1).max() == 0


def _tiny_generator():
  models = sg.make_models(resolution=8, channels=1, latent_dim=8, w_dim=8, mapping_layers=2, channel_base=32,
                          channel_max=4)
  variables = init_variables(models.generator, jax.random.PRNGKey(0), jnp.zeros((1, 8)))
  # Non-zero noise strengths, so that noise takes part.
  variables = jax.tree_util.tree_map_with_path(
      lambda path, v: v + 0.3 if "noise_strength" in jax.tree_util.keystr(path) else v, variables)
  return models, variables


def test_path_length_is_the_norm_of_the_jacobian_transpose_product_checked_by_finite_differences():
  # Karras et al. 2020, Eq. 4: J_w^T y, here the gradient of sum(G(w) * y) with respect to w, checked along random
  # directions v by central differences of that sum (a JVP); its length per sample is the norm over w_dim averaged
  # over the num_ws copies (loss.py).
  models, variables = _tiny_generator()
  g = models.generator
  with jax.enable_x64(True):  # Central differences in float64: float32 rounding would swamp them.
    variables = jax.tree.map(lambda v: jnp.asarray(v, jnp.float64), variables)
    ws = g.apply(variables, _normal(1, (2, 8)).astype(jnp.float64), method="mapping")
    y = _normal(2, (2, 8, 8, 1)).astype(jnp.float64) / math.sqrt(64)
    f = jax.jit(lambda ws: jnp.sum(g.apply(variables, ws, "const", method="synthesis") * y))
    grads = jax.jit(jax.grad(f))(ws)
    for seed in range(3):
      v = _normal(10 + seed, ws.shape).astype(jnp.float64)
      eps = 1e-5
      fd = (f(ws + eps * v) - f(ws - eps * v)) / (2 * eps)
      np.testing.assert_allclose(jnp.sum(grads * v), fd, rtol=1e-6)
  want = np.sqrt(np.mean(np.sum(np.square(np.asarray(grads)), axis=2), axis=1))
  np.testing.assert_allclose(sg_objective.path_lengths(grads), want, rtol=1e-6)


def test_style_mixing_takes_the_layers_from_the_cutoff_on():
  ws, mixed = jnp.zeros((2, 6, 3)), jnp.ones((2, 6, 3))
  cutoffs = set()
  for seed in range(20):
    out, cutoff = sg_objective.style_mix(jax.random.PRNGKey(seed), ws, mixed, 1.0)
    cutoff = int(cutoff)
    assert 1 <= cutoff < 6
    np.testing.assert_array_equal(out[:, :cutoff], 0.0)
    np.testing.assert_array_equal(out[:, cutoff:], 1.0)
    cutoffs.add(cutoff)
  assert cutoffs == {1, 2, 3, 4, 5}
  out, cutoff = sg_objective.style_mix(jax.random.PRNGKey(0), ws, mixed, 0.0)
  assert int(cutoff) == 6 and not np.any(out)


def test_truncation_moves_w_towards_w_avg():
  models, variables = _tiny_generator()
  variables = {**variables, sg.W_AVG: {"value": jnp.arange(8.0)}}
  ws = models.generator.apply(variables, _normal(1, (2, 8)), method="mapping")
  truncated = models.generator.apply(variables, ws, 0.25, method="truncate")
  np.testing.assert_allclose(truncated, jnp.arange(8.0) + 0.25 * (ws - jnp.arange(8.0)), rtol=1e-6)


def test_noise_regularization_and_projection_schedule_against_closed_forms():
  # projector.py: the squared mean of each map times itself rolled one pixel, both ways, at every 2x2-pooled scale
  # down to 8x8. A constant map correlates fully at 16 and 8 (2 + 2); a 16x16 checkerboard anticorrelates (-1,
  # squared 1, both ways) and pools to zero at 8; a 4x4 map has one scale.
  ones = jnp.ones((1, 16, 16, 1))
  checker = (-1.0) ** (jnp.arange(16)[:, None] + jnp.arange(16)[None, :])
  np.testing.assert_allclose(latent.noise_regularization([ones]), [4.0])
  np.testing.assert_allclose(latent.noise_regularization([checker[None, :, :, None]]), [2.0], atol=1e-6)
  # Summed over maps: a 4x4 map of ones (2) and a 16x16 map of threes (81 each way at both scales).
  np.testing.assert_allclose(latent.noise_regularization([jnp.ones((1, 4, 4, 1)), 3 * ones]), [2.0 + 4 * 81.0])
  assert float(latent.noise_regularization([_normal(0, (1, 64, 64, 1))])[0]) < 1e-3
  # The schedule: learning rate 0 at the start, ramped up linearly over 5%, 0.1 until 75%, cosine to 0; the noise
  # on w, 0.05 x w's std at first, decaying quadratically to 0 at 75%.
  at = lambda step: latent.projection_schedule(step, 1000)
  assert at(0) == (0.0, 0.05)
  np.testing.assert_allclose(at(25), (0.05, 0.05 * (1 - 25 / 750) ** 2))
  np.testing.assert_allclose(at(500), (0.1, 0.05 * (1 / 3) ** 2))
  np.testing.assert_allclose(at(875), (0.05, 0.0), atol=1e-12)
  assert at(800)[1] == 0.0 and 0.0 < at(990)[0] < at(900)[0] < 0.1


def test_projector_recovers_a_generated_images_w_and_fits_it_in_w_plus():
  # A target made by the tiny generator from a known w and noise (strength 0.02: a trained StyleGAN2's are small),
  # projected from w_avg with pixels alone: every image's error falls, on average to under 10% of the start's (in W
  # and in W+: one w per layer, more freedom but a harder search from the same start), and in W w moves towards the
  # true one (not all the way: this tiny generator's 8x8 images barely tell some directions of w apart). The noise
  # maps leave every step at zero mean and unit variance.
  models, variables = _tiny_generator()
  variables = jax.tree_util.tree_map_with_path(
      lambda path, v: jnp.full_like(v, 0.02) if "noise_strength" in jax.tree_util.keystr(path) else v, variables)
  g = models.generator
  synthesize = jax.jit(lambda ws, noise: g.apply(variables, ws, noise, method="synthesis"))
  resolutions = sg.noise_resolutions(8)
  assert resolutions == (4, 8, 8) and sg.num_ws(8) == 4
  w_samples = g.apply(variables, _normal(1, (2000, 8)), method="mapping")[:, 0]
  w_avg = jnp.mean(w_samples, axis=0)
  w_std = float(jnp.sqrt(jnp.sum(jnp.square(w_samples - w_avg)) / 2000))
  true_ws = g.apply(variables, _normal(2, (3, 8)), method="mapping")
  true_noise = [_normal(3 + i, (3, r, r, 1)) for i, r in enumerate(resolutions)]
  targets = synthesize(true_ws, true_noise)
  start = synthesize(jnp.broadcast_to(w_avg, true_ws.shape), true_noise)
  start_mse = np.mean(np.square(np.asarray(start - targets)), axis=(1, 2, 3))
  for w_plus in (False, True):
    ws, noise, measured = latent.project(synthesize, targets, w_avg, w_std, 4, resolutions, jax.random.PRNGKey(4),
                                         steps=300, w_plus=w_plus)
    assert ws.shape == (3, 4, 8) and [m.shape for m in noise] == [(3, r, r, 1) for r in resolutions]
    assert np.allclose(ws, ws[:, :1]) != w_plus      # W: one w broadcast to every layer; W+: one per layer.
    for m in noise:
      np.testing.assert_allclose(m.mean(axis=(1, 2, 3)), 0.0, atol=1e-5)
      np.testing.assert_allclose(np.mean(np.square(m), axis=(1, 2, 3)), 1.0, rtol=1e-4)
    np.testing.assert_allclose(measured["pixel_mse"], np.mean(np.square(np.asarray(synthesize(ws, noise)) -
                                                                         np.asarray(targets)), axis=(1, 2, 3)),
                               rtol=1e-4, atol=1e-7)
    assert np.all(measured["pixel_mse"] < start_mse), (w_plus, measured["pixel_mse"], start_mse)
    assert np.mean(measured["pixel_mse"]) < 0.1 * np.mean(start_mse), (w_plus, measured["pixel_mse"], start_mse)
    if not w_plus:
      w_error, start_error = np.abs(ws[:, 0] - true_ws[:, 0]).mean(), np.abs(w_avg - true_ws[:, 0]).mean()
      assert w_error < 0.6 * start_error, (w_error, start_error)


def test_lazy_phases_have_their_intervals_weights_and_adams_correction(data_dir):
  # StyleGAN2-ADA's phases: Gmain and Dmain every step, Greg every pl_every steps, Dreg every lazy_every steps, each
  # lazy loss times its interval, and the optimizers of both networks corrected (the steps they run on are checked
  # in the resume test's logs).
  config = tiny_config("stylegan2_digits.py", data_dir)
  objective, txs = train.build(config)
  assert objective.lazy_intervals() == {"g": 4, "d": 16}
  assert [(p.name, p.every) for p in objective.phases(txs)] == [("g_main", 1), ("g_reg", 4), ("d_main", 1),
                                                                 ("d_reg", 16)]
  # On CPUs the trainer picks a program per step by the lazy phases due (steps 0, 4, 8, ... and 0, 16, ...).
  programs = steps.StepPrograms(objective, txs, None, 1, compile_fn=None)
  due = [programs.pattern(step)[0][1] for step in range(33)]  # (stage: None, one stage; the lazy phases due).
  assert [step for step, names in enumerate(due) if "g_reg" in names] == list(range(0, 33, 4))
  assert [step for step, names in enumerate(due) if "d_reg" in names] == [0, 16, 32]
  assert steps.StepPrograms(objective, txs, None, 2, compile_fn=None).pattern(3) == ((None, frozenset()),
                                                                                     (None, frozenset({"g_reg"})))
  # Off CPUs (host_dispatch False) one program runs every step, its lazy phases under lax.cond.
  compiled = []
  one = steps.StepPrograms(objective, txs, None, 1, lambda fns: compiled.append(fns) or (lambda s, b: (s, {})),
                           host_dispatch=False)
  for step in range(5):
    one(None, None, step)
  assert one.intervals == {} and list(one.programs) == [((None, None),)] and len(compiled) == 1
  # Dreg's update is 16 x the gradient of gamma / 2 E||grad D(x)||^2: with plain SGD of rate 1 the update is the
  # gradient.
  sgd = {"g": optax.sgd(1.0), "d": optax.sgd(1.0)}
  d_reg_phase = [p for p in objective.phases(sgd) if p.name == "d_reg"][0]
  state = init_state(objective, config.seed, txs)
  # No weakly typed parameter (a bias filled from a Python float once was): the first steps would change the
  # state's types and compile the step twice more.
  assert not [leaf for leaf in jax.tree.leaves(state) if leaf.weak_type]
  real = _normal(5, (1, config.batch_size, 8, 8, 1))
  before = state.nets["d"].params
  after, logged, _ = jax.jit(lambda s: d_reg_phase.run(s, {"x": real}, jax.random.PRNGKey(0), {}))(state)
  d_apply = lambda p, x: objective.models.discriminator.apply({"params": p}, x)
  r1 = lambda p: 0.5 * config.regularizer.r1 * jnp.mean(jnp.sum(jnp.square(
      jax.grad(lambda x: jnp.sum(d_apply(p, x)))(real[0])), axis=(1, 2, 3)))
  value, grads = jax.jit(jax.value_and_grad(r1))(before)
  np.testing.assert_allclose(logged["d_reg_r1"], value, rtol=1e-4)
  want = jax.tree.map(lambda p, g: p - 16 * g, before, grads)
  for a, b in zip(jax.tree.leaves(after.nets["d"].params), jax.tree.leaves(want), strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_half_life_ema_decay():
  # StyleGAN2-ADA: beta = 0.5 ** (batch / ema_nimg), ema_nimg = min(1000 ema_kimg, rampup x images seen).
  np.testing.assert_allclose(steps.half_life_decay(100, 32, 10.0), 0.5 ** (32 / 10_000), rtol=1e-6)
  assert float(steps.half_life_decay(0, 32, 10.0, 0.05)) == 0.0                         # Step 0 copies G.
  np.testing.assert_allclose(steps.half_life_decay(100, 32, 10.0, 0.05), 0.5 ** (32 / (100 * 32 * 0.05)), rtol=1e-6)
  np.testing.assert_allclose(steps.half_life_decay(10_000, 32, 10.0, 0.05), 0.5 ** (32 / 10_000), rtol=1e-6)


@pytest.mark.xdist_group("stylegan2")  # After test_train's tiny StyleGAN2 runs: the same training programs.
def test_resume_is_bitwise_exact_across_lazy_phases(data_dir, tmp_path):
  # 3 steps straight; then the same workdir without its last checkpoint, resumed from step 2: pl_mean, the w_avg,
  # the optimizers and the half-life EMA continue exactly. (ADA's p and its pending r_t sum, carried in the same
  # state.extra, are resumed in test_augment's DCGAN run.)
  overrides = {"checkpoint_every": 1, "sample_every": 100, "evals": ()}
  config = lambda: tiny_config("stylegan2_digits.py", data_dir, total_steps=3, **overrides)
  full = train.train_and_evaluate(config(), str(tmp_path / "full"))
  with open(tmp_path / "full" / "metrics.jsonl") as f:
    rows = [r for r in map(json.loads, f) if "g_loss" in r]
  resumed = resume_a_copy_without_its_last_checkpoint(config(), tmp_path / "full", 3)
  assert int(resumed.step) == 3
  assert_states_equal(full, resumed)
  # The lazy phases ran on step 0 only (logged as step 1) and wrote pl_mean.
  assert [(r["g_reg_pl_penalty"] > 0, r["d_reg_r1"] > 0) for r in rows] == [(True, True)] + [(False, False)] * 2
  assert float(full.extra["pl_mean"]) > 0


def test_limited_data_runs_are_scored_against_all_the_training_images(data_dir):
  # experiments/stylegan2.py with n: trained on the first n images, its FID reference is the whole training split
  # (config.eval_ref_split), as the limited-data papers (Karras et al. 2020b, Zhao et al. 2020) score; a reference
  # split that does not exist is refused before training.
  config = tiny_config("stylegan2_digits.py", data_dir)
  config.update_from_flattened_dict({"data.split": "train[:100]", "eval_ref_split": "train"})
  objective, _ = train.build(config)
  assert objective.sources()["x"].split == "train[:100]" and objective.reference_source().split == "train"
  objective.check_sources(config.batch_size)
  assert config_lib.load_experiment(os.path.join(REPO, "experiments", "stylegan2.py"),
                                    "n=100").eval_ref_split == "train"
  config.eval_ref_split = "validation"
  with pytest.raises(UserError, match="validation"):
    train.build(config)[0].check_sources(config.batch_size)


def test_conditional_networks_take_labels_through_mapping_and_projection():
  # Traced only. G: the label's normalised embedding joins z in the mapping network; D: its output projected onto
  # the label's mapped embedding (networks.py MappingNetwork's c, Discriminator's cmap), one logit per image.
  models = sg.make_models(resolution=8, channels=3, latent_dim=8, w_dim=8, mapping_layers=2, channel_base=32,
                          channel_max=4, num_classes=10)
  z, labels = jnp.zeros((4, 8)), jnp.arange(4)
  g_vars = jax.eval_shape(lambda: models.generator.init(jax.random.PRNGKey(0), z, labels=labels))
  assert g_vars["params"]["embed"]["kernel"].shape == (10, 8) and g_vars["params"]["fc0"]["kernel"].shape == (16, 8)
  images = jax.eval_shape(lambda v: models.generator.apply(v, z, labels=labels), g_vars)
  assert images.shape == (4, 8, 8, 3)
  d_vars = jax.eval_shape(lambda: models.discriminator.init(jax.random.PRNGKey(1), jnp.zeros((4, 8, 8, 3)),
                                                             labels=labels))
  assert sorted(k for k in d_vars["params"] if k.startswith("cmap_fc")) == ["cmap_fc0", "cmap_fc1"]
  logits = jax.eval_shape(lambda v: models.discriminator.apply(v, jnp.zeros((4, 8, 8, 3)), labels=labels), d_vars)
  assert logits.shape == (4,)


@pytest.mark.xdist_group("stylegan2")  # After test_train's tiny StyleGAN2 runs: the same training programs.
def test_w_space_tools_truncate_mix_styles_project_and_run_in_the_notebook(data_dir, tmp_path, monkeypatch):
  # gan_jax.latent on a tiny StyleGAN2 run (8x8: num_ws 4, all in the coarse band). Truncation in W: psi 1 is the
  # sampled generator, psi 0 the image of w_avg for every latent. Mixing: a band's ws come from the column source
  # and the rest from the row source, so with every ws in the band the mixes are the column sources' images. Then
  # the projector, the mixing command line and the W-space notebook on the same run (one training for all).
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(tiny_config("stylegan2_digits.py", data_dir, evals=()), workdir)
  run = latent.Run(workdir)
  key = jax.random.PRNGKey(0)
  arrays, summary, columns = latent.run_truncation(run, key, thresholds=(1.0, 0.0), num=2)
  plain, at_avg = arrays["images"][:2], arrays["images"][2:]
  np.testing.assert_allclose(plain, run.generate(arrays["latents"]), atol=1e-5)
  np.testing.assert_allclose(at_avg, np.broadcast_to(at_avg[:1], at_avg.shape), atol=1e-5)
  assert summary["space"] == "W" and summary["pixel_std_per_row"][1] < 1e-5 < summary["pixel_std_per_row"][0]
  arrays, summary, columns = latent.run_mixing(run, key, num=2)
  assert columns == 3 and summary["num_ws"] == 4 and list(summary["bands"]) == ["coarse"]
  grid = arrays["images"].reshape(3, 3, 8, 8, 1)     # Header row, then one row per row source.
  np.testing.assert_allclose(grid[1:, 1:], np.broadcast_to(grid[:1, 1:], (2, 2, 8, 8, 1)), atol=1e-5)
  assert summary["bands"]["coarse"]["distance_to_columns"] < 1e-5 < summary["bands"]["coarse"]["distance_to_rows"]
  # Two bands of two layers each: the middle band's mixes are the row source's first two ws, the column's last two.
  monkeypatch.setattr(latent, "STYLE_BANDS", (("coarse", 0, 2), ("middle", 2, None)))
  arrays, summary, _ = latent.run_mixing(run, key, num=2)
  ws_a, ws_b = arrays["ws_rows"], arrays["ws_columns"]
  mixed = latent.mix_styles(ws_a, ws_b, 2, 4)
  assert np.array_equal(mixed[1, 0, :2], ws_a[1, :2]) and np.array_equal(mixed[1, 0, 2:], ws_b[0, 2:])
  middle_rows = arrays["images"].reshape(5, 3, 8, 8, 1)[3:, 1:]     # Header, 2 coarse rows, 2 middle rows.
  np.testing.assert_allclose(middle_rows, run.synthesised(mixed.reshape(4, *ws_a.shape[1:])).reshape(2, 2, 8, 8, 1),
                             atol=1e-5)
  # The projector on the run's first two digits, in W, under the run's classifier's features: below the starting
  # error (w_avg) after a few steps (W+ is the same code with one w per layer, tested above).
  arrays, summary, columns = latent.run_project(run, key, num=2, steps=40, w_avg_samples=500)
  assert columns == 2 and arrays["images"].shape == (6, 8, 8, 1) and arrays["ws"].shape == (2, 4, ws_a.shape[2])
  assert summary["space"] == "w" and summary["features"].startswith("classifier-digits")
  assert summary["mse_projected"] < summary["mse_start"], summary
  assert summary["class_agreement"] in (0.0, 0.5, 1.0)
  with pytest.raises(UserError, match="--space must be w or w"):
    latent.run_project(run, key, space="z")
  result = subprocess.run([sys.executable, "-m", "gan_jax.latent", "mixing", f"--workdir={workdir}",
                           f"--out={tmp_path / 'out'}", "--num=2"], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  assert json.loads(result.stdout.strip().splitlines()[-1])["bands"]["coarse"]["ws"] == [0, 4]
  assert np.load(tmp_path / "out" / "mixing.npz")["images"].shape == (3 + 2 * 3, 8, 8, 1)
  # notebooks/stylegan2_w_space.ipynb on this run, in its tiny setting, so that it cannot rot.
  monkeypatch.setenv("GAN_JAX_NOTEBOOK_TINY", "1")
  monkeypatch.setenv("GAN_JAX_NOTEBOOK_WORKDIR", workdir)
  notebook = nbformat.read(os.path.join(REPO, "notebooks", "stylegan2_w_space.ipynb"), as_version=4)
  NotebookClient(notebook, timeout=600, kernel_name="python3",
                 resources={"metadata": {"path": REPO}}).execute()  # Raises on any cell's error.
  outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
  text = "".join(o.get("text", "") for o in outputs)
  assert "pixel std across a row, per psi" in text and "coarse ws [0, 4]" in text and "w+: mean squared" in text
  assert sum("image/png" in o.get("data", {}) for o in outputs) == 4   # Truncation, mixing, W and W+ projections.
