"""AttnGAN (Xu et al. 2018, "AttnGAN: Fine-Grained Text to Image Generation with Attentional Generative Adversarial
Networks", CVPR), as its authors' code builds it (taoxugit/AttnGAN, code/model.py: CA_NET, INIT_STAGE_G,
NEXT_STAGE_G, GET_IMAGE_G, G_NET, D_NET64/128/256, D_GET_LOGITS; code/GlobalAttention.py GlobalAttentionGeneral):
a generator of several stages, each drawing an image at twice the previous one's side, where every stage after the
first attends over the caption's words from every pixel, and one discriminator per stage.

- Conditioning augmentation (CA_NET, Sec. 3 after StackGAN): a dense layer and GLU map the sentence feature to
  mu and log sigma^2 (condition_dim each); the condition c = mu + sigma eps. eps is the tail of z here (z is
  [noise (z_dim), eps (condition_dim)]), so that G is a function of its inputs and sampling is reproducible.
- Stage 0 (INIT_STAGE_G): [c, noise] -> dense (no bias) -> BatchNorm -> GLU -> 4x4 x 16 ngf, then up-sampling
  blocks (nearest x2, conv 3x3, BatchNorm, GLU) halving the channels down to ngf at the first stage's side. The
  authors' first stage is 64x64 (4 blocks: 16, 8, 4, 2, 1 ngf); a smaller one keeps their first blocks and
  ends at ngf (32x32 with 3 stages: the first at 8x8, one block 16 ngf -> ngf).
- Stages 1, 2, ... (NEXT_STAGE_G): word attention (GlobalAttentionGeneral, Eq. 2: the words' features projected
  to ngf by a 1x1 convolution, for every pixel a softmax over the caption's words, padding masked; the
  word-context of each pixel), concatenated to the image features (2 ngf), R_NUM = 2 residual blocks (conv,
  BatchNorm, GLU, conv, BatchNorm), an up-sampling block to ngf. The authors' mask repeats [B, T] queryL times
  where their attention rows are ordered batch-major, so it masks other captions' padding; here each caption's
  own padding is masked.
- Each stage's image head (GET_IMAGE_G): conv 3x3 (no bias) to the image's channels, tanh.
- Discriminators (D_NET64 / 128 / 256): the image encoded to 4x4 x 8 ndf by stride-2 convolutions 4x4 (no bias;
  BatchNorm and leaky ReLU 0.2, no BatchNorm after the first) with channels ndf, 2, 4, 8 ndf from 64x64
  (encode_image_by_16times; a smaller stage keeps its last layers: 32x32 starts at 2 ndf, 8x8 at 8 ndf), then for
  128 and 256 more down-sampling blocks and 3x3 blocks back to 8 ndf. Two heads (D_GET_LOGITS): unconditional,
  conv 4x4 stride 4 to one logit; sentence-conditional, the sentence tiled over the 4x4 map and concatenated,
  conv 3x3 (no bias), BatchNorm, leaky ReLU, then its own conv 4x4. The authors end both with a sigmoid for
  BCELoss; here they are logits, for the same loss computed stably.

Initialisation as the authors' weights_init: orthogonal convolution and dense kernels, BatchNorm scales N(1, 0.02),
biases 0. Images NHWC in [-1, 1]; word features [B, T, nef] with mask [B, T] (True for words), sentence [B, nef].
"""
import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.errors import UserError
from gan_jax.models import GANModels, check_positive_ints

ORTHOGONAL = nn.initializers.orthogonal()


def _bn_scale_init(key, shape, dtype=jnp.float32):
  return 1.0 + 0.02 * jax.random.normal(key, shape, dtype)


def _conv(features, kernel, stride=1, padding=None, bias=False, name=None):
  padding = kernel // 2 if padding is None else padding
  return nn.Conv(features, (kernel, kernel), (stride, stride), [(padding, padding)] * 2, use_bias=bias,
                 kernel_init=ORTHOGONAL, name=name)


def _bn(name=None):
  # PyTorch's BatchNorm: momentum 0.1 (Flax's 0.9 of the running average), eps 1e-5; train or not at the call.
  return nn.BatchNorm(momentum=0.9, epsilon=1e-5, scale_init=_bn_scale_init, name=name)


def glu(x):
  """GLU over channels: the first half times the sigmoid of the second."""
  a, b = jnp.split(x, 2, axis=-1)
  return a * jax.nn.sigmoid(b)


def lrelu(x):
  return nn.leaky_relu(x, 0.2)


def upsample(x):
  return jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)                   # nn.Upsample(scale_factor=2, 'nearest')


class UpBlock(nn.Module):
  """upBlock: nearest x2, conv 3x3 to 2 features, BatchNorm, GLU."""
  features: int

  @nn.compact
  def __call__(self, x, train):
    return glu(_bn("bn")(_conv(2 * self.features, 3, name="conv")(upsample(x)), use_running_average=not train))


