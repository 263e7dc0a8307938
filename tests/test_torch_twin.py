"""scripts/torch_twin.py's translation networks compute what gan_jax's do (models/translation.py): the same
parameters, and the same outputs once the PyTorch weights are ported, so benchmark.py --vs_torch compares the same
work. Optional: needs torch (pip install torch==2.13.0), which is no dependency of gan_jax; skipped without it."""
import os
import sys

import jax
import numpy as np
import pytest

from gan_jax.models import translation

from conftest import init_variables

torch = pytest.importorskip("torch")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))
import torch_twin  # noqa: E402  pylint: disable=g-import-not-at-top,wrong-import-position
import torch_twin_stylegan2  # noqa: E402  pylint: disable=g-import-not-at-top,wrong-import-position

UNET_ORDER = ("down_0", "down_1", "down_norm_1", "down_2", "down_norm_2", "down_3", "down_norm_3", "down_4", "up_4",
              "up_norm_4", "up_3", "up_norm_3", "up_2", "up_norm_2", "up_1", "up_norm_1", "up_0")


def _torch_layers(net):
  """The layers with parameters of `net`, in PyTorch's module order (a pre-order walk: for the U-Net, each block's
  down conv and norm, its submodule, then its up conv and norm)."""
  return [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.BatchNorm2d))]


def _port(net, names):
  """gan_jax params {name: {kernel, bias} or {scale, bias}} from the layers of `net` named in order ("block_0/conv_1":
  a submodule's layer)."""
  layers = _torch_layers(net)
  assert len(layers) == len(names)
  params = {}
  for name, layer in zip(names, layers):
    w = layer.weight.detach().numpy()
    if isinstance(layer, torch.nn.BatchNorm2d):
      entry = {"scale": w}
    elif isinstance(layer, torch.nn.ConvTranspose2d):   # [in, out, kh, kw] -> models/translation.py's docstring.
      entry = {"kernel": w[:, :, ::-1, ::-1].transpose(2, 3, 0, 1)}
    else:                                                # [out, in, kh, kw] -> [kh, kw, in, out]
      entry = {"kernel": w.transpose(2, 3, 1, 0)}
    if layer.bias is not None:
      entry["bias"] = layer.bias.detach().numpy()
    *outer, last = name.split("/")
    scope = params
    for part in outer:
      scope = scope.setdefault(part, {})
    scope[last] = entry
  return params


def _compare(net, module, names, x_nhwc, atol=2e-4):
  """net (train mode) and module (train=True: batch statistics) on the same input give the same output."""
  torch.manual_seed(0)
  torch_twin._init(net)  # pylint: disable=protected-access
  net.train()
  variables = init_variables(module, jax.random.PRNGKey(0), x_nhwc, train=False)
  ported = _port(net, names)
  assert jax.tree_util.tree_map(np.shape, ported) == jax.tree_util.tree_map(np.shape, variables["params"])
  with torch.no_grad():
    expected = net(torch.from_numpy(np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2)))).numpy()
  out, _ = module.apply({**variables, "params": ported}, x_nhwc, train=True, mutable=["batch_stats"])
  expected = expected.transpose(0, 2, 3, 1)
  np.testing.assert_allclose(np.asarray(out), expected[..., 0] if out.ndim == 3 else expected, atol=atol)


def _images(channels, batch=4, size=32):
  return np.random.default_rng(channels).uniform(-1, 1, (batch, size, size, channels)).astype(np.float32)


def test_pix2pix32_twin_is_the_unet_and_patchgan_of_the_experiment():
  _compare(torch_twin.unet_generator(1, 3), translation.UNetGenerator(3, 5, width=32), UNET_ORDER, _images(1))
  names = ("conv_0", "conv_1", "norm_1", "conv_2", "norm_2", "conv_3")
  _compare(torch_twin.patch_discriminator(4), translation.PatchDiscriminator(32, 2, "batch"), names, _images(4))


def test_cyclegan32_twin_is_the_resnet_generator_and_patchgan_of_the_experiment():
  blocks = [f"block_{k}/conv_{i}" for k in range(3) for i in range(2)]
  _compare(torch_twin.resnet_generator(3, 3), translation.ResnetGenerator(3, width=32, num_blocks=3, norm="instance"),
           ("conv_in", "down_0", "down_1", *blocks, "up_0", "up_1", "conv_out"), _images(3))
  names = ("conv_0", "conv_1", "conv_2", "conv_3")
  _compare(torch_twin.patch_discriminator(3, norm=torch.nn.InstanceNorm2d),
           translation.PatchDiscriminator(32, 2, "instance"), names, _images(3))


@pytest.mark.parametrize("model", ["pix2pix32", "cyclegan32"])
def test_translation_twin_steps_run_and_lower_their_losses_on_a_fixed_batch(model):
  step = torch_twin.make_step(4, model=model)
  first = [float(loss) for loss in step()]
  for _ in range(2):
    last = [float(loss) for loss in step()]
  assert all(np.isfinite(first + last))
  assert last[1] < first[1]   # G's loss (L1 or cycle terms dominate) falls on a batch it sees every step.


