"""The ResNet GANs of the GAN benchmarks at 16x16 and 32x32: SNGAN, SAGAN and BigGAN.

- SNGAN (Miyato et al. 2018, Appendix B.4, Table 4; pfnet-research/sngan_projection, gen_models/resnet_32.py and
  dis_models/snresnet_32.py): G maps z to a 4x4 map and up-samples it with residual blocks (BN - ReLU - nearest
  up-sampling - conv3x3 - BN - ReLU - conv3x3, shortcut up-sampling then conv1x1), then BN - ReLU - conv3x3 - tanh.
  D's first block is the "optimised" one (conv3x3 - ReLU - conv3x3 - avg-pool, shortcut avg-pool then conv1x1);
  the others are pre-activation blocks (ReLU - conv3x3 - ReLU - conv3x3 [- avg-pool], shortcut conv1x1 [then
  avg-pool] when the block changes size or width); then ReLU, global *sum* pooling and a linear logit. Spectral
  normalisation on every D layer. At 32x32 D down-samples twice and ends with two blocks at 8x8.
- Class conditioning (Miyato & Koyama 2018): conditional BatchNorm in G (per-class gains and biases), and the
  projection term <embed(y), h> added to D's logit, its embedding spectrally normalised as D's other layers.
- SAGAN (Zhang et al. 2019, Sec. 4; the authors' non_local.py, sn_non_local_block_sim): a self-attention block
  after the G and D blocks whose output is `attention_resolution`: theta = conv1x1(C/8), phi = maxpool(conv1x1(C/8)),
  g = maxpool(conv1x1(C/2)), o = conv1x1(C)(softmax(theta phi^T) g), out = x + gamma * o with gamma learned from 0;
  spectral normalisation in G as well as D.
- BigGAN (Brock et al. 2019, Sec. 3 and Appendix B; ajbrock/BigGAN-PyTorch, BigGAN.py and layers.py): hierarchical
  latents (z split into one chunk per G block plus one for the first linear layer) and a shared class embedding;
  each block's BatchNorm takes gain 1 + W_g [emb(y), z_i] and bias W_b [emb(y), z_i] (`layers.ccbn`), spectral
  norm in G and D. Its orthogonal regularisation of G is regularizers.orthogonal (config.regularizer.g_orthogonal).

Initialisation: "xavier" as SNGAN's code (Glorot uniform, gain sqrt(2) in residual branches, 1 on shortcuts and
linear layers), "normal" N(0, 0.02) or "ortho" (BigGAN-PyTorch's G_init / D_init).
"""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.errors import UserError
from gan_jax.models import GANModels, check_num_classes, check_positive_ints
from gan_jax.models import conditioning, layers

RESOLUTIONS = (16, 32)
INITS = ("xavier", "normal", "ortho")


def _initializers(init: str):
  """(residual-branch kernel init, shortcut/linear/embedding init) for `init`."""
  if init == "xavier":
    return (nn.initializers.variance_scaling(2.0, "fan_avg", "uniform"),  # Glorot uniform, gain sqrt(2).
            nn.initializers.variance_scaling(1.0, "fan_avg", "uniform"))
  if init == "normal":
    return nn.initializers.normal(0.02), nn.initializers.normal(0.02)
  return nn.initializers.orthogonal(), nn.initializers.orthogonal()


def num_g_blocks(resolution: int) -> int:
  """G's up-sampling blocks from its 4x4 input: 2 at 16x16, 3 at 32x32."""
  return {16: 2, 32: 3}[resolution]


def d_downsampling(resolution: int) -> tuple:
  """Which of D's blocks halve the map: down to 8x8, then two blocks at 8x8 (SNGAN's and BigGAN's 32x32 D:
  (True, True, False, False))."""
  return {16: (True, False, False), 32: (True, True, False, False)}[resolution]


def _up(x):
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)  # Nearest-neighbour, as SNGAN's and BigGAN's code.


def _down(x):
  return nn.avg_pool(x, (2, 2), (2, 2))