class ResBlock(nn.Module):
  @nn.compact
  def __call__(self, x, train):
    channels = x.shape[-1]
    h = glu(_bn("bn0")(_conv(2 * channels, 3, name="conv0")(x), use_running_average=not train))
    return x + _bn("bn1")(_conv(channels, 3, name="conv1")(h), use_running_average=not train)


class WordAttention(nn.Module):
  """GlobalAttentionGeneral: each pixel's context, the attention-weighted sum over the caption's words of their
  features projected to the image features' size. Returns (context [B, h, w, C], attention [B, h, w, T])."""

  @nn.compact
  def __call__(self, h, words, mask):
    b, height, width, channels = h.shape
    source = nn.Dense(channels, use_bias=False, kernel_init=ORTHOGONAL, name="conv_context")(words)   # [B, T, C]
    scores = jnp.einsum("bhwc,btc->bhwt", h, source)
    scores = jnp.where(mask[:, None, None, :], scores, -jnp.inf)
    attention = jax.nn.softmax(scores, axis=-1)
    return jnp.einsum("bhwt,btc->bhwc", attention, source), attention


def stage_resolutions(resolution: int, num_stages: int):
  """The side of each stage's images: the last is `resolution`, each earlier one half the next."""
  return [resolution // 2 ** (num_stages - 1 - i) for i in range(num_stages)]


class Generator(nn.Module):
  """G_NET. `stages(z [B, z_dim + condition_dim], sentence [B, nef], words [B, T, nef], mask [B, T])` -> (images of
  every stage, small to large; attention maps of the stages after the first [B, h, w, T]; mu; log sigma^2);
  calling it gives the last stage's images."""
  resolution: int
  channels: int = 3
  z_dim: int = 100
  condition_dim: int = 100
  ngf: int = 32
  num_stages: int = 3
  r_num: int = 2

  def __call__(self, z, sentence, words, mask, train: bool = False):
    return self.stages(z, sentence, words, mask, train)[0][-1]

  @nn.compact
  def stages(self, z, sentence, words, mask, train: bool = False):
    ngf, nc = self.ngf, self.condition_dim
    noise, eps = z[:, :self.z_dim], z[:, self.z_dim:]
    mu_logvar = glu(nn.Dense(4 * nc, kernel_init=ORTHOGONAL, name="ca_fc")(sentence.astype(z.dtype)))  # CA_NET
    mu, logvar = mu_logvar[:, :nc], mu_logvar[:, nc:]
    c = mu + jnp.exp(0.5 * logvar) * eps
    # Stage 0 (INIT_STAGE_G): 16 ngf at 4x4, halving per up-sampling block, the last ending at ngf.
    ups = int(math.log2(stage_resolutions(self.resolution, self.num_stages)[0] // 4))
    x = nn.Dense(4 * 4 * 16 * ngf * 2, use_bias=False, kernel_init=ORTHOGONAL, name="init_fc")(
        jnp.concatenate([c, noise], axis=-1))
    x = glu(_bn("init_bn")(x, use_running_average=not train))
    x = x.reshape(-1, 16 * ngf, 4, 4).transpose(0, 2, 3, 1)                    # The authors' view(-1, 16 ngf, 4, 4).
    for i in range(ups):
      x = UpBlock(ngf if i == ups - 1 else 16 * ngf // 2 ** (i + 1), name=f"init_up{i}")(x, train)
    images, attentions = [], []
    for stage in range(self.num_stages):
      if stage:                                                                 # NEXT_STAGE_G
        context, attention = WordAttention(name=f"att{stage}")(x, words, mask)
        x = jnp.concatenate([x, context], axis=-1)
        for r in range(self.r_num):
          x = ResBlock(name=f"res{stage}_{r}")(x, train)
        x = UpBlock(ngf, name=f"up{stage}")(x, train)
        attentions.append(attention)
      images.append(jnp.tanh(_conv(self.channels, 3, name=f"img{stage}")(x)))    # GET_IMAGE_G
    return images, attentions, mu, logvar


class StageDiscriminator(nn.Module):
  """D_NET64 / 128 / 256 for one stage's side: `features(x)` [B, 4, 4, 8 ndf]; `logits(features, sentence=None)`
  the unconditional head's logits [B], or with a sentence the conditional head's."""
  resolution: int
  ndf: int = 64

  def setup(self):
    ndf, downs = self.ndf, int(math.log2(self.resolution // 4))
    widths = [ndf, 2 * ndf, 4 * ndf, 8 * ndf][max(4 - downs, 0):]              # encode_image_by_16times' last ones
    extra = max(downs - 4, 0)                                                    # D_NET128 / 256
    widths += [16 * ndf * 2 ** j for j in range(extra)]
    self.down = [_conv(w, 4, 2, 1, name=f"down{i}") for i, w in enumerate(widths)]
    self.down_bn = [_bn(f"down{i}_bn") for i in range(1, len(widths))]         # None on the first.
    self.back = [_conv(8 * ndf * 2 ** (extra - 1 - j), 3, name=f"back{j}") for j in range(extra)]
    self.back_bn = [_bn(f"back{j}_bn") for j in range(extra)]
    self.uncond_out = _conv(1, 4, 4, 0, bias=True, name="uncond_out")
    self.joint = _conv(8 * ndf, 3, name="cond_joint")
    self.joint_bn = _bn("cond_joint_bn")
    self.cond_out = _conv(1, 4, 4, 0, bias=True, name="cond_out")

  # The authors' discriminators run BatchNorm on batch statistics (they are only ever trained); `train` False reads
  # the running averages, which nothing in training does.

  def features(self, x, train: bool = True):
    x = lrelu(self.down[0](x))
    for conv, bn in zip(self.down[1:] + self.back, self.down_bn + self.back_bn):
      x = lrelu(bn(conv(x), use_running_average=not train))
    return x

  def logits(self, features, sentence=None, train: bool = True):
    if sentence is None:
      return self.uncond_out(features)[:, 0, 0, 0]
    b, h, w, _ = features.shape
    s = jnp.broadcast_to(sentence[:, None, None, :].astype(features.dtype), (b, h, w, sentence.shape[-1]))
    joint = self.joint_bn(self.joint(jnp.concatenate([features, s], axis=-1)), use_running_average=not train)
    return self.cond_out(lrelu(joint))[:, 0, 0, 0]


class Discriminator(nn.Module):
  """The stages' discriminators as one module (d0, d1, ...), `stage` picking one for `features` and `logits`.
  D(x, sentence) initialises them all (each at its own side, x being the last stage's) and returns the last
  stage's conditional logits [B]. They share nothing but an optimizer: Adam's update is per parameter, so one
  Adam over all of them is the authors' one per D at the same settings."""
  resolutions: tuple
  ndf: int = 64

  def setup(self):
    self.stages = [StageDiscriminator(r, self.ndf, name=f"d{i}") for i, r in enumerate(self.resolutions)]

  def features(self, x, stage: int, train: bool = True):
    return self.stages[stage].features(x, train)

  def logits(self, features, sentence, stage: int, train: bool = True):
    return self.stages[stage].logits(features, sentence, train)

  def __call__(self, x, sentence, train: bool = False):
    for i, r in enumerate(self.resolutions):
      small = jax.image.resize(x, (x.shape[0], r, r, x.shape[-1]), "linear")
      features = self.stages[i].features(small, train)
      unconditional, conditional = (self.stages[i].logits(features, None, train),
                                    self.stages[i].logits(features, sentence, train))
    del unconditional
    return conditional


def make_models(*, resolution: int, channels: int = 3, latent_dim: int = 100, condition_dim: int = 100,
                ngf: int = 32, ndf: int = 64, num_stages: int = 3, r_num: int = 2, text_dim: int = 256) -> GANModels:
  """AttnGAN for [resolution, resolution, channels] images from captions encoded to text_dim (the DAMSM's size:
  the authors' 256). The authors' CUB settings (cfg/bird_attn2.yml): 3 stages to 256x256, ngf (GF_DIM) 32, ndf
  (DF_DIM) 64, z 100, condition 100 (GAN.CONDITION_DIM), R_NUM 2. G's z is noise (latent_dim) then the
  conditioning augmentation's eps (condition_dim): GANModels.latent_dim is their sum."""
  check_positive_ints(channels=channels, latent_dim=latent_dim, condition_dim=condition_dim, ngf=ngf, ndf=ndf,
                      num_stages=num_stages, r_num=r_num, text_dim=text_dim)
  first = resolution // 2 ** (num_stages - 1) if isinstance(resolution, int) else 0
  if not (isinstance(resolution, int) and resolution & (resolution - 1) == 0 and 8 <= first <= 64
          and resolution <= 256):
    raise UserError(f"config.model.resolution must be a power of two at most 256 whose first of num_stages "
                    f"({num_stages}) stages, resolution / 2^(num_stages - 1), is 8 to 64; got {resolution!r}")
  generator = Generator(resolution, channels, latent_dim, condition_dim, ngf, num_stages, r_num)
  discriminator = Discriminator(tuple(stage_resolutions(resolution, num_stages)), ndf)
  return GANModels(generator=generator, discriminator=discriminator, latent_dim=latent_dim + condition_dim,
                   data_shape=(resolution, resolution, channels), text_dim=text_dim)
