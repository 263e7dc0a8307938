"""StyleGAN2's training step in plain PyTorch: the twin of benchmark.py's stylegan2_16 and stylegan2_32.

Used by scripts/torch_twin.py (--model=stylegan2_16,stylegan2_32) and benchmark.py --vs_torch; it needs torch only.
The networks, losses and step are NVlabs/stylegan2-ada-pytorch's (training/networks.py, training/loss.py
StyleGAN2Loss, training/training_loop.py), written out here with the code paths that repository takes on a CPU in
float32: upfirdn2d's reference implementation (torch_utils/ops/upfirdn2d.py _upfirdn2d_ref: zero insertion, padding
and a depthwise convolution with the 4x4 filter [1, 3, 3, 1] x [1, 3, 3, 1]), conv2d_resample's order of
operations (a transposed convolution then the filter to up-sample, the filter then a strided convolution to
down-sample), and the modulated convolution as training runs it (fused_modconv off: activations scaled by the
styles, one shared convolution, outputs scaled by the demodulation coefficients, which the authors compute from the
per-sample weights [B, O, I, k, k]). float32 throughout, as gan_jax's StyleGAN2 (the authors' configs run the top
four resolutions in float16 on a GPU).

The models are experiments/stylegan2_digits.py's (stylegan2_16: 16x16x1, 64 channels at every resolution) and
stylegan2_mnist.py's (stylegan2_32: 32x32x1, 128 channels): z = w = 128, 2 mapping layers (learning-rate multiplier
0.01), minibatch std over groups of 4, the skip generator and residual discriminator. The step is the training
loop's phases in its order: Gmain, Greg (path length, weight 2, on half the batch, every 4 steps), Dmain, Dreg (R1,
gamma 0.0002 R^2 / batch, every 16 steps), each its optimizer's update with the gradients' NaNs zeroed; style mixing
0.9; Adam 0.0025 (0, 0.99), eps 1e-8, with the lazy-regularisation correction (App. B of Karras et al. 2020); then
the EMA of G by its half-life of 10 kimg with ramp-up 0.05. Batch 32, as the experiments'; no augmentation.
"""
import copy
import math

import torch
from torch import nn
from torch.nn import functional as F

# name -> (resolution, image channels, feature channels at every resolution): benchmark.py's models of the names.
STYLEGAN2_MODELS = {"stylegan2_16": (16, 1, 64), "stylegan2_32": (32, 1, 128)}
Z_DIM = W_DIM = 128
MAPPING_LAYERS = 2
SQRT2 = math.sqrt(2.0)
# Training (experiments/stylegan2.py, the ADA code's 'auto' config): interval k of each lazy phase, Adam's settings.
PL_EVERY, R1_EVERY, PL_WEIGHT, PL_DECAY, PL_BATCH_SHRINK, STYLE_MIXING = 4, 16, 2.0, 0.01, 2, 0.9
LEARNING_RATE, BETAS, EMA_KIMG, EMA_RAMPUP = 0.0025, (0.0, 0.99), 10.0, 0.05


def setup_filter(taps=(1.0, 3.0, 3.0, 1.0)):
  """upfirdn2d.setup_filter of 4 taps: not separable (fewer than 8), so their outer product, normalised to sum 1."""
  f = torch.as_tensor(taps, dtype=torch.float32)
  f = torch.outer(f, f)
  return f / f.sum()


def upfirdn2d(x, f, up=1, down=1, padding=(0, 0), gain=1.0):
  """_upfirdn2d_ref, NCHW, the same padding (before, after) on both axes (negative crops)."""
  b, c, h, w = x.shape
  p0, p1 = padding
  if up > 1:
    x = F.pad(x.reshape(b, c, h, 1, w, 1), [0, up - 1, 0, 0, 0, up - 1]).reshape(b, c, h * up, w * up)
  x = F.pad(x, [max(p0, 0), max(p1, 0)] * 2)
  x = x[:, :, max(-p0, 0): x.shape[2] - max(-p1, 0), max(-p0, 0): x.shape[3] - max(-p1, 0)]
  f = (f * gain).flip([0, 1]).to(x.dtype)
  x = F.conv2d(x, f[None, None].repeat(c, 1, 1, 1), groups=c)
  return x[:, :, ::down, ::down]


