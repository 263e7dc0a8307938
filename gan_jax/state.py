"""TrainState: everything a run trains or carries, as one pytree (checkpointed whole, restored whole).

Networks have names ("g" and "d" for the plain GAN; CycleGAN's would be "g_ab", "g_ba", "d_a", "d_b"). Each
holds its parameters, its other Flax collections (BatchNorm statistics, spectral-norm vectors) and its
optimizer's state. `ema` holds an exponential moving average of the variables of every network that is sampled;
`extra` whatever else a run carries (ADA's augmentation probability, a path-length mean, an image pool, a fade-in
alpha, frozen encoders). The RNG is a base key; step s uses fold_in(rng, s).
"""
from typing import Any

import flax
import jax
import jax.numpy as jnp

PyTree = Any


@flax.struct.dataclass
class Network:
  params: PyTree
  collections: PyTree  # Non-trained collections, e.g. {'batch_stats': ...}; {} for none.
  opt_state: PyTree

  def variables(self) -> dict:
    return {"params": self.params, **self.collections}


@flax.struct.dataclass
class TrainState:
  step: jax.Array          # int32 scalar: training steps done.
  rng: jax.Array           # uint32[2] base key.
  nets: dict               # name -> Network.
  ema: dict                # name -> EMA of that network's variables {'params': ..., 'batch_stats': ...}.
  extra: dict              # Non-network state of the objective ({} for the plain GAN).

  def variables(self, name: str) -> dict:
    return self.nets[name].variables()

  def replace_net(self, name: str, **changes) -> "TrainState":
    return self.replace(nets={**self.nets, name: self.nets[name].replace(**changes)})


def split_variables(variables):
  """Flax variables -> (params, the other collections)."""
  variables = dict(flax.core.unfreeze(variables))
  params = variables.pop("params")
  return params, variables


def network(variables, tx) -> Network:
  """A freshly initialised network: its variables and the optimizer `tx`'s initial state."""
  params, collections = split_variables(variables)
  return Network(params=params, collections=collections, opt_state=tx.init(params))


def new_state(rng, nets: dict, sampled=(), extra=None) -> TrainState:
  """Step 0: `nets` (name -> Network), an EMA of each network in `sampled` starting at its variables."""
  return TrainState(step=jnp.zeros((), jnp.int32), rng=rng, nets=nets,
                    ema={name: nets[name].variables() for name in sampled}, extra=extra or {})


# --- The layout checkpoints had before networks were named (GANState's fields): read, never written.

LEGACY_GAN_FIELDS = {"g_params": ("nets", "g", "params"), "g_state": ("nets", "g", "collections"),
                     "g_opt_state": ("nets", "g", "opt_state"), "d_params": ("nets", "d", "params"),
                     "d_state": ("nets", "d", "collections"), "d_opt_state": ("nets", "d", "opt_state"),
                     "ema_g": ("ema", "g")}


def is_legacy(state_dict: dict) -> bool:
  return "g_params" in state_dict


def to_legacy(state_dict: dict) -> dict:
  """A plain GAN's state dict (nets g and d, EMA of g) in the layout of checkpoints written before."""
  legacy = {"step": state_dict["step"], "rng": state_dict["rng"]}
  for field, (top, *path) in LEGACY_GAN_FIELDS.items():
    node = state_dict[top]
    for key in path:
      node = node[key]
    legacy[field] = node
  return legacy


def from_legacy(legacy: dict) -> dict:
  """The inverse of to_legacy: today's state dict from a checkpoint written before networks were named."""
  state_dict = {"step": legacy["step"], "rng": legacy["rng"], "nets": {"g": {}, "d": {}}, "ema": {}, "extra": {}}
  for field, (top, *path) in LEGACY_GAN_FIELDS.items():
    node = state_dict[top]
    for key in path[:-1]:
      node = node[key]
    node[path[-1]] = legacy[field]
  return state_dict
