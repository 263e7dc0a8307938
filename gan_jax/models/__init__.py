"""Model registry: `config.model_name` names a module here whose `make_models(**config.model)` builds the pair.

A model module defines `make_models(...) -> GANModels`; its keyword arguments are the keys `config.model` may
hold. Generators are called as `G(z, train=..., labels=...)` with z [B, latent_dim] (`sample_latents`);
discriminators as `D(x, train=..., labels=...)` with x [B, *data_shape] (images in [-1, 1]), returning logits
[B], or (logits, aux) when the model has an auxiliary head (`GANModels.aux`: AC-GAN's class logits, InfoGAN's
Q). `labels` [B] int32 are given only to class-conditional models (`num_classes` > 0). With PacGAN packing D's
input has the last axis `pack` times wider; models need not know, as Flax infers input sizes.
"""
import dataclasses
import importlib
import inspect

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.errors import UserError

_MODULES = ("dcgan", "mlp", "translation", "stylegan2", "resnet", "progan", "dfgan", "attngan")


@dataclasses.dataclass(frozen=True)
class GANModels:
  generator: nn.Module
  discriminator: nn.Module
  latent_dim: int     # G's input size, InfoGAN's codes included.
  data_shape: tuple  # Shape of one sample: (H, W, C) for images, (D,) for vectors.
  num_classes: int = 0       # > 0: G (and D, unless AC-GAN) take labels [B] in [0, num_classes).
  aux: str = ""              # D's auxiliary head: "classes" (AC-GAN), "info" (InfoGAN's Q) or "".
  info_categorical: int = 0  # InfoGAN: categories of the categorical code (one-hot in z), 0 for none.
  info_continuous: int = 0   # InfoGAN: number of continuous codes, U(-1, 1), at the end of z.
  text_dim: int = 0          # > 0: G and D also take a sentence feature [B, text_dim] (`sentence=`, text to image).

  @property
  def makes_images(self) -> bool:
    return len(self.data_shape) == 3

  @property
  def noise_dim(self) -> int:
    """The leading part of z that is N(0, 1) noise; InfoGAN's codes follow it."""
    return self.latent_dim - self.info_categorical - self.info_continuous


def sample_latents(models: GANModels, key, num: int):
  """G's input z [num, latent_dim]: N(0, 1) noise, then InfoGAN's codes (Chen et al. 2016, Sec. 7): a
  uniform categorical code one-hot, and continuous codes U(-1, 1)."""
  if not (models.info_categorical or models.info_continuous):
    return jax.random.normal(key, (num, models.latent_dim), jnp.float32)
  noise_key, cat_key, cont_key = jax.random.split(key, 3)
  parts = [jax.random.normal(noise_key, (num, models.noise_dim), jnp.float32)]
  if models.info_categorical:
    codes = jax.random.randint(cat_key, (num,), 0, models.info_categorical)
    parts.append(jax.nn.one_hot(codes, models.info_categorical, dtype=jnp.float32))
  if models.info_continuous:
    parts.append(jax.random.uniform(cont_key, (num, models.info_continuous), jnp.float32, -1.0, 1.0))
  return jnp.concatenate(parts, axis=-1)


def categorical_codes(models: GANModels, z):
  """InfoGAN's categorical code of each latent [N, latent_dim] -> [N] int."""
  return jnp.argmax(z[:, models.noise_dim:models.noise_dim + models.info_categorical], axis=-1)


def sample_labels(models: GANModels, key, num: int):
  """Class labels for generated samples, uniform over the classes: [num] int32 (None when unconditional)."""
  if not models.num_classes:
    return None
  return jax.random.randint(key, (num,), 0, models.num_classes, jnp.int32)


def check_positive_ints(**values) -> None:
  """Rejects any config.model value that is not a positive integer, naming its key (make_models' shared check)."""
  for key, value in values.items():
    if not isinstance(value, int) or value < 1:
      raise UserError(f"config.model.{key} must be a positive integer, got {value!r}")


def check_num_classes(num_classes) -> None:
  """Rejects a class count other than 0 (unconditional) or at least 2."""
  if not isinstance(num_classes, int) or num_classes < 0 or num_classes == 1:
    raise UserError(f"config.model.num_classes must be 0 (unconditional) or at least 2, got {num_classes!r}")


def names():
  return _MODULES


def _module(name):
  return importlib.import_module(f"gan_jax.models.{name}")


def check_kwargs(name, kwargs: dict) -> GANModels:
  """Rejects keys `make_models` does not take, and missing required ones, naming them; returns the models."""
  params = inspect.signature(_module(name).make_models).parameters
  unknown = sorted(set(kwargs) - set(params))
  if unknown:
    raise UserError(f"unknown key(s) {', '.join(unknown)} in config.model for model {name!r}; "
                    f"allowed: {', '.join(params)}")
  missing = [p for p, v in params.items() if v.default is inspect.Parameter.empty and p not in kwargs]
  if missing:
    raise UserError(f"config.model lacks {', '.join(missing)}, required by model {name!r}")
  return make(name, kwargs)  # The module's own checks (e.g. a resolution it cannot produce).


def default_kwargs(name, **kwargs) -> dict:
  """Every keyword argument of `make_models`, with its default unless given: what config.model holds."""
  params = inspect.signature(_module(name).make_models).parameters
  defaults = {p: v.default for p, v in params.items() if v.default is not inspect.Parameter.empty}
  return {**defaults, **kwargs}


def not_applicable(name, kwargs: dict) -> tuple:
  """Keys of `kwargs` (config.model) that build nothing for these values, from the model module's optional
  `not_applicable(kwargs) -> set`: e.g. the conditioning of an unconditional DCGAN. config.json shows them as
  null (config.not_applicable)."""
  hook = getattr(_module(name), "not_applicable", None)
  return tuple(sorted(hook(kwargs) & set(kwargs))) if hook else ()


def make(name, kwargs: dict) -> GANModels:
  return _module(name).make_models(**kwargs)
