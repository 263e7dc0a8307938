"""Pure update steps built from the config: the discriminator update, the generator update, the EMA.

`make_train_step` returns train_step(state, batch) -> (state, metrics): `num_critic_steps` D updates (one
real batch each, batch['x']: [num_critic_steps, B * pack, ...], with batch['label'] [num_critic_steps, B]
for class-conditional models) then one G update (Goodfellow et al. 2014, Algorithm 1), or with
`simultaneous_updates` one D and one G update from the same point, then the EMA of G.
It is a pure function of its inputs, ready for jax.jit.
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan_jax import losses, models as models_lib, optimizers, regularizers
from gan_jax.models import GANModels
from gan_jax.state import GANState


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


def generate_in_batches(models: GANModels, variables, z, batch_size: int = 256, labels=None) -> np.ndarray:
  """float32 numpy [N, *data_shape]: G in eval mode on latents z [N, latent_dim] (and labels [N] for
  class-conditional models), `batch_size` at a time."""
  apply = jax.jit(lambda variables, z, labels: generate(models, variables, z, False, labels)[0])
  return np.concatenate([
      np.asarray(jax.device_get(apply(variables, z[i:i + batch_size],
                                      None if labels is None else labels[i:i + batch_size])), np.float32)
      for i in range(0, z.shape[0], batch_size)])


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


def ema_decay_at(step, decay):
  """Warm-up as tf.train.ExponentialMovingAverage(num_updates=step): min(decay, (1 + t) / (10 + t)).

  Early samples then follow the trained generator instead of its random initialisation.
  """
  step = jnp.asarray(step, jnp.float32)
  return jnp.minimum(decay, (1.0 + step) / (10.0 + step))


def ema_update(ema, new, decay):
  return jax.tree.map(lambda e, n: decay * e + (1.0 - decay) * n, ema, new)


def regularizer_terms(reg, d_fn, real, fake, key, d_step, d_fake_fn=None):
  """The active terms of `config.regularizer`, weighted, by name (added to D's loss). `d_fn` is the critic
  as the reals see it (with their labels, for conditional models), `d_fake_fn` as the fakes do (R2)."""
  gp_key, dragan_key = jax.random.split(key)
  terms = {}
  if reg.gradient_penalty:
    terms["gradient_penalty"] = reg.gradient_penalty * regularizers.gradient_penalty(d_fn, real, fake, gp_key)
  if reg.dragan:
    terms["dragan"] = reg.dragan * regularizers.dragan_penalty(d_fn, real, dragan_key)
  for name, gamma, x, fn in (("r1", reg.r1, real, d_fn), ("r2", reg.r2, fake, d_fake_fn or d_fn)):
    if gamma:
      # Lazy regularisation (Karras et al. 2020, Sec. 3.1): every k-th D update, weighted by k.
      k = reg.lazy_every
      term = lambda x=x, gamma=gamma, k=k, fn=fn: k * 0.5 * gamma * regularizers.gradient_norm_squared(fn, x)
      terms[name] = term() if k == 1 else jax.lax.cond(d_step % k == 0, term, lambda: jnp.zeros(()))
  return terms


def make_train_step(config, models: GANModels, g_tx: optax.GradientTransformation,
                    d_tx: optax.GradientTransformation, batch_sharding=None):
  """`batch_sharding` (a NamedSharding over the batch axis) keeps latents and fakes data-parallel."""
  loss = losses.get(config.loss)
  unroll_tx = optimizers.make(config.optimizer.d.to_dict(), differentiable=True)  # D's look-ahead updates.
  num_samples = config.batch_size * config.pack   # G samples per update; D sees batch_size packs of them.

  def generate_train(variables, z, labels=None):
    """G in train mode, as every update runs it: over each pack slot on its own with config.pack_slot_statistics
    (PacGAN's authors' code), else over the whole batch."""
    if config.pack > 1 and config.pack_slot_statistics:
      return generate_per_slot(models, variables, z, config.pack)
    return generate(models, variables, z, True, labels)

  def data_parallel(x):
    return x if x is None or batch_sharding is None else jax.lax.with_sharding_constraint(x, batch_sharding)

  def latents(key):
    return data_parallel(models_lib.sample_latents(models, key, num_samples))  # [B * pack, latent_dim]

  def fake_labels_for(key):  # [B] uniform class labels of conditional models' fakes, else None.
    return data_parallel(models_lib.sample_labels(models, jax.random.fold_in(key, 7), num_samples))

  def d_logits(d_params, d_state, packed, labels=None):
    """(logits, aux, new collections). D's collections (BatchNorm statistics, spectral-norm vectors) come
    from `d_state` on every call of one update, so the real pass, the fake pass and the penalties see the
    same normalised weights."""
    return _discriminate(models, {"params": d_params, **d_state}, packed, labels)

  def d_adversarial_loss(d_params, d_state, real, fake, real_labels=None, fake_labels=None):
    """D's loss on packed real and fake inputs [B, ..., pack * C]."""
    real_logits, real_aux, new_d_state = d_logits(d_params, d_state, real, real_labels)
    fake_logits, fake_aux, _ = d_logits(d_params, d_state, fake, fake_labels)
    return loss.d_loss(real_logits, fake_logits), (new_d_state, real_logits, fake_logits, real_aux, fake_aux)

  def generator_inputs(key):
    return latents(jax.random.split(key)[0]), fake_labels_for(key)

  def generator_forward(state: GANState, key):
    """(z, fake labels, fakes, G's vjp with respect to its parameters, G's updated collections) of the critic
    step with `key`, for config.reuse_fakes."""
    z, fake_labels = generator_inputs(key)
    fake, g_vjp, g_state = jax.vjp(
        lambda g_params: generate_train({"params": g_params, **state.g_state}, z, fake_labels),
        state.g_params, has_aux=True)
    return z, fake_labels, fake, g_vjp, g_state

  def d_update(state: GANState, real, real_labels, key, d_step, generated=None):
    """`generated`: (z, fake labels, fakes) of generator_forward where G's update reuses them."""
    reg_key = jax.random.split(key)[1]
    if generated is None:
      z, fake_labels = generator_inputs(key)
      # G runs in train mode (batch statistics) as in the G update; its statistics are updated there only.
      fake, _ = generate_train(state.g_variables(), z, fake_labels)
    else:
      z, fake_labels, fake = generated
    # D's inputs are packs (PacGAN; pack 1 leaves them as they are), and so are the penalties': one
    # interpolation and one input-gradient norm per pack.
    real, fake = pack(real, config.pack), pack(jax.lax.stop_gradient(fake), config.pack)

    def d_loss_fn(d_params):
      adversarial, (d_state, real_logits, fake_logits, real_aux, fake_aux) = d_adversarial_loss(
          d_params, state.d_state, real, fake, real_labels, fake_labels)
      d_real_fn = lambda x: d_logits(d_params, state.d_state, x, real_labels)[0]
      d_fake_fn = lambda x: d_logits(d_params, state.d_state, x, fake_labels)[0]
      terms = regularizer_terms(config.regularizer, d_real_fn, real, fake, reg_key, d_step, d_fake_fn)
      aux = {}
      if models.aux == "classes":  # AC-GAN: D classifies reals and fakes (Odena et al. 2017, Eq. 3).
        aux["aux"] = (auxiliary_loss(models, real_aux, real_labels, None) +
                      auxiliary_loss(models, fake_aux, fake_labels, None))
        aux["real_class_accuracy"] = jnp.mean(jnp.argmax(real_aux, -1) == real_labels)
      elif models.aux == "info":  # InfoGAN: Q (on D's body) recovers the codes of the fakes.
        aux["aux"] = auxiliary_loss(models, fake_aux, None, z)
      total = adversarial + sum(terms.values()) + config.aux_weight * aux.get("aux", 0.0)
      return total, (d_state, real_logits, fake_logits, adversarial, terms, aux)

    grads, (d_state, real_logits, fake_logits, adversarial, terms, aux) = jax.grad(d_loss_fn, has_aux=True)(
        state.d_params)
    updates, d_opt_state = d_tx.update(grads, state.d_opt_state, state.d_params)
    d_params = optax.apply_updates(state.d_params, updates)
    if config.regularizer.weight_clip:
      d_params = regularizers.clip_weights(d_params, config.regularizer.weight_clip)
    state = state.replace(d_params=d_params, d_state=d_state, d_opt_state=d_opt_state)
    metrics = {
        "d_loss": adversarial,
        "d_real_prob": jnp.mean(jax.nn.sigmoid(real_logits)),  # Mean D(x); 0.5 at equilibrium.
        "d_fake_prob": jnp.mean(jax.nn.sigmoid(fake_logits)),  # Mean D(G(z)); 0.5 at equilibrium.
        "d_grad_norm": optax.global_norm(grads),
        **{f"d_reg_{name}": value for name, value in terms.items()},
        **{f"d_{name}": value for name, value in aux.items()},
    }
    return state, metrics

  def unrolled_d_params(state: GANState, g_params, reals, key):
    """Unrolled GAN (Metz et al. 2017, Eq. 5-7): D's parameters after k more adversarial updates against
    G(g_params), differentiable with respect to g_params. k = 0 gives D's current parameters."""
    d_params, d_opt_state = state.d_params, state.d_opt_state
    for i in range(config.unrolled_steps):
      z = latents(jax.random.fold_in(key, i))
      fake, _ = generate_train({"params": g_params, **state.g_state}, z)
      real = reals[i % reals.shape[0]]
      grads = jax.grad(lambda p: d_adversarial_loss(p, state.d_state, pack(real, config.pack),
                                                    pack(fake, config.pack))[0])(d_params)
      updates, d_opt_state = unroll_tx.update(grads, d_opt_state, d_params)
      d_params = optax.apply_updates(d_params, updates)
    return d_params

  def g_objective(state: GANState, d_params, fake, z, fake_labels):
    """G's loss on its fakes against D(d_params): (total, (adversarial part, auxiliary terms))."""
    # D's collections are unchanged by G's update.
    fake_logits, fake_aux, _ = d_logits(d_params, state.d_state, pack(fake, config.pack), fake_labels)
    adversarial = loss.g_loss(fake_logits)
    if not models.aux:
      return adversarial, (adversarial, {})
    # AC-GAN: G also makes its fakes classifiable as their labels; InfoGAN: G makes its codes recoverable.
    aux = auxiliary_loss(models, fake_aux, fake_labels, z)
    return adversarial + config.aux_weight * aux, (adversarial, {"g_aux": aux})

  def g_update(state: GANState, reals, key, forward=None, critic: GANState = None):
    """`forward`: generator_forward's output from the last critic step (config.reuse_fakes): G's loss is
    differentiated with respect to those fakes and pulled back through their forward pass. `critic`: the state
    whose D G's loss is taken against (config.simultaneous_updates: D before this step's update), else `state`'s."""
    critic = state if critic is None else critic
    if forward is not None:
      z, fake_labels, fake, g_vjp, g_state = forward
      fake_grads, (g_loss, aux) = jax.grad(g_objective, argnums=2, has_aux=True)(
          critic, critic.d_params, fake, z, fake_labels)
      grads, = g_vjp(fake_grads)
    else:
      z_key, unroll_key = jax.random.split(key)
      z = latents(z_key)
      fake_labels = fake_labels_for(key)

      def g_loss_fn(g_params):
        fake, g_state = generate_train({"params": g_params, **state.g_state}, z, fake_labels)
        d_params = unrolled_d_params(state, g_params, reals, unroll_key)
        total, (adversarial, aux) = g_objective(state, d_params, fake, z, fake_labels)
        return total, (g_state, adversarial, aux)

      grads, (g_state, g_loss, aux) = jax.grad(g_loss_fn, has_aux=True)(state.g_params)
    updates, g_opt_state = g_tx.update(grads, state.g_opt_state, state.g_params)
    state = state.replace(g_params=optax.apply_updates(state.g_params, updates), g_state=g_state,
                          g_opt_state=g_opt_state)
    return state, {"g_loss": g_loss, "g_grad_norm": optax.global_norm(grads), **aux}

  def train_step(state: GANState, batch):
    step_key = jax.random.fold_in(state.rng, state.step)
    d_keys = jax.random.split(jax.random.fold_in(step_key, 0), config.num_critic_steps)
    g_key = jax.random.fold_in(step_key, 1)
    d_steps = state.step * config.num_critic_steps + jnp.arange(config.num_critic_steps)

    # A Python loop, not lax.scan: XLA's CPU backend runs convolutions inside a while loop several times
    # slower (dcgan28's step: 1.4 s in a scan of length 1, 0.22 s without), and num_critic_steps is small.
    d_metrics, forward, before = [], None, state
    for i in range(config.num_critic_steps):
      labels = batch["label"][i] if models.num_classes else None
      if (config.reuse_fakes or config.simultaneous_updates) and i == config.num_critic_steps - 1:
        forward = generator_forward(state, d_keys[i])
      generated = forward[:3] if forward is not None else None
      state, metrics = d_update(state, batch["x"][i], labels, d_keys[i], d_steps[i], generated)
      d_metrics.append(metrics)
    d_metrics = jax.tree.map(lambda *m: jnp.mean(jnp.stack(m)), *d_metrics)  # Mean over the critic steps.
    # Simultaneous updates (as ALI's and PacGAN's code): G's gradient is taken at the same point as D's, against
    # D before its update; otherwise against the updated D (Goodfellow et al. 2014, Algorithm 1).
    state, g_metrics = g_update(state, batch["x"], g_key, forward,
                                critic=before if config.simultaneous_updates else None)
    decay = ema_decay_at(state.step, config.ema_decay)
    state = state.replace(ema_g=ema_update(state.ema_g, state.g_variables(), decay),
                          step=state.step + 1)
    # Parameter norms: logged, and NaN or Inf in any parameter shows in them (train.py's divergence check).
    norms = {"g_param_norm": optax.global_norm(state.g_params), "d_param_norm": optax.global_norm(state.d_params)}
    return state, {**d_metrics, **g_metrics, **norms}

  return train_step


def scan_steps(train_step, unroll: bool = False):
  """K training steps in one call: (state, batch with a leading axis K) -> (state, metrics stacked [K, ...]).

  One compiled program, so the host dispatches once per K steps: a `jax.lax.scan` over the steps, or with
  `unroll` the K steps written out (K times the compile time; for CPUs, whose backend runs convolutions
  inside a loop several times slower, see train_step).
  """
  def unrolled(state, batches):
    metrics = []
    for i in range(jax.tree.leaves(batches)[0].shape[0]):
      state, step_metrics = train_step(state, jax.tree.map(lambda x, i=i: x[i], batches))
      metrics.append(step_metrics)
    return state, jax.tree.map(lambda *m: jnp.stack(m), *metrics)

  return unrolled if unroll else (lambda state, batches: jax.lax.scan(train_step, state, batches))
