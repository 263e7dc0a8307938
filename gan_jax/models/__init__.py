"""Model registry: `config.model_name` names a module here whose `make_models(**config.model)` builds the pair.

A model module defines `make_models(...) -> GANModels`; its keyword arguments are the keys `config.model` may
hold. Generators are called as `G(z, train=...)` with z [B, latent_dim]; discriminators as `D(x, train=...)`
with x [B, *data_shape] (images in [-1, 1]), returning logits [B]. With PacGAN packing D's input has
the last axis `pack` times wider; models need not know, as Flax infers input sizes.
"""
import dataclasses
import importlib
import inspect

import flax.linen as nn

from gan_jax.errors import UserError

_MODULES = ("dcgan", "mlp")


@dataclasses.dataclass(frozen=True)
class GANModels:
  generator: nn.Module
  discriminator: nn.Module
  latent_dim: int
  data_shape: tuple  # Shape of one sample: (H, W, C) for images, (D,) for vectors.

  @property
  def makes_images(self) -> bool:
    return len(self.data_shape) == 3


def names():
  return _MODULES


def _module(name):
  return importlib.import_module(f"gan_jax.models.{name}")


def check_kwargs(name, kwargs: dict) -> None:
  """Rejects keys `make_models` does not take, and missing required ones, naming them."""
  params = inspect.signature(_module(name).make_models).parameters
  unknown = sorted(set(kwargs) - set(params))
  if unknown:
    raise UserError(f"unknown key(s) {', '.join(unknown)} in config.model for model {name!r}; "
                    f"allowed: {', '.join(params)}")
  missing = [p for p, v in params.items() if v.default is inspect.Parameter.empty and p not in kwargs]
  if missing:
    raise UserError(f"config.model lacks {', '.join(missing)}, required by model {name!r}")
  make(name, kwargs)  # The module's own checks (e.g. a resolution it cannot produce).


def default_kwargs(name, **kwargs) -> dict:
  """Every keyword argument of `make_models`, with its default unless given: what config.model holds."""
  params = inspect.signature(_module(name).make_models).parameters
  defaults = {p: v.default for p, v in params.items() if v.default is not inspect.Parameter.empty}
  return {**defaults, **kwargs}


def make(name, kwargs: dict) -> GANModels:
  return _module(name).make_models(**kwargs)
