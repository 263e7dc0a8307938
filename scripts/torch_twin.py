"""The benchmark's models and training steps in PyTorch: the baseline scripts/benchmark.py is compared with.

  pip install torch==2.13.0      # CPU build from the local wheel; never a runtime dependency of gan_jax
  python scripts/torch_twin.py [--model=dcgan28[,dcgan64,pix2pix32,cyclegan32,sngan16,sngan32,biggan32,
                                        stylegan2_16,stylegan2_32]]
                               [--batch=64]
                               [--steps=20]
                               [--windows=5] [--warmup=3] [--reuse_fakes] [--device=cpu|cuda|auto]
                               [--dtype=float32[,bfloat16]]

Same networks, initialisation scale, loss, optimizer and step as gan_jax's (models/dcgan.py, steps.make_train_step):
a D update on a real batch and G(z1) with z1 fresh, then a G update through D on G(z2) with z2 fresh, Adam 2e-4
(0.5, 0.999), non-saturating loss, BatchNorm momentum 0.1 (Flax's 0.9), then an EMA of G's parameters and buffers.
With --reuse_fakes, the loop of PyTorch's DCGAN example (and gan_jax's config.reuse_fakes): one G(z) serves
the D update (detached) and the G update. Models as benchmark.py's: dcgan28 (28x28x1, D without BatchNorm) and
dcgan64 (the paper's 64x64x3: G 4x4x1024 -> 64x64x3, D 128 -> 1024 with BatchNorm).

On a GPU (--device=cuda) every window ends with torch.cuda.synchronize(), and float32 matrix products may use
TF32 as convolutions do by default (torch.backends.cuda.matmul.allow_tf32), which is what XLA's default precision
does on NVIDIA GPUs since Ampere; --dtype=bfloat16 runs the forward passes and losses under torch.autocast, as
gan_jax's config.model.dtype computes in bf16 with float32 parameters.
pix2pix32 and cyclegan32 are experiments/pix2pix_digits_m.py's and cyclegan_digits_m.py's steps (batch 16, the
default for them) with the official networks and update order of junyanz/pytorch-CycleGAN-and-pix2pix
(models/networks.py UnetGenerator, ResnetGenerator, NLayerDiscriminator; pix2pix_model.py and cycle_gan_model.py
optimize_parameters; util/image_pool.py), written out here: pix2pix, a U-Net of 5 downsamplings (width 32, batch
norm) and a 2-layer PatchGAN (width 32) on (input, output), vanilla GAN + 100 L1, D's update then G's; CycleGAN,
two ResNet generators (width 32, 3 blocks, instance norm) and two 2-layer PatchGANs, LSGAN + 10 cycle + 5
identity, both generators' update then both discriminators' on fakes from pools of 50. Each step first applies
the random jitter (bicubic resize to 36, random crop back to 32 per image), which gan_jax does inside its step and
the official code in its data loader; float32 only, as gan_jax's translation models.
sngan16 and sngan32 are experiments/sngan_fashion_mnist.py's 16x16 reduction (64 channels) and sngan_cifar10.py's
step: Miyato et al. 2018's ResNet G and spectrally normalised D (pfnet-research/sngan_projection) with conditional
BatchNorm and the projection, hinge loss, 5 D updates and one G update, Adam 2e-4 (0, 0.9), batch 64, float32.
biggan32 is experiments/biggan_cifar10.py's step: Brock et al. 2019's networks (ajbrock/BigGAN-PyTorch BigGAN.py and
layers.py) at 32x32, G and D 256 channels, spectral norm in both, orthogonal init, hierarchical z (4 chunks of 32)
and a 128-d shared class embedding into every G block's ccbn, SNGAN's D with the projection; hinge loss, 2 D updates
(Adam 4e-4 (0, 0.999)) and one G update (Adam 1e-4 (0, 0.999), plus the orthogonal penalty's gradient, beta 1e-4),
then the EMA of G (0.9999, a copy before step 1,000), batch 64, float32. The ResNet twins make gan_jax's step: see
make_resnet_gan_step.
stylegan2_16 and stylegan2_32 are experiments/stylegan2_digits.py's and stylegan2_mnist.py's steps (batch 32) with
NVlabs/stylegan2-ada-pytorch's networks, loss phases and training loop: scripts/torch_twin_stylegan2.py.
Prints one JSON line per model and dtype like benchmark.py's (check "torch_twin:<model>:<dtype>[:reuse_fakes]"; with
several, a run that fails prints a "failed" line, exit status 1, and the others go on).
"""
import argparse
import contextlib
import importlib.metadata
import json
import os
import random
import sys
import time
import traceback

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

import torch_twin_stylegan2  # scripts/, beside this file.