@pytest.mark.parametrize("model", ["sngan16", "biggan32"])
def test_resnet_gan_twins_have_the_benchmark_models_parameters_outputs_and_settings(model):
  # gan_jax's side as benchmark.py builds it (model_config, build, the objective's init), in shapes only: nothing is
  # compiled. Spectral norm's u and v are buffers in PyTorch and collections in gan_jax: neither counts.
  import benchmark  # pylint: disable=g-import-not-at-top  (scripts/, on the path above)
  config = benchmark.model_config(model, None)
  objective, txs = benchmark.build(config)
  state = jax.eval_shape(lambda: objective.init(config.seed, txs))
  models, count = objective.models, lambda tree: sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))
  z, labels = jax.numpy.zeros((2, models.latent_dim)), jax.numpy.arange(2)
  images = jax.eval_shape(lambda v: models.generator.apply(v, z, train=False, labels=labels), state.variables("g"))
  logits = jax.eval_shape(lambda v, x: models.discriminator.apply(v, x, train=False, labels=labels),
                          state.variables("d"), images)
  threads = torch.get_num_threads()
  torch.set_num_threads(1)  # BigGAN's orthogonal init is QRs, which crawl on 2 threads of a busy 2-core VM (1.3 s
  try:                      # each, against 0.04 s on one: 24 s for biggan32's networks).
    g, d = torch_twin.resnet_networks(model)
    with torch.no_grad():
      fakes = g(torch.randn(2, models.latent_dim), torch.arange(2))
      fake_logits = d(fakes, torch.arange(2))
  finally:
    torch.set_num_threads(threads)
  assert [sum(p.numel() for p in net.parameters()) for net in (g, d)] == [count(state.nets[n].params)
                                                                          for n in ("g", "d")]
  assert tuple(fakes.permute(0, 2, 3, 1).shape) == images.shape   # NCHW against NHWC.
  assert tuple(fake_logits.shape) == logits.shape
  critic_steps, g_adam, d_adam, g_orthogonal, ema_decay, ema_start = torch_twin.RESNET_STEPS[
      "biggan" if model in torch_twin.BIGGAN_MODELS else "sngan"]
  assert (config.loss, config.batch_size, config.num_critic_steps, config.regularizer.g_orthogonal, config.ema_decay,
          config.ema_start) == ("hinge", 64, critic_steps, g_orthogonal, ema_decay, ema_start)
  assert [(config.optimizer[n].learning_rate, config.optimizer[n].b1, config.optimizer[n].b2)
          for n in ("g", "d")] == [(lr, 0.0, b2) for lr, b2 in (g_adam, d_adam)]


def _dense(fc):  # FullyConnectedLayer [out, in] -> EqDense [in, out]; both scale at runtime alike.
  return {"kernel": fc.weight.detach().numpy().T, "bias": fc.bias.detach().numpy()}


def _conv(layer):  # [out, in, k, k] -> [k, k, in, out]
  entry = {"kernel": layer.weight.detach().numpy().transpose(2, 3, 1, 0)}
  if getattr(layer, "bias", None) is not None:
    entry["bias"] = layer.bias.detach().numpy()
  return entry


def _port_stylegan2(g, d, resolution):
  """gan_jax's params (models/stylegan2.py names) of the twin's G and D. The synthesis kernels carry no
  1 / sqrt(fan_in) in the twin (the authors' SynthesisLayer leaves it to demodulation) and do in gan_jax: the same
  map but for demodulation's 1e-8. The up-sampling convolutions' kernels are flipped: the authors' run them as
  convolutions (SynthesisLayer's flip_weight = (up == 1)), gan_jax's as correlations, as all its others."""
  g_params = {f"fc{i}": _dense(fc) for i, fc in enumerate(g.mapping.fcs)}
  g_params["const"] = g.synthesis.const.detach().numpy().transpose(1, 2, 0)
  names = [f"b{2 ** k}_conv{i}" for k in range(2, int(np.log2(resolution)) + 1) for i in ((1,) if k == 2 else (0, 1))]
  for name, layer in zip(names, g.synthesis.layers):
    g_params[name] = {**_conv(layer), "affine": _dense(layer.affine),
                      "noise_strength": layer.noise_strength.detach().numpy()}
    if layer.up > 1:
      g_params[name]["kernel"] = g_params[name]["kernel"][::-1, ::-1]
  for k, torgb in enumerate(g.synthesis.torgbs):
    g_params[f"b{2 ** (k + 2)}_torgb"] = {**_conv(torgb), "affine": _dense(torgb.affine)}
  fc = _dense(d.fc)   # Its inputs flattened from NCHW in the twin, from NHWC here.
  width = fc["kernel"].shape[1]
  fc["kernel"] = fc["kernel"].reshape(width, 4, 4, width).transpose(1, 2, 0, 3).reshape(16 * width, width)
  d_params = {f"b{resolution}_fromrgb": _conv(d.fromrgb), "b4_conv": _conv(d.conv), "b4_fc": fc,
              "b4_out": _dense(d.out)}
  for k, block in enumerate(d.blocks):
    d_params.update({f"b{resolution >> k}_{name}": _conv(block[name]) for name in ("conv0", "conv1", "skip")})
  return g_params, d_params