def conv2d_resample(x, w, f, up=1, down=1, padding=0):
  """conv2d_resample for a square kernel and the 4-tap filter: the paddings its code derives, then its order of
  operations."""
  k = w.shape[2]
  p0 = p1 = padding
  if up > 1:
    p0, p1 = p0 + 2, p1 + 1       # (fw + up - 1) // 2, (fw - up) // 2
  if down > 1:
    p0, p1 = p0 + 1, p1 + 1       # (fw - down + 1) // 2, (fw - down) // 2
  if down > 1:
    if k == 1:
      return F.conv2d(upfirdn2d(x, f, down=down, padding=(p0, p1)), w)
    return F.conv2d(upfirdn2d(x, f, padding=(p0, p1)), w, stride=down)
  if up > 1:
    p0, p1 = p0 - (k - 1), p1 - (k - up)
    pt = max(min(-p0, -p1), 0)
    x = F.conv_transpose2d(x, w.transpose(0, 1), stride=up, padding=pt)
    return upfirdn2d(x, f, padding=(p0 + pt, p1 + pt), gain=up ** 2)
  return F.conv2d(x, w, padding=p0)


def lrelu(x, bias, gain=SQRT2):
  """bias_act's reference path, activation 'lrelu' (slope 0.2) times its gain."""
  return F.leaky_relu(x + bias.reshape(1, -1, *([1] * (x.ndim - 2))), 0.2) * gain


class FullyConnected(nn.Module):
  """FullyConnectedLayer: weight N(0, 1 / lr_mul) times lr_mul / sqrt(in) at runtime, bias times lr_mul."""

  def __init__(self, fan_in, features, lr_mul=1.0, bias_init=0.0, activation=False):
    super().__init__()
    self.weight = nn.Parameter(torch.randn(features, fan_in) / lr_mul)
    self.bias = nn.Parameter(torch.full([features], float(bias_init)))
    self.weight_gain, self.bias_gain, self.activation = lr_mul / math.sqrt(fan_in), lr_mul, activation

  def forward(self, x):
    w, b = self.weight * self.weight_gain, self.bias * self.bias_gain
    if not self.activation:
      return torch.addmm(b.unsqueeze(0), x, w.t())
    return lrelu(x.matmul(w.t()), b)


class Conv(nn.Module):
  """Conv2dLayer: weight N(0, 1) times 1 / sqrt(in k k) at runtime, optional down-sampling, bias, leaky ReLU and
  an output gain (the residual blocks' sqrt(0.5))."""

  def __init__(self, cin, cout, kernel_size, activation=True, bias=True, down=1):
    super().__init__()
    self.weight = nn.Parameter(torch.randn(cout, cin, kernel_size, kernel_size))
    self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
    self.register_buffer("f", setup_filter())
    self.weight_gain, self.activation, self.down = 1 / math.sqrt(cin * kernel_size ** 2), activation, down

  def forward(self, x, gain=1.0):
    x = conv2d_resample(x, self.weight * self.weight_gain, self.f, down=self.down, padding=self.weight.shape[2] // 2)
    if self.activation:
      return lrelu(x, self.bias, SQRT2 * gain)
    x = x if self.bias is None else x + self.bias.reshape(1, -1, 1, 1)
    return x * gain if gain != 1 else x


def modulated_conv2d(x, weight, styles, f, noise=None, up=1, padding=0, demodulate=True):
  """networks.modulated_conv2d with fused_modconv=False, as in training."""
  batch = x.shape[0]
  dcoefs = None
  if demodulate:
    w = weight.unsqueeze(0) * styles.reshape(batch, 1, -1, 1, 1)      # [N, O, I, k, k]
    dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()             # [N, O]
  x = x * styles.reshape(batch, -1, 1, 1)
  x = conv2d_resample(x, weight, f, up=up, padding=padding)
  if demodulate and noise is not None:
    return torch.addcmul(noise, x, dcoefs.reshape(batch, -1, 1, 1))    # fma.fma(x, dcoefs, noise)
  if demodulate:
    return x * dcoefs.reshape(batch, -1, 1, 1)
  return x if noise is None else x.add_(noise)


class SynthesisLayer(nn.Module):
  """SynthesisLayer: styles from w (bias init 1), the modulated 3x3 convolution, random noise times a learned
  strength, bias and leaky ReLU."""

  def __init__(self, cin, cout, resolution, up=1):
    super().__init__()
    self.affine = FullyConnected(W_DIM, cin, bias_init=1.0)
    self.weight = nn.Parameter(torch.randn(cout, cin, 3, 3))
    self.noise_strength = nn.Parameter(torch.zeros([]))
    self.bias = nn.Parameter(torch.zeros(cout))
    self.register_buffer("noise_const", torch.randn(resolution, resolution))
    self.register_buffer("f", setup_filter())
    self.resolution, self.up = resolution, up

  def forward(self, x, w):
    styles = self.affine(w)
    noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device) * self.noise_strength
    x = modulated_conv2d(x, self.weight, styles, self.f, noise=noise, up=self.up, padding=1)
    return lrelu(x, self.bias)


