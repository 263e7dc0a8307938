"""The plain GAN: one generator "g" against one discriminator "d" (Goodfellow et al. 2014, Algorithm 1), with the
variants that keep that schedule: any loss of losses.py, the regularisers of regularizers.py, several critic
steps (WGAN), class conditioning (cGAN, projection, AC-GAN), InfoGAN, PacGAN packing, unrolled GAN, simultaneous
updates and reused fakes. Its knobs are the top-level keys of the config (loss, num_critic_steps, pack, ...).

Two phases per step: "d_main", `num_critic_steps` D updates (one real batch each: batch['x'] is
[num_critic_steps, B * pack, ...], with batch['label'] [num_critic_steps, B] for class-conditional models), then
"g_main", one G update; with `simultaneous_updates` G's gradient is taken against D before D's update.
"""
import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan_jax import augment, data, losses, models as models_lib, objectives, optimizers, regularizers
from gan_jax import state as state_lib
from gan_jax.errors import UserError
from gan_jax.models import GANModels
from gan_jax.steps import apply_gradients


# The plain GAN's knobs (top-level keys of the config) that the objectives with a schedule of their own (StyleGAN2's,
# the translation objectives') do not read: each must keep its default there (config.check_at_defaults).
PLAIN_GAN_KEYS = ("pack", "num_critic_steps", "unrolled_steps", "reuse_fakes", "simultaneous_updates",
                  "regularizer.gradient_penalty", "regularizer.r1", "regularizer.r2", "regularizer.dragan",
                  "regularizer.weight_clip", "regularizer.g_orthogonal", "regularizer.drift", "regularizer.cr_real",
                  "regularizer.cr_fake", "regularizer.cr_flip", "regularizer.cr_translation", "regularizer.zcr_d",
                  "regularizer.zcr_g", "regularizer.zcr_sigma")


def make(config, models: GANModels):
  return GAN(config, models)


def not_applicable(config) -> set:
  """Keys these values leave unused (objectives.not_applicable): the pack-slot statistics without packing, the
  lazy interval without R1/R2, T's settings without CR, zCR's noise without zCR, and aux_weight without an
  auxiliary head (AC-GAN, InfoGAN)."""
  keys = set()
  if config.pack == 1:
    keys.add("pack_slot_statistics")
  reg = config.regularizer
  if not (reg.r1 or reg.r2):
    keys.add("regularizer.lazy_every")
  if not (reg.cr_real or reg.cr_fake):
    keys.update({"regularizer.cr_flip", "regularizer.cr_translation"})
  if not (reg.zcr_d or reg.zcr_g):
    keys.add("regularizer.zcr_sigma")
  try:
    if not models_lib.make(config.model_name, config.model.to_dict()).aux:
      keys.add("aux_weight")
  except (UserError, TypeError):  # A config that cannot build its models keeps the key (validate names why).
    pass
  return keys


def _labels_kwarg(labels):
  return {} if labels is None else {"labels": labels}


def generate(models: GANModels, variables, z, train: bool, labels=None):
  """G(z) (G(z, y) with labels [B] for class-conditional models): samples [B, ...], and G's updated
  non-param collections when `train`."""
  if not train:
    return models.generator.apply(variables, z, train=False, **_labels_kwarg(labels)), None
  mutable = [k for k in variables if k != "params"]
  samples, new_state = models.generator.apply(variables, z, train=True, mutable=mutable, **_labels_kwarg(labels))
  return samples, dict(new_state)