class SelfAttention(nn.Module):
  """SAGAN's self-attention (Zhang et al. 2019, Eq. 1-3, with the authors' C/8, C/8, C/2 channels and 2x2
  max-pooling of the keys and values): x + gamma * o, gamma a learned scalar starting at 0."""
  spectral_norm: bool
  kernel_init: nn.initializers.Initializer
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    batch, height, width, channels = x.shape
    sn = functools.partial(layers.apply, spectral_norm=self.spectral_norm, train=train)
    conv = functools.partial(nn.Conv, kernel_size=(1, 1), use_bias=False, kernel_init=self.kernel_init,
                             dtype=self.dtype)
    pool = lambda h: nn.max_pool(h, (2, 2), (2, 2))
    theta = sn(conv(channels // 8, name="theta"), x).reshape(batch, height * width, -1)
    phi = pool(sn(conv(channels // 8, name="phi"), x)).reshape(batch, height * width // 4, -1)
    g = pool(sn(conv(channels // 2, name="g"), x)).reshape(batch, height * width // 4, -1)
    beta = jax.nn.softmax(jnp.einsum("bqc,bkc->bqk", theta, phi).astype(jnp.float32), axis=-1)  # [B, HW, HW/4]
    attended = jnp.einsum("bqk,bkc->bqc", beta.astype(g.dtype), g).reshape(batch, height, width, channels // 2)
    o = sn(conv(channels, name="o"), attended)
    gamma = self.param("gamma", nn.initializers.zeros, ())
    return x + gamma.astype(x.dtype) * o


class _Norm(nn.Module):
  """G's BatchNorm: plain, per-class (conditional BatchNorm, `num_classes`), or BigGAN's ccbn from a vector
  (gain 1 + W_g y, bias W_b y; y = [shared embedding, z chunk]), its linear maps without bias and spectrally
  normalised with the rest of G."""
  kind: str  # "bn", "cbn" or "ccbn".
  num_classes: int
  use_running_average: bool
  momentum: float
  spectral_norm: bool
  kernel_init: nn.initializers.Initializer
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, labels=None, cond=None):
    if self.kind == "cbn":
      return conditioning.ConditionalBatchNorm(self.num_classes, self.use_running_average, self.momentum,
                                               self.dtype)(x, labels)
    if self.kind == "bn":
      return nn.BatchNorm(use_running_average=self.use_running_average, momentum=self.momentum, dtype=self.dtype)(x)
    x = nn.BatchNorm(use_running_average=self.use_running_average, momentum=self.momentum, use_scale=False,
                     use_bias=False, dtype=self.dtype)(x)
    features = x.shape[-1]
    sn = functools.partial(layers.apply, spectral_norm=self.spectral_norm, train=not self.use_running_average)
    dense = functools.partial(nn.Dense, features, use_bias=False, kernel_init=self.kernel_init)
    gain = 1.0 + sn(dense(name="gain"), cond)
    bias = sn(dense(name="bias"), cond)
    return x * gain[:, None, None, :].astype(x.dtype) + bias[:, None, None, :].astype(x.dtype)


class GBlock(nn.Module):
  features: int
  norm: callable  # () -> a _Norm module.
  spectral_norm: bool
  inits: tuple
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool, labels=None, cond=None):
    sn = functools.partial(layers.apply, spectral_norm=self.spectral_norm, train=train)
    residual_init, shortcut_init = self.inits
    conv = functools.partial(nn.Conv, self.features, (3, 3), padding=1, kernel_init=residual_init,
                             dtype=self.dtype, conv_general_dilated=layers.conv_general_dilated)
    h = nn.relu(self.norm()(x, labels, cond))
    h = sn(conv(name="conv1"), _up(h))
    h = nn.relu(self.norm()(h, labels, cond))
    h = sn(conv(name="conv2"), h)
    shortcut = sn(nn.Conv(self.features, (1, 1), kernel_init=shortcut_init, dtype=self.dtype, name="shortcut"),
                  _up(x))  # Up-sampling blocks always have a learned shortcut.
    return h + shortcut


class DBlock(nn.Module):
  features: int
  downsample: bool
  optimized: bool  # D's first block: no activation before its first conv; its shortcut pools, then convolves.
  spectral_norm: bool
  inits: tuple
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    sn = functools.partial(layers.apply, spectral_norm=self.spectral_norm, train=train)
    residual_init, shortcut_init = self.inits
    conv = functools.partial(nn.Conv, self.features, (3, 3), padding=1, kernel_init=residual_init,
                             dtype=self.dtype, conv_general_dilated=layers.conv_general_dilated)
    h = x if self.optimized else nn.relu(x)
    h = sn(conv(name="conv1"), h)
    h = sn(conv(name="conv2"), nn.relu(h))
    if self.downsample:
      h = _down(h)
    shortcut = x
    learnable = self.downsample or x.shape[-1] != self.features
    sc_conv = lambda s: sn(nn.Conv(self.features, (1, 1), kernel_init=shortcut_init, dtype=self.dtype,
                                   name="shortcut"), s)
    if self.optimized:  # Pool, then convolve (SNGAN's OptimizedBlock; BigGAN's preactivation=False block).
      shortcut = sc_conv(_down(shortcut) if self.downsample else shortcut)
    elif learnable:     # Convolve, then pool.
      shortcut = sc_conv(shortcut)
      shortcut = _down(shortcut) if self.downsample else shortcut
    return h + shortcut


class Generator(nn.Module):
  resolution: int
  channels: int
  latent_dim: int = 128
  width: int = 256            # Channels of every block (SNGAN's CIFAR G: 256; BigGAN's: 4 x 64).
  num_classes: int = 0
  spectral_norm: bool = False
  attention_resolution: int = 0  # SAGAN: self-attention after the block producing this resolution; 0: none.
  hierarchical: bool = False  # BigGAN: z split over the blocks, ccbn from [shared embedding, z chunk].
  shared_dim: int = 128       # BigGAN's shared class embedding.
  weight_init: str = "xavier"
  bn_momentum: float = 0.9    # PyTorch's 0.1.
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, z, train: bool, labels=None):  # z [B, latent_dim] -> [B, H, W, C] in [-1, 1], float32
    residual_init, linear_init = inits = _initializers(self.weight_init)
    sn = functools.partial(layers.apply, spectral_norm=self.spectral_norm, train=train)
    blocks = num_g_blocks(self.resolution)
    conds = [None] * blocks
    if self.hierarchical:
      chunks = jnp.split(z, blocks + 1, axis=-1)
      z, conds = chunks[0], chunks[1:]
      if self.num_classes:
        shared = nn.Embed(self.num_classes, self.shared_dim, embedding_init=linear_init, name="shared")(labels)
        conds = [jnp.concatenate([shared, c], axis=-1) for c in conds]
      kind = "ccbn"
    else:
      kind = "cbn" if self.num_classes else "bn"
    norm = functools.partial(_Norm, kind, self.num_classes, not train, self.bn_momentum, self.spectral_norm,
                             linear_init, self.dtype)
    x = sn(nn.Dense(4 * 4 * self.width, kernel_init=linear_init, dtype=self.dtype, name="linear"), z)
    x = x.reshape(-1, 4, 4, self.width)
    size = 4
    for i in range(blocks):
      x = GBlock(self.width, norm, self.spectral_norm, inits, self.dtype, name=f"block{i}")(x, train, labels,
                                                                                          conds[i])
      size *= 2
      if size == self.attention_resolution:
        x = SelfAttention(self.spectral_norm, linear_init, self.dtype, name="attention")(x, train)
    x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=self.bn_momentum, dtype=self.dtype)(x))
    x = sn(nn.Conv(self.channels, (3, 3), padding=1, kernel_init=linear_init, dtype=self.dtype, name="to_image",
                   conv_general_dilated=layers.conv_general_dilated), x)
    return jnp.tanh(x).astype(jnp.float32)


class Discriminator(nn.Module):
  resolution: int
  width: int = 128            # Channels of every block (SNGAN's CIFAR D: 128; BigGAN's: 4 x 64).
  num_classes: int = 0        # > 0: the projection term.
  spectral_norm: bool = True
  attention_resolution: int = 0
  weight_init: str = "xavier"
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool, labels=None):  # [B, H, W, C] -> logits [B] float32
    inits = _initializers(self.weight_init)
    sn = functools.partial(layers.apply, spectral_norm=self.spectral_norm, train=train)
    size = self.resolution
    for i, down in enumerate(d_downsampling(self.resolution)):
      x = DBlock(self.width, down, i == 0, self.spectral_norm, inits, self.dtype, name=f"block{i}")(x, train)
      size //= 2 if down else 1
      if size == self.attention_resolution and down:
        x = SelfAttention(self.spectral_norm, inits[1], self.dtype, name="attention")(x, train)
    h = jnp.sum(nn.relu(x).astype(jnp.float32), axis=(1, 2))  # Global sum pooling: [B, width].
    logits = sn(nn.Dense(1, kernel_init=inits[1], name="linear"), h)[:, 0]
    if self.num_classes:  # Projection (Miyato & Koyama 2018, Eq. 3), the embedding normalised like D's layers.
      embedded = sn(nn.Embed(self.num_classes, self.width, embedding_init=inits[1], name="embed"), labels)
      logits = logits + jnp.sum(embedded * h, axis=-1)
    return logits


def not_applicable(kwargs) -> set:
  """Keys these kwargs leave unused (models.not_applicable): BigGAN's shared embedding outside BigGAN's
  conditional generator."""
  return set() if kwargs.get("hierarchical") and kwargs.get("num_classes") else {"shared_dim"}


def make_models(*, resolution: int, channels: int, latent_dim: int = 128, g_width: int = 256, d_width: int = 128,
                num_classes: int = 0, g_spectral_norm: bool = False, d_spectral_norm: bool = True,
                attention_resolution: int = 0, hierarchical: bool = False, shared_dim: int = 128,
                weight_init: str = "xavier", dtype: str = "float32") -> GANModels:
  """The ResNet pair for [resolution, resolution, channels] images (see the module docstring): SNGAN by default;
  SAGAN with `attention_resolution` and `g_spectral_norm`; BigGAN with `hierarchical` and `g_spectral_norm`.
  `num_classes` > 0 conditions G's BatchNorm and adds D's projection term."""
  if resolution not in RESOLUTIONS:
    raise UserError(f"the ResNet GANs are built at resolution {' or '.join(map(str, RESOLUTIONS))} (the CIFAR-10 "
                    f"networks and their 16x16 reduction), got {resolution!r}")
  check_positive_ints(channels=channels, latent_dim=latent_dim, g_width=g_width, d_width=d_width,
                                 shared_dim=shared_dim)
  check_num_classes(num_classes)
  if weight_init not in INITS:
    raise UserError(f"unknown config.model.weight_init {weight_init!r}; allowed: {', '.join(INITS)}")
  allowed = [4 * 2 ** (i + 1) for i in range(num_g_blocks(resolution) - 1)]  # G's block outputs below the image.
  if attention_resolution and attention_resolution not in allowed:
    raise UserError(f"config.model.attention_resolution must be 0 (none) or one of {allowed} at resolution "
                    f"{resolution} (a map both networks have, below the image), got {attention_resolution!r}")
  if attention_resolution and min(g_width, d_width) < 8:
    raise UserError("self-attention needs g_width and d_width of at least 8 (its keys have width / 8 channels)")
  if hierarchical and latent_dim % (num_g_blocks(resolution) + 1):
    raise UserError(f"config.model.latent_dim must split into {num_g_blocks(resolution) + 1} equal chunks "
                    f"(BigGAN's hierarchical z at resolution {resolution}: one per G block and the first layer), "
                    f"got {latent_dim}")
  compute_dtype = layers.compute_dtype(dtype)
  return GANModels(
      generator=Generator(resolution, channels, latent_dim, g_width, num_classes, g_spectral_norm,
                          attention_resolution, hierarchical, shared_dim, weight_init, dtype=compute_dtype),
      discriminator=Discriminator(resolution, d_width, num_classes, d_spectral_norm, attention_resolution,
                                  weight_init,
                                  dtype=compute_dtype),
      latent_dim=latent_dim,
      data_shape=(resolution, resolution, channels),
      num_classes=num_classes)