# name -> (resolution, channels, G width, D width, D BatchNorm): benchmark.py's models of the same names.
MODELS = {"dcgan28": (28, 1, 64, 64, False), "dcgan64": (64, 3, 128, 128, True)}
# name -> (resolution, channels A, channels B): experiments/pix2pix_digits_m.py's and cyclegan_digits_m.py's data.
TRANSLATION_MODELS = {"pix2pix32": (32, 1, 3), "cyclegan32": (32, 3, 3)}
# name -> (resolution, channels, G width, D width): benchmark.py's sngan16 (experiments/sngan_fashion_mnist.py at
# res=16, width=64) and sngan32 (experiments/sngan_cifar10.py).
SNGAN_MODELS = {"sngan16": (16, 1, 64, 64), "sngan32": (32, 3, 256, 128)}
# name -> (resolution, channels, G width, D width): benchmark.py's biggan32 (experiments/biggan_cifar10.py).
BIGGAN_MODELS = {"biggan32": (32, 3, 256, 256)}
RESNET_MODELS = (*SNGAN_MODELS, *BIGGAN_MODELS)
STYLEGAN2_MODELS = torch_twin_stylegan2.STYLEGAN2_MODELS
FLOAT32_ONLY = (*TRANSLATION_MODELS, *RESNET_MODELS, *STYLEGAN2_MODELS)
ALL_MODELS = (*MODELS, *FLOAT32_ONLY)
LATENT_DIM = 100


def layout(resolution):
  """(base, stride-2 layers), as models/dcgan.py's layout."""
  for base in (4, 7):
    size, layers = resolution, 0
    while size > base and size % 2 == 0:
      size, layers = size // 2, layers + 1
    if size == base and layers >= 1:
      return base, layers
  raise ValueError(f"DCGAN cannot produce resolution {resolution}")


class Generator(nn.Module):
  """z -> base x base x (width * 2**(layers - 1)) -> ... -> resolution x resolution x channels, tanh."""

  def __init__(self, resolution=28, channels=1, width=64, latent_dim=LATENT_DIM):
    super().__init__()
    self.base, num_up = layout(resolution)
    self.features = width * 2 ** (num_up - 1)
    self.fc = nn.Linear(latent_dim, self.base * self.base * self.features, bias=False)
    self.bn0 = nn.BatchNorm2d(self.features)  # As gan_jax's DCGAN: BatchNorm over channels after the reshape.
    blocks, features = [], self.features
    for _ in range(num_up - 1):
      blocks += [nn.ConvTranspose2d(features, features // 2, 4, stride=2, padding=1, bias=False),
                 nn.BatchNorm2d(features // 2), nn.ReLU()]
      features //= 2
    self.blocks = nn.Sequential(*blocks)
    self.out = nn.ConvTranspose2d(features, channels, 4, stride=2, padding=1)

  def forward(self, z):
    x = F.relu(self.bn0(self.fc(z).view(-1, self.features, self.base, self.base)))
    return torch.tanh(self.out(self.blocks(x)))


class Discriminator(nn.Module):
  """Stride-2 convolutions width -> width * 2**(layers - 1), LeakyReLU 0.2, BatchNorm on all but the first (when
  `batch_norm`; else biases), a linear logit."""

  def __init__(self, resolution=28, channels=1, width=64, batch_norm=False):
    super().__init__()
    base, num_down = layout(resolution)
    layers, features = [nn.Conv2d(channels, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2)], width
    for _ in range(num_down - 1):
      layers.append(nn.Conv2d(features, features * 2, 4, stride=2, padding=1, bias=not batch_norm))
      features *= 2
      layers += ([nn.BatchNorm2d(features)] if batch_norm else []) + [nn.LeakyReLU(0.2)]
    self.body = nn.Sequential(*layers)
    self.fc = nn.Linear(base * base * features, 1)

  def forward(self, x):
    return self.fc(self.body(x).flatten(1))[:, 0]


class UnetBlock(nn.Module):
  """networks.py UnetSkipConnectionBlock: [LeakyReLU 0.2, conv 4x4/2, norm] -> submodule -> [ReLU, transposed
  conv 4x4/2, norm], and the input concatenated to the output (outermost: no LeakyReLU or norm in, tanh out and no
  concatenation; innermost: no norm in, no submodule). Batch norm: no biases but the outermost transposed conv's."""

  def __init__(self, outer, inner, input_nc=None, submodule=None, outermost=False, innermost=False):
    super().__init__()
    self.outermost = outermost
    down_conv = nn.Conv2d(input_nc or outer, inner, 4, stride=2, padding=1, bias=False)
    if outermost:
      layers = [down_conv, submodule, nn.ReLU(), nn.ConvTranspose2d(inner * 2, outer, 4, stride=2, padding=1),
                nn.Tanh()]
    elif innermost:
      layers = [nn.LeakyReLU(0.2), down_conv, nn.ReLU(), nn.ConvTranspose2d(inner, outer, 4, stride=2, padding=1,
                                                                            bias=False), nn.BatchNorm2d(outer)]
    else:
      layers = [nn.LeakyReLU(0.2), down_conv, nn.BatchNorm2d(inner), submodule, nn.ReLU(),
                nn.ConvTranspose2d(inner * 2, outer, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(outer)]
    self.model = nn.Sequential(*layers)

  def forward(self, x):
    return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


def unet_generator(input_nc, output_nc, num_downs=5, ngf=32):
  """networks.py UnetGenerator with batch norm, without dropout (num_downs 5 has no dropout block)."""
  block = UnetBlock(ngf * 8, ngf * 8, innermost=True)
  for _ in range(num_downs - 5):
    block = UnetBlock(ngf * 8, ngf * 8, submodule=block)
  for outer in (4, 2, 1):
    block = UnetBlock(ngf * outer, ngf * outer * 2, submodule=block)
  return UnetBlock(output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True)


def patch_discriminator(input_nc, ndf=32, n_layers=2, norm=nn.BatchNorm2d):
  """networks.py NLayerDiscriminator: conv 4x4/2, LeakyReLU 0.2; n_layers - 1 more with norm; a stride-1 one; the
  stride-1 logit. Convolutions followed by a norm have biases with instance norm only."""
  bias = norm is nn.InstanceNorm2d
  layers, mult = [nn.Conv2d(input_nc, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2)], 1
  for n in list(range(1, n_layers)) + [n_layers]:
    prev, mult = mult, min(2 ** n, 8)
    layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=2 if n < n_layers else 1, padding=1, bias=bias),
               norm(ndf * mult), nn.LeakyReLU(0.2)]
  return nn.Sequential(*layers, nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1))


class ResnetBlock(nn.Module):
  """networks.py ResnetBlock (reflect padding, instance norm, no dropout)."""

  def __init__(self, dim):
    super().__init__()
    self.block = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim), nn.ReLU(),
                               nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim))

  def forward(self, x):
    return x + self.block(x)


