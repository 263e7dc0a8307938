"""StyleGAN2 (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN"), as its authors' ADA code
builds it (NVlabs/stylegan2-ada-pytorch, training/networks.py; cited below by class): a mapping network z -> w, a
synthesis network of modulated convolutions from a learned 4x4 constant with a skip-connection (toRGB at every
resolution) output, and a residual discriminator with minibatch standard deviation. Equalized learning rate
everywhere: parameters are N(0, 1) (N(0, 1 / lr_mul) in the mapping network) and scaled at runtime by
lr_mul / sqrt(fan_in) (Karras et al. 2018, Sec. 4.1).

Up- and down-sampling are the authors' FIR filter [1, 3, 3, 1] (torch_utils/ops/upfirdn2d.py, conv2d_resample.py),
with their paddings, so the linear maps equal theirs: an up-sampling 3x3 convolution is zero insertion, padding
(3, 2), the filter with gain 4 and a valid 3x3 convolution; a down-sampling one is the filter with padding (2, 2)
and a valid 3x3 convolution of stride 2.

Images are NHWC in [-1, 1], kernels HWIO. The generator is `G(z, train=..., labels=...)` as every model here;
`G.apply(v, z, labels, method="mapping")` and `G.apply(v, ws, method="synthesis")` are the two halves (the
objective's style mixing and path-length regulariser, and the latent tools in W).
"""
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.errors import UserError
from gan_jax.models import GANModels, check_num_classes, check_positive_ints, layers

SQRT2 = math.sqrt(2.0)
FIR = (1.0, 3.0, 3.0, 1.0)   # upfirdn2d.setup_filter([1, 3, 3, 1]): outer product, normalised to sum 1.
W_AVG = "w_avg"             # The collection holding the tracked mean of w (truncation's centre).


def lrelu(x, gain=SQRT2):
  """bias_act's 'lrelu': leaky ReLU 0.2 times its gain sqrt(2), which keeps the signal's magnitude."""
  return jax.nn.leaky_relu(x, 0.2) * gain


def _fir_1d(x, axis: int, up: int, pad, gain: float, taps=FIR):
  """One axis of upfirdn2d: zero insertion by `up`, padding `pad` (negative crops), then the filter `taps`
  normalised to sum 1, times `gain`, correlated (valid) as shifted, weighted slices (the filter is separable: the 2D
  one is the outer product of two)."""
  if up > 1:
    x = jnp.stack([x] + [jnp.zeros_like(x)] * (up - 1), axis=axis + 1)
    shape = list(x.shape)
    x = x.reshape(shape[:axis] + [shape[axis] * up] + shape[axis + 2:])
  widths = [(0, 0, 0)] * x.ndim
  widths[axis] = (int(pad[0]), int(pad[1]), 0)
  x = jax.lax.pad(x, jnp.zeros((), x.dtype), widths)
  taps = np.asarray(taps, np.float64) / np.sum(taps) * gain
  n = x.shape[axis] - len(taps) + 1
  return sum(float(t) * jax.lax.slice_in_dim(x, i, i + n, axis=axis) for i, t in enumerate(taps))


def upfirdn2d(x, up: int = 1, down: int = 1, pad=(0, 0), gain: float = 1.0, taps=FIR):
  """upfirdn2d (torch_utils/ops/upfirdn2d.py), NHWC: zero insertion by `up` (each pixel followed by up - 1 zeros),
  padding pad = (before, after) on both spatial axes (negative crops), the separable filter `taps` (the
  [1, 3, 3, 1] of G and D by default) times `gain` (valid), then every `down`-th pixel. `taps` are correlated, the
  authors' flip_filter=True; for their default convolution pass them reversed (the same for a symmetric filter).
  Run as shifted slices along each axis: XLA's CPU backend runs the same filter as a depthwise (grouped)
  convolution 12 times slower, with its gradient."""
  axis_gain = math.sqrt(gain)
  y = _fir_1d(_fir_1d(x, 1, up, pad, axis_gain, taps), 2, up, pad, axis_gain, taps)
  return y[:, ::down, ::down] if down > 1 else y


def upsample2d(x):
  """upfirdn2d.upsample2d: [B, H, W, C] -> [B, 2H, 2W, C], padding ((4 + 2 - 1) // 2, (4 - 2) // 2), gain 4."""
  return upfirdn2d(x, up=2, pad=(2, 1), gain=4.0)


