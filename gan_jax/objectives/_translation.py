"""What the image-to-image objectives (pix2pix.py, cyclegan.py) share: PatchGAN losses, the random jitter,
generators applied group by group at test time, and the evaluation split's examples as sampling conditions.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan_jax import data
from gan_jax.errors import UserError
from gan_jax.objectives import gan


def check_plain_gan_keys(config, objective: str) -> None:
  """Rejects a plain-GAN knob (objectives/gan.py's) changed from its default, which this objective would ignore,
  and a config.loss it does not take."""
  from gan_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  patch_losses(config.loss)
  config_lib.check_at_defaults(config, gan.PLAIN_GAN_KEYS, objective)


def not_applicable(config) -> set:
  """The plain-GAN keys, which check_plain_gan_keys holds at their defaults (objectives.not_applicable)."""
  del config  # Whatever the values: the translation objectives read none of these keys.
  return set(gan.PLAIN_GAN_KEYS) | {"pack_slot_statistics", "aux_weight", "regularizer.lazy_every", "eval_ref_split"}


def patch_losses(loss_name):
  """(d_loss(real_logits, fake_logits), g_loss(fake_logits)) over PatchGAN logit maps [B, h, w], as the authors'
  code computes them (junyanz/pytorch-CycleGAN-and-pix2pix, models/networks.py GANLoss, and the models' backward_D):
  a criterion l(logits, target) averaged over every patch, D's loss halved, 0.5 [l(real, 1) + l(fake, 0)], G's
  l(fake, 1). config.loss "non_saturating" is their 'vanilla' (binary cross-entropy on logits: pix2pix), "lsgan"
  their 'lsgan' (mean squared error, Mao et al. 2017: CycleGAN)."""
  criteria = {"non_saturating": lambda logits, target: jnp.mean(optax.sigmoid_binary_cross_entropy(
      logits, jnp.full_like(logits, target))),
              "lsgan": lambda logits, target: jnp.mean(jnp.square(logits - target))}
  if loss_name not in criteria:
    raise UserError(f"the translation objectives take config.loss 'non_saturating' (pix2pix's vanilla GAN) or "
                    f"'lsgan' (CycleGAN's), not {loss_name!r}")
  criterion = criteria[loss_name]
  return (lambda real, fake: 0.5 * (criterion(real, 1.0) + criterion(fake, 0.0))), (lambda fake: criterion(fake, 1.0))


def apply_train(module, params, collections, *args, **kwargs):
  """(output, updated collections) of `module` in train mode: BatchNorm on batch statistics, its running
  averages updated (a network without collections gives {})."""
  out, new = module.apply({"params": params, **collections}, *args, train=True, mutable=list(collections), **kwargs)
  return out, dict(new)


def random_jitter(key, images, load_size: int, flip: bool):
  """pix2pix's and CycleGAN's random jitter (Isola et al. 2017, Sec. 6.2: 256 -> 286 -> random crop 256; the
  official data/base_dataset.py get_transform, preprocess "resize_and_crop"): each image of `images` (a tuple of
  [B, H, W, C_i]) resized to load_size, bicubic as PIL's Image.BICUBIC there and clipped to [-1, 1] as PIL's uint8
  result is, then cropped back at a random offset per example, the same offset (and, with `flip`, the same
  mirroring) for every image of the tuple, so a pair's input and target stay aligned."""
  first = images[0]
  batch, size = first.shape[0], first.shape[1]
  offset_key, flip_key = jax.random.split(key)
  offsets = jax.random.randint(offset_key, (batch, 2), 0, load_size - size + 1)
  mirrored = jax.random.bernoulli(flip_key, 0.5, (batch,)) if flip else jnp.zeros((batch,), bool)

  def one(image, offset, mirror):  # [H, W, C] -> [H, W, C]
    big = jnp.clip(jax.image.resize(image, (load_size, load_size, image.shape[-1]), "bicubic"), -1.0, 1.0)
    crop = jax.lax.dynamic_slice(big, (offset[0], offset[1], 0), (size, size, image.shape[-1]))
    return jnp.where(mirror, crop[:, ::-1], crop)

  return tuple(jax.vmap(one)(x, offsets, mirrored) for x in images)


def load_size(resolution: int) -> int:
  """The resize before the random crop: 286 for 256 (Isola et al.), the same ratio at other sizes."""
  return int(round(resolution * 286 / 256))


def apply_in_groups(module, variables, x, group: int, stochastic: bool, key, first: int = 0):
  """A generator in eval mode on each run of `group` consecutive images of x [N, ...] (N a multiple of group)
  alone: with `stochastic` (pix2pix's test mode), train-mode BatchNorm on each group's own statistics, "the
  statistics of the test batch" (Isola et al. 2017, Sec. 3.1; group 1 is their batch of one image), and dropout
  with key fold_in(key, first + g) for group g."""
  def one(images, index):
    return module.apply(variables, images, train=False, stochastic=stochastic,
                        rngs={"dropout": jax.random.fold_in(key, first + index)})
  grouped = x.reshape(x.shape[0] // group, group, *x.shape[1:])
  out = jax.vmap(one)(grouped, jnp.arange(grouped.shape[0]))
  return out.reshape(x.shape[0], *out.shape[2:])


def generate_in_batches(module, variables, x, stochastic: bool, key, batch_size: int = 256,
                        group: int = 1) -> np.ndarray:
  """float32 numpy outputs of `module` (apply_in_groups: each `group` of consecutive images alone, the last one
  possibly smaller), about `batch_size` images at a time; the outputs do not depend on `batch_size`."""
  chunk = max(group, batch_size // group * group)
  outputs = []
  for start in range(0, x.shape[0], chunk):
    part = x[start:start + chunk]
    full = part.shape[0] // group * group
    for begin, end, size in ((0, full, group), (full, part.shape[0], part.shape[0] - full)):
      if end > begin:
        run = _grouped_jit(module, stochastic, size)
        out = run(variables, part[begin:end], key, (start + begin) // group)
        outputs.append(np.asarray(jax.device_get(out), np.float32))
  return np.concatenate(outputs)


@functools.lru_cache(maxsize=None)
def _grouped_jit(module, stochastic: bool, group: int):
  """The compiled apply_in_groups of generate_in_batches, one per (module, mode, group): compiled once per batch
  shape, not at every evaluation."""
  return jax.jit(lambda variables, x, key, first: apply_in_groups(module, variables, x, group, stochastic, key,
                                                                  first))


class EvaluationExamples:
  """The first examples of an evaluation split (inputs, their true targets where the data is paired, their labels
  where it has them), loaded once: the fixed inputs of sample grids and evaluations."""

  def __init__(self, source: data.Source):
    self.source = source
    self._examples = None

  def get(self) -> dict:
    if self._examples is None:
      self._examples = data.load_examples(self.source)
    return self._examples

  def pick(self, key, num: int) -> dict:
    """`num` examples in an order drawn from `key` (cycled through when the split is smaller)."""
    examples = self.get()
    total = len(next(iter(examples.values())))
    order = np.asarray(jax.random.permutation(key, total))
    index = np.resize(order, num)
    return {role: value[index] for role, value in examples.items()}


def check_inputs(inputs, shape) -> np.ndarray:
  """Given input images [N, H, W, C] float in [-1, 1], or a UserError saying the shape the generator takes."""
  inputs = np.asarray(inputs, np.float32)
  if inputs.ndim != 4 or tuple(inputs.shape[1:]) != tuple(shape):
    raise UserError(f"--inputs: images of shape {tuple(inputs.shape[1:])}, but this run's generator takes "
                    f"{tuple(shape)} (height, width, channels)")
  return inputs


def rows_picture(rows) -> np.ndarray:
  """A grid whose columns are examples and whose rows are `rows` (e.g. input | output | target), each [N, H, W, C]
  in [-1, 1] with 1 or 3 channels: uint8 [H', W', 3]."""
  from gan_jax import images  # pylint: disable=g-import-not-at-top  (PIL: only to draw)
  rows = [np.repeat(r, 3, axis=-1) if r.shape[-1] == 1 else r for r in rows]
  stacked = np.concatenate(rows, axis=0)
  return images.grid(images.to_uint8(stacked), columns=rows[0].shape[0])