def resnet_generator(input_nc, output_nc, ngf=32, n_blocks=3):
  """networks.py ResnetGenerator with instance norm: c7s1-ngf, d2ngf, d4ngf, n_blocks R4ngf, u2ngf, ungf, c7s1."""
  layers = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU()]
  for mult in (1, 2):
    layers += [nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1), nn.InstanceNorm2d(ngf * mult * 2),
               nn.ReLU()]
  layers += [ResnetBlock(ngf * 4) for _ in range(n_blocks)]
  for mult in (4, 2):
    layers += [nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1),
               nn.InstanceNorm2d(ngf * mult // 2), nn.ReLU()]
  return nn.Sequential(*layers, nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh())


class ImagePool:
  """util/image_pool.py: the first `size` fakes are stored and returned; then each is, with probability 1/2,
  swapped with a stored one (which is returned), else returned itself."""

  def __init__(self, size=50):
    self.size, self.images = size, []

  def query(self, images):
    out = []
    for image in images.detach():
      image = image[None]
      if len(self.images) < self.size:
        self.images.append(image)
        out.append(image)
      elif random.uniform(0, 1) > 0.5:
        index = random.randint(0, self.size - 1)
        out.append(self.images[index].clone())
        self.images[index] = image
      else:
        out.append(image)
    return torch.cat(out, 0)


def jitter(images, generator):
  """pix2pix's random jitter on a tuple of [B, C, H, W] batches: bicubic resize to 286/256 of the size, then one
  random crop back per example, the same for every batch of the tuple."""
  size = images[0].shape[-1]
  load = int(round(size * 286 / 256))
  big = [F.interpolate(x, size=(load, load), mode="bicubic", align_corners=False).clamp(-1, 1) for x in images]
  offsets = torch.randint(0, load - size + 1, (images[0].shape[0], 2), generator=generator).tolist()
  return tuple(torch.stack([b[i, :, y:y + size, x:x + size] for i, (y, x) in enumerate(offsets)]) for b in big)


def float32_only(model):
  return f"{model} runs in float32 only, as its gan_jax experiment"


def _requires_grad(flag, *modules):
  """Turns the gradients of `modules`' parameters off (a frozen D in G's update) or back on."""
  for module in modules:
    for p in module.parameters():
      p.requires_grad_(flag)


def make_translation_step(model, batch=16, device="cpu"):
  """pix2pix's or CycleGAN's official training step (the module docstring) on a fixed random batch."""
  resolution, channels_a, channels_b = TRANSLATION_MODELS[model]
  torch.manual_seed(0)
  random.seed(0)
  crops = torch.Generator().manual_seed(1)
  real_a = torch.rand(batch, channels_a, resolution, resolution, device=device) * 2 - 1
  real_b = torch.rand(batch, channels_b, resolution, resolution, device=device) * 2 - 1
  adam = lambda *nets: torch.optim.Adam([p for n in nets for p in n.parameters()], lr=2e-4, betas=(0.5, 0.999))
  if model == "pix2pix32":
    g = unet_generator(channels_a, channels_b).to(device)
    d = patch_discriminator(channels_a + channels_b).to(device)
    _init(g), _init(d)
    g_opt, d_opt = adam(g), adam(d)

    def gan(logits, target):  # GANLoss('vanilla')
      return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))

    def step():
      x, y = jitter((real_a, real_b), crops)
      fake = g(x)
      d_loss = 0.5 * (gan(d(torch.cat([x, fake.detach()], 1)), 0.0) + gan(d(torch.cat([x, y], 1)), 1.0))
      d_opt.zero_grad(set_to_none=True)
      d_loss.backward()
      d_opt.step()
      _requires_grad(False, d)
      g_loss = gan(d(torch.cat([x, fake], 1)), 1.0) + 100.0 * F.l1_loss(fake, y)
      g_opt.zero_grad(set_to_none=True)
      g_loss.backward()
      g_opt.step()
      _requires_grad(True, d)
      return d_loss.detach(), g_loss.detach()
  else:
    g_ab = resnet_generator(channels_a, channels_b).to(device)
    g_ba = resnet_generator(channels_b, channels_a).to(device)
    d_a = patch_discriminator(channels_a, norm=nn.InstanceNorm2d).to(device)
    d_b = patch_discriminator(channels_b, norm=nn.InstanceNorm2d).to(device)
    for net in (g_ab, g_ba, d_a, d_b):
      _init(net)
    g_opt, d_opt = adam(g_ab, g_ba), adam(d_a, d_b)
    pool_a, pool_b = ImagePool(), ImagePool()
    gan = lambda logits, target: F.mse_loss(logits, torch.full_like(logits, target))  # GANLoss('lsgan')

    def step():
      a, = jitter((real_a,), crops)
      b, = jitter((real_b,), crops)
      fake_b, fake_a = g_ab(a), g_ba(b)
      _requires_grad(False, d_a, d_b)
      g_loss = (gan(d_b(fake_b), 1.0) + gan(d_a(fake_a), 1.0)
                + 10.0 * (F.l1_loss(g_ba(fake_b), a) + F.l1_loss(g_ab(fake_a), b))
                + 5.0 * (F.l1_loss(g_ab(b), b) + F.l1_loss(g_ba(a), a)))
      g_opt.zero_grad(set_to_none=True)
      g_loss.backward()
      g_opt.step()
      _requires_grad(True, d_a, d_b)
      d_opt.zero_grad(set_to_none=True)
      d_loss = 0.0
      for d, real, fake, pool in ((d_b, b, fake_b, pool_b), (d_a, a, fake_a, pool_a)):
        loss = 0.5 * (gan(d(real), 1.0) + gan(d(pool.query(fake)), 0.0))
        loss.backward()
        d_loss = d_loss + loss.detach()
      d_opt.step()
      return d_loss, g_loss.detach()

  step.device = torch.device(device)
  return step


