"""Progressive growing (Karras et al. 2018, "Progressive Growing of GANs for Improved Quality, Stability, and
Variation"), as its authors' train.py schedules it (tkarras/progressive_growing_of_gans): the plain GAN's phases
(objectives/gan.py; the paper's loss is WGAN-GP with the drift term, config.loss 'wasserstein',
regularizer.gradient_penalty 10 and regularizer.drift 0.001) on networks that grow (models/progan.py).

The schedule counts the real images D has seen, batch_size x num_critic_steps per step (train.py's cur_nimg):
`initial_resolution` for `stabilise_kimg` thousand images, then each doubling faded in over `transition_kimg`
thousand, alpha going linearly from 0 to 1, and stabilised for `stabilise_kimg` (TrainingSchedule, whose lod is our
top level minus level - alpha + 1 while fading). Each (level, fading) pair is a stage: the trainer compiles one
program per stage (stage_at, steps.StepPrograms), whose networks run only that stage's blocks and whose real images
are pooled to the stage's resolution in the step (2x2 means, as dataset_tool.py builds each resolution of a
dataset) and, while fading, blended with their own down- and up-sampled copy by the same alpha (process_reals'
FadeLOD). The data stream serves the full resolution throughout, so it keeps its seed-determined order and exact
resume. At the first step of every stage both optimizers restart from their initial state (reset_opt_for_new_lod:
Adam's moments and step count), and `lr_by_level` scales both learning rates per level (G_lrate_dict and
D_lrate_dict over their base). Everything is a function of the step number: a run resumed mid-transition trains as
an uninterrupted one does.

The level and alpha are the networks' `schedule` collection, set by the first phase of every step and copied (not
averaged) into G's EMA, which samples at the current level, up-sampled to the full resolution (models/progan.py).

Not built: the authors' per-resolution minibatch sizes (minibatch_dict), which change the data stream's batch
mid-run; the batch is config.batch_size at every resolution.
"""
import bisect
import dataclasses
import math

import jax
import jax.numpy as jnp
import optax

from gan_jax import objectives
from gan_jax.errors import UserError
from gan_jax.models import progan as progan_models
from gan_jax.objectives import gan

not_applicable = gan.not_applicable


def make(config, models, initial_resolution: int = 4, stabilise_kimg: float = 600.0, transition_kimg: float = 600.0,
         lr_by_level=(), reset_optimizer: bool = True):
  """The objective; its keyword arguments are config.objective_kwargs (defaults: the authors' TrainingSchedule and
  train_progressive_gan). initial_resolution = the model's resolution with both phase lengths 0 is their
  '-nogrowing' baseline: the same networks trained at full resolution from the start."""
  if not isinstance(models.generator, progan_models.Generator):
    raise UserError(f"objective 'progan' trains model 'progan' (networks that grow), not {config.model_name!r}")
  resolution = models.data_shape[0]
  if initial_resolution not in [2 ** k for k in range(2, int(math.log2(resolution)) + 1)]:
    raise UserError(f"config.objective_kwargs.initial_resolution must be a power of two from 4 to the model's "
                    f"resolution {resolution}, got {initial_resolution!r}")
  for key, value in (("stabilise_kimg", stabilise_kimg), ("transition_kimg", transition_kimg)):
    if not (isinstance(value, (int, float)) and value >= 0):
      raise UserError(f"config.objective_kwargs.{key} must be a number >= 0, got {value!r}")
  num_levels = models.generator.num_levels
  if initial_resolution < resolution and not stabilise_kimg + transition_kimg > 0:
    raise UserError(f"config.objective_kwargs.stabilise_kimg + transition_kimg must be > 0 to grow from "
                    f"{initial_resolution} to {resolution}")
  lr_by_level = tuple(lr_by_level)
  if lr_by_level and (len(lr_by_level) != num_levels or not all(x > 0 for x in lr_by_level)):
    raise UserError(f"config.objective_kwargs.lr_by_level must be empty or {num_levels} positive learning-rate "
                    f"multipliers (one per resolution from 4x4 to {resolution}), got {lr_by_level!r}")
  if not isinstance(reset_optimizer, bool):
    raise UserError(f"config.objective_kwargs.reset_optimizer must be True or False, got {reset_optimizer!r}")
  return ProGAN(config, models, initial_level=int(math.log2(initial_resolution)) - 2, stabilise_kimg=stabilise_kimg,
                transition_kimg=transition_kimg, lr_by_level=lr_by_level, reset_optimizer=reset_optimizer)