class ToRGB(nn.Module):
  """ToRGBLayer: a modulated 1x1 convolution without demodulation (styles times 1 / sqrt(in)), plus bias."""

  def __init__(self, cin, channels):
    super().__init__()
    self.affine = FullyConnected(W_DIM, cin, bias_init=1.0)
    self.weight = nn.Parameter(torch.randn(channels, cin, 1, 1))
    self.bias = nn.Parameter(torch.zeros(channels))
    self.register_buffer("f", setup_filter())
    self.weight_gain = 1 / math.sqrt(cin)

  def forward(self, x, w):
    x = modulated_conv2d(x, self.weight, self.affine(w) * self.weight_gain, self.f, demodulate=False)
    return x + self.bias.reshape(1, -1, 1, 1)


class Mapping(nn.Module):
  """MappingNetwork without labels: z normalised to unit second moment, leaky-ReLU layers at learning-rate
  multiplier 0.01, the tracked w_avg (beta 0.995), w broadcast to every synthesis input."""

  def __init__(self, num_ws):
    super().__init__()
    self.fcs = nn.ModuleList([FullyConnected(Z_DIM if i == 0 else W_DIM, W_DIM, lr_mul=0.01, activation=True)
                              for i in range(MAPPING_LAYERS)])
    self.register_buffer("w_avg", torch.zeros(W_DIM))
    self.num_ws = num_ws

  def forward(self, z, skip_w_avg_update=False):
    x = z * (z.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()
    for fc in self.fcs:
      x = fc(x)
    if self.training and not skip_w_avg_update:
      self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, 0.995))
    return x.unsqueeze(1).repeat(1, self.num_ws, 1)


class Synthesis(nn.Module):
  """SynthesisNetwork, architecture 'skip': the learned 4x4 constant, then per resolution an up-sampling and a
  plain modulated convolution and a toRGB whose image is added to the up-sampled image so far."""

  def __init__(self, resolution, channels, width):
    super().__init__()
    self.const = nn.Parameter(torch.randn(width, 4, 4))
    self.layers, self.torgbs = nn.ModuleList(), nn.ModuleList()
    for level in range(2, int(math.log2(resolution)) + 1):
      r = 2 ** level
      if r > 4:
        self.layers.append(SynthesisLayer(width, width, r, up=2))
      self.layers.append(SynthesisLayer(width, width, r))
      self.torgbs.append(ToRGB(width, channels))
    self.register_buffer("f", setup_filter())

  def forward(self, ws):
    x = self.const.unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)
    img, index = None, 0
    for level, torgb in enumerate(self.torgbs):
      for _ in range(1 if level == 0 else 2):
        x = self.layers[index](x, ws[:, index])
        index += 1
      y = torgb(x, ws[:, index])            # The next block's first w (SynthesisNetwork's overlapping w slices).
      img = y if img is None else upfirdn2d(img, self.f, up=2, padding=(2, 1), gain=4.0).add_(y)
    return img


class Generator(nn.Module):

  def __init__(self, resolution, channels, width):
    super().__init__()
    self.mapping = Mapping(2 * int(math.log2(resolution)) - 2)
    self.synthesis = Synthesis(resolution, channels, width)


class Discriminator(nn.Module):
  """Discriminator, architecture 'resnet': fromRGB, residual blocks down to 4x4 (both branches times sqrt(0.5)),
  then the epilogue: minibatch std (groups of 4, one feature), conv 3x3, dense, output."""

  def __init__(self, resolution, channels, width):
    super().__init__()
    self.fromrgb = Conv(channels, width, 1)
    self.blocks = nn.ModuleList()
    for _ in range(int(math.log2(resolution)) - 2):
      self.blocks.append(nn.ModuleDict({"conv0": Conv(width, width, 3), "conv1": Conv(width, width, 3, down=2),
                                        "skip": Conv(width, width, 1, activation=False, bias=False, down=2)}))
    self.conv = Conv(width + 1, width, 3)
    self.fc = FullyConnected(width * 16, width, activation=True)
    self.out = FullyConnected(width, 1)

  def forward(self, img):
    x = self.fromrgb(img)
    for block in self.blocks:
      y = block["skip"](x, gain=math.sqrt(0.5))
      x = block["conv1"](block["conv0"](x), gain=math.sqrt(0.5))
      x = y.add_(x)
    n, c, h, w = x.shape
    g = min(4, n)
    y = x.reshape(g, -1, 1, c, h, w)
    y = ((y - y.mean(dim=0)).square().mean(dim=0) + 1e-8).sqrt().mean(dim=[2, 3, 4]).reshape(-1, 1, 1, 1)
    x = torch.cat([x, y.repeat(g, 1, h, w)], dim=1)
    return self.out(self.fc(self.conv(x).flatten(1)))