class CondBatchNorm(nn.Module):
  """BatchNorm without affine, then per-class gain (from 1) and bias (from 0): pfnet-research/sngan_projection's
  CategoricalConditionalBatchNormalization."""

  def __init__(self, features, num_classes):
    super().__init__()
    self.bn = nn.BatchNorm2d(features, affine=False)
    self.gain, self.bias = nn.Embedding(num_classes, features), nn.Embedding(num_classes, features)
    nn.init.ones_(self.gain.weight), nn.init.zeros_(self.bias.weight)

  def forward(self, x, y):
    return self.bn(x) * self.gain(y)[:, :, None, None] + self.bias(y)[:, :, None, None]


def _sn(module):
  return nn.utils.parametrizations.spectral_norm(module)  # One power iteration per training forward pass.


class CCBatchNorm(nn.Module):
  """BigGAN's conditional BatchNorm from a vector c = [shared class embedding, z chunk] (ajbrock/BigGAN-PyTorch
  layers.py ccbn with G_shared; gan_jax models/resnet.py _Norm "ccbn"): BatchNorm without affine, then gain
  1 + W_g c and bias W_b c, W_g and W_b linear maps without bias, spectrally normalised."""

  def __init__(self, features, cond_dim):
    super().__init__()
    self.bn = nn.BatchNorm2d(features, affine=False)
    self.gain = _sn(nn.Linear(cond_dim, features, bias=False))
    self.bias = _sn(nn.Linear(cond_dim, features, bias=False))

  def forward(self, x, cond):
    return self.bn(x) * (1.0 + self.gain(cond))[:, :, None, None] + self.bias(cond)[:, :, None, None]


def _weight(module):
  """The weight `module` trains: under spectral norm, its parametrization's original."""
  return module.parametrizations.weight.original if nn.utils.parametrize.is_parametrized(module) else module.weight


def glorot_init(module, gain=1.0):
  """SNGAN's init (sngan_projection; gan_jax models/resnet.py "xavier"): Glorot uniform weights times `gain`
  (sqrt(2) in residual branches), zero biases as flax's."""
  nn.init.xavier_uniform_(_weight(module), gain)
  if getattr(module, "bias", None) is not None:
    nn.init.zeros_(module.bias)


def ortho_init(module, gain=1.0):  # pylint: disable=unused-argument  (the same init in every branch)
  """BigGAN's init (BigGAN-PyTorch BigGAN.py init_weights, G_init = D_init = "ortho"; gan_jax "ortho"): orthogonal
  weights (of a conv, over its [out, in * kh * kw] matrix), zero biases as flax's."""
  nn.init.orthogonal_(_weight(module))
  if getattr(module, "bias", None) is not None:
    nn.init.zeros_(module.bias)


def _identity(module):
  return module