@pytest.mark.parametrize("model", ["stylegan2_16"])
def test_stylegan2_twin_computes_the_benchmark_models_mapping_synthesis_and_discriminator(model):
  # The networks of benchmark.py's stylegan2_16 (stylegan2_32 is the same code at 32x32, 128 channels), ported from
  # the twin with nonzero noise strengths off (the twin's noise is random): equal parameter counts, and the same
  # w, images and logits for the same inputs, so --vs_torch times the same work.
  import benchmark  # pylint: disable=g-import-not-at-top  (scripts/, on the path above)
  config = benchmark.model_config(model, None)
  objective = benchmark.build(config)[0]
  models, twin = objective.models, torch_twin_stylegan2
  resolution, channels, width = twin.STYLEGAN2_MODELS[model]
  assert (models.data_shape, models.latent_dim, config.batch_size) == ((resolution, resolution, channels),
                                                                       twin.Z_DIM, 32)
  assert (objective.pl_every, config.regularizer.lazy_every, objective.pl_weight, objective.pl_decay,
          objective.pl_batch_shrink, objective.style_mixing, config.regularizer.r1, config.ema_kimg,
          config.ema_rampup) == (twin.PL_EVERY, twin.R1_EVERY, twin.PL_WEIGHT, twin.PL_DECAY, twin.PL_BATCH_SHRINK,
                                 twin.STYLE_MIXING,
                                 0.0002 * resolution ** 2 / 32, twin.EMA_KIMG, twin.EMA_RAMPUP)
  assert all((config.optimizer[n].learning_rate, (config.optimizer[n].b1, config.optimizer[n].b2))
             == (twin.LEARNING_RATE, twin.BETAS) for n in ("g", "d"))
  torch.manual_seed(0)
  g = torch_twin_stylegan2.Generator(resolution, channels, width)
  d = torch_twin_stylegan2.Discriminator(resolution, channels, width)
  z = np.random.default_rng(0).normal(size=(4, models.latent_dim)).astype(np.float32)
  g_variables = init_variables(models.generator, jax.random.PRNGKey(0), z)
  d_variables = init_variables(models.discriminator, jax.random.PRNGKey(0), _images(channels, size=resolution))
  g_params, d_params = _port_stylegan2(g, d, resolution)
  for ported, variables, net in ((g_params, g_variables, g), (d_params, d_variables, d)):
    assert jax.tree.map(np.shape, ported) == jax.tree.map(np.shape, variables["params"])
    assert sum(p.numel() for p in net.parameters()) == sum(x.size for x in jax.tree.leaves(ported))
  g_variables = {**g_variables, "params": g_params}   # w_avg as initialised (the mapping's output is before it).
  with torch.no_grad():
    ws = g.mapping(torch.from_numpy(z))
    images = g.synthesis(ws)
    logits = d(images)
  our_ws = models.generator.apply(g_variables, z, method="mapping")
  np.testing.assert_allclose(np.asarray(our_ws), ws.numpy(), rtol=1e-4, atol=1e-5)
  our_images = models.generator.apply(g_variables, ws.numpy(), "none", method="synthesis")
  np.testing.assert_allclose(np.asarray(our_images), images.permute(0, 2, 3, 1).numpy(), rtol=1e-3, atol=1e-4)
  our_logits = models.discriminator.apply({"params": d_params}, images.permute(0, 2, 3, 1).numpy())
  np.testing.assert_allclose(np.asarray(our_logits), logits[:, 0].numpy(), rtol=1e-4, atol=1e-4)


def test_stylegan2_twin_step_runs_every_phase_and_keeps_finite_parameters():
  # 17 steps at batch 4 from step 0: Greg at 0, 4, 8, 12, 16 and Dreg at 0 and 16 (training_loop.py's intervals).
  step = torch_twin_stylegan2.make_step("stylegan2_16", batch=4)
  for _ in range(17):
    step()
  assert step.phase_runs == {"g_main": 17, "g_reg": 5, "d_main": 17, "d_reg": 2}
  for net in (step.g, step.d, step.g_ema):
    assert all(torch.isfinite(p).all() for p in net.parameters())
  assert float(step.g.mapping.w_avg.abs().sum()) > 0     # The mapping's tracked mean moved.
  assert not torch.equal(step.g.synthesis.const, step.g_ema.synthesis.const)   # The EMA lags G.
