"""Optax optimizers from config, one per network: `config.optimizer.<network>` = {name: adam, learning_rate: 2e-4,
b1: 0.5, b2: 0.999} -> GradientTransformation, with an optional learning-rate schedule:

  lr_schedule: "constant" (the default) or "linear_decay": the learning rate until `decay_begin` updates of this
  optimizer, then linearly to 0 at `decay_end` (CycleGAN: constant for the first half of training, then linear
  to 0; Zhu et al. 2017, Sec. 4 and the authors' code, models/networks.py get_scheduler 'linear').
"""
import optax

from gan_jax.errors import UserError

# name -> (optax constructor, the keyword arguments a config may set).
_OPTIMIZERS = {
    "adam": (optax.adam, ("learning_rate", "b1", "b2", "eps", "eps_root")),
    "rmsprop": (optax.rmsprop, ("learning_rate", "decay", "eps", "momentum")),
    "sgd": (optax.sgd, ("learning_rate", "momentum")),
}
_SCHEDULE_KEYS = ("lr_schedule", "decay_begin", "decay_end")
_SCHEDULES = ("constant", "linear_decay")


def check(where, spec: dict) -> None:
  name = spec.get("name")
  if name not in _OPTIMIZERS:
    raise UserError(f"unknown {where}.name {name!r}; allowed: {', '.join(sorted(_OPTIMIZERS))}")
  allowed = _OPTIMIZERS[name][1] + _SCHEDULE_KEYS
  unknown = sorted(set(spec) - {"name"} - set(allowed))
  if unknown:
    raise UserError(f"unknown key(s) {', '.join(unknown)} in {where} ({name}); allowed: {', '.join(allowed)}")
  if "learning_rate" not in spec:
    raise UserError(f"{where}.learning_rate is required")
  schedule = spec.get("lr_schedule", "constant")
  if schedule not in _SCHEDULES:
    raise UserError(f"unknown {where}.lr_schedule {schedule!r}; allowed: {', '.join(_SCHEDULES)}")
  if schedule == "linear_decay":
    begin, end = spec.get("decay_begin"), spec.get("decay_end")
    if not (isinstance(begin, int) and isinstance(end, int) and 0 <= begin < end):
      raise UserError(f"{where}.lr_schedule 'linear_decay' needs integers 0 <= decay_begin < decay_end, got "
                      f"decay_begin={begin!r}, decay_end={end!r}")
  elif "decay_begin" in spec or "decay_end" in spec:
    raise UserError(f"{where}.decay_begin and decay_end are for lr_schedule 'linear_decay'")


def learning_rate(spec: dict, scale: float = 1.0):
  """The learning rate of `spec` times `scale`: a number, or an optax schedule of the update count."""
  lr = spec["learning_rate"] * scale
  if spec.get("lr_schedule", "constant") == "constant":
    return lr
  begin, end = spec["decay_begin"], spec["decay_end"]
  return optax.join_schedules([optax.constant_schedule(lr), optax.linear_schedule(lr, 0.0, end - begin)], [begin])


def make(spec: dict, differentiable: bool = False, lr_scale: float = 1.0) -> optax.GradientTransformation:
  """The optimizer of `spec`, its learning rate times `lr_scale` (which divergence rollbacks lower).
  `differentiable`: safe to differentiate through its update (unrolled GAN): Adam then gets eps_root 1e-8 inside
  its square root unless set, as optax advises for meta-gradients (d sqrt(v) / dv is infinite at v = 0, e.g. for
  a parameter whose gradient is exactly 0)."""
  spec = dict(spec)
  name = spec.pop("name")
  spec["learning_rate"] = learning_rate(spec, lr_scale)
  for key in _SCHEDULE_KEYS:
    spec.pop(key, None)
  if differentiable and name == "adam":
    spec.setdefault("eps_root", 1e-8)
  constructor, _ = _OPTIMIZERS[name]
  return constructor(**spec)


def lazy_corrected(spec: dict, every: int) -> dict:
  """`spec` for a network regularised in an update of its own every `every` steps (lazy regularisation, Karras
  et al. 2020, App. B; stylegan2-ada-pytorch training_loop.py's mb_ratio): c = k / (k + 1) of its updates are main
  ones, so the learning rate is times c and Adam's betas to the power c, which keeps their horizons in training
  steps (the paper corrects Adam only; other optimizers get the learning rate's correction)."""
  if every <= 1:
    return spec
  c = every / (every + 1)
  spec = {**spec, "learning_rate": spec["learning_rate"] * c}
  if spec["name"] == "adam":
    spec["b1"], spec["b2"] = spec.get("b1", 0.9) ** c, spec.get("b2", 0.999) ** c
  return spec


def for_networks(config, networks, lr_scale: float = 1.0, lazy: dict | None = None) -> dict:
  """{network: its optimizer} from config.optimizer.<network>; `lazy` {network: k} (Objective.lazy_intervals)
  corrects the networks regularised in updates of their own every k steps (lazy_corrected)."""
  lazy = lazy or {}
  return {name: make(lazy_corrected(config.optimizer[name].to_dict(), lazy.get(name, 1)), lr_scale=lr_scale)
          for name in networks}