class ResGBlock(nn.Module):
  """SNGAN's and BigGAN's up-sampling block (gan_jax models/resnet.py GBlock; sngan_projection
  gen_models/resblocks.py Block; BigGAN-PyTorch layers.py GBlock): norm - ReLU - nearest x2 - conv3x3 - norm - ReLU -
  conv3x3, plus a conv1x1 of the up-sampled input. `norm()` makes a norm called as norm(x, condition); `wrap` puts
  spectral norm on the convolutions (BigGAN) or not (SNGAN)."""

  def __init__(self, features, norm, init=glorot_init, wrap=_identity):
    super().__init__()
    self.b1, self.b2 = norm(), norm()
    self.c1 = wrap(nn.Conv2d(features, features, 3, padding=1))
    self.c2 = wrap(nn.Conv2d(features, features, 3, padding=1))
    self.sc = wrap(nn.Conv2d(features, features, 1))
    for conv, gain in ((self.c1, 2 ** 0.5), (self.c2, 2 ** 0.5), (self.sc, 1.0)):
      init(conv, gain)

  def forward(self, x, condition):
    up = lambda t: F.interpolate(t, scale_factor=2, mode="nearest")
    h = self.c1(up(F.relu(self.b1(x, condition))))
    return self.c2(F.relu(self.b2(h, condition))) + self.sc(up(x))


class SNGANGenerator(nn.Module):
  """Miyato et al. 2018's CIFAR G (pfnet-research/sngan_projection gen_models/resnet_32.py), conditional."""

  def __init__(self, resolution, channels, width, num_classes=10, latent_dim=128):
    super().__init__()
    self.width = width
    self.l1 = nn.Linear(latent_dim, 4 * 4 * width)
    norm = lambda: CondBatchNorm(width, num_classes)
    self.blocks = nn.ModuleList(ResGBlock(width, norm) for _ in range({16: 2, 32: 3}[resolution]))
    self.bn = nn.BatchNorm2d(width)
    self.out = nn.Conv2d(width, channels, 3, padding=1)
    glorot_init(self.l1), glorot_init(self.out)

  def forward(self, z, y):
    x = self.l1(z).view(-1, self.width, 4, 4)
    for block in self.blocks:
      x = block(x, y)
    return torch.tanh(self.out(F.relu(self.bn(x))))


class BigGANGenerator(nn.Module):
  """Brock et al. 2019's G at 32x32 (ajbrock/BigGAN-PyTorch BigGAN.py Generator with G_shared and hier; gan_jax
  models/resnet.py Generator with hierarchical=True): z split into equal chunks, the first to the linear layer, one
  to each block's ccbn with the shared class embedding; SNGAN's block layout; spectral norm on every layer but the
  shared embedding and the last BatchNorm; orthogonal init."""

  def __init__(self, resolution, channels, width, num_classes=10, latent_dim=128, shared_dim=128):
    super().__init__()
    num_blocks = {16: 2, 32: 3}[resolution]
    self.width, self.chunk = width, latent_dim // (num_blocks + 1)
    self.shared = nn.Embedding(num_classes, shared_dim)
    self.linear = _sn(nn.Linear(self.chunk, 4 * 4 * width))
    norm = lambda: CCBatchNorm(width, shared_dim + self.chunk)
    self.blocks = nn.ModuleList(ResGBlock(width, norm, ortho_init, _sn) for _ in range(num_blocks))
    self.bn = nn.BatchNorm2d(width)
    self.out = _sn(nn.Conv2d(width, channels, 3, padding=1))
    for layer in (self.out, *(m for m in self.modules() if isinstance(m, (nn.Linear, nn.Embedding)))):
      ortho_init(layer)  # The shared embedding, the linear layer, ccbn's maps, the output conv: all orthogonal.

  def forward(self, z, y):
    z, *chunks = torch.split(z, self.chunk, dim=1)
    shared = self.shared(y)
    x = self.linear(z).view(-1, self.width, 4, 4)
    for block, chunk in zip(self.blocks, chunks):
      x = block(x, torch.cat([shared, chunk], 1))
    return torch.tanh(self.out(F.relu(self.bn(x))))


class ResDBlock(nn.Module):
  """SNGAN's and BigGAN's D block, spectrally normalised (gan_jax models/resnet.py DBlock; sngan_projection
  dis_models/resblocks.py Block and OptimizedBlock; BigGAN-PyTorch layers.py DBlock, preactivation on all but
  the first)."""

  def __init__(self, c_in, features, downsample, optimized, init=glorot_init):
    super().__init__()
    self.downsample, self.optimized = downsample, optimized
    self.c1, self.c2 = _sn(nn.Conv2d(c_in, features, 3, padding=1)), _sn(nn.Conv2d(features, features, 3, padding=1))
    self.sc = _sn(nn.Conv2d(c_in, features, 1)) if downsample or c_in != features else None
    for conv, gain in ((self.c1, 2 ** 0.5), (self.c2, 2 ** 0.5), (self.sc, 1.0)):
      if conv is not None:
        init(conv, gain)

  def forward(self, x):
    h = self.c2(F.relu(self.c1(x if self.optimized else F.relu(x))))
    h = F.avg_pool2d(h, 2) if self.downsample else h
    if self.optimized:
      return h + self.sc(F.avg_pool2d(x, 2))
    shortcut = x if self.sc is None else self.sc(x)
    return h + (F.avg_pool2d(shortcut, 2) if self.downsample else shortcut)


