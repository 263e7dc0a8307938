"""Optax optimizers from config: `{name: adam, learning_rate: 2e-4, b1: 0.5, b2: 0.999}` -> GradientTransformation."""
import optax

from gan_jax.errors import UserError

# name -> (optax constructor, the keyword arguments a config may set).
_OPTIMIZERS = {
    "adam": (optax.adam, ("learning_rate", "b1", "b2", "eps", "eps_root")),
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


def make(spec: dict, differentiable: bool = False) -> optax.GradientTransformation:
  """The optimizer of `spec`. `differentiable`: safe to differentiate through its update (unrolled GAN):
  Adam then gets eps_root 1e-8 inside its square root unless set, as optax advises for meta-gradients
  (d sqrt(v) / dv is infinite at v = 0, e.g. for a parameter whose gradient is exactly 0)."""
  spec = dict(spec)
  name = spec.pop("name")
  if differentiable and name == "adam":
    spec.setdefault("eps_root", 1e-8)
  constructor, _ = _OPTIMIZERS[name]
  return constructor(**spec)
