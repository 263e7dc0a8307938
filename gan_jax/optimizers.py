"""Optax optimizers from config: `{name: adam, learning_rate: 2e-4, b1: 0.5, b2: 0.999}` -> GradientTransformation."""
import optax

from gan_jax.errors import UserError

# name -> (optax constructor, the keyword arguments a config may set).
_OPTIMIZERS = {
    "adam": (optax.adam, ("learning_rate", "b1", "b2", "eps")),
    "rmsprop": (optax.rmsprop, ("learning_rate", "decay", "eps", "momentum")),
    "sgd": (optax.sgd, ("learning_rate", "momentum")),
}


def check(where, spec: dict) -> None:
  name = spec.get("name")
  if name not in _OPTIMIZERS:
    raise UserError(f"unknown {where}.name {name!r}; allowed: {', '.join(sorted(_OPTIMIZERS))}")
  allowed = _OPTIMIZERS[name][1]
  unknown = sorted(set(spec) - {"name"} - set(allowed))
  if unknown:
    raise UserError(f"unknown key(s) {', '.join(unknown)} in {where} ({name}); allowed: {', '.join(allowed)}")
  if "learning_rate" not in spec:
    raise UserError(f"{where}.learning_rate is required")


def make(spec: dict) -> optax.GradientTransformation:
  spec = dict(spec)
  constructor, _ = _OPTIMIZERS[spec.pop("name")]
  return constructor(**spec)