class SNGANDiscriminator(nn.Module):
  """Miyato et al. 2018's CIFAR D (dis_models/snresnet_32.py) with the projection (Miyato & Koyama 2018). With
  init=ortho_init it is also BigGAN's D at 32x32 (BigGAN-PyTorch BigGAN.py Discriminator, D_arch[32]: the same
  blocks, ReLU and global sum pooling, the linear logit and the projection, all spectrally normalised)."""

  def __init__(self, resolution, channels, width, num_classes=10, init=glorot_init):
    super().__init__()
    downs = {16: (True, False, False), 32: (True, True, False, False)}[resolution]
    self.blocks = nn.ModuleList(ResDBlock(channels if i == 0 else width, width, down, i == 0, init)
                                for i, down in enumerate(downs))
    self.linear, self.embed = _sn(nn.Linear(width, 1)), _sn(nn.Embedding(num_classes, width))
    init(self.linear), init(self.embed)

  def forward(self, x, y):
    for block in self.blocks:
      x = block(x)
    h = torch.sum(F.relu(x), dim=(2, 3))
    return self.linear(h)[:, 0] + torch.sum(self.embed(y) * h, dim=1)


def resnet_networks(model):
  """(G, D) of a ResNet GAN twin (SNGAN_MODELS, BIGGAN_MODELS), freshly initialised on the CPU."""
  if model in SNGAN_MODELS:
    resolution, channels, g_width, d_width = SNGAN_MODELS[model]
    return SNGANGenerator(resolution, channels, g_width), SNGANDiscriminator(resolution, channels, d_width)
  resolution, channels, g_width, d_width = BIGGAN_MODELS[model]
  return (BigGANGenerator(resolution, channels, g_width),
          SNGANDiscriminator(resolution, channels, d_width, init=ortho_init))


@contextlib.contextmanager
def _buffers_kept(module):
  """The block runs `module` in training mode, and its buffers (BatchNorm statistics, spectral norm's u and v) are
  put back after it: gan_jax's step drops what a network's pass updates in its collections where that network
  is not the one being updated (G's pass in D's update, D's in G's: objectives/gan.py d_update, g_objective)."""
  saved = [b.detach().clone() for b in module.buffers()]
  try:
    yield
  finally:
    with torch.no_grad():
      for buffer, value in zip(module.buffers(), saved):
        buffer.copy_(value)


def _add_orthogonal_grad(net, beta, exclude=("shared",)):
  """G's gradient plus beta times that of gan_jax's regularizers.orthogonal, sum ||W W^T * (1 - I)||_F^2 over G's
  weights of 2 or more axes but the shared embedding's (W [outputs, fan_in]): 4 (W W^T * (1 - I)) W, computed in
  closed form as BigGAN-PyTorch's utils.ortho adds it to the gradients (which adds half: gan_jax's docstring)."""
  with torch.no_grad():
    for name, p in net.named_parameters():
      if p.ndim < 2 or any(part in exclude for part in name.split(".")):
        continue
      w = p.reshape(p.shape[0], -1)
      gram = w @ w.T
      gram.fill_diagonal_(0.0)
      p.grad.add_((gram @ w).view_as(p), alpha=4.0 * beta)


# "sngan" / "biggan" -> (D updates per step, G's Adam (learning rate, beta2), D's, G's orthogonal beta, EMA decay,
# EMA start): experiments/resnet_gans.py. Both Adams have beta1 0.
RESNET_STEPS = {"sngan": (5, (2e-4, 0.9), (2e-4, 0.9), 0.0, 0.0, 0),
                "biggan": (2, (1e-4, 0.999), (4e-4, 0.999), 1e-4, 0.9999, 1000)}


def _ema_decay(step, decay, start):
  """gan_jax steps.make_train_step's decay at `step` (from 0): min(decay, (1 + t) / (10 + t)), 0 before `start`."""
  return 0.0 if start and step + 1 < start else min(decay, (1.0 + step) / (10.0 + step))