def downsample2d(x):
  """upfirdn2d.downsample2d: [B, H, W, C] -> [B, H/2, W/2, C], padding ((4 - 2 + 1) // 2, (4 - 2) // 2)."""
  return upfirdn2d(x, down=2, pad=(1, 1))


def _conv(x, w, stride=1, padding="SAME"):
  return jax.lax.conv_general_dilated(x, w.astype(x.dtype), (stride, stride), padding,
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


def conv2d_resample(x, w, up: bool = False, down: bool = False):
  """conv2d_resample (torch_utils/ops/conv2d_resample.py) for an odd square kernel w [k, k, in, out] with padding
  k // 2 (k <= 3 with `up`), as one linear map: with `up` the zero-inserted input padded (k // 2 + 2, k // 2 + 1),
  filtered (gain 4) and convolved (valid); with `down` filtered with padding (k // 2 + 1, k // 2 + 1) before a valid convolution
  of stride 2 (1x1 kernels: the filter's own down-sampling, then the 1x1 convolution)."""
  p = w.shape[0] // 2
  if up:
    # The same map with the convolution at the input's resolution: a transposed convolution of stride 2 ('VALID':
    # the zero-inserted input padded k - 1 = 2p), then the filter with the rest of the padding, 2 - p (the
    # authors' order).
    return upfirdn2d(layers.conv_transpose(x, w.astype(x.dtype), (2, 2), "VALID"), pad=(2 - p, 2 - p), gain=4.0)
  if down:
    if w.shape[0] == 1:
      return _conv(downsample2d(x), w, padding="VALID")
    return _conv(upfirdn2d(x, pad=(p + 1, p + 1)), w, stride=2, padding="VALID")
  return _conv(x, w, padding=[(p, p)] * 2)


class EqDense(nn.Module):
  """FullyConnectedLayer: weight N(0, 1 / lr_mul) scaled by lr_mul / sqrt(in), bias init `bias_init` stored
  divided by lr_mul (so its runtime value is bias_init) and scaled by lr_mul; optional leaky ReLU."""
  features: int
  lr_mul: float = 1.0
  bias_init: float = 0.0
  activation: bool = False
  use_bias: bool = True

  @nn.compact
  def __call__(self, x):
    fan_in = x.shape[-1]
    w = self.param("kernel", lambda k, s: jax.random.normal(k, s) / self.lr_mul, (fan_in, self.features))
    y = x @ (w * (self.lr_mul / math.sqrt(fan_in))).astype(x.dtype)
    if self.use_bias:
      b = self.param("bias", lambda k, s: jnp.full(s, self.bias_init / self.lr_mul, jnp.float32), (self.features,))
      y = y + b * self.lr_mul
    return lrelu(y) if self.activation else y


class EqConv(nn.Module):
  """Conv2dLayer: a k x k convolution with weight N(0, 1) scaled by 1 / sqrt(in * k * k), optional FIR up/down
  sampling, bias, leaky ReLU, and an output gain (the residual blocks' sqrt(0.5))."""
  features: int
  kernel_size: int = 3
  down: bool = False
  activation: bool = True
  use_bias: bool = True
  gain: float = 1.0

  @nn.compact
  def __call__(self, x):
    k, fan_in = self.kernel_size, x.shape[-1] * self.kernel_size ** 2
    w = self.param("kernel", nn.initializers.normal(1.0), (k, k, x.shape[-1], self.features))
    y = conv2d_resample(x, w / math.sqrt(fan_in), down=self.down)
    if self.use_bias:
      y = y + self.param("bias", nn.initializers.zeros, (self.features,))
    return (lrelu(y, SQRT2 * self.gain) if self.activation else y * self.gain)


def modulated_conv2d(x, weight, styles, demodulate: bool = True, up: bool = False):
  """modulated_conv2d, the fast form its authors train with ('fused_modconv' off): the activations are scaled by the
  styles, one shared convolution runs, and the outputs are scaled by the demodulation coefficients
  d[b, o] = 1 / sqrt(sum_{i, kh, kw} (w[kh, kw, i, o] s[b, i])^2 + 1e-8) (Karras et al. 2020, Eq. 1-3).
  x [B, H, W, I], weight [k, k, I, O] (already scaled), styles [B, I] -> [B, H', W', O]."""
  y = conv2d_resample(x * styles[:, None, None, :].astype(x.dtype), weight, up=up)
  if demodulate:
    dcoefs = jax.lax.rsqrt(jnp.einsum("hwio,bi->bo", jnp.square(weight), jnp.square(styles)) + 1e-8)
    y = y * dcoefs[:, None, None, :].astype(y.dtype)
  return y


def modulated_conv2d_grouped(x, weight, styles, demodulate: bool = True, up: bool = False):
  """The same map with each sample's own modulated (and demodulated) weight, the definition (and the authors'
  'fused_modconv' grouped convolution): the tests check the fast form against it."""
  def one(x1, s1):
    w = weight * s1[None, None, :, None]
    if demodulate:
      w = w * jax.lax.rsqrt(jnp.sum(jnp.square(w), axis=(0, 1, 2)) + 1e-8)
    return conv2d_resample(x1[None], w, up=up)[0]
  return jax.vmap(one)(x, styles)


class SynthesisLayer(nn.Module):
  """SynthesisLayer: affine w -> styles (bias init 1), a modulated 3x3 convolution (up-sampling or not), per-pixel
  noise times a learned strength (init 0), bias and leaky ReLU. noise: 'random' (rng stream 'noise'), 'const'
  (a fixed draw per layer, as the authors' noise_const buffers), 'none', or an array [B, R, R, 1] (the projector's
  optimised noise, as projector.py sets the noise_const buffers)."""
  features: int
  resolution: int
  up: bool = False
  layer_index: int = 0

  @nn.compact
  def __call__(self, x, w, noise: str):
    fan_in = x.shape[-1] * 9
    styles = EqDense(x.shape[-1], bias_init=1.0, name="affine")(w)
    weight = self.param("kernel", nn.initializers.normal(1.0), (3, 3, x.shape[-1], self.features))
    x = modulated_conv2d(x, weight / math.sqrt(fan_in), styles, up=self.up)
    strength = self.param("noise_strength", nn.initializers.zeros, ())
    shape = (x.shape[0], self.resolution, self.resolution, 1)
    if not isinstance(noise, str):
      x = x + noise.astype(x.dtype) * strength
    elif noise == "random":
      x = x + jax.random.normal(self.make_rng("noise"), shape, x.dtype) * strength
    elif noise == "const":
      fixed = jax.random.normal(jax.random.fold_in(jax.random.PRNGKey(0x5EED), self.layer_index), shape[1:], x.dtype)
      x = x + fixed[None] * strength
    x = x + self.param("bias", nn.initializers.zeros, (self.features,))
    return lrelu(x)


class ToRGB(nn.Module):
  """ToRGBLayer: a modulated 1x1 convolution without demodulation (styles times 1 / sqrt(in)), plus bias."""
  channels: int

  @nn.compact
  def __call__(self, x, w):
    styles = EqDense(x.shape[-1], bias_init=1.0, name="affine")(w) / math.sqrt(x.shape[-1])
    weight = self.param("kernel", nn.initializers.normal(1.0), (1, 1, x.shape[-1], self.channels))
    y = modulated_conv2d(x, weight, styles, demodulate=False)
    return y + self.param("bias", nn.initializers.zeros, (self.channels,))


def channels_at(resolution: int, channel_base: int, channel_max: int) -> int:
  """channels_dict of SynthesisNetwork and Discriminator: min(channel_base // resolution, channel_max)."""
  return min(channel_base // resolution, channel_max)


def num_ws(resolution: int) -> int:
  """w vectors the synthesis network takes: one per convolution plus the last toRGB (2 log2(R) - 2: 8 at 32)."""
  return 2 * int(math.log2(resolution)) - 2


def noise_resolutions(resolution: int) -> tuple:
  """The resolution of each synthesis convolution's noise input, in order: 4, then two per block from 8 on."""
  return (4,) + tuple(2 ** level for level in range(3, int(math.log2(resolution)) + 1) for _ in range(2))


def normalize_2nd_moment(x, eps=1e-8):
  return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), axis=-1, keepdims=True) + eps)


