"""Image-to-image translation networks: pix2pix's U-Net and PatchGAN (Isola et al. 2017, "Image-to-Image Translation
with Conditional Adversarial Networks") and CycleGAN's ResNet generator (Zhu et al. 2017, "Unpaired Image-to-Image
Translation using Cycle-Consistent Adversarial Networks").

Each follows the authors' PyTorch code, junyanz/pytorch-CycleGAN-and-pix2pix, models/networks.py (named per class
below): layer order, widths, where norms, biases and dropout sit, and `init_weights('normal', 0.02)`. NHWC, images
in [-1, 1]. Transposed convolutions are `layers.ConvTranspose` with PyTorch's ConvTranspose2d padding
(`torch_transpose_padding`); its kernel is not flipped, so a PyTorch weight [in, out, kh, kw] ports to ours as
`w[:, :, ::-1, ::-1].transpose(2, 3, 0, 1)` (tests/test_translation_models.py checks the correspondence).

Flags every generator takes, `G(x, train, stochastic=None)`:
  stochastic  dropout on (a 'dropout' RNG is needed) and BatchNorm on the batch's own statistics; defaults to
              `train`. Off: no dropout, BatchNorm on its running averages (deterministic).
  train       with stochastic on, also update BatchNorm's running averages (the caller makes `batch_stats`
              mutable): training. train=True, stochastic=False is deterministic and updates nothing.
pix2pix samples with `train=False, stochastic=True`: "we apply dropout at test time, and we apply batch
normalization using the statistics of the test batch" (Isola et al. Sec. 3.3; dropout is G's only noise, Sec. 3.1);
nothing is mutable then and the running averages stay as they are. Discriminators take `D(x, train)` alone.
Instance norm (CycleGAN) has no state: the same in every mode.
"""
import dataclasses
import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.errors import UserError
from gan_jax.models import layers

NORMS = ("batch", "instance")
GENERATORS = ("unet", "resnet")

_init = nn.initializers.normal(0.02)  # networks.py init_weights(init_type='normal', init_gain=0.02); biases 0.


def _bn_scale_init(key, shape, dtype=jnp.float32):
  return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)  # init_weights: BatchNorm2d weight N(1, 0.02), bias 0.


# networks.py get_norm_layer('instance'): InstanceNorm2d(affine=False, track_running_stats=False), eps 1e-5: each
# example's channel normalised over H, W. Two-pass variance, as PyTorch's.
InstanceNorm = functools.partial(nn.InstanceNorm, epsilon=1e-5, use_scale=False, use_bias=False,
                                 use_fast_variance=False)


class BatchNorm(nn.Module):
  """flax.linen.BatchNorm (same computation; same names: params scale, bias; batch_stats mean, var) whose batch
  statistics can be used without updating the running averages, as pix2pix does at test time (Sec. 3.3):
  flax's BatchNorm writes them whenever it uses the batch's statistics. Momentum 0.9 is PyTorch's 0.1; the
  running variance is the biased one, as flax's (PyTorch keeps the unbiased one)."""
  momentum: float = 0.9
  epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x, use_batch_stats: bool, update_stats: bool):  # [..., C] -> [..., C]
    features = x.shape[-1]
    scale = self.param("scale", _bn_scale_init, (features,))
    bias = self.param("bias", nn.initializers.zeros, (features,))
    running_mean = self.variable("batch_stats", "mean", jnp.zeros, (features,), jnp.float32)
    running_var = self.variable("batch_stats", "var", jnp.ones, (features,), jnp.float32)
    if use_batch_stats:
      axes = tuple(range(x.ndim - 1))
      mean, var = jnp.mean(x, axis=axes), jnp.var(x, axis=axes)
      if update_stats and not self.is_initializing():
        running_mean.value = self.momentum * running_mean.value + (1 - self.momentum) * mean
        running_var.value = self.momentum * running_var.value + (1 - self.momentum) * var
    else:
      mean, var = running_mean.value, running_var.value
    return (x - mean) * jax.lax.rsqrt(var + self.epsilon) * scale + bias