def make_step(model, batch=32, device="cpu"):
  """The step of training_loop.py as a closure over fresh networks, optimizers, G's EMA and a fixed real batch."""
  resolution, channels, width = STYLEGAN2_MODELS[model]
  torch.manual_seed(0)
  g = Generator(resolution, channels, width).to(device).train().requires_grad_(False)
  d = Discriminator(resolution, channels, width).to(device).train().requires_grad_(False)
  g_ema = copy.deepcopy(g).eval()

  def adam(module, interval):  # training_loop.py's lazy-regularisation correction, mb_ratio = k / (k + 1).
    ratio = interval / (interval + 1)
    return torch.optim.Adam(module.parameters(), lr=LEARNING_RATE * ratio, betas=[b ** ratio for b in BETAS],
                            eps=1e-8)

  g_opt, d_opt = adam(g, PL_EVERY), adam(d, R1_EVERY)
  r1_gamma = 0.0002 * resolution ** 2 / batch
  real = torch.rand(batch, channels, resolution, resolution, device=device) * 2 - 1
  pl_mean = torch.zeros([], device=device)
  counter = [0]

  def run_g(z):
    ws = g.mapping(z)
    cutoff = torch.empty([], dtype=torch.int64, device=device).random_(1, ws.shape[1])
    cutoff = torch.where(torch.rand([], device=device) < STYLE_MIXING, cutoff, torch.full_like(cutoff, ws.shape[1]))
    ws[:, cutoff:] = g.mapping(torch.randn_like(z), skip_w_avg_update=True)[:, cutoff:]
    return g.synthesis(ws), ws

  def latents(num=batch):
    return torch.randn(num, Z_DIM, device=device)

  def g_main():
    torch.nn.functional.softplus(-d(run_g(latents())[0])).mean().backward()

  def g_reg():
    img, ws = run_g(latents(batch // PL_BATCH_SHRINK))
    pl_noise = torch.randn_like(img) / math.sqrt(img.shape[2] * img.shape[3])
    pl_grads = torch.autograd.grad(outputs=[(img * pl_noise).sum()], inputs=[ws], create_graph=True)[0]
    pl_lengths = pl_grads.square().sum(2).mean(1).sqrt()
    mean = pl_mean.lerp(pl_lengths.mean(), PL_DECAY)
    pl_mean.copy_(mean.detach())
    (img[:, 0, 0, 0] * 0 + (pl_lengths - mean).square() * PL_WEIGHT).mean().mul(PL_EVERY).backward()

  def d_main():
    torch.nn.functional.softplus(d(run_g(latents())[0])).mean().backward()
    real_logits = d(real.detach())
    (real_logits * 0 + torch.nn.functional.softplus(-real_logits)).mean().backward()

  def d_reg():
    real_tmp = real.detach().requires_grad_(True)
    real_logits = d(real_tmp)
    r1_grads = torch.autograd.grad(outputs=[real_logits.sum()], inputs=[real_tmp], create_graph=True)[0]
    (real_logits * 0 + r1_grads.square().sum([1, 2, 3]) * (r1_gamma / 2)).mean().mul(R1_EVERY).backward()

  phases = ((g, g_opt, g_main, 1), (g, g_opt, g_reg, PL_EVERY), (d, d_opt, d_main, 1), (d, d_opt, d_reg, R1_EVERY))

  def step():
    for module, opt, accumulate, interval in phases:
      if counter[0] % interval:
        continue
      step.phase_runs[accumulate.__name__] += 1
      module.requires_grad_(True)
      opt.zero_grad(set_to_none=True)
      accumulate()
      module.requires_grad_(False)
      for param in module.parameters():
        if param.grad is not None:
          torch.nan_to_num(param.grad, nan=0, posinf=1e5, neginf=-1e5, out=param.grad)
      opt.step()
    counter[0] += 1
    with torch.no_grad():
      ema_nimg = min(EMA_KIMG * 1000, counter[0] * batch * EMA_RAMPUP)
      ema_beta = 0.5 ** (batch / max(ema_nimg, 1e-8))
      for p_ema, p in zip(g_ema.parameters(), g.parameters()):
        p_ema.copy_(p.lerp(p_ema, ema_beta))
      for b_ema, b in zip(g_ema.buffers(), g.buffers()):
        b_ema.copy_(b)

  step.device = torch.device(device)
  step.g, step.d, step.g_ema = g, d, g_ema
  step.phase_runs = {accumulate.__name__: 0 for _, _, accumulate, _ in phases}
  return step
