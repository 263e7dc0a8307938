"""The FID Inception network (Heusel et al. 2017; Szegedy et al. 2016) in Flax: pytorch-fid's variant, block for
block (its FIDInceptionA/C/E_1/E_2 blocks), with its weights and three named ways of preparing the input.

`load_weights(path)` reads either file the field distributes, told apart by content, without torch and without
executing pickled code: pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` (a torch.save state dict) or the
TorchScript `inception-2015-12-05.pt` of StyleGAN2-ADA and clean-fid (its tensors and module tree; its code/ is
never run). Both hold the same TF Inception weights. `features(params, images, mode=...)` gives the 2,048-d pool
features of uint8 images [N, H, W, C] and `logits(...)` the 1,008 logits (the Inception Score) where the file
has the classifier. The input modes (MODES) are the handlings that clean-fid (Parmar et al. 2022, "On Aliased
Resizing and Surprising Subtleties in GAN Evaluation") shows move FID by points: pytorch-fid's, StyleGAN2-ADA's
(clean-fid's "legacy_tensorflow") and clean-fid's "clean". Nothing is downloaded: the weight file is a local
path, `config.eval_features = 'inception:<path>[:<mode>]'` (parse_spec). `scripts/check_inception_parity.py`
compares this port with pytorch-fid's model and with torch running the TorchScript file.
"""
import collections
import functools
import os
import pickle
import struct
import zipfile

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.errors import UserError

# --------------------------------------------------------------------------------------------------------
# The network. Module names are pytorch-fid's attribute names, so a state dict maps onto the params by name.
# Convolutions and the classifier ask for full float32 precision: an accelerator's default may use TF32 (GPU) or
# bf16 (TPU) passes, whose ~1e-3 relative rounding exceeds the 1e-4 the parity checks allow.
_PRECISION = jax.lax.Precision.HIGHEST


class FrozenBatchNorm(nn.Module):
  """Inference-mode BatchNorm with torch's parameter names (eps 0.001, as the Inception checkpoint)."""
  features: int
  eps: float = 1e-3

  @nn.compact
  def __call__(self, x):
    p = {k: self.param(k, init, (self.features,)) for k, init in (
        ("weight", nn.initializers.ones), ("bias", nn.initializers.zeros),
        ("running_mean", nn.initializers.zeros), ("running_var", nn.initializers.ones))}
    return (x - p["running_mean"]) * jax.lax.rsqrt(p["running_var"] + self.eps) * p["weight"] + p["bias"]


class BasicConv2d(nn.Module):
  features: int
  kernel: tuple = (1, 1)
  stride: int = 1
  padding: tuple = (0, 0)

  @nn.compact
  def __call__(self, x):
    x = nn.Conv(self.features, self.kernel, strides=self.stride, use_bias=False, name="conv", precision=_PRECISION,
                padding=[(self.padding[0], self.padding[0]), (self.padding[1], self.padding[1])])(x)
    return nn.relu(FrozenBatchNorm(self.features, name="bn")(x))


def _avg_pool_3x3(x):  # pytorch-fid's FID blocks: avg_pool2d(3, stride 1, padding 1, count_include_pad=False).
  return nn.avg_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_3x3(x, stride, padding=0):
  return nn.max_pool(x, (3, 3), (stride, stride), ((padding, padding), (padding, padding)))