def _norm(kind, name, use_batch_stats, update_stats):
  """networks.py get_norm_layer(kind), as a function of x [B, H, W, C]."""
  if kind == "instance":
    return InstanceNorm(name=name)
  batch_norm = BatchNorm(name=name)
  return lambda x: batch_norm(x, use_batch_stats, update_stats)


def _conv(features, kernel, stride, padding, use_bias, name):
  """Conv2d(kernel_size=kernel, stride=stride, padding=padding) with N(0, 0.02) weights."""
  return nn.Conv(features, (kernel, kernel), (stride, stride), padding=((padding, padding), (padding, padding)),
                 use_bias=use_bias, kernel_init=_init, conv_general_dilated=layers.conv_general_dilated, name=name)


def torch_transpose_padding(kernel, padding, output_padding=0):
  """ConvTranspose2d(kernel_size=kernel, padding=padding, output_padding=output_padding) as `layers.ConvTranspose`'s
  explicit padding of the dilated input: kernel - 1 - padding before, that plus output_padding after, so that an
  input of n gives (n - 1) * stride - 2 * padding + kernel + output_padding, as PyTorch's."""
  before = kernel - 1 - padding
  return ((before, before + output_padding),) * 2


def reflect_pad(x, pad):
  """ReflectionPad2d(pad) on [B, H, W, C]: mirror H and W without repeating the edge (numpy's 'reflect')."""
  return jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")


def _modes(train, stochastic):
  """(stochastic, update_stats) from a generator's flags (see the module docstring)."""
  stochastic = train if stochastic is None else bool(stochastic)
  return stochastic, bool(train) and stochastic


class UNetGenerator(nn.Module):
  """networks.py UnetGenerator / UnetSkipConnectionBlock (pix2pix, Isola et al. Sec. 3.2.1 and Appendix 6.1.1):
  `num_downs` 4x4 stride-2 convolutions down to a (H / 2**num_downs)-sized bottleneck, transposed convolutions up,
  each decoder level concatenated [encoder input of that level, decoder output] on channels.

  Level i (0 outermost) is one UnetSkipConnectionBlock of inner width `width * min(2**i, 8)`: down = LeakyReLU 0.2
  (not at level 0), conv, norm (not at level 0 nor at the innermost level); up = ReLU, transposed conv to the
  outer width (`out_channels` at level 0), then tanh at level 0, else norm, dropout 0.5 on levels 4 .. num_downs - 2
  (the official code's `num_downs - 5` ngf*8 blocks with use_dropout) and the skip concatenation. With batch norm
  every convolution but the outermost transposed one has no bias (official `use_bias = norm is InstanceNorm2d`),
  the outermost and innermost down convs included though no norm follows them.

  PyTorch's in-place LeakyReLU makes the official skip carry leaky_relu(h) rather than h; the decoder's ReLU then
  sees relu(leaky_relu(h)) = relu(h), so the function is the same (a test checks it).

  num_downs >= 5 is the official layout (log2 of the resolution gives a 1x1 bottleneck: unet_256 has 8); 2 to 4
  keep its outer levels, which the official code cannot build.

  Parameters: down_{i} (Conv), down_norm_{i} (i = 1 .. num_downs - 2), up_{i} (layers.ConvTranspose),
  up_norm_{i} (i >= 1); BatchNorm's running averages under batch_stats with the norm names; dropout_{i} has none.
  """
  out_channels: int
  num_downs: int
  width: int = 64
  dropout: bool = True
  norm: str = "batch"

  def inner_width(self, level):
    return self.width * min(2 ** level, 8)

  def dropout_levels(self):
    return tuple(range(4, self.num_downs - 1)) if self.dropout else ()

  @nn.compact
  def __call__(self, x, train: bool, stochastic=None):  # [B, H, W, C_in] -> [B, H, W, out_channels] in [-1, 1]
    if self.num_downs < 2:
      raise UserError(f"UNetGenerator needs num_downs >= 2, got {self.num_downs}")
    size = 2 ** self.num_downs
    if x.shape[1] % size or x.shape[2] % size:
      raise UserError(f"a U-Net with num_downs={self.num_downs} needs H and W divisible by {size}, "
                      f"got {x.shape[1]}x{x.shape[2]}")
    stochastic, update_stats = _modes(train, stochastic)
    norm = functools.partial(_norm, self.norm, use_batch_stats=stochastic, update_stats=update_stats)
    use_bias = self.norm == "instance"
    innermost = self.num_downs - 1
    skips = []
    for level in range(self.num_downs):                     # Encoder: [B, H / 2**i, W / 2**i, C] -> half size.
      skips.append(x)
      if level > 0:
        x = nn.leaky_relu(x, 0.2)
      x = _conv(self.inner_width(level), 4, 2, 1, use_bias, name=f"down_{level}")(x)
      if 0 < level < innermost:
        x = norm(name=f"down_norm_{level}")(x)
    for level in reversed(range(self.num_downs)):           # Decoder; x: [B, h, w, inner (x2 but innermost)].
      outermost = level == 0
      features = self.out_channels if outermost else self.inner_width(level - 1)
      x = layers.ConvTranspose(features, (4, 4), (2, 2), padding=torch_transpose_padding(4, 1),
                               use_bias=outermost or use_bias, kernel_init=_init, name=f"up_{level}")(nn.relu(x))
      if outermost:
        return jnp.tanh(x)
      x = norm(name=f"up_norm_{level}")(x)
      if level in self.dropout_levels():
        x = nn.Dropout(0.5, deterministic=not stochastic, name=f"dropout_{level}")(x)
      x = jnp.concatenate([skips[level], x], axis=-1)       # [B, 2h, 2w, 2 * features]