class Generator(nn.Module):
  """Generator = MappingNetwork + SynthesisNetwork (architecture 'skip')."""
  resolution: int
  channels: int
  z_dim: int = 512
  w_dim: int = 512
  mapping_layers: int = 8
  mapping_lr_mul: float = 0.01
  w_avg_beta: float = 0.995
  channel_base: int = 16384
  channel_max: int = 512
  num_classes: int = 0

  def setup(self):
    self.mapping_net = [EqDense(self.w_dim, lr_mul=self.mapping_lr_mul, activation=True, name=f"fc{i}")
                        for i in range(self.mapping_layers)]
    if self.num_classes:
      self.embed = EqDense(self.w_dim, name="embed")
    self.w_avg = self.variable(W_AVG, "value", lambda: jnp.zeros((self.w_dim,), jnp.float32))
    log2 = int(math.log2(self.resolution))
    ch = lambda r: channels_at(r, self.channel_base, self.channel_max)
    self.const = self.param("const", nn.initializers.normal(1.0), (4, 4, ch(4)))
    convs, torgbs, index = [], [], 0
    for level in range(2, log2 + 1):
      r = 2 ** level
      if r > 4:
        convs.append(SynthesisLayer(ch(r), r, up=True, layer_index=index, name=f"b{r}_conv0"))
        index += 1
      convs.append(SynthesisLayer(ch(r), r, layer_index=index, name=f"b{r}_conv1"))
      index += 1
      torgbs.append(ToRGB(self.channels, name=f"b{r}_torgb"))
    self.convs, self.torgbs = convs, torgbs

  def mapping(self, z, labels=None, update_w_avg: bool = False):
    """MappingNetwork: ws [B, num_ws, w_dim] from z (normalised to unit second moment) and, for a conditional
    model, the normalised embedding of the one-hot label concatenated to it. With `update_w_avg` (training, the
    collection mutable) the tracked mean moves: w_avg <- lerp(mean_B(w), w_avg, beta)."""
    x = normalize_2nd_moment(z)
    if self.num_classes:
      y = normalize_2nd_moment(self.embed(jax.nn.one_hot(labels, self.num_classes, dtype=z.dtype)))
      x = jnp.concatenate([x, y], axis=-1)
    for layer in self.mapping_net:
      x = layer(x)
    if update_w_avg and not self.is_initializing():
      mean = jnp.mean(jax.lax.stop_gradient(x), axis=0)
      self.w_avg.value = mean + self.w_avg_beta * (self.w_avg.value - mean)
    return jnp.broadcast_to(x[:, None, :], (x.shape[0], num_ws(self.resolution), self.w_dim))

  def truncate(self, ws, psi: float):
    """The truncation trick in W (Karras et al. 2019, Sec. 2; Generator.forward's truncation_psi): w_avg + psi (w -
    w_avg)."""
    return self.w_avg.value + psi * (ws - self.w_avg.value)

  def synthesis(self, ws, noise="const"):
    """SynthesisNetwork, 'skip' architecture: [B, num_ws, w_dim] -> images [B, R, R, channels]. Each block's first
    convolution up-samples; its toRGB reads the w of the next block's first convolution, and the image so far is
    up-sampled (FIR) and added to (SynthesisBlock, w_idx). noise: a mode of SynthesisLayer, or one array
    [B, r, r, 1] per convolution (r from noise_resolutions)."""
    x = jnp.broadcast_to(self.const[None], (ws.shape[0], *self.const.shape))
    img, w_idx, conv_idx = None, 0, 0
    for level, torgb in enumerate(self.torgbs):
      for _ in range(1 if level == 0 else 2):
        x = self.convs[conv_idx](x, ws[:, w_idx], noise if isinstance(noise, str) else noise[conv_idx])
        conv_idx, w_idx = conv_idx + 1, w_idx + 1
      y = torgb(x, ws[:, w_idx])
      img = y if img is None else upsample2d(img) + y
    return img

  def __call__(self, z, train: bool = False, labels=None, truncation_psi: float = 1.0):
    """G(z): the mapping, truncation (psi 1: none) and synthesis; random noise in training ('noise' rng),
    the fixed noise otherwise, so that sampling is a function of z alone."""
    ws = self.mapping(z, labels, update_w_avg=train)
    if truncation_psi != 1.0:
      ws = self.truncate(ws, truncation_psi)
    return self.synthesis(ws, "random" if train else "const")