def make_resnet_gan_step(model, batch=64, device="cpu"):
  """experiments/sngan_*.py's or biggan_*.py's step (objectives/gan.py with the settings of RESNET_STEPS): D updates
  (each on its own real batch and fresh fakes, hinge loss), then a G update on fresh fakes; labels uniform for
  fakes; Adam with beta1 0 for both; BigGAN's orthogonal penalty added to G's gradient; then the EMA of G's
  parameters and buffers. As gan_jax's: one power iteration per D update for both its passes (parametrize.cached),
  G's BatchNorm statistics and spectral-norm vectors from D's updates and D's from G's update dropped, and no
  gradient for D's weights in G's update (BigGAN-PyTorch train_fns.py toggles it off as well). SNGAN's linear
  learning-rate decay is left out (its cost is nil)."""
  resolution, channels = (SNGAN_MODELS.get(model) or BIGGAN_MODELS[model])[:2]
  critic_steps, g_adam, d_adam, g_orthogonal, ema_decay, ema_start = RESNET_STEPS[
      "sngan" if model in SNGAN_MODELS else "biggan"]
  torch.manual_seed(0)
  g, d = (net.to(device) for net in resnet_networks(model))
  ema = {k: v.detach().clone() for k, v in g.state_dict().items()}
  floats = [k for k, v in ema.items() if v.dtype.is_floating_point]
  g_opt = torch.optim.Adam(g.parameters(), lr=g_adam[0], betas=(0.0, g_adam[1]))
  d_opt = torch.optim.Adam(d.parameters(), lr=d_adam[0], betas=(0.0, d_adam[1]))
  reals = torch.rand(critic_steps, batch, channels, resolution, resolution, device=device) * 2 - 1
  real_labels = torch.randint(0, 10, (critic_steps, batch), device=device)
  fake_inputs = lambda: (torch.randn(batch, 128, device=device), torch.randint(0, 10, (batch,), device=device))
  counter = [0]

  def step():
    for real, real_y in zip(reals, real_labels):
      z, y = fake_inputs()
      with torch.no_grad(), _buffers_kept(g):
        fake = g(z, y)
      with nn.utils.parametrize.cached():
        d_loss = F.relu(1.0 - d(real, real_y)).mean() + F.relu(1.0 + d(fake, y)).mean()
      d_opt.zero_grad(set_to_none=True)
      d_loss.backward()
      d_opt.step()
    z, y = fake_inputs()
    _requires_grad(False, d)
    with _buffers_kept(d):
      g_loss = -d(g(z, y), y).mean()
    g_opt.zero_grad(set_to_none=True)
    g_loss.backward()
    _requires_grad(True, d)
    if g_orthogonal:
      _add_orthogonal_grad(g, g_orthogonal)
    g_opt.step()
    decay = _ema_decay(counter[0], ema_decay, ema_start)
    counter[0] += 1
    with torch.no_grad():
      state = g.state_dict()
      torch._foreach_lerp_([ema[k] for k in floats], [state[k] for k in floats], 1.0 - decay)  # As swa_utils.
      for k, v in state.items():
        if not v.dtype.is_floating_point:
          ema[k].copy_(v)
    return d_loss, g_loss

  step.device = device
  return step


def _init(module):  # Radford et al. 2016: N(0, 0.02) weights; BatchNorm scale N(1, 0.02).
  for m in module.modules():
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
      nn.init.normal_(m.weight, 0.0, 0.02)
      if m.bias is not None:
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
      nn.init.normal_(m.weight, 1.0, 0.02)
      nn.init.zeros_(m.bias)


def resolve_device(name):
  """torch.device of --device: "auto" is cuda where torch sees a GPU, else cpu."""
  if name == "auto":
    name = "cuda" if torch.cuda.is_available() else "cpu"
  if name == "cuda" and not torch.cuda.is_available():
    raise ValueError(f"torch {torch.__version__} sees no CUDA device (torch.cuda.is_available() is False)")
  return torch.device(name)


def make_step(batch=64, reuse_fakes=False, model="dcgan28", device="cpu", dtype="float32"):
  """The training step as a closure over fresh networks, optimizers and a fixed real batch on `device`."""
  device = torch.device(device)
  if model in FLOAT32_ONLY and dtype != "float32":
    raise ValueError(float32_only(model))
  if model in TRANSLATION_MODELS:
    return make_translation_step(model, batch, device)
  if model in RESNET_MODELS:
    return make_resnet_gan_step(model, batch, device)
  if model in STYLEGAN2_MODELS:
    return torch_twin_stylegan2.make_step(model, batch, device)
  resolution, channels, g_width, d_width, d_batch_norm = MODELS[model]
  if device.type == "cuda":
    torch.backends.cuda.matmul.allow_tf32 = True  # As XLA's default precision (convolutions: cuDNN's default).
  torch.manual_seed(0)
  g = Generator(resolution, channels, g_width).to(device)
  d = Discriminator(resolution, channels, d_width, d_batch_norm).to(device)
  _init(g), _init(d)
  ema = {k: v.detach().clone() for k, v in g.state_dict().items()}
  g_opt = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
  d_opt = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
  real = torch.rand(batch, channels, resolution, resolution, device=device) * 2 - 1
  ones, zeros = torch.ones(batch, device=device), torch.zeros(batch, device=device)
  autocast = lambda: torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bfloat16")
  latents = lambda: torch.randn(batch, LATENT_DIM, device=device)

  def step():
    with autocast():
      if reuse_fakes:
        fake = g(latents())
      else:
        with torch.no_grad():
          fake = g(latents())
      d_loss = (F.binary_cross_entropy_with_logits(d(real).float(), ones)
                + F.binary_cross_entropy_with_logits(d(fake.detach()).float(), zeros))
    d_opt.zero_grad(set_to_none=True)
    d_loss.backward()
    d_opt.step()
    with autocast():
      g_fake = fake if reuse_fakes else g(latents())
      g_loss = F.binary_cross_entropy_with_logits(d(g_fake).float(), ones)
    g_opt.zero_grad(set_to_none=True)
    g_loss.backward()
    g_opt.step()
    with torch.no_grad():
      for k, v in g.state_dict().items():
        if v.dtype.is_floating_point:
          ema[k].mul_(0.999).add_(v, alpha=0.001)
    return d_loss, g_loss

  step.device = device
  return step