class ResnetBlock(nn.Module):
  """networks.py ResnetBlock (padding_type='reflect'): x + [pad 1, conv 3x3, norm, ReLU, (dropout 0.5), pad 1,
  conv 3x3, norm](x); the width is x's. Parameters conv_0, norm_0, conv_1, norm_1."""
  norm: str = "instance"
  dropout: bool = False

  @nn.compact
  def __call__(self, x, train: bool, stochastic=None):  # [B, H, W, C] -> [B, H, W, C]
    stochastic, update_stats = _modes(train, stochastic)
    use_bias = self.norm == "instance"
    y = _conv(x.shape[-1], 3, 1, 0, use_bias, name="conv_0")(reflect_pad(x, 1))
    y = nn.relu(_norm(self.norm, "norm_0", stochastic, update_stats)(y))
    if self.dropout:
      y = nn.Dropout(0.5, deterministic=not stochastic, name="dropout")(y)
    y = _conv(x.shape[-1], 3, 1, 0, use_bias, name="conv_1")(reflect_pad(y, 1))
    return x + _norm(self.norm, "norm_1", stochastic, update_stats)(y)


class ResnetGenerator(nn.Module):
  """networks.py ResnetGenerator (CycleGAN, Zhu et al. Appendix 7.2, after Johnson et al. 2016):
  c7s1-64, d128, d256, num_blocks x R256, u128, u64, c7s1-out_channels, tanh (widths for width=64), reflection
  padding around the 7x7 and the blocks' 3x3 convolutions. Down: 3x3 stride-2 convs, padding 1; up: transposed
  3x3 stride 2, padding 1, output_padding 1; each followed by norm and ReLU. Convolutions have biases with instance
  norm only (official use_bias), but the last one always. Dropout in the blocks is the official use_dropout
  (CycleGAN trains without: its options set no_dropout).

  Parameters: conv_in, norm_in, down_{0,1}, down_norm_{0,1}, block_{k} (ResnetBlock), up_{0,1}, up_norm_{0,1},
  conv_out (norms have parameters with batch norm only).
  """
  out_channels: int
  width: int = 64
  num_blocks: int = 9
  norm: str = "instance"
  dropout: bool = False

  @nn.compact
  def __call__(self, x, train: bool, stochastic=None):  # [B, H, W, C_in] -> [B, H, W, out_channels] in [-1, 1]
    if x.shape[1] % 4 or x.shape[2] % 4 or min(x.shape[1:3]) < 8:
      raise UserError(f"a ResNet generator needs H and W divisible by 4 and at least 8, "
                      f"got {x.shape[1]}x{x.shape[2]}")
    stochastic, update_stats = _modes(train, stochastic)
    norm = functools.partial(_norm, self.norm, use_batch_stats=stochastic, update_stats=update_stats)
    use_bias = self.norm == "instance"
    x = _conv(self.width, 7, 1, 0, use_bias, name="conv_in")(reflect_pad(x, 3))
    x = nn.relu(norm(name="norm_in")(x))                                       # [B, H, W, width]
    for i in range(2):
      x = _conv(self.width * 2 ** (i + 1), 3, 2, 1, use_bias, name=f"down_{i}")(x)
      x = nn.relu(norm(name=f"down_norm_{i}")(x))                              # [B, H / 2**(i+1), ., 2**(i+1) width]
    for k in range(self.num_blocks):
      x = ResnetBlock(self.norm, self.dropout, name=f"block_{k}")(x, train, stochastic)
    for i in range(2):
      x = layers.ConvTranspose(self.width * 2 ** (1 - i), (3, 3), (2, 2), padding=torch_transpose_padding(3, 1, 1),
                               use_bias=use_bias, kernel_init=_init, name=f"up_{i}")(x)
      x = nn.relu(norm(name=f"up_norm_{i}")(x))                                # [B, H / 2**(1-i), ., 2**(1-i) width]
    x = _conv(self.out_channels, 7, 1, 0, True, name="conv_out")(reflect_pad(x, 3))
    return jnp.tanh(x)


