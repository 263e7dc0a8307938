"""The FID Inception network (Heusel et al. 2017; Szegedy et al. 2016) in Flax: pytorch-fid's variant, block for
block (its FIDInceptionA/C/E_1/E_2 blocks), with its input handling and weights.

`load_pytorch_fid_weights(path)` reads pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` (or any state dict
of that network saved by torch.save) without executing pickled code and without torch; `features(params,
images)` gives the 2,048-d pool features of uint8 images [N, H, W, C] and `logits(...)` the 1,008 logits (for
the Inception Score). Nothing is downloaded: the weight file is a local path (`config.eval_features =
'inception:<path>'`). `scripts/check_inception_parity.py` compares this port with pytorch-fid's own model.
"""
import collections
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
    x = nn.Conv(self.features, self.kernel, strides=self.stride, use_bias=False, name="conv",
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
  """[N, 299, 299, 3] in [-1, 1] -> (pool features [N, 2048], logits [N, 1008])."""

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
    return pool, nn.Dense(1008, name="fc")(pool)


def preprocess(images):
  """uint8 [N, H, W, C] (C = 1 or 3) -> float32 [N, 299, 299, 3] in [-1, 1] as pytorch-fid's InceptionV3:
  x / 255, bilinear resize to 299 (torch's align_corners=False, no antialiasing), then 2 x - 1."""
  x = jnp.asarray(images, jnp.float32) / 255.0
  if x.shape[-1] == 1:
    x = jnp.repeat(x, 3, axis=-1)
  x = jax.image.resize(x, (x.shape[0], 299, 299, 3), "bilinear", antialias=False)
  return 2.0 * x - 1.0


@jax.jit
def _apply(params, images):
  return FIDInceptionV3().apply({"params": params}, preprocess(images))


def init_params(seed=0):
  """Random parameters (for tests); real ones come from load_pytorch_fid_weights."""
  return FIDInceptionV3().init(jax.random.PRNGKey(seed), jnp.zeros((1, 299, 299, 3)))["params"]


def features(params, images, batch_size=50) -> np.ndarray:
  """float32 [N, 2048]: pool features of uint8 images [N, H, W, C]."""
  return _outputs(params, images, batch_size)[0]


def logits(params, images, batch_size=50) -> np.ndarray:
  """float32 [N, 1008]: the classifier logits (the Inception Score uses their softmax)."""
  return _outputs(params, images, batch_size)[1]


def _outputs(params, images, batch_size):
  parts = [_apply(params, images[i:i + batch_size]) for i in range(0, len(images), batch_size)]
  return tuple(np.concatenate([np.asarray(p[k], np.float32) for p in parts]) for k in (0, 1))


class Extractor:
  """The FID Inception as an evaluation extractor (config.eval_features = 'inception:<weights file>')."""

  def __init__(self, path):
    from gan_jax.metrics import reference  # pylint: disable=g-import-not-at-top
    self.params = load_pytorch_fid_weights(path)
    self.name = f"inception-{reference.file_digest(path)}"

  def features_and_probs(self, images, batch_size=50):
    pool, out = _outputs(self.params, images, batch_size)
    return pool, np.asarray(jax.nn.softmax(out), np.float32)


# --------------------------------------------------------------------------------------------------------
# Weights: torch.save files read without torch and without running pickled code.


def load_pytorch_fid_weights(path):
  """Params of FIDInceptionV3 from pytorch-fid's `pt_inception-2015-12-05-6726825d.pth`."""
  return state_dict_to_params(read_torch_state_dict(path))


def state_dict_to_params(state_dict):
  """{'Mixed_5b.branch1x1.conv.weight': array, ...} -> the Flax params tree (conv kernels OIHW -> HWIO)."""
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
  shapes = lambda tree: {k: tuple(v.shape) for k, v in flax.traverse_util.flatten_dict(tree).items()}
  got, want = shapes(params), shapes(expected)
  if got != want:
    missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    wrong = sorted(k for k in set(want) & set(got) if want[k] != got[k])
    raise UserError("not an FID Inception state dict: " + "; ".join(
        f"{what} {', '.join('.'.join(k) for k in keys[:3])}{' ...' if len(keys) > 3 else ''}"
        for what, keys in (("missing", missing), ("unexpected", extra), ("wrong shape", wrong)) if keys))
  return jax.tree.map(jnp.asarray, params)


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


class _SafeUnpickler(pickle.Unpickler):
  """Allows only what a state dict of tensors needs; anything else (code to run) is refused."""

  def __init__(self, file, storage_for):
    super().__init__(file)
    self._storage_for = storage_for

  def find_class(self, module, name):
    if (module, name) == ("collections", "OrderedDict"):
      return collections.OrderedDict
    if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
      return _rebuild_tensor
    if module == "torch" and name in _STORAGE_DTYPES:
      return _STORAGE_DTYPES[name]
    raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not part of a plain state dict")

  def persistent_load(self, pid):
    # ('storage', storage_type, key, location, numel[, view_metadata]) in both of torch's formats.
    if not isinstance(pid, tuple) or pid[0] != "storage":
      raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
    return self._storage_for(str(pid[2]), pid[1])


def read_torch_state_dict(path) -> dict:
  """{name: float32/int numpy array} from a torch.save'd dict of tensors (zip or legacy format)."""
  try:
    if zipfile.is_zipfile(path):
      return _read_zip(path)
    with open(path, "rb") as f:
      return _read_legacy(f)
  except FileNotFoundError:
    raise UserError(f"Inception weights not found: {path}") from None
  except (OSError, pickle.UnpicklingError, EOFError, KeyError, ValueError, struct.error) as e:
    raise UserError(f"cannot read {path} as a torch state dict: {e}") from None


def _read_zip(path):
  with zipfile.ZipFile(path) as archive:
    pickle_name = next(n for n in archive.namelist() if n.endswith("data.pkl"))
    prefix = pickle_name[:-len("data.pkl")]
    storages = {}

    def storage_for(key, dtype):
      if key not in storages:
        storages[key] = _Storage(dtype)
        storages[key].data = np.frombuffer(archive.read(f"{prefix}data/{key}"), dtype).copy()
      return storages[key]

    with archive.open(pickle_name) as f:
      tree = _SafeUnpickler(f, storage_for).load()
  return _materialise(tree)


def _read_legacy(f):
  """torch's pre-1.6 format: magic, protocol and sys-info pickles, the object pickle, the storage keys, then
  each storage as an int64 element count and its raw little-endian bytes."""
  magic = _SafeUnpickler(f, None).load()
  if magic != 0x1950A86A20F9469CFC6C:
    raise ValueError("not a torch.save file (bad magic number)")
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
  return _materialise(tree)


def _materialise(tree):
  if not isinstance(tree, dict):
    raise ValueError(f"expected a state dict, found {type(tree).__name__}")
  out = {}
  for name, value in tree.items():
    if isinstance(value, _LazyTensor):
      data = value.storage.data
      itemsize = data.dtype.itemsize
      value = np.lib.stride_tricks.as_strided(
          data[value.offset:], shape=value.size, strides=[s * itemsize for s in value.stride]).copy()
    out[name] = value
  return out