def minibatch_std(x, group_size: int = 4, num_channels: int = 1):
  """MinibatchStdLayer: the standard deviation over groups of min(group_size, B) samples (sample n is in group
  n mod B/G, as the authors' reshape(G, -1, ...)), averaged over channels, pixels (per `num_channels` channel
  group), appended as `num_channels` constant feature maps. x [B, H, W, C] -> [B, H, W, C + num_channels]."""
  b, h, w, c = x.shape
  g = min(group_size, b)
  y = x.reshape(g, b // g, h, w, num_channels, c // num_channels)
  y = jnp.sqrt(jnp.mean(jnp.square(y - jnp.mean(y, axis=0)), axis=0) + 1e-8)   # [B/G, H, W, F, C/F]
  y = jnp.mean(y, axis=(1, 2, 4))                                               # [B/G, F]
  y = jnp.tile(y, (g, 1))[:, None, None, :]                                     # [B, 1, 1, F]
  return jnp.concatenate([x, jnp.broadcast_to(y, (b, h, w, num_channels)).astype(x.dtype)], axis=-1)


class Discriminator(nn.Module):
  """Discriminator, architecture 'resnet': fromRGB at the top resolution, residual blocks down to 4x4 (conv 3x3,
  conv 3x3 down, skip 1x1 down without bias, both branches times sqrt(0.5)), then the epilogue: minibatch std,
  conv 3x3, dense, and the output (projection onto a mapped label embedding, scaled by 1 / sqrt(cmap_dim), for
  conditional models)."""
  resolution: int
  channel_base: int = 16384
  channel_max: int = 512
  mbstd_group_size: int = 4
  num_classes: int = 0
  mapping_layers: int = 8

  @nn.compact
  def __call__(self, x, train: bool = False, labels=None):
    del train  # No batch statistics.
    ch = lambda r: channels_at(r, self.channel_base, self.channel_max)
    r = self.resolution
    x = EqConv(ch(r), kernel_size=1, name=f"b{r}_fromrgb")(x)
    while r > 4:
      skip = EqConv(ch(r // 2), kernel_size=1, down=True, activation=False, use_bias=False, gain=math.sqrt(0.5),
                    name=f"b{r}_skip")(x)
      x = EqConv(ch(r), name=f"b{r}_conv0")(x)
      x = EqConv(ch(r // 2), down=True, gain=math.sqrt(0.5), name=f"b{r}_conv1")(x)
      x = skip + x
      r //= 2
    x = minibatch_std(x, self.mbstd_group_size)
    x = EqConv(ch(4), name="b4_conv")(x)
    x = EqDense(ch(4), activation=True, name="b4_fc")(x.reshape(x.shape[0], -1))
    if not self.num_classes:
      return EqDense(1, name="b4_out")(x)[:, 0]
    cmap_dim = ch(4)
    out = EqDense(cmap_dim, name="b4_out")(x)
    # The label's mapping network (Discriminator.mapping: z_dim 0, c_dim classes, num_ws None, the generator's
    # number of mapping layers, as the authors' mapping_kwargs are shared).
    cmap = normalize_2nd_moment(EqDense(cmap_dim, name="cmap_embed")(
        jax.nn.one_hot(labels, self.num_classes, dtype=x.dtype)))
    for i in range(self.mapping_layers):
      cmap = EqDense(cmap_dim, lr_mul=0.01, activation=True, name=f"cmap_fc{i}")(cmap)
    return jnp.sum(out * cmap, axis=-1) / math.sqrt(cmap_dim)


def make_models(*, resolution: int, channels: int, latent_dim: int = 512, w_dim: int = 512, mapping_layers: int = 8,
                channel_base: int = 16384, channel_max: int = 512, mbstd_group_size: int = 4,
                num_classes: int = 0) -> GANModels:
  """StyleGAN2 for [resolution, resolution, channels] images. The paper's networks are channel_base 32768 (16384 at
  CIFAR-10's 32x32 in the ADA code's 'cifar' config), channel_max 512, 8 mapping layers; the ADA code's small-data
  configs ('paper256', 'cifar') use 2 mapping layers (its cfg_specs map)."""
  if not (isinstance(resolution, int) and resolution >= 4 and resolution & (resolution - 1) == 0):
    raise UserError(f"config.model.resolution must be a power of two >= 4, got {resolution!r}")
  check_positive_ints(channels=channels, latent_dim=latent_dim, w_dim=w_dim, mapping_layers=mapping_layers,
                                 channel_base=channel_base, channel_max=channel_max, mbstd_group_size=mbstd_group_size)
  check_num_classes(num_classes)
  if channel_base // resolution < 1:
    raise UserError(f"config.model.channel_base ({channel_base}) must be at least the resolution ({resolution})")
  return GANModels(
      generator=Generator(resolution, channels, latent_dim, w_dim, mapping_layers, channel_base=channel_base,
                          channel_max=channel_max, num_classes=num_classes),
      discriminator=Discriminator(resolution, channel_base, channel_max, mbstd_group_size, num_classes,
                                  mapping_layers),
      latent_dim=latent_dim, data_shape=(resolution, resolution, channels), num_classes=num_classes)