def patch_layers(num_layers):
  """networks.py NLayerDiscriminator's convolutions, (kernel, stride, padding, width multiplier or 0 for the one
  logit, normalised): 4x4 stride 2 without norm, num_layers - 1 more stride 2, one stride 1, the stride-1 logit."""
  spec = [(4, 2, 1, min(2 ** n, 8), n > 0) for n in range(num_layers)]
  return spec + [(4, 1, 1, min(2 ** num_layers, 8), True), (4, 1, 1, 0, False)]


def receptive_field(num_layers) -> int:
  """Side of the input square one PatchGAN logit sees, from the output back: r <- r * stride + kernel - stride
  (70 for num_layers=3, pix2pix's 70x70 PatchGAN, Isola et al. Sec. 3.2.2; 34 for 2, 16 for 1)."""
  size = 1
  for kernel, stride, *_ in reversed(patch_layers(num_layers)):
    size = size * stride + kernel - stride
  return size


def patch_output_size(num_layers, size) -> int:
  """Side of the logit map for a size x size input: (n + 2 padding - kernel) // stride + 1 per layer, as
  PyTorch's Conv2d (256 -> 30 for num_layers=3)."""
  for kernel, stride, padding, *_ in patch_layers(num_layers):
    size = (size + 2 * padding - kernel) // stride + 1
  return size


class PatchDiscriminator(nn.Module):
  """networks.py NLayerDiscriminator (PatchGAN, Isola et al. Sec. 3.2.2 and Appendix 6.1.2): `patch_layers`, each
  conv but the last followed by LeakyReLU 0.2, norm on all but the first and the last. Convolutions have biases
  with instance norm only, but the first and the last always (official use_bias). D(x, train): x [B, H, W, C] ->
  logits [B, h, w] (h = `patch_output_size`), one per receptive_field(num_layers)-sized patch.

  Parameters: conv_0 .. conv_{num_layers + 1}, norm_1 .. norm_{num_layers} (with batch norm).
  """
  width: int = 64
  num_layers: int = 3
  norm: str = "batch"

  @nn.compact
  def __call__(self, x, train: bool):
    spec = patch_layers(self.num_layers)
    for i, (kernel, stride, padding, multiplier, normalised) in enumerate(spec):
      last = i == len(spec) - 1
      use_bias = not normalised or self.norm == "instance"
      x = _conv(self.width * multiplier if not last else 1, kernel, stride, padding, use_bias, name=f"conv_{i}")(x)
      if normalised:
        x = _norm(self.norm, f"norm_{i}", train, train)(x)
      if not last:
        x = nn.leaky_relu(x, 0.2)
    return x[..., 0]                                                           # [B, h, w]