def _synchronize(step):
  if getattr(step, "device", torch.device("cpu")).type == "cuda":
    torch.cuda.synchronize(step.device)


def time_window(step, steps):
  """Seconds per step over one window of `steps` steps (the GPU's queue drained at both ends)."""
  _synchronize(step)
  start = time.perf_counter()
  for _ in range(steps):
    step()
  _synchronize(step)
  return (time.perf_counter() - start) / steps


def device_kind(device):
  return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def installed_version(name):
  """A package's installed version without importing it (the JAX beside this torch, for the GPU check's table)."""
  try:
    return importlib.metadata.version(name)
  except importlib.metadata.PackageNotFoundError:
    return None


def usage_error(message):
  print(f"gan_jax: error: {message}", file=sys.stderr)
  sys.exit(2)


def check_name(model, dtype, reuse_fakes):
  return f"torch_twin:{model}:{dtype}" + (":reuse_fakes" if reuse_fakes else "")


def twin_line(model, dtype, device, args):
  """One model's JSON line: its step timed over args.windows windows of args.steps steps after a warm-up."""
  batch = args.batch or (16 if model in TRANSLATION_MODELS else 32 if model in STYLEGAN2_MODELS else 64)
  step = make_step(batch, args.reuse_fakes, model, device, dtype)
  time_window(step, args.warmup)
  times = [time_window(step, args.steps) for _ in range(args.windows)]
  seconds = float(np.median(times))
  return {"check": check_name(model, dtype, args.reuse_fakes), "status": "ok",
          "framework": f"torch {torch.__version__}", "model": model, "batch": batch,
          "reuse_fakes": args.reuse_fakes, "dtype": dtype, "steps": args.steps, "windows": args.windows,
          "ms_per_step": round(seconds * 1e3, 3), "ms_range": [round(min(times) * 1e3, 3), round(max(times) * 1e3, 3)],
          "images_per_s": round(batch / seconds, 1), "threads": torch.get_num_threads(),
          "tf32": device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32, **device_fields(device)}


def device_fields(device):
  return {"device_kind": device_kind(device), "platform": device.type, "torch": torch.__version__,
          "jax": installed_version("jax"), "device": f"{device.type}:{device_kind(device)}, {os.cpu_count()} CPUs"}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", default="dcgan28",
                      help=f"One or several (comma-separated) of {', '.join(ALL_MODELS)}.")
  parser.add_argument("--batch", type=int, default=None,
                      help="Default: 64 (DCGAN and ResNet models), 16 (translation), 32 (StyleGAN2).")
  parser.add_argument("--steps", type=int, default=20)
  parser.add_argument("--windows", type=int, default=5)
  parser.add_argument("--warmup", type=int, default=3, help="Steps run before the windows.")
  parser.add_argument("--reuse_fakes", action="store_true")
  parser.add_argument("--device", default="cpu", help="cpu, cuda, or auto (cuda where available).")
  parser.add_argument("--dtype", default="float32", help="float32 and/or bfloat16 (autocast), comma-separated.")
  args = parser.parse_args()
  models, dtypes = args.model.split(","), args.dtype.split(",")
  for flag, values, allowed in (("model", models, ALL_MODELS), ("device", [args.device], ("cpu", "cuda", "auto")),
                                ("dtype", dtypes, ("float32", "bfloat16"))):
    for value in values:
      if value not in allowed:
        usage_error(f"unknown --{flag} {value!r}; allowed: {', '.join(allowed)}")
  for flag in ("batch", "steps", "windows", "warmup"):
    if getattr(args, flag) is not None and getattr(args, flag) < 1:
      usage_error(f"--{flag} must be a positive integer, got {getattr(args, flag)}")
  try:
    device = resolve_device(args.device)
  except ValueError as e:
    usage_error(f"--device=cuda: {e}")
  runs = [(model, dtype) for dtype in dtypes for model in models]
  failed = 0
  for model, dtype in runs:
    if model in FLOAT32_ONLY and dtype != "float32":
      print(json.dumps({"check": check_name(model, dtype, args.reuse_fakes), "status": "skipped", "model": model,
                        "dtype": dtype, "reason": float32_only(model),
                        **device_fields(device)}), flush=True)
      continue
    if len(runs) == 1:
      line = twin_line(model, dtype, device, args)
    else:
      try:
        line = twin_line(model, dtype, device, args)
      except Exception as e:  # pylint: disable=broad-except  (one run's failure is its line; the others go on)
        traceback.print_exc()
        failed += 1
        line = {"check": check_name(model, dtype, args.reuse_fakes), "status": "failed", "model": model, "dtype": dtype,
                "error": f"{type(e).__name__}: {e}"[:500], **device_fields(device)}
    print(json.dumps(line), flush=True)
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main())