class FIDInceptionA(nn.Module):
  pool_features: int

  @nn.compact
  def __call__(self, x):
    b1 = BasicConv2d(64, name="branch1x1")(x)
    b5 = BasicConv2d(48, name="branch5x5_1")(x)
    b5 = BasicConv2d(64, (5, 5), padding=(2, 2), name="branch5x5_2")(b5)
    b3 = BasicConv2d(64, name="branch3x3dbl_1")(x)
    b3 = BasicConv2d(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(b3)
    b3 = BasicConv2d(96, (3, 3), padding=(1, 1), name="branch3x3dbl_3")(b3)
    bp = BasicConv2d(self.pool_features, name="branch_pool")(_avg_pool_3x3(x))
    return jnp.concatenate([b1, b5, b3, bp], axis=-1)


class InceptionB(nn.Module):

  @nn.compact
  def __call__(self, x):
    b3 = BasicConv2d(384, (3, 3), stride=2, name="branch3x3")(x)
    bd = BasicConv2d(64, name="branch3x3dbl_1")(x)
    bd = BasicConv2d(96, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
    bd = BasicConv2d(96, (3, 3), stride=2, name="branch3x3dbl_3")(bd)
    return jnp.concatenate([b3, bd, _max_pool_3x3(x, 2)], axis=-1)


class FIDInceptionC(nn.Module):
  channels_7x7: int

  @nn.compact
  def __call__(self, x):
    c7 = self.channels_7x7
    b1 = BasicConv2d(192, name="branch1x1")(x)
    b7 = BasicConv2d(c7, name="branch7x7_1")(x)
    b7 = BasicConv2d(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(b7)
    b7 = BasicConv2d(192, (7, 1), padding=(3, 0), name="branch7x7_3")(b7)
    bd = BasicConv2d(c7, name="branch7x7dbl_1")(x)
    bd = BasicConv2d(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(bd)
    bd = BasicConv2d(c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(bd)
    bd = BasicConv2d(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(bd)
    bd = BasicConv2d(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(bd)
    bp = BasicConv2d(192, name="branch_pool")(_avg_pool_3x3(x))
    return jnp.concatenate([b1, b7, bd, bp], axis=-1)


class InceptionD(nn.Module):

  @nn.compact
  def __call__(self, x):
    b3 = BasicConv2d(192, name="branch3x3_1")(x)
    b3 = BasicConv2d(320, (3, 3), stride=2, name="branch3x3_2")(b3)
    b7 = BasicConv2d(192, name="branch7x7x3_1")(x)
    b7 = BasicConv2d(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(b7)
    b7 = BasicConv2d(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(b7)
    b7 = BasicConv2d(192, (3, 3), stride=2, name="branch7x7x3_4")(b7)
    return jnp.concatenate([b3, b7, _max_pool_3x3(x, 2)], axis=-1)


class FIDInceptionE(nn.Module):
  """FIDInceptionE_1 (`max_pool=False`: average pooling without padded zeros) and FIDInceptionE_2 (max
  pooling: the TF graph's bug that pytorch-fid reproduces for the last block)."""
  max_pool: bool

  @nn.compact
  def __call__(self, x):
    b1 = BasicConv2d(320, name="branch1x1")(x)
    b3 = BasicConv2d(384, name="branch3x3_1")(x)
    b3 = jnp.concatenate([BasicConv2d(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(b3),
                          BasicConv2d(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(b3)], axis=-1)
    bd = BasicConv2d(448, name="branch3x3dbl_1")(x)
    bd = BasicConv2d(384, (3, 3), padding=(1, 1), name="branch3x3dbl_2")(bd)
    bd = jnp.concatenate([BasicConv2d(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(bd),
                          BasicConv2d(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(bd)], axis=-1)
    pooled = _max_pool_3x3(x, 1, padding=1) if self.max_pool else _avg_pool_3x3(x)
    bp = BasicConv2d(192, name="branch_pool")(pooled)
    return jnp.concatenate([b1, b3, bd, bp], axis=-1)


class FIDInceptionV3(nn.Module):
  """[N, 299, 299, 3] in [-1, 1] -> (pool features [N, 2048], logits [N, 1008], or None without the classifier:
  the TorchScript file of clean-fid and StyleGAN2-ADA's metrics may lack it)."""
  with_logits: bool = True

  @nn.compact
  def __call__(self, x):
    x = BasicConv2d(32, (3, 3), stride=2, name="Conv2d_1a_3x3")(x)
    x = BasicConv2d(32, (3, 3), name="Conv2d_2a_3x3")(x)
    x = BasicConv2d(64, (3, 3), padding=(1, 1), name="Conv2d_2b_3x3")(x)
    x = _max_pool_3x3(x, 2)
    x = BasicConv2d(80, name="Conv2d_3b_1x1")(x)
    x = BasicConv2d(192, (3, 3), name="Conv2d_4a_3x3")(x)
    x = _max_pool_3x3(x, 2)
    x = FIDInceptionA(32, name="Mixed_5b")(x)
    x = FIDInceptionA(64, name="Mixed_5c")(x)
    x = FIDInceptionA(64, name="Mixed_5d")(x)
    x = InceptionB(name="Mixed_6a")(x)
    for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
      x = FIDInceptionC(c7, name=name)(x)
    x = InceptionD(name="Mixed_7a")(x)
    x = FIDInceptionE(max_pool=False, name="Mixed_7b")(x)
    x = FIDInceptionE(max_pool=True, name="Mixed_7c")(x)
    pool = x.mean(axis=(1, 2))                                           # [N, 2048]
    return pool, nn.Dense(1008, name="fc", precision=_PRECISION)(pool) if self.with_logits else None


# --------------------------------------------------------------------------------------------------------
# Input modes: uint8 images of any size -> the network's [N, 299, 299, 3] float input. Each is a resize to 299
# and a normalisation; the same weights serve all three.

MODES = {
    # pytorch-fid's InceptionV3(resize_input=True, normalize_input=True) on ToTensor's x / 255: bilinear resize
    # as torch's F.interpolate(mode="bilinear", align_corners=False) (half-pixel centres, no antialiasing), then
    # 2 x - 1. clean-fid calls this "legacy_pytorch". The default for pytorch-fid's .pth.
    "pytorch_fid": "x / 255, torch bilinear resize (align_corners=False, no antialiasing), 2 x - 1",
    # The forward of StyleGAN2-ADA's `inception-2015-12-05.pt` (its TorchScript code: affine_grid with theta's
    # translation moved by 1/width - 1/299, grid_sample(x, grid, "bilinear", "border", False), then
    # torch.sub(x0, 128), torch.div(x1, 128)): the source pixel of output pixel j is j * in / 299, TF 1's
    # resize_bilinear(align_corners=False) of the original TF FID code, no antialiasing. clean-fid's
    # "legacy_tensorflow" runs exactly that forward. The default for TorchScript files, including re-exports of
    # its network alone whose forward takes the normalised 299 x 299 input and does none of this.
    "legacy_tensorflow": "TF 1 bilinear resize (source pixel j * in / out, no antialiasing), (x - 128) / 128",
    # clean-fid's "clean" (resize.py: make_resizer("PIL", False, "bicubic", (299, 299))): each channel as a
    # float32 PIL image ('F'), Image.resize(BICUBIC) (antialiased: the kernel widens by the downscale factor),
    # clip to [0, 255]; then InceptionV3W's (x - 128) / 128 (Parmar et al. 2022).
    "clean": "PIL bicubic resize with antialiasing per channel in float, clip to [0, 255], (x - 128) / 128",
}
DEFAULT_MODES = {"state_dict": "pytorch_fid", "torchscript": "legacy_tensorflow"}
SIZE = 299


def _bicubic(x, a=-0.5):
  """Keys' cubic convolution kernel with a = -0.5, as PIL's bicubic_filter (libImaging/Resample.c)."""
  x = np.abs(x)
  return np.where(x < 1, ((a + 2) * x - (a + 3)) * x * x + 1, np.where(x < 2, (((x - 5) * x + 8) * x - 4) * a, 0.0))


@functools.lru_cache(maxsize=None)
def resize_matrix(in_size, out_size, method) -> np.ndarray:
  """float32 [out_size, in_size]: row j holds the weights of the input pixels that output pixel j blends.

  "bilinear_tf1": TF 1's resize_bilinear(align_corners=False): source s = j in / out, blending floor(s) and the
  next pixel (clamped to the last) by the fraction of s. Exact: StyleGAN2-ADA's grid_sample computes s in
  float32 through normalised coordinates, which moves its pixels by up to ~0.015 (of 255) from these.
  "bicubic_pil": PIL's precompute_coeffs (libImaging/Resample.c) for BICUBIC: support 2 scaled by the
  downscale factor (antialiasing), centre (j + 0.5) in / out, taps [int(c - r + 0.5), int(c + r + 0.5)) clamped
  to the image, weights bicubic((i - c + 0.5) / scale) normalised to sum to 1."""
  scale = in_size / out_size
  matrix = np.zeros((out_size, in_size), np.float64)
  rows = np.arange(out_size)
  if method == "bilinear_tf1":
    source = rows * scale
    low = np.minimum(np.floor(source).astype(np.int64), in_size - 1)
    fraction = source - low
    np.add.at(matrix, (rows, low), 1.0 - fraction)
    np.add.at(matrix, (rows, np.minimum(low + 1, in_size - 1)), fraction)
  elif method == "bicubic_pil":
    filter_scale = max(scale, 1.0)
    support = 2.0 * filter_scale
    for j in rows:
      centre = (j + 0.5) * scale
      first, stop = max(int(centre - support + 0.5), 0), min(int(centre + support + 0.5), in_size)
      weights = _bicubic((np.arange(first, stop) - centre + 0.5) / filter_scale)
      matrix[j, first:stop] = weights / weights.sum() if weights.sum() != 0 else weights
  else:
    raise ValueError(f"unknown resize method {method!r}")
  return matrix.astype(np.float32)


def resize(x, size, method):
  """float [N, H, W, C] -> [N, size[0], size[1], C] by "bilinear" (torch's F.interpolate(mode="bilinear",
  align_corners=False): half-pixel centres, no antialiasing; jax.image.resize computes it as torch does, to
  float rounding) or a resize_matrix method, applied to the width first, then the height (PIL's order)."""
  if method == "bilinear":
    return jax.image.resize(x, (x.shape[0], *size, x.shape[3]), "bilinear", antialias=False)
  by_width = jnp.asarray(resize_matrix(x.shape[2], size[1], method))
  by_height = jnp.asarray(resize_matrix(x.shape[1], size[0], method))
  x = jnp.einsum("pw,nhwc->nhpc", by_width, x, precision=_PRECISION)
  return jnp.einsum("oh,nhpc->nopc", by_height, x, precision=_PRECISION)


def preprocess(images, mode="pytorch_fid"):
  """uint8 [N, H, W, C] (C = 1 or 3) -> float32 [N, 299, 299, 3], the network's input, as MODES[mode] says."""
  x = jnp.asarray(images, jnp.float32)
  if x.shape[-1] == 1:
    x = jnp.repeat(x, 3, axis=-1)
  if mode == "pytorch_fid":
    return 2.0 * resize(x / 255.0, (SIZE, SIZE), "bilinear") - 1.0
  if mode == "legacy_tensorflow":
    return (resize(x, (SIZE, SIZE), "bilinear_tf1") - 128.0) / 128.0
  if mode == "clean":
    return (jnp.clip(resize(x, (SIZE, SIZE), "bicubic_pil"), 0.0, 255.0) - 128.0) / 128.0
  raise UserError(f"unknown Inception input mode {mode!r}; allowed: {', '.join(MODES)}")


@functools.partial(jax.jit, static_argnames="mode")
def _apply(params, images, mode="pytorch_fid"):
  return FIDInceptionV3(with_logits="fc" in params).apply({"params": params}, preprocess(images, mode))


def init_params(seed=0):
  """Random parameters (for tests); real ones come from load_weights."""
  return FIDInceptionV3().init(jax.random.PRNGKey(seed), jnp.zeros((1, 299, 299, 3)))["params"]


def features(params, images, batch_size=50, mode="pytorch_fid") -> np.ndarray:
  """float32 [N, 2048]: pool features of uint8 images [N, H, W, C], their input prepared as MODES[mode]."""
  return _outputs(params, images, batch_size, mode)[0]


def logits(params, images, batch_size=50, mode="pytorch_fid") -> np.ndarray:
  """float32 [N, 1008]: the classifier logits (the Inception Score uses their softmax)."""
  if "fc" not in params:
    raise UserError("these Inception weights have no classifier layer: no logits (and no Inception Score)")
  return _outputs(params, images, batch_size, mode)[1]


def _outputs(params, images, batch_size, mode):
  """(pool features [N, 2048], logits [N, 1008] or [N, 0] without the classifier), float32."""
  parts = [_apply(params, images[i:i + batch_size], mode) for i in range(0, len(images), batch_size)]
  pool = np.concatenate([np.asarray(p[0], np.float32) for p in parts])
  if "fc" not in params:
    return pool, np.zeros((len(pool), 0), np.float32)
  return pool, np.concatenate([np.asarray(p[1], np.float32) for p in parts])


def parse_spec(where):
  """'<weights file>[:<mode>]' (what follows config.eval_features' 'inception:') -> (path, mode), mode None for
  the file's own (DEFAULT_MODES). A file whose name itself ends in ':<word>' is taken whole if it exists."""
  path, sep, mode = where.rpartition(":")
  if not sep or os.path.isfile(where):
    return where, None
  if mode in MODES:
    return path, mode
  if os.path.isfile(path):
    raise UserError(f"unknown Inception input mode {mode!r} in {where!r}; allowed: {', '.join(MODES)}")
  return where, None


class Extractor:
  """The FID Inception as an evaluation extractor (config.eval_features = 'inception:<weights file>[:<mode>]').

  Its name, which goes into every score and reference cache, is `inception-<file hash>` for pytorch_fid input
  (what every earlier such name meant) and `inception-<file hash>-<mode>` for the others. Without the classifier
  (`has_logits` False) its class probabilities are [N, 0]: no Inception Score or class coverage."""

  def __init__(self, where):
    from gan_jax.metrics import reference  # pylint: disable=g-import-not-at-top
    path, mode = parse_spec(where)
    self.params, kind = _load(path)
    self.mode = mode or DEFAULT_MODES[kind]
    self.has_logits = "fc" in self.params
    self.name = f"inception-{reference.file_digest(path)}" + ("" if self.mode == "pytorch_fid" else f"-{self.mode}")

  def features_and_probs(self, images, batch_size=50):
    pool, out = _outputs(self.params, images, batch_size, self.mode)
    return pool, np.asarray(jax.nn.softmax(out), np.float32) if self.has_logits else out


# --------------------------------------------------------------------------------------------------------
# Weights: torch.save state dicts and TorchScript archives, read without torch and without running pickled code.


def load_weights(path):
  """Params of FIDInceptionV3 from pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` or the TorchScript
  `inception-2015-12-05.pt` (StyleGAN2-ADA, clean-fid), told apart by content (file_format). Params from a
  TorchScript file without the classifier have no 'fc'."""
  return _load(path)[0]


def _load(path):
  """(params, file_format(path))."""
  kind = file_format(path)
  if kind == "torchscript":
    return state_dict_to_params(torchscript_to_state_dict(read_torchscript(path))), kind
  return load_pytorch_fid_weights(path), kind


def load_pytorch_fid_weights(path):
  """Params of FIDInceptionV3 from pytorch-fid's `pt_inception-2015-12-05-6726825d.pth`."""
  return state_dict_to_params(read_torch_state_dict(path))


def file_format(path) -> str:
  """'torchscript' for a TorchScript archive (a zip whose data.pkl has constants.pkl or code/ beside it), else
  'state_dict' (torch.save's zip or legacy format, or anything else, which the state-dict reader refuses)."""
  if not zipfile.is_zipfile(path):
    return "state_dict"
  try:
    with zipfile.ZipFile(path) as archive:
      names = archive.namelist()
  except (OSError, zipfile.BadZipFile) as e:
    raise UserError(f"cannot read {path}: {e}") from None
  prefix = _archive_prefix(names)
  script = prefix is not None and (f"{prefix}constants.pkl" in names or any(n.startswith(f"{prefix}code/")
                                                                           for n in names))
  return "torchscript" if script else "state_dict"


def state_dict_to_params(state_dict):
  """{'Mixed_5b.branch1x1.conv.weight': array, ...} -> the Flax params tree (conv kernels OIHW -> HWIO). The
  classifier (fc.weight, fc.bias) may be absent: then the params have no 'fc'."""
  flat = {}
  for key, value in state_dict.items():
    *path, leaf = key.split(".")
    if leaf == "num_batches_tracked":
      continue
    value = np.asarray(value, np.float32)
    if leaf == "weight" and path[-1] == "conv":
      flat[(*path, "kernel")] = value.transpose(2, 3, 1, 0)
    elif leaf == "weight" and path[-1] == "fc":
      flat[(*path, "kernel")] = value.T
    else:
      flat[(*path, leaf)] = value
  params = flax.traverse_util.unflatten_dict(flat)
  expected = jax.eval_shape(init_params)
  if "fc" not in params:
    expected = {k: v for k, v in expected.items() if k != "fc"}
  shapes = lambda tree: {k: tuple(v.shape) for k, v in flax.traverse_util.flatten_dict(tree).items()}
  got, want = shapes(params), shapes(expected)
  if got != want:
    missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    wrong = sorted(k for k in set(want) & set(got) if want[k] != got[k])
    raise UserError("not an FID Inception state dict: " + "; ".join(
        f"{what} {', '.join('.'.join(k) for k in keys[:3])}{' ...' if len(keys) > 3 else ''}"
        for what, keys in (("missing", missing), ("unexpected", extra), ("wrong shape", wrong)) if keys))
  return jax.tree.map(jnp.asarray, params)


# The TorchScript FID Inception (StyleGAN2-ADA's conversion of the TF graph; its code/__torch__/inceptionv3.py
# read as text) -> pytorch-fid's names. Every conv is a Conv2dLayer: torch.conv2d(x, weight, None, stride,
# padding), batch_norm(x, mean, var, None, beta, eps=0.001) (no scale: TF's BatchNorm has none, so pytorch-fid's
# bn.weight is 1), relu. `layers` is a Sequential conv, conv_1, conv_2, pool0, conv_3, conv_4, pool1, mixed ..
# mixed_10, pool2 (AvgPool2d(8): the mean over the 8 x 8 map at 299 x 299), reshaped to [-1, 2048]. A
# Sequential's children are conv, conv_1, conv_2, ... (and pool); InceptionE names its convs flat.
_TORCHSCRIPT_STEM = {"conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3", "conv_2": "Conv2d_2b_3x3",
                     "conv_3": "Conv2d_3b_1x1", "conv_4": "Conv2d_4a_3x3"}
_TORCHSCRIPT_BLOCKS = {  # layers.<child>: (pytorch-fid's block, its kind)
    "mixed": ("Mixed_5b", "A"), "mixed_1": ("Mixed_5c", "A"), "mixed_2": ("Mixed_5d", "A"),
    "mixed_3": ("Mixed_6a", "B"), "mixed_4": ("Mixed_6b", "C"), "mixed_5": ("Mixed_6c", "C"),
    "mixed_6": ("Mixed_6d", "C"), "mixed_7": ("Mixed_6e", "C"), "mixed_8": ("Mixed_7a", "D"),
    "mixed_9": ("Mixed_7b", "E"), "mixed_10": ("Mixed_7c", "E")}
_TORCHSCRIPT_BRANCHES = {  # kind: {conv inside the block: pytorch-fid's branch}, in the order they concatenate
    "A": {"conv": "branch1x1", "tower.conv": "branch5x5_1", "tower.conv_1": "branch5x5_2",
          "tower_1.conv": "branch3x3dbl_1", "tower_1.conv_1": "branch3x3dbl_2", "tower_1.conv_2": "branch3x3dbl_3",
          "tower_2.conv": "branch_pool"},                                  # tower_2.pool: avg 3x3, no padded zeros
    "B": {"conv": "branch3x3", "tower.conv": "branch3x3dbl_1", "tower.conv_1": "branch3x3dbl_2",
          "tower.conv_2": "branch3x3dbl_3"},                               # pool: max 3x3 stride 2
    "C": {"conv": "branch1x1", "tower.conv": "branch7x7_1", "tower.conv_1": "branch7x7_2",
          "tower.conv_2": "branch7x7_3", "tower_1.conv": "branch7x7dbl_1", "tower_1.conv_1": "branch7x7dbl_2",
          "tower_1.conv_2": "branch7x7dbl_3", "tower_1.conv_3": "branch7x7dbl_4", "tower_1.conv_4": "branch7x7dbl_5",
          "tower_2.conv": "branch_pool"},
    "D": {"tower.conv": "branch3x3_1", "tower.conv_1": "branch3x3_2", "tower_1.conv": "branch7x7x3_1",
          "tower_1.conv_1": "branch7x7x3_2", "tower_1.conv_2": "branch7x7x3_3", "tower_1.conv_3": "branch7x7x3_4"},
    "E": {"conv": "branch1x1", "tower_conv": "branch3x3_1", "tower_mixed_conv": "branch3x3_2a",
          "tower_mixed_conv_1": "branch3x3_2b", "tower_1_conv": "branch3x3dbl_1", "tower_1_conv_1": "branch3x3dbl_2",
          "tower_1_mixed_conv": "branch3x3dbl_3a", "tower_1_mixed_conv_1": "branch3x3dbl_3b",
          "tower_2_conv": "branch_pool"},                                  # tower_2_pool: avg (7b) or max (7c)
}
# Conv2dLayer tensor -> pytorch-fid's tensor of the same conv.
_TORCHSCRIPT_LEAVES = {"weight": "conv.weight", "beta": "bn.bias", "mean": "bn.running_mean",
                       "var": "bn.running_var"}
# StyleGAN2-ADA's full file also has the classifier, `output` (a Linear 2048 -> 1008); the files without it
# (e.g. a re-export of just the feature network) give params without 'fc'.
_TORCHSCRIPT_CLASSIFIER = {"output.weight": "fc.weight", "output.bias": "fc.bias"}


def torchscript_conv_names() -> dict:
  """{TorchScript conv path under the network ('layers.mixed.tower.conv_1'): pytorch-fid's name for it
  ('Mixed_5b.branch5x5_2')}, for all 94 convs."""
  names = {f"layers.{child}": name for child, name in _TORCHSCRIPT_STEM.items()}
  for child, (block, kind) in _TORCHSCRIPT_BLOCKS.items():
    names.update({f"layers.{child}.{conv}": f"{block}.{branch}"
                  for conv, branch in _TORCHSCRIPT_BRANCHES[kind].items()})
  return names


@functools.lru_cache(maxsize=None)
def _conv_geometry():
  """{pytorch-fid conv name: (stride, (pad_h, pad_w))} of every BasicConv2d in FIDInceptionV3, as built."""
  geometry = {}

  def record(next_fun, args, kwargs, context):
    if isinstance(context.module, BasicConv2d) and context.method_name == "__call__":
      geometry[".".join(context.module.path)] = (context.module.stride, tuple(context.module.padding))
    return next_fun(*args, **kwargs)

  with nn.intercept_methods(record):   # A fresh function: a trace jax cached from an earlier call runs no modules.
    jax.eval_shape(lambda: FIDInceptionV3().init(jax.random.PRNGKey(0), jnp.zeros((1, 299, 299, 3))))
  if not geometry:
    raise AssertionError("no BasicConv2d was traced")
  return geometry


TorchScriptModule = collections.namedtuple("TorchScriptModule", "tensors attributes classes")
TorchScriptModule.__doc__ = """A TorchScript module tree, flattened by dotted path: tensors {'net.layers.conv.weight':
array}, attributes {'net.layers.conv.stride': 2} (the other pickled values) and classes {'net.layers.conv':
'__torch__.inceptionv3.Conv2dLayer'} ('' is the root)."""


def torchscript_to_state_dict(module) -> dict:
  """pytorch-fid's state dict from a TorchScript FID Inception (read_torchscript), checked: every conv there
  with the stride and padding of this port's, Mixed_7b pooling by average and Mixed_7c by max (the TF graph's
  quirk), and no tensor left over."""
  holders = sorted((p.rpartition(".")[0] for p in module.classes if p.rpartition(".")[2] == "layers"), key=len)
  if not holders:
    raise UserError("not the TorchScript FID Inception: no module holds `layers`")
  root = f"{holders[0]}." if holders[0] else ""   # 'net.' in a wrapper, '' in StyleGAN2-ADA's own file.
  state, used, geometry = {}, set(), _conv_geometry()
  for conv, name in torchscript_conv_names().items():
    for leaf, target in _TORCHSCRIPT_LEAVES.items():
      key = f"{root}{conv}.{leaf}"
      if key not in module.tensors:
        raise UserError(f"not the TorchScript FID Inception: no tensor {key}")
      state[f"{name}.{target}"] = module.tensors[key]
      used.add(key)
    state[f"{name}.bn.weight"] = np.ones_like(state[f"{name}.bn.bias"])  # batch_norm(x, mean, var, None, beta)
    stride, padding = (module.attributes.get(f"{root}{conv}.{key}") for key in ("stride", "padding"))
    found = (stride, tuple(padding) if isinstance(padding, list) else (padding, padding))  # An int or [h, w].
    if found != geometry[name]:
      raise UserError(f"not the FID Inception: {root}{conv} has (stride, padding) {found}, {name} {geometry[name]}")
  for child, kind in (("mixed_9", "AvgPool2d"), ("mixed_10", "MaxPool2d")):
    found = module.classes.get(f"{root}layers.{child}.tower_2_pool", "nothing")
    if not found.endswith(f".{kind}"):
      raise UserError(f"not the FID Inception: {root}layers.{child}.tower_2_pool is {found}, not {kind}")
  for key, target in _TORCHSCRIPT_CLASSIFIER.items():
    if f"{root}{key}" in module.tensors:
      state[target] = module.tensors[f"{root}{key}"]
      used.add(f"{root}{key}")
  unused = sorted(set(module.tensors) - used)
  if unused:
    raise UserError(f"not the TorchScript FID Inception: unexpected tensors {', '.join(unused[:3])}"
                    f"{' ...' if len(unused) > 3 else ''}")
  return state


_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16, "CharStorage": np.int8,
    "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class _Storage:
  """A torch storage's dtype and, once read, its data (a flat numpy array)."""

  def __init__(self, dtype):
    self.dtype, self.data = dtype, None


_LazyTensor = collections.namedtuple("_LazyTensor", "storage offset size stride")


def _rebuild_tensor(storage, offset, size, stride, *unused_args):
  return _LazyTensor(storage, offset, tuple(size), tuple(stride))


class _ScriptObject:
  """An inert stand-in for a TorchScript class (`__torch__.*`): it keeps the attributes unpickled into it
  (submodules, tensors, settings such as a conv's stride) and has no behaviour of its own."""
  qualified_name = "__torch__"

  def __setstate__(self, state):
    if not isinstance(state, dict):
      raise pickle.UnpicklingError(f"unexpected state of {self.qualified_name}: {type(state).__name__}")
    self.attributes = dict(state)


# TorchScript's typed containers (torch/jit/_pickle.py): build_intlist([1, 0]) is the list; the type tag is dropped.
_JIT_PICKLE = {"build_intlist": list, "build_doublelist": list, "build_boollist": list,
               "restore_type_tag": lambda value, unused_type: value}


class _RefusedGlobal(pickle.UnpicklingError):
  """A pickle asked for a class or function outside the allowed few."""


class _SafeUnpickler(pickle.Unpickler):
  """Allows only what a state dict of tensors needs (and, with `script`, TorchScript's module classes as inert
  _ScriptObject stand-ins and its typed-list builders); anything else (code to run) is refused."""

  def __init__(self, file, storage_for, script=False):
    super().__init__(file)
    self._storage_for, self._script, self._classes = storage_for, script, {}

  def find_class(self, module, name):
    if (module, name) == ("collections", "OrderedDict"):
      return collections.OrderedDict
    if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
      return _rebuild_tensor
    if module == "torch" and name in _STORAGE_DTYPES:
      return _STORAGE_DTYPES[name]
    if self._script and module == "torch.jit._pickle" and name in _JIT_PICKLE:
      return _JIT_PICKLE[name]
    if self._script and (module == "__torch__" or module.startswith("__torch__.")) and name.isidentifier():
      qualified = f"{module}.{name}"
      if qualified not in self._classes:
        self._classes[qualified] = type(name, (_ScriptObject,), {"qualified_name": qualified})
      return self._classes[qualified]
    raise _RefusedGlobal(f"refusing to load {module}.{name}: not part of a plain state dict"
                         + (" or a TorchScript module tree" if self._script else ""))

  def persistent_load(self, pid):
    # ('storage', storage_type, key, location, numel[, view_metadata]) in both of torch's formats.
    if not isinstance(pid, tuple) or pid[0] != "storage":
      raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
    return self._storage_for(str(pid[2]), pid[1])


_READ_ERRORS = (OSError, pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError, struct.error,
                zipfile.BadZipFile)


def read_torch_state_dict(path) -> dict:
  """{name: float32/int numpy array} from a torch.save'd dict of tensors (zip or legacy format)."""
  try:
    if zipfile.is_zipfile(path):
      return _materialise(_read_zip(path))
    with open(path, "rb") as f:
      return _materialise(_read_legacy(f))
  except FileNotFoundError:
    raise UserError(f"Inception weights not found: {path}") from None
  except _READ_ERRORS as e:
    raise UserError(f"cannot read {path} as a torch state dict: {e}") from None


def read_torchscript(path) -> TorchScriptModule:
  """The module tree of a TorchScript archive (torch.jit.save): data.pkl unpickled with TorchScript's classes as
  inert stand-ins, tensors from the data/<key> records. constants.pkl and the code/ files are not read."""
  try:
    tree = _read_zip(path, script=True)
  except FileNotFoundError:
    raise UserError(f"Inception weights not found: {path}") from None
  except _READ_ERRORS as e:
    raise UserError(f"cannot read {path} as a TorchScript archive: {e}") from None
  if not isinstance(tree, _ScriptObject):
    raise UserError(f"cannot read {path} as a TorchScript archive: its data.pkl holds a {type(tree).__name__}")
  module = TorchScriptModule({}, {}, {})

  def walk(obj, prefix):
    module.classes[prefix] = obj.qualified_name
    for key, value in getattr(obj, "attributes", {}).items():
      name = f"{prefix}.{key}" if prefix else key
      if isinstance(value, _ScriptObject):
        walk(value, name)
      elif isinstance(value, _LazyTensor):
        module.tensors[name] = _tensor(value)
      else:
        module.attributes[name] = value

  walk(tree, "")
  return module


def _archive_prefix(names):
  """The folder of an archive's data.pkl ('archive/', 'out_jit_module/'), or None without one."""
  return next((n[:-len("data.pkl")] for n in names if n.endswith("data.pkl") and n.count("/") <= 1), None)


def _read_zip(path, script=False):
  """The unpickled data.pkl of a torch zip archive, its tensors' storages read from the data/<key> records."""
  with zipfile.ZipFile(path) as archive:
    prefix = _archive_prefix(archive.namelist())
    if prefix is None:
      raise ValueError("no data.pkl in the archive")
    storages = {}

    def storage_for(key, dtype):
      if key not in storages:
        storages[key] = _Storage(dtype)
        storages[key].data = np.frombuffer(archive.read(f"{prefix}data/{key}"), dtype).copy()
      return storages[key]

    with archive.open(f"{prefix}data.pkl") as f:
      return _SafeUnpickler(f, storage_for, script=script).load()


def _read_legacy(f):
  """torch's pre-1.6 format: magic, protocol and sys-info pickles, the object pickle, the storage keys, then
  each storage as an int64 element count and its raw little-endian bytes."""
  try:
    magic = _SafeUnpickler(f, None).load()
  except _RefusedGlobal:
    raise
  except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError) as e:
    raise ValueError(f"neither a torch.save file (pytorch-fid's .pth) nor a TorchScript archive ({e})") from None
  if magic != 0x1950A86A20F9469CFC6C:
    raise ValueError("neither a torch.save file (pytorch-fid's .pth) nor a TorchScript archive (bad magic number)")
  _SafeUnpickler(f, None).load()  # Protocol version.
  _SafeUnpickler(f, None).load()  # sys_info.
  storages = {}

  def storage_for(key, dtype):
    return storages.setdefault(key, _Storage(dtype))

  tree = _SafeUnpickler(f, storage_for).load()
  keys = _SafeUnpickler(f, None).load()
  for key in keys:
    storage = storages[key]
    (numel,) = struct.unpack("<q", f.read(8))
    itemsize = np.dtype(storage.dtype).itemsize
    storage.data = np.frombuffer(f.read(numel * itemsize), storage.dtype).copy()
  return tree


def _tensor(value):
  """The numpy array of a _LazyTensor (its storage read), with its offset and strides."""
  data = value.storage.data
  itemsize = data.dtype.itemsize
  return np.lib.stride_tricks.as_strided(
      data[value.offset:], shape=value.size, strides=[s * itemsize for s in value.stride]).copy()


def _materialise(tree):
  if not isinstance(tree, dict):
    raise ValueError(f"expected a state dict, found {type(tree).__name__}")
  return {name: _tensor(value) if isinstance(value, _LazyTensor) else value for name, value in tree.items()}