@dataclasses.dataclass(frozen=True)
class TranslationModels:
  g_ab: nn.Module  # Domain A -> B (pix2pix: input -> target).
  g_ba: nn.Module  # B -> A (CycleGAN only; pix2pix ignores it).
  d_a: nn.Module   # PatchGAN on A images (CycleGAN).
  d_b: nn.Module   # PatchGAN on B images, or pix2pix's D on (input, output) concatenated on channels.
  shape_a: tuple   # (H, W, C_a)
  shape_b: tuple   # (H, W, C_b)

  @property
  def makes_images(self) -> bool:
    return True


def _positive_int(key, value, minimum=1):
  if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
    raise UserError(f"config.model.{key} must be an integer >= {minimum}, got {value!r}")


def not_applicable(kwargs) -> set:
  """make_models keys that these kwargs do not use: num_blocks of U-Nets (models.not_applicable)."""
  return {"num_blocks"} if kwargs.get("generator", "unet") == "unet" else set()


def make_models(*, resolution: int, channels_a: int, channels_b: int, generator: str = "unet",
                g_width: int = 64, d_width: int = 64, d_layers: int = 3, num_blocks: int = 9,
                norm: str = "batch", dropout: bool = True) -> TranslationModels:
  """Two generators and two PatchGANs for [resolution, resolution, channels_a] <-> [..., channels_b] images.

  `generator` "unet": U-Nets with num_downs = log2(resolution) (a 1x1 bottleneck; pix2pix's unet_256 at 256);
  "resnet": ResNet generators with `num_blocks` blocks (CycleGAN's resnet_9blocks; unused by "unet"). `norm` and
  `dropout` (in the U-Net's decoder or the ResNet blocks) are the official --norm and (not) --no_dropout, for all
  four networks: pix2pix's defaults here; CycleGAN's are norm="instance", dropout=False.
  """
  _positive_int("resolution", resolution)
  for key, value in (("channels_a", channels_a), ("channels_b", channels_b), ("g_width", g_width),
                     ("d_width", d_width), ("d_layers", d_layers)):
    _positive_int(key, value)
  _positive_int("num_blocks", num_blocks, minimum=0)
  if generator not in GENERATORS:
    raise UserError(f"unknown config.model.generator {generator!r}; allowed: {', '.join(GENERATORS)}")
  if norm not in NORMS:
    raise UserError(f"unknown config.model.norm {norm!r}; allowed: {', '.join(NORMS)}")
  if not isinstance(dropout, bool):
    raise UserError(f"config.model.dropout must be true or false, got {dropout!r}")
  if generator == "unet" and (resolution < 4 or resolution & (resolution - 1)):
    raise UserError(f"config.model.resolution {resolution} does not suit generator 'unet'; allowed: powers of two "
                    "from 4 (4, 8, 16, 32, ..., 256)")
  if generator == "resnet" and (resolution < 8 or resolution % 4):
    raise UserError(f"config.model.resolution {resolution} does not suit generator 'resnet'; allowed: multiples "
                    "of 4 from 8")
  if patch_output_size(d_layers, resolution) < 1:
    fitting = [n for n in range(1, d_layers) if patch_output_size(n, resolution) >= 1]
    if not fitting:
      raise UserError(f"config.model.resolution {resolution} is too small for a PatchGAN; allowed: 6 or more")
    raise UserError(f"config.model.d_layers {d_layers} leaves no patch of a {resolution}x{resolution} image; "
                    f"allowed: 1 to {fitting[-1]}")

  def generator_to(channels):
    if generator == "unet":
      return UNetGenerator(channels, int(math.log2(resolution)), g_width, dropout, norm)
    return ResnetGenerator(channels, g_width, num_blocks, norm, dropout)

  return TranslationModels(
      g_ab=generator_to(channels_b), g_ba=generator_to(channels_a),
      d_a=PatchDiscriminator(d_width, d_layers, norm), d_b=PatchDiscriminator(d_width, d_layers, norm),
      shape_a=(resolution, resolution, channels_a), shape_b=(resolution, resolution, channels_b))
