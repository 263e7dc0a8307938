"""StyleGAN2's training (Karras et al. 2020, "Analyzing and Improving the Image Quality of StyleGAN"), as its authors'
ADA code runs it (NVlabs/stylegan2-ada-pytorch, training/loss.py StyleGAN2Loss and training/training_loop.py): four
loss phases per step, each its own optimizer update,

  g_main  G's non-saturating loss softplus(-D(G(z)))
  g_reg   every `pl_every` (4) steps: the path-length regulariser, weight `pl_weight` (2) times the interval, on a
          batch `pl_batch_shrink` (2) times smaller: E[(|J_w^T y| - a)^2] with y ~ N(0, I) / sqrt(H W) and a the
          running mean of |J_w^T y| (decay `pl_decay`, 0.01; kept in state.extra["pl_mean"]) (Sec. 3.2, Eq. 4)
  d_main  D's loss softplus(D(G(z))) + softplus(-D(x))
  d_reg   every config.regularizer.lazy_every (16) steps: R1, gamma = config.regularizer.r1, times the interval

and, because the lazy phases add updates, every optimizer of a lazily regularised network runs with the learning
rate times c and Adam's betas to the power c, c = k / (k + 1) (App. B; training_loop.py's mb_ratio): see
optimizers.for_networks(lazy=...). Style mixing (Karras et al. 2019, Sec. 3.1) with probability `style_mixing`
(0.9): for the whole batch, the w vectors from a random cutoff layer on come from a second z (loss.py run_G). The
mapping network's w_avg moves in g_main only (the authors' moves it at every mapping call in training). With
config.augment (DiffAugment), everything D sees is augmented: reals and fakes in d_main, fakes in g_main, and the
reals of R1, whose gradient is taken through the augmentation (as the ADA code's run_D does). With ADA
(config.augment.kind 'ada'), p and the sum of d_main's E[sign D(x)] since p last moved live in state.extra
("ada_p", "ada_signs", "ada_count"), and p moves at the start of every ada_interval-th step (augment.ada_adjust;
the authors count the reals of their Dreg phase in r_t too, 1 batch in 17 at the default intervals).

The data, the sampling conditions, sampling, pictures and evaluation are the plain GAN's (objectives/gan.py),
whose subclass this is; only the schedule is new.
"""
import math

import jax
import jax.numpy as jnp
import optax

from gan_jax import augment, losses, models as models_lib, objectives, regularizers
from gan_jax.errors import UserError
from gan_jax.models.stylegan2 import W_AVG, Generator
from gan_jax.objectives import gan
from gan_jax.steps import apply_gradients

# The plain GAN's knobs this objective does not read (R1 it does: its d_reg phase): each must keep its default.
_PLAIN_GAN_KEYS = tuple(key for key in gan.PLAIN_GAN_KEYS if key != "regularizer.r1")


def make(config, models, pl_weight: float = 2.0, pl_decay: float = 0.01, pl_batch_shrink: int = 2,
         pl_every: int = 4, style_mixing: float = 0.9):
  """The objective; its keyword arguments are config.objective_kwargs (defaults: the paper's and loss.py's)."""
  if not pl_weight >= 0:
    raise UserError(f"config.objective_kwargs.pl_weight must be >= 0, got {pl_weight!r}")
  if not 0.0 < pl_decay <= 1.0:
    raise UserError(f"config.objective_kwargs.pl_decay must be in (0, 1], got {pl_decay!r}")
  for key, value in (("pl_batch_shrink", pl_batch_shrink), ("pl_every", pl_every)):
    if not isinstance(value, int) or value < 1:
      raise UserError(f"config.objective_kwargs.{key} must be a positive integer, got {value!r}")
  if not 0.0 <= style_mixing <= 1.0:
    raise UserError(f"config.objective_kwargs.style_mixing must be in [0, 1], got {style_mixing!r}")
  return StyleGAN2(config, models, pl_weight=pl_weight, pl_decay=pl_decay, pl_batch_shrink=pl_batch_shrink,
                   pl_every=pl_every, style_mixing=style_mixing)


def not_applicable(config) -> set:
  keys = set(_PLAIN_GAN_KEYS) | {"pack_slot_statistics", "aux_weight"}
  if not config.regularizer.r1:
    keys.add("regularizer.lazy_every")
  return keys