def generate_per_slot(models: GANModels, variables, z, slots: int):
  """G(z) in train mode with BatchNorm statistics over each PacGAN pack slot: z [B * slots, d] is cut into the
  slots that `pack` forms (slot i holds samples i, i + slots, ...), G runs on each slot's B samples as the
  PacGAN authors' code does (one G call per slot, Lin et al. 2018, code: pacgan/bricks.py), and the samples
  come back in z's order. G's updated collections are the mean over slots: for BatchNorm's running averages
  that is the authors' rule (the slots' batch statistics averaged, then one moving-average update)."""
  mutable = [k for k in variables if k != "params"]
  by_slot = jnp.moveaxis(z.reshape(z.shape[0] // slots, slots, *z.shape[1:]), 1, 0)    # [slots, B, d]
  apply = lambda z_slot: models.generator.apply(variables, z_slot, train=True, mutable=mutable)
  samples, new_state = jax.vmap(apply)(by_slot)                                     # [slots, B, ...]
  samples = jnp.moveaxis(samples, 0, 1).reshape(z.shape[0], *samples.shape[2:])      # [B * slots, ...]
  return samples, jax.tree.map(lambda x: jnp.mean(x, axis=0), dict(new_state))


def _discriminate(models: GANModels, variables, x, labels=None):
  """(logits [B], auxiliary output or None, D's updated non-param collections)."""
  mutable = [k for k in variables if k != "params"]
  out, new_state = models.discriminator.apply(variables, x, train=True, mutable=mutable, **_labels_kwarg(labels))
  logits, aux = out if isinstance(out, tuple) else (out, None)
  return logits, aux, dict(new_state)


def auxiliary_loss(models: GANModels, aux, labels, z):
  """The auxiliary head's loss, to minimise. AC-GAN (Odena et al. 2017, Eq. 3): the cross-entropy of the
  class logits with `labels` (the negative of L_C). InfoGAN (Chen et al. 2016, Eq. 4-5): minus the variational
  lower bound of I(c; G(z, c)) up to a constant: the cross-entropy of Q's categorical logits with the code
  in z, plus the Gaussian negative log-likelihood of the continuous codes under Q's means with unit std (as
  the authors' code does)."""
  if models.aux == "classes":
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(aux, labels))
  start, cat = models.noise_dim, models.info_categorical
  total = jnp.zeros((), jnp.float32)
  if cat:
    total += jnp.mean(optax.softmax_cross_entropy(aux[:, :cat], z[:, start:start + cat]))
  if models.info_continuous:
    total += jnp.mean(0.5 * jnp.sum(jnp.square(aux[:, cat:] - z[:, start + cat:]), axis=-1))
  return total


def pack(x, m: int):
  """PacGAN (Lin et al. 2018, Sec. 3): m consecutive samples concatenated on the last (channel) axis.

  [B * m, ..., C] -> [B, ..., m * C]; the discriminator judges m samples jointly.
  """
  if m == 1:
    return x
  grouped = x.reshape(x.shape[0] // m, m, *x.shape[1:])       # [B, m, ..., C]
  grouped = jnp.moveaxis(grouped, 1, -2)                       # [B, ..., m, C]
  return grouped.reshape(*grouped.shape[:-2], m * x.shape[-1])


def regularizer_terms(reg, d_fn, real, fake, key, d_fake_fn=None):
  """The active terms of `config.regularizer` that are part of every D update, weighted, by name (added to D's
  loss): all of them, except R1/R2 when they are lazy (lazy_every > 1: lazy_terms, an update of their own). `d_fn`
  is the critic as the reals see it (with their labels, for conditional models), `d_fake_fn` as the fakes do (R2)."""
  gp_key, dragan_key = jax.random.split(key)
  terms = {}
  if reg.gradient_penalty:
    terms["gradient_penalty"] = reg.gradient_penalty * regularizers.gradient_penalty(d_fn, real, fake, gp_key)
  if reg.dragan:
    terms["dragan"] = reg.dragan * regularizers.dragan_penalty(d_fn, real, dragan_key)
  if reg.lazy_every == 1:
    terms.update(_r1_r2(reg, d_fn, real, fake, d_fake_fn, weight=1))
  return terms


def lazy_terms(reg, d_fn, real, fake, d_fake_fn=None):
  """R1/R2 of lazy regularisation (Karras et al. 2020, Sec. 3.1 and App. B): with lazy_every = k > 1 they are an
  update of their own on every k-th D update, weighted by k so that their average is unchanged, and D's optimizer
  is corrected for the extra updates (GAN.lazy_intervals, optimizers.lazy_corrected). {} when not lazy."""
  return _r1_r2(reg, d_fn, real, fake, d_fake_fn, weight=reg.lazy_every) if reg.lazy_every > 1 else {}


def _r1_r2(reg, d_fn, real, fake, d_fake_fn, weight):
  terms = {}
  for name, gamma, x, fn in (("r1", reg.r1, real, d_fn), ("r2", reg.r2, fake, d_fake_fn or d_fn)):
    if gamma:
      terms[name] = weight * 0.5 * gamma * regularizers.gradient_norm_squared(fn, x)
  return terms


class GAN(objectives.Objective):
  networks = ("g", "d")
  sampled = ("g",)
  latent_space = True
  augments_d_inputs = True

  # --- Data, state and conditions.

  def sources(self) -> dict:
    """{"x": samples} and, for class-conditional models, {"label"}: one stream of config.data."""
    features = {"x": (self.config.data.feature, self.models.data_shape)}
    if self.models.num_classes:
      features["label"] = ("label", ())
    return {"x": data.source(self.config.data, **features)}

  def batch_layout(self, batch_size: int):
    """(examples per critic step, critic steps per training step) for `batch_size` packs: G makes config.pack
    samples per pack and D takes num_critic_steps real batches per step."""
    return batch_size * self.config.pack, self.config.num_critic_steps

  def check_sources(self, global_batch_size: int) -> None:
    data.check(self.sources()["x"], global_batch_size=global_batch_size, num_classes=self.models.num_classes)
    if getattr(self.config, "eval_ref_split", ""):  # Before training, not at the first evaluation.
      data.check(self.reference_source(), global_batch_size=1)

  def init(self, seed, txs):
    """Step 0 from `seed` (its key also drives latents and everything else random in training). D is built for
    inputs packed config.pack times on the last axis (pack)."""
    m = self.models
    root = jax.random.PRNGKey(seed)
    g_key, d_key, train_key = jax.random.split(root, 3)
    z = jnp.zeros((1, m.latent_dim), jnp.float32)
    labels = {"labels": jnp.zeros((1,), jnp.int32)} if m.num_classes else {}
    g_variables = m.generator.init(g_key, z, train=False, **labels)
    *sample_shape, channels = m.data_shape
    d_input = jnp.zeros((1, *sample_shape, self.config.pack * channels))
    d_variables = m.discriminator.init(d_key, d_input, train=False, **labels)
    nets = {"g": state_lib.network(g_variables, txs["g"]), "d": state_lib.network(d_variables, txs["d"])}
    return state_lib.new_state(train_key, nets, sampled=self.sampled, extra=augment.initial_state(self.config))

  def conditions(self, key, num: int, labels=None) -> dict:
    """{"z": latents [num, latent_dim] from `key`} and for class-conditional models {"labels": [num]}: `labels`
    as given, else balanced (sample i asks for class i mod K). Labels of an unconditional model are refused."""
    conditions = {"z": np.asarray(models_lib.sample_latents(self.models, key, num))}
    k = self.models.num_classes
    if labels is not None:
      if not k:
        raise UserError("--labels is for class-conditional models; this run's model has no classes")
      labels = np.asarray(labels, np.int32)
      bad = sorted(set(labels[(labels < 0) | (labels >= k)].tolist()))
      if bad:
        raise UserError(f"--labels: class(es) {bad} not in [0, {k})")
    if k:
      conditions["labels"] = np.arange(num, dtype=np.int32) % k if labels is None else labels
    return conditions

  def generate(self, ema: dict, conditions: dict, batch_size: int = 256) -> np.ndarray:
    """float32 numpy [N, *data_shape]: the EMA generator in eval mode, `batch_size` samples at a time (compiled
    once per objective and batch shape, not at every evaluation)."""
    if not hasattr(self, "_generate_jit"):
      self._generate_jit = jax.jit(lambda variables, z, labels: generate(self.models, variables, z, False, labels)[0])
    apply = self._generate_jit
    z, labels = conditions["z"], conditions.get("labels")
    return np.concatenate([
        np.asarray(jax.device_get(apply(ema["g"], z[i:i + batch_size],
                                        None if labels is None else labels[i:i + batch_size])), np.float32)
        for i in range(0, z.shape[0], batch_size)])

  @property
  def target_kinds(self) -> tuple:
    return ("labels",) if self.models.num_classes else (("codes",) if self.models.info_categorical else ())

  def evaluation_targets(self, conditions) -> dict:
    """What the conditional evaluators compare the samples' predicted classes with: the requested labels of a
    class-conditional model, or InfoGAN's categorical codes."""
    if self.models.num_classes:
      return {"labels": conditions["labels"]}
    if self.models.info_categorical:
      return {"codes": np.asarray(models_lib.categorical_codes(self.models, conditions["z"]))}
    return {}

  def lazy_intervals(self) -> dict:
    """D's lazy R1/R2 interval, for the Adam correction of its optimizer (objectives.Objective.lazy_intervals)."""
    reg = self.config.regularizer
    return {"d": reg.lazy_every} if (reg.r1 or reg.r2) and reg.lazy_every > 1 else {}

  def check(self) -> None:
    """The plain GAN's combinations that do not exist (after each key was checked on its own)."""
    if (self.models.num_classes or self.models.aux) and (self.config.pack > 1 or self.config.unrolled_steps):
      raise UserError("PacGAN packing and unrolled GAN are not implemented for class-conditional or InfoGAN "
                      "models: config.pack must be 1 and config.unrolled_steps 0")
    reg = self.config.regularizer
    if (reg.cr_real or reg.cr_fake) and not self.models.makes_images:
      raise UserError(f"config.regularizer.cr_real and cr_fake compare D on images and their flipped, shifted "
                      f"copies; model {self.config.model_name!r} makes points")
    if reg.zcr_g and (self.config.reuse_fakes or self.config.simultaneous_updates):
      raise UserError("config.regularizer.zcr_g is not implemented with config.reuse_fakes or "
                      "config.simultaneous_updates (G's update must draw its own latents)")
    kind = self.config.augment.kind
    if kind != "none":
      if not self.models.makes_images:
        raise UserError(f"config.augment.kind {kind!r} augments images; model {self.config.model_name!r} makes "
                        f"points")
      if self.config.unrolled_steps:
        raise UserError(f"config.augment.kind {kind!r} is not implemented with unrolled GAN's look-ahead "
                        f"(config.unrolled_steps must be 0)")
      augment.check_images(self.config, self.models.data_shape)
    if augment.adaptive(self.config) and losses.get(self.config.loss).threshold is None:
      raise UserError(f"config.augment.kind 'ada' steers p by E[sign D(x)], which loss {self.config.loss!r} does not "
                      f"define (a Wasserstein critic has no decision threshold); use kind 'fixed' or 'diffaugment'")

  def reference_source(self):
    """The real images the image metrics compare samples with: config.data's (its config.eval_ref_split, when
    set), preprocessed as for training."""
    source = data.source(self.config.data, x=(self.config.data.feature, self.models.data_shape))
    split = getattr(self.config, "eval_ref_split", "")
    return dataclasses.replace(source, split=split) if split else source

  @property
  def picture_scale(self) -> int:
    return 4 if self.models.makes_images else 1

  def picture(self, ema: dict, grid_conditions: dict, eval_conditions: dict) -> np.ndarray:
    """A sample grid of the fixed grid latents, or for vectors (the 2D benchmark) a scatter plot of the samples
    of the evaluation latents: uint8 [H, W, C]."""
    from gan_jax import images  # pylint: disable=g-import-not-at-top  (PIL, matplotlib: only to draw)
    if self.models.makes_images:
      return images.grid(images.to_uint8(self.generate(ema, grid_conditions)))
    return images.scatter(self.generate(ema, eval_conditions))

  def real_picture(self, num_grid: int, num_points: int) -> np.ndarray:
    """The first real images as a grid, or the real points (as many as evaluations sample) as a scatter plot."""
    from gan_jax import images  # pylint: disable=g-import-not-at-top  (PIL, matplotlib: only to draw)
    source = self.reference_source()
    if self.models.makes_images:
      return images.grid(images.to_uint8(data.load_examples(source, num=num_grid)["x"]))
    return images.scatter(data.load_examples(source, num=num_points)["x"])

  # --- The training step.

  def phases(self, txs, batch_sharding=None) -> list:
    """"d_main" (num_critic_steps D updates) then "g_main" (one G update); `batch_sharding` (a NamedSharding
    over the batch axis) keeps latents and fakes data-parallel."""
    return make_phases(self.config, self.models, txs, batch_sharding)


def make_phases(config, models: GANModels, txs, batch_sharding=None) -> list:
  """The plain GAN's two phases as closures over the config, the models and the optimizers `txs`."""
  loss = losses.get(config.loss)
  augment_fn, adaptive = augment.make(config), augment.adaptive(config)
  unroll_tx = optimizers.make(config.optimizer.d.to_dict(), differentiable=True)  # D's look-ahead updates.
  num_samples = config.batch_size * config.pack   # G samples per update; D sees batch_size packs of them.

  def data_parallel(x):
    return x if x is None or batch_sharding is None else jax.lax.with_sharding_constraint(x, batch_sharding)

  def latents(key):
    return data_parallel(models_lib.sample_latents(models, key, num_samples))  # [B * pack, latent_dim]

  def fake_labels_for(key):  # [B] uniform class labels of conditional models' fakes, else None.
    return data_parallel(models_lib.sample_labels(models, jax.random.fold_in(key, 7), num_samples))

  def generate_train(variables, z, labels=None):
    """G in train mode, as every update runs it: over each pack slot on its own with config.pack_slot_statistics
    (PacGAN's authors' code), else over the whole batch."""
    if config.pack > 1 and config.pack_slot_statistics:
      return generate_per_slot(models, variables, z, config.pack)
    return generate(models, variables, z, True, labels)

  def d_logits(d_params, d_collections, packed, labels=None):
    """(logits, aux, new collections). D's collections (BatchNorm statistics, spectral-norm vectors) come from
    `d_collections` on every call of one update, so the real pass, the fake pass and the penalties see the same
    normalised weights."""
    return _discriminate(models, {"params": d_params, **d_collections}, packed, labels)

  def d_adversarial_loss(d_params, d_collections, real, fake, real_labels=None, fake_labels=None):
    """D's loss on packed real and fake inputs [B, ..., pack * C]."""
    real_logits, real_aux, new_collections = d_logits(d_params, d_collections, real, real_labels)
    fake_logits, fake_aux, _ = d_logits(d_params, d_collections, fake, fake_labels)
    return loss.d_loss(real_logits, fake_logits), (new_collections, real_logits, fake_logits, real_aux, fake_aux)

  def generator_inputs(key):
    return latents(jax.random.split(key)[0]), fake_labels_for(key)

  def seen_by_d(state, x, key):
    """Images [N, ...] as D sees them, before packing: augmented per image with config.augment (ADA with the
    state's p), else as they are. The penalties (R1, gradient penalty, DRAGAN) then act on the augmented images."""
    if augment_fn is None:
      return x
    return augment_fn(key, x, state.extra["ada_p"] if adaptive else None)

  def generator_forward(state, key):
    """(z, fake labels, fakes, G's vjp with respect to its parameters, G's updated collections) of the critic
    step with `key`, for config.reuse_fakes and config.simultaneous_updates."""
    z, fake_labels = generator_inputs(key)
    g = state.nets["g"]
    fake, g_vjp, g_collections = jax.vjp(
        lambda g_params: generate_train({"params": g_params, **g.collections}, z, fake_labels), g.params,
        has_aux=True)
    return z, fake_labels, fake, g_vjp, g_collections

  lazy_gammas = [name for name in ("r1", "r2") if config.regularizer[name]] if config.regularizer.lazy_every > 1 else []
  reg = config.regularizer

  def noisy_latents(z, key):
    """zCR's T(z) = z + e, e ~ N(0, zcr_sigma^2 I) (Zhao et al. 2021, Sec. 3.2)."""
    return z + reg.zcr_sigma * jax.random.normal(jax.random.fold_in(key, 11), z.shape, z.dtype)

  def consistency_inputs(state, real, fake, z, fake_labels, key):
    """D's packed inputs of the active consistency terms, by name: T(x) of the reals (cr_real), T(G(z)) (cr_fake),
    G(z + e) (zcr_d). T acts on the images before config.augment's, as PyTorch-StudioGAN's worker.py applies
    its parallel_augment to the unaugmented batch."""
    real_key, fake_key = jax.random.split(jax.random.fold_in(key, 5))
    transform = functools.partial(augment.consistency_transform, flip=reg.cr_flip, ratio=reg.cr_translation)
    inputs = {}
    if reg.cr_real:
      inputs["cr_real"] = pack(transform(real_key, real), config.pack)
    if reg.cr_fake:
      inputs["cr_fake"] = pack(transform(fake_key, fake), config.pack)
    if reg.zcr_d:
      noisy, _ = generate_train(state.variables("g"), noisy_latents(z, key), fake_labels)
      inputs["zcr"] = pack(jax.lax.stop_gradient(noisy), config.pack)
    return inputs

  def consistency_terms(d_params, d_collections, inputs, real_out, fake_out, real_labels, fake_labels):
    """The weighted consistency terms: CR/bCR (Zhang et al. 2020, Eq. 1; Zhao et al. 2021, Eq. 3-4) and zCR's D
    term (Zhao et al. 2021, Eq. 5), each the mean squared difference of D's logits on an input and on its
    consistency_inputs counterpart, plus that of AC-GAN's class logits (as PyTorch-StudioGAN's worker.py)."""
    terms = {}
    for name, weight, (logits, aux), labels in (("cr_real", reg.cr_real, real_out, real_labels),
                                                ("cr_fake", reg.cr_fake, fake_out, fake_labels),
                                                ("zcr", reg.zcr_d, fake_out, fake_labels)):
      if name in inputs:
        other_logits, other_aux, _ = d_logits(d_params, d_collections, inputs[name], labels)
        term = regularizers.consistency(logits, other_logits)
        if models.aux == "classes":
          term = term + regularizers.consistency(aux, other_aux)
        terms[name] = weight * term
    return terms

  def lazy_update(state, real, fake, real_labels, fake_labels):
    """D's own update on the lazy R1/R2 terms (lazy_terms), at its parameters after the main update."""
    d = state.nets["d"]

    def loss_fn(d_params):
      terms = lazy_terms(config.regularizer, lambda x: d_logits(d_params, d.collections, x, real_labels)[0], real,
                         fake, lambda x: d_logits(d_params, d.collections, x, fake_labels)[0])
      return sum(terms.values()), terms

    grads, terms = jax.grad(loss_fn, has_aux=True)(d.params)
    return apply_gradients(state, "d", grads, txs["d"]), terms

  def skip_lazy(state, *unused):
    return state, {name: jnp.zeros((), jnp.float32) for name in lazy_gammas}

  def d_update(state, real, real_labels, key, d_step, generated=None):
    """`generated`: (z, fake labels, fakes) of generator_forward where G's update reuses them."""
    reg_key = jax.random.split(key)[1]
    if generated is None:
      z, fake_labels = generator_inputs(key)
      # G runs in train mode (batch statistics) as in the G update; its statistics are updated there only.
      fake, _ = generate_train(state.variables("g"), z, fake_labels)
    else:
      z, fake_labels, fake = generated
    consistency = consistency_inputs(state, real, jax.lax.stop_gradient(fake), z, fake_labels, key)
    # D's inputs are packs (PacGAN; pack 1 leaves them as they are), and so are the penalties': one
    # interpolation and one input-gradient norm per pack.
    real_aug, fake_aug = jax.random.split(jax.random.fold_in(key, 3))
    real, fake = seen_by_d(state, real, real_aug), seen_by_d(state, jax.lax.stop_gradient(fake), fake_aug)
    real, fake = pack(real, config.pack), pack(fake, config.pack)
    d = state.nets["d"]

    def d_loss_fn(d_params):
      adversarial, (collections, real_logits, fake_logits, real_aux, fake_aux) = d_adversarial_loss(
          d_params, d.collections, real, fake, real_labels, fake_labels)
      d_real_fn = lambda x: d_logits(d_params, d.collections, x, real_labels)[0]
      d_fake_fn = lambda x: d_logits(d_params, d.collections, x, fake_labels)[0]
      terms = regularizer_terms(config.regularizer, d_real_fn, real, fake, reg_key, d_fake_fn)
      terms.update(consistency_terms(d_params, d.collections, consistency, (real_logits, real_aux),
                                     (fake_logits, fake_aux), real_labels, fake_labels))
      if reg.drift:  # ProGAN's drift term (Karras et al. 2018, Sec. A.1), on the logits of the reals.
        terms["drift"] = reg.drift * jnp.mean(jnp.square(real_logits))
      aux = {}
      if models.aux == "classes":  # AC-GAN: D classifies reals and fakes (Odena et al. 2017, Eq. 3).
        aux["aux"] = (auxiliary_loss(models, real_aux, real_labels, None) +
                      auxiliary_loss(models, fake_aux, fake_labels, None))
        aux["real_class_accuracy"] = jnp.mean(jnp.argmax(real_aux, -1) == real_labels)
      elif models.aux == "info":  # InfoGAN: Q (on D's body) recovers the codes of the fakes.
        aux["aux"] = auxiliary_loss(models, fake_aux, None, z)
      total = adversarial + sum(terms.values()) + config.aux_weight * aux.get("aux", 0.0)
      return total, (collections, real_logits, fake_logits, adversarial, terms, aux)

    grads, (collections, real_logits, fake_logits, adversarial, terms, aux) = jax.grad(
        d_loss_fn, has_aux=True)(d.params)
    state = apply_gradients(state, "d", grads, txs["d"], collections=collections)
    if lazy_gammas:
      state, lazy_logged = jax.lax.cond(d_step % config.regularizer.lazy_every == 0, lazy_update, skip_lazy, state,
                                        real, fake, real_labels, fake_labels)
      terms = {**terms, **lazy_logged}
    if config.regularizer.weight_clip:
      state = state.replace_net("d", params=regularizers.clip_weights(state.nets["d"].params,
                                                                      config.regularizer.weight_clip))
    metrics = {
        "d_loss": adversarial,
        "d_real_prob": jnp.mean(jax.nn.sigmoid(real_logits)),  # Mean D(x); 0.5 at equilibrium.
        "d_fake_prob": jnp.mean(jax.nn.sigmoid(fake_logits)),  # Mean D(G(z)); 0.5 at equilibrium.
        **losses.real_sign(loss.threshold, real_logits),     # ADA's r_t: towards 1 as D overfits the reals.
        "d_grad_norm": optax.global_norm(grads),
        **{f"d_reg_{name}": value for name, value in terms.items()},
        **{f"d_{name}": value for name, value in aux.items()},
    }
    return state, metrics

  def d_main(state, batch, key, carry):
    """num_critic_steps D updates; with reuse_fakes or simultaneous_updates the last one also runs G's forward
    pass for G's update (carry['forward']), and with simultaneous_updates the state before them is carried."""
    n = config.num_critic_steps
    if adaptive:   # ADA's p moves between steps, from the signs of the last ada_interval steps' critic updates.
      state = state.replace(extra=augment.ada_step(config, state.extra, num_samples * n))
    d_keys = jax.random.split(key, n)
    d_steps = state.step * n + jnp.arange(n)
    # A Python loop, not lax.scan: XLA's CPU backend runs convolutions inside a while loop several times slower
    # (dcgan28's step: 1.4 s in a scan of length 1, 0.22 s without), and num_critic_steps is small.
    d_metrics, forward, before = [], None, state
    for i in range(n):
      labels = batch["label"][i] if models.num_classes else None
      if (config.reuse_fakes or config.simultaneous_updates) and i == n - 1:
        forward = generator_forward(state, d_keys[i])
      generated = forward[:3] if forward is not None else None
      state, metrics = d_update(state, batch["x"][i], labels, d_keys[i], d_steps[i], generated)
      d_metrics.append(metrics)
    d_metrics = jax.tree.map(lambda *m: jnp.mean(jnp.stack(m)), *d_metrics)  # Mean over the critic steps.
    if adaptive:
      d_metrics["augment_p"] = state.extra["ada_p"]
      state = state.replace(extra=augment.ada_accumulate(state.extra, d_metrics["d_real_sign"]))
    return state, d_metrics, {**carry, "forward": forward, "critic": before if config.simultaneous_updates else None}

  def unrolled_d_params(state, g_params, reals, key):
    """Unrolled GAN (Metz et al. 2017, Eq. 5-7): D's parameters after k more adversarial updates against
    G(g_params), differentiable with respect to g_params. k = 0 gives D's current parameters."""
    d = state.nets["d"]
    d_params, d_opt_state = d.params, d.opt_state
    for i in range(config.unrolled_steps):
      z = latents(jax.random.fold_in(key, i))
      fake, _ = generate_train({"params": g_params, **state.nets["g"].collections}, z)
      real = reals[i % reals.shape[0]]
      grads = jax.grad(lambda p: d_adversarial_loss(p, d.collections, pack(real, config.pack),
                                                    pack(fake, config.pack))[0])(d_params)
      updates, d_opt_state = unroll_tx.update(grads, d_opt_state, d_params)
      d_params = optax.apply_updates(d_params, updates)
    return d_params

  def g_objective(critic, d_params, fake, z, fake_labels, key):
    """G's loss on its fakes against D(d_params): (total, (adversarial part, auxiliary terms))."""
    # D's collections are unchanged by G's update.
    fake_logits, fake_aux, _ = d_logits(d_params, critic.nets["d"].collections,
                                        pack(seen_by_d(critic, fake, jax.random.fold_in(key, 3)), config.pack),
                                        fake_labels)
    adversarial = loss.g_loss(fake_logits)
    if not models.aux:
      return adversarial, (adversarial, {})
    # AC-GAN: G also makes its fakes classifiable as their labels; InfoGAN: G makes its codes recoverable.
    aux = auxiliary_loss(models, fake_aux, fake_labels, z)
    return adversarial + config.aux_weight * aux, (adversarial, {"g_aux": aux})

  def g_main(state, batch, key, carry):
    """One G update, against the updated D (Goodfellow et al. 2014, Algorithm 1) or, with simultaneous_updates
    (as ALI's and PacGAN's code train), against D before its update (carry['critic']). With carry['forward']
    (reuse_fakes, simultaneous_updates) G's loss is differentiated with respect to those fakes and pulled back
    through their forward pass."""
    critic = state if carry.get("critic") is None else carry["critic"]
    g = state.nets["g"]
    if carry.get("forward") is not None:
      z, fake_labels, fake, g_vjp, g_collections = carry["forward"]
      fake_grads, (g_loss, aux) = jax.grad(g_objective, argnums=2, has_aux=True)(
          critic, critic.nets["d"].params, fake, z, fake_labels, key)
      grads, = g_vjp(fake_grads)
    else:
      z_key, unroll_key = jax.random.split(key)
      z = latents(z_key)
      fake_labels = fake_labels_for(key)

      def g_loss_fn(g_params):
        fake, g_collections = generate_train({"params": g_params, **g.collections}, z, fake_labels)
        d_params = unrolled_d_params(state, g_params, batch["x"], unroll_key)
        total, (adversarial, aux) = g_objective(state, d_params, fake, z, fake_labels, key)
        if reg.zcr_g:  # zCR's G term (Zhao et al. 2021, Eq. 6): G made sensitive to its latents.
          noisy, _ = generate_train({"params": g_params, **g.collections}, noisy_latents(z, key), fake_labels)
          aux = {**aux, "g_reg_zcr": -reg.zcr_g * regularizers.consistency(fake, noisy)}
          total = total + aux["g_reg_zcr"]
        return total, (g_collections, adversarial, aux)

      grads, (g_collections, g_loss, aux) = jax.grad(g_loss_fn, has_aux=True)(g.params)
    if config.regularizer.g_orthogonal:  # BigGAN: added to G's gradient, as the authors' train_fns.py does.
      ortho, ortho_grads = jax.value_and_grad(regularizers.orthogonal)(g.params)
      grads = jax.tree.map(lambda a, b: a + config.regularizer.g_orthogonal * b, grads, ortho_grads)
      aux = {**aux, "g_reg_orthogonal": config.regularizer.g_orthogonal * ortho}
    state = apply_gradients(state, "g", grads, txs["g"], collections=g_collections)
    return state, {"g_loss": g_loss, "g_grad_norm": optax.global_norm(grads), **aux}, carry

  return [objectives.Phase("d_main", ("d",), d_main), objectives.Phase("g_main", ("g",), g_main)]