def reals_at(x, level: int, top: int, fading: bool, alpha):
  """Real images [..., H, W, C] at the full resolution (level `top`) as the stage (level, fading) sees them: 2x2-mean
  pooled to level's resolution and, while fading, lerp(upscale(downscale(x)), x, alpha) (process_reals' FadeLOD)."""
  lead, shape = x.shape[:-3], x.shape[-3:]
  x = progan_models.downscale(x.reshape(-1, *shape), 2 ** (top - level))
  if fading:
    low = progan_models.upscale(progan_models.downscale(x))
    x = low + (x - low) * alpha
  return x.reshape(*lead, *x.shape[1:])


def scaled(tx: optax.GradientTransformation, scale: float) -> optax.GradientTransformation:
  """`tx` with its updates times `scale` (a learning-rate multiplier for Adam, whose update is linear in it), with
  the same state, so a checkpoint's optimizer state fits every level's."""
  if scale == 1.0:
    return tx

  def update(updates, state, params=None):
    updates, state = tx.update(updates, state, params)
    return jax.tree.map(lambda u: u * scale, updates), state

  return optax.GradientTransformation(tx.init, update)


class ProGAN(gan.GAN):
  ema_copies = (progan_models.SCHEDULE,)

  def __init__(self, config, models, *, initial_level, stabilise_kimg, transition_kimg, lr_by_level, reset_optimizer):
    super().__init__(config, models)
    self.initial_level, self.stabilise_kimg, self.transition_kimg = initial_level, stabilise_kimg, transition_kimg
    self.lr_by_level, self.reset_optimizer = lr_by_level, reset_optimizer
    self.top = models.generator.num_levels - 1
    self.images_per_step = config.batch_size * config.num_critic_steps

  # --- The schedule (train.py TrainingSchedule), a function of the step.

  def progress_at(self, step: int) -> tuple:
    """(level, fading, alpha) after `step` steps: the stage and its fade-in weight (1 when stable)."""
    kimg = step * self.images_per_step / 1000.0
    duration = self.stabilise_kimg + self.transition_kimg
    phase = int(kimg // duration) if duration > 0 else 0
    level = self.initial_level + phase
    if level >= self.top:
      return self.top, False, 1.0
    into = kimg - phase * duration - self.stabilise_kimg
    if self.transition_kimg > 0 and into > 0:
      return level + 1, True, into / self.transition_kimg
    return level, False, 1.0

  def stage_at(self, step: int) -> tuple:
    return self.progress_at(step)[:2]

  def _order(self, stage) -> int:
    return 2 * stage[0] - int(stage[1])   # Stages in training order: (0, stable), (1, fading), (1, stable), ...

  def stage_start(self, stage) -> int:
    """The first step of `stage` (stages follow each other in _order): where its optimizers restart."""
    target, hi = self._order(stage), 1
    while self._order(self.stage_at(hi)) < target:
      hi *= 2
    return bisect.bisect_left(range(hi + 1), target, key=lambda s: self._order(self.stage_at(s)))

  def alpha_at(self, step, stage):
    """Alpha of `stage` at `step` (traced): progress_at's, in the step."""
    level, fading = stage
    if not fading:
      return jnp.ones((), jnp.float32)
    # The transition to `level` begins after phase level - 1 - initial_level's stabilisation.
    begin = ((level - 1 - self.initial_level) * (self.stabilise_kimg + self.transition_kimg)
             + self.stabilise_kimg) * 1000.0
    images = jnp.asarray(step).astype(jnp.float32) * self.images_per_step
    return jnp.clip((images - begin) / (self.transition_kimg * 1000.0), 0.0, 1.0)

  # --- State and training.

  def check(self) -> None:
    super().check()
    config = self.config
    if config.pack != 1 or config.unrolled_steps or config.augment.kind != "none":
      raise UserError("objective 'progan' does not implement PacGAN packing, unrolled GAN or config.augment: "
                      "config.pack must be 1, config.unrolled_steps 0 and config.augment.kind 'none'")
    group = min(self.models.discriminator.mbstd_group_size, config.batch_size)
    if config.batch_size % group:
      raise UserError(f"config.batch_size ({config.batch_size}) must be a multiple of the minibatch-std group "
                      f"(config.model.mbstd_group_size {self.models.discriminator.mbstd_group_size})")
    if self.reset_optimizer:
      for name in self.networks:
        if config.optimizer[name].get("lr_schedule", "constant") != "constant":
          raise UserError(f"config.optimizer.{name}.lr_schedule must be 'constant' with objective 'progan': the "
                          f"optimizer restarts at every stage (objective_kwargs.reset_optimizer)")

  def init(self, seed, txs):
    state = super().init(seed, txs)
    return self._with_schedule(state, self.stage_at(0), self.alpha_at(jnp.zeros((), jnp.int32), self.stage_at(0)),
                               ema=True)

  def _with_schedule(self, state, stage, alpha, ema=False):
    values = {"level": jnp.asarray(stage[0], jnp.int32), "alpha": jnp.asarray(alpha, jnp.float32)}
    for name in self.networks:
      state = state.replace_net(name, collections={**state.nets[name].collections, progan_models.SCHEDULE: values})
    if ema:
      state = state.replace(ema={name: {**v, progan_models.SCHEDULE: values} for name, v in state.ema.items()})
    return state

  def phases(self, txs, batch_sharding=None) -> list:
    """The phases of the last stage (the top level, stable)."""
    return self.stage_phases(txs, batch_sharding, (self.top, False))

  def stage_phases(self, txs, batch_sharding, stage) -> list:
    """"schedule" (the stage's level and alpha into both networks; the optimizers restarted at the stage's first
    step), then the plain GAN's d_main and g_main on the stage's networks and pooled, faded reals."""
    level, fading = stage
    scale = self.lr_by_level[level] if self.lr_by_level else 1.0
    txs = {name: scaled(tx, scale) for name, tx in txs.items()}
    size = 4 * 2 ** level
    models = dataclasses.replace(self.models, generator=self.models.generator.clone(stage=stage),
                                 discriminator=self.models.discriminator.clone(stage=stage),
                                 data_shape=(size, size, self.models.data_shape[-1]))
    start = self.stage_start(stage)

    def schedule(state, batch, key, carry):
      alpha = self.alpha_at(state.step, stage)
      state = self._with_schedule(state, stage, alpha)
      if self.reset_optimizer:  # reset_opt_for_new_lod: Adam's moments and count, at the stage's first step.
        for name, tx in txs.items():
          net = state.nets[name]
          fresh = tx.init(net.params)
          state = state.replace_net(name, opt_state=jax.tree.map(
              lambda f, c: jnp.where(state.step == start, f, c), fresh, net.opt_state))
      return state, {"level": jnp.float32(level), "fade_alpha": alpha}, carry

    def with_stage_reals(phase):
      def run(state, batch, key, carry):
        alpha = self.alpha_at(state.step, stage)
        return phase.run(state, {**batch, "x": reals_at(batch["x"], level, self.top, fading, alpha)}, key, carry)
      return dataclasses.replace(phase, run=run)

    plain = gan.make_phases(self.config, models, txs, batch_sharding)
    return [objectives.Phase("schedule", ("g", "d"), schedule)] + [with_stage_reals(p) for p in plain]
