"""Objectives: what a GAN family trains and how, looked up by `config.objective` as models are by `model_name`.

An objective module defines `make(config, models, **kwargs) -> Objective`, where `models` is what the model
module's `make_models(**config.model)` built and `kwargs` are the keys of `config.objective_kwargs` (validated
against that signature). The Objective names:

- `networks`: the networks it trains, each with an optimizer `config.optimizer.<name>`;
- `sampled`: the networks that have an EMA copy, which is what is sampled and evaluated;
- `sources()`: the data it reads, by role (data.Source: {"x"}, {"x", "label"}, paired {"input", "target"},
  unpaired {"a"} and {"b"});
- `init(seed, txs)`: the state at step 0 (state.TrainState: named networks, their EMA, `extra`);
- `phases(txs, batch_sharding)`: its training step, as a list of Phases (below), which steps.make_train_step runs;
- `conditions(key, num, ...)`: what the sampled generator takes, as a dict ({"z", "labels"}, {"image"},
  {"z", "text"}, {"w"}), and `generate(ema, conditions)`, samples from it; sampling, evaluation, the latent tools
  and sweeps go through these two, so none of them asks which family a run is;
- `picture(...)`, what a sample grid shows, and `reference_source()` / `evaluation_targets(conditions)`, what the
  evaluators compare the samples with.

An objective whose step changes shape as training goes on (ProGAN's resolutions) names its stages: `stage_at(step)`
and `stage_phases(txs, batch_sharding, stage)`; the trainer compiles one program per stage (steps.StepPrograms).

A new GAN family needs its own objective module only if its update schedule is new (CycleGAN's two generators,
StyleGAN2's lazy regularisation phases, ProGAN's growth); otherwise it is a model file and an experiment config.
"""
import dataclasses
import importlib
import inspect
from typing import Callable

from gan_jax.errors import UserError

_MODULES = ("gan", "pix2pix", "cyclegan", "stylegan2", "progan", "dfgan", "attngan")


@dataclasses.dataclass(frozen=True)
class Phase:
  """One part of a training step, as StyleGAN2-ADA's loss phases (Gmain, Greg, Dmain, Dreg; Karras et al. 2020,
  training/loss.py and training_loop.py): `run(state, batch, key, carry) -> (state, metrics, carry)` updates the
  networks named in `updates` (steps.apply_gradients), reading the batch and `carry`, what earlier phases of the
  step passed on. With `every` = k > 1 it runs on the steps whose index is a multiple of k (lazy
  regularisation, Karras et al. 2020, Sec. 3.1); on the other steps its metrics are zeros, and what it adds to the
  carry is never passed on (steps._lazily)."""
  name: str
  updates: tuple
  run: Callable
  every: int = 1


class Objective:
  """The interface an objective module's `make` returns (see the module docstring); subclasses fill it in."""
  networks: tuple = ()
  sampled: tuple = ()
  latent_space: bool = False  # Samples come from latent vectors z: the latent tools (gan_jax.latent) apply.
  augments_d_inputs: bool = False  # Applies config.augment to what D sees (gan_jax/augment.py).

  def __init__(self, config, models):
    self.config, self.models = config, models

  picture_scale: int = 4      # Pixels per sample pixel in the PNG of a sample grid.

  def sources(self) -> dict:
    raise NotImplementedError

  def batch_layout(self, batch_size: int):
    """(examples per update, updates per training step) of `batch_size`: the shape get_dataset serves."""
    return batch_size, 1

  def check_sources(self, global_batch_size: int) -> None:
    """Raises UserError unless every source is available and fits the models (before anything compiles)."""
    from gan_jax import data  # pylint: disable=g-import-not-at-top
    for src in self.sources().values():
      data.check(src, global_batch_size=global_batch_size)

  def init(self, seed, txs):
    raise NotImplementedError

  def phases(self, txs, batch_sharding=None) -> list:
    raise NotImplementedError

  def conditions(self, key, num: int, **given) -> dict:
    raise NotImplementedError

  def generate(self, ema: dict, conditions: dict, batch_size: int = 256):
    raise NotImplementedError

  def picture(self, ema: dict, grid_conditions: dict, eval_conditions: dict):
    raise NotImplementedError

  def real_picture(self, num_grid: int, num_points: int):
    """Real data shown as picture() shows samples (samples/real.png), or None."""
    return None

  def reference_source(self):
    raise NotImplementedError

  target_kinds: tuple = ()    # What evaluation_targets holds: "labels", "codes", "targets" (metrics.check).

  def evaluation_targets(self, conditions) -> dict:
    """{kind: array [N, ...]} the conditional and paired evaluators compare samples with (see target_kinds)."""
    return {}

  # Non-param collections of the sampled networks that their EMA copies instead of averaging (a schedule the
  # networks read, such as ProGAN's level and fade-in alpha).
  ema_copies: tuple = ()

  def stage_at(self, step: int):
    """The training stage of `step` (hashable, known on the host), for objectives whose step changes shape as
    training goes on (ProGAN's resolutions): the trainer compiles one program per stage (steps.StepPrograms). None:
    one stage."""
    return None

  def stage_phases(self, txs, batch_sharding, stage) -> list:
    """The phases of stage `stage` (stage_at's); with one stage, phases()."""
    return self.phases(txs, batch_sharding)

  def lazy_intervals(self) -> dict:
    """{network: k} of the networks whose regulariser is an update of its own every k steps (lazy regularisation):
    their optimizers get the learning rate and betas that correction needs (optimizers.lazy_corrected)."""
    return {}

  def check(self) -> None:
    """Raises UserError for a combination of config values the objective cannot train (each value alone was
    checked by config.validate)."""


def names():
  return _MODULES


def module(name):
  """The objective module `name` (config.objective)."""
  return importlib.import_module(f"gan_jax.objectives.{name}")


def check_kwargs(name, kwargs: dict) -> None:
  """Rejects keys of config.objective_kwargs that objective `name`'s make() does not take, naming them."""
  params = [p for p in inspect.signature(module(name).make).parameters if p not in ("config", "models")]
  unknown = sorted(set(kwargs) - set(params))
  if unknown:
    raise UserError(f"unknown key(s) {', '.join(unknown)} in config.objective_kwargs for objective {name!r}; "
                    f"allowed: {', '.join(params) or 'none'}")


def not_applicable(config) -> tuple:
  """Flat config keys (config.flatten's) that objective config.objective does not use with these values, from
  its module's optional `not_applicable(config) -> set`; config.json shows them as null (config.not_applicable)."""
  hook = getattr(module(config.objective), "not_applicable", None)
  return tuple(sorted(hook(config))) if hook else ()


def make(config, models) -> Objective:
  return module(config.objective).make(config, models, **config.objective_kwargs.to_dict())


def fixed_conditions(objective, seed: int, purpose: str, num: int) -> dict:
  """The generator inputs (objective.conditions: latents, balanced labels, ...) a run draws for `purpose`
  ("grid", "eval" or "diversity") from its seed: the same at every evaluation, so metrics move only when the
  generator does. Host numpy, the same on every process. Here, not in train.py, so that tools without TensorFlow
  or clu (scripts/mode_collapse_vmapped.py) draw the same ones."""
  import jax  # pylint: disable=g-import-not-at-top
  return objective.conditions(jax.random.fold_in(jax.random.PRNGKey(seed), STREAMS[purpose]), num)


# The random streams of fixed_conditions' purposes ("diversity": text-to-image's samples for a fixed caption).
STREAMS = {"grid": 0x5A3, "eval": 0xE7A, "diversity": 0xD17}