class StyleGAN2(gan.GAN):
  augments_d_inputs = True

  def __init__(self, config, models, *, pl_weight, pl_decay, pl_batch_shrink, pl_every, style_mixing):
    super().__init__(config, models)
    self.pl_weight, self.pl_decay, self.pl_batch_shrink = pl_weight, pl_decay, pl_batch_shrink
    self.pl_every, self.style_mixing = pl_every, style_mixing

  def check(self) -> None:
    from gan_jax import config as config_lib  # pylint: disable=g-import-not-at-top
    if not isinstance(self.models.generator, Generator):
      raise UserError(f"objective 'stylegan2' trains model 'stylegan2' (a mapping and a synthesis network), not "
                      f"{self.config.model_name!r}")
    if self.config.loss != "non_saturating":
      raise UserError(f"objective 'stylegan2' trains with the non-saturating loss (loss.py's softplus terms); "
                      f"config.loss must be 'non_saturating', got {self.config.loss!r}")
    config_lib.check_at_defaults(self.config, _PLAIN_GAN_KEYS, "stylegan2")
    augment.check_images(self.config, self.models.data_shape)
    group = min(self.models.discriminator.mbstd_group_size, self.config.batch_size)
    if self.config.batch_size % group:
      raise UserError(f"config.batch_size ({self.config.batch_size}) must be a multiple of the minibatch-std group "
                      f"(config.model.mbstd_group_size {self.models.discriminator.mbstd_group_size})")
    if self.pl_weight and self.config.batch_size < self.pl_batch_shrink:
      raise UserError(f"config.batch_size ({self.config.batch_size}) must be at least "
                      f"objective_kwargs.pl_batch_shrink ({self.pl_batch_shrink})")

  def lazy_intervals(self) -> dict:
    """{network: k} of the networks regularised in their own update every k steps (the Adam correction)."""
    intervals = {}
    if self.pl_weight and self.pl_every > 1:
      intervals["g"] = self.pl_every
    if self.config.regularizer.r1 and self.config.regularizer.lazy_every > 1:
      intervals["d"] = self.config.regularizer.lazy_every
    return intervals

  def init(self, seed, txs):
    state = super().init(seed, txs)
    return state.replace(extra={"pl_mean": jnp.zeros((), jnp.float32), **augment.initial_state(self.config)})

  def phases(self, txs, batch_sharding=None) -> list:
    config, models = self.config, self.models
    g_module, d_module = models.generator, models.discriminator
    batch = config.batch_size

    def data_parallel(x):
      return x if x is None or batch_sharding is None else jax.lax.with_sharding_constraint(x, batch_sharding)

    def inputs(key, num):
      z_key, label_key = jax.random.split(key)
      return (data_parallel(models_lib.sample_latents(models, z_key, num)),
              data_parallel(models_lib.sample_labels(models, label_key, num)))

    def mapped(g_variables, z, labels, key, update_w_avg=False):
      """(ws [B, num_ws, w_dim] with style mixing, G's updated collections or None): loss.py run_G's mapping."""
      if update_w_avg:
        ws, collections = g_module.apply(g_variables, z, labels, True, method="mapping", mutable=[W_AVG])
      else:
        ws, collections = g_module.apply(g_variables, z, labels, method="mapping"), None
      if self.style_mixing:
        mix_key, z_key = jax.random.split(key)
        mixed = g_module.apply(g_variables, jax.random.normal(z_key, z.shape, z.dtype), labels, method="mapping")
        ws, _ = style_mix(mix_key, ws, mixed, self.style_mixing)
      return ws, collections

    def synthesise(g_variables, ws, key):
      return g_module.apply(g_variables, ws, "random", method="synthesis", rngs={"noise": key})

    augment_fn, adaptive = augment.make(config), augment.adaptive(config)

    def d_apply(state, d_params, x, labels, key=None):
      """D's logits of x, augmented first (config.augment; ADA with the state's p) when a key is given: every
      image D sees, real or generated, in D's and G's losses and in R1 (whose gradient goes through the
      augmentation)."""
      if augment_fn is not None and key is not None:
        x = augment_fn(key, x, state.extra["ada_p"] if adaptive else None)
      return d_module.apply({"params": d_params}, x, labels=labels)

    def g_main(state, batch_, key, carry):
      if adaptive:   # ADA's p moves between steps, from the signs of the last ada_interval steps' d_main.
        state = state.replace(extra=augment.ada_step(config, state.extra, batch))
      z, labels = inputs(key, batch)
      g, d_params = state.nets["g"], state.nets["d"].params
      map_key, noise_key = jax.random.split(jax.random.fold_in(key, 1))
      aug_key = jax.random.fold_in(key, 2)

      def loss_fn(g_params):
        variables = {"params": g_params, **g.collections}
        ws, collections = mapped(variables, z, labels, map_key, update_w_avg=True)
        logits = d_apply(state, d_params, synthesise(variables, ws, noise_key), labels, aug_key)
        return jnp.mean(jax.nn.softplus(-logits)), dict(collections)

      (loss, collections), grads = jax.value_and_grad(loss_fn, has_aux=True)(g.params)
      state = apply_gradients(state, "g", grads, txs["g"], collections=collections)
      return state, {"g_loss": loss, "g_grad_norm": optax.global_norm(grads)}, carry

    def g_reg(state, batch_, key, carry):
      num = max(batch // self.pl_batch_shrink, 1)
      z, labels = inputs(key, num)
      g = state.nets["g"]
      map_key, noise_key, pl_key = jax.random.split(jax.random.fold_in(key, 1), 3)
      height, width = models.data_shape[:2]
      pl_noise = jax.random.normal(pl_key, (num, *models.data_shape)) / math.sqrt(height * width)

      def loss_fn(g_params):
        variables = {"params": g_params, **g.collections}
        ws, _ = mapped(variables, z, labels, map_key)
        pl_grads = jax.grad(lambda ws: jnp.sum(synthesise(variables, ws, noise_key) * pl_noise))(ws)
        pl_lengths = path_lengths(pl_grads)
        pl_mean = state.extra["pl_mean"] + self.pl_decay * (
            jnp.mean(jax.lax.stop_gradient(pl_lengths)) - state.extra["pl_mean"])
        penalty = jnp.mean(jnp.square(pl_lengths - pl_mean))
        return penalty * self.pl_weight * self.pl_every, (pl_mean, penalty, jnp.mean(pl_lengths))

      (_, (pl_mean, penalty, length)), grads = jax.value_and_grad(loss_fn, has_aux=True)(g.params)
      state = apply_gradients(state, "g", grads, txs["g"])
      state = state.replace(extra={**state.extra, "pl_mean": pl_mean})
      return state, {"g_reg_pl_penalty": penalty, "g_reg_pl_length": length}, carry

    def d_main(state, batch_, key, carry):
      z, labels = inputs(key, batch)
      map_key, noise_key = jax.random.split(jax.random.fold_in(key, 1))
      real_aug, fake_aug = jax.random.split(jax.random.fold_in(key, 2))
      g_variables = state.variables("g")
      fake = jax.lax.stop_gradient(synthesise(g_variables, mapped(g_variables, z, labels, map_key)[0], noise_key))
      real, real_labels = batch_["x"][0], (batch_["label"][0] if models.num_classes else None)
      d = state.nets["d"]

      def loss_fn(d_params):
        real_logits = d_apply(state, d_params, real, real_labels, real_aug)
        fake_logits = d_apply(state, d_params, fake, labels, fake_aug)
        loss = jnp.mean(jax.nn.softplus(fake_logits)) + jnp.mean(jax.nn.softplus(-real_logits))
        return loss, (real_logits, fake_logits)

      (loss, (real_logits, fake_logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(d.params)
      state = apply_gradients(state, "d", grads, txs["d"])
      # ADA's overfitting heuristic r_t = E[sign(D(x))] (Karras et al. 2020b, Sec. 3.1), of the augmented reals.
      metrics = {"d_loss": loss, "d_real_prob": jnp.mean(jax.nn.sigmoid(real_logits)),
                 "d_fake_prob": jnp.mean(jax.nn.sigmoid(fake_logits)),
                 **losses.real_sign(losses.get(config.loss).threshold, real_logits),
                 "d_grad_norm": optax.global_norm(grads)}
      if adaptive:
        metrics["augment_p"] = state.extra["ada_p"]
        state = state.replace(extra=augment.ada_accumulate(state.extra, metrics["d_real_sign"]))
      return state, metrics, carry

    def d_reg(state, batch_, key, carry):
      real, real_labels = batch_["x"][0], (batch_["label"][0] if models.num_classes else None)
      k, gamma = config.regularizer.lazy_every, config.regularizer.r1
      aug_key = jax.random.fold_in(key, 2)

      def loss_fn(d_params):
        r1 = 0.5 * gamma * regularizers.gradient_norm_squared(
            lambda x: d_apply(state, d_params, x, real_labels, aug_key), real)
        return r1 * k, r1

      (_, r1), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.nets["d"].params)
      return apply_gradients(state, "d", grads, txs["d"]), {"d_reg_r1": r1}, carry

    phases = [objectives.Phase("g_main", ("g",), g_main)]
    if self.pl_weight:
      phases.append(objectives.Phase("g_reg", ("g",), g_reg, every=self.pl_every))
    phases.append(objectives.Phase("d_main", ("d",), d_main))
    if config.regularizer.r1:
      phases.append(objectives.Phase("d_reg", ("d",), d_reg, every=config.regularizer.lazy_every))
    return phases


def style_mix(key, ws, mixed, probability: float):
  """Style mixing (Karras et al. 2019, Sec. 3.1; loss.py run_G): with `probability`, one cutoff layer drawn
  uniformly from [1, num_ws) for the whole batch, and the w vectors of the layers from it on taken from `mixed`
  (the mapping of other latents); otherwise the cutoff is num_ws and nothing changes. ws, mixed [B, num_ws, w_dim]
  -> (ws, cutoff)."""
  cut_key, prob_key = jax.random.split(key)
  num = ws.shape[1]
  cutoff = jnp.where(jax.random.uniform(prob_key) < probability, jax.random.randint(cut_key, (), 1, num), num)
  return jnp.where((jnp.arange(num) >= cutoff)[None, :, None], mixed, ws), cutoff


def path_lengths(pl_grads):
  """|J_w^T y| per sample from the gradients [B, num_ws, w_dim] of sum(G(w) y) with respect to w: the square root of
  the squared norm over w_dim averaged over the num_ws copies of w
  (loss.py: pl_grads.square().sum(2).mean(1).sqrt())."""
  return jnp.sqrt(jnp.mean(jnp.sum(jnp.square(pl_grads), axis=2), axis=1))
