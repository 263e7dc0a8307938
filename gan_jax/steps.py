"""Pure update steps built from the config: the discriminator update, the generator update, the EMA.

`make_train_step` returns train_step(state, batch) -> (state, metrics): `num_critic_steps` D updates (one
real batch each, batch['x']: [num_critic_steps, B * pack, ...]) then one G update (Goodfellow et al. 2014,
Algorithm 1), then the EMA of G. It is a pure function of its inputs, ready for jax.jit.
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan_jax import losses, optimizers, regularizers
from gan_jax.models import GANModels
from gan_jax.state import GANState


def generate(models: GANModels, variables, z, train: bool):
  """G(z): samples [B, ...], and G's updated non-param collections when `train`."""
  if not train:
    return models.generator.apply(variables, z, train=False), None
  mutable = [k for k in variables if k != "params"]
  samples, new_state = models.generator.apply(variables, z, train=True, mutable=mutable)
  return samples, dict(new_state)


def generate_in_batches(models: GANModels, variables, z, batch_size: int = 256) -> np.ndarray:
  """float32 numpy [N, *data_shape]: G in eval mode on latents z [N, latent_dim], `batch_size` at a time."""
  apply = jax.jit(lambda variables, z: generate(models, variables, z, train=False)[0])
  return np.concatenate([np.asarray(jax.device_get(apply(variables, z[i:i + batch_size])), np.float32)
                         for i in range(0, z.shape[0], batch_size)])


def _discriminate(models: GANModels, variables, x):
  mutable = [k for k in variables if k != "params"]
  logits, new_state = models.discriminator.apply(variables, x, train=True, mutable=mutable)
  return logits, dict(new_state)


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


def regularizer_terms(reg, d_fn, real, fake, key, d_step):
  """The active terms of `config.regularizer`, weighted, by name (added to D's loss)."""
  gp_key, dragan_key = jax.random.split(key)
  terms = {}
  if reg.gradient_penalty:
    terms["gradient_penalty"] = reg.gradient_penalty * regularizers.gradient_penalty(d_fn, real, fake, gp_key)
  if reg.dragan:
    terms["dragan"] = reg.dragan * regularizers.dragan_penalty(d_fn, real, dragan_key)
  for name, gamma, x in (("r1", reg.r1, real), ("r2", reg.r2, fake)):
    if gamma:
      # Lazy regularisation (Karras et al. 2020, Sec. 3.1): every k-th D update, weighted by k.
      k = reg.lazy_every
      term = lambda x=x, gamma=gamma, k=k: k * 0.5 * gamma * regularizers.gradient_norm_squared(d_fn, x)
      terms[name] = term() if k == 1 else jax.lax.cond(d_step % k == 0, term, lambda: jnp.zeros(()))
  return terms


def make_train_step(config, models: GANModels, g_tx: optax.GradientTransformation,
                    d_tx: optax.GradientTransformation, batch_sharding=None):
  """`batch_sharding` (a NamedSharding over the batch axis) keeps latents and fakes data-parallel."""
  loss = losses.get(config.loss)
  unroll_tx = optimizers.make(config.optimizer.d.to_dict(), differentiable=True)  # D's look-ahead updates.
  num_samples = config.batch_size * config.pack   # G samples per update; D sees batch_size packs of them.

  def latents(key):
    z = jax.random.normal(key, (num_samples, models.latent_dim), jnp.float32)  # [B * pack, latent_dim]
    return z if batch_sharding is None else jax.lax.with_sharding_constraint(z, batch_sharding)

  def d_logits(d_params, d_state, packed):
    # D's collections (BatchNorm statistics, spectral-norm vectors) come from `d_state` on every call of one
    # update, so the real pass, the fake pass and the penalties see the same normalised weights.
    return _discriminate(models, {"params": d_params, **d_state}, packed)

  def d_adversarial_loss(d_params, d_state, real, fake):
    """D's loss on packed real and fake inputs [B, ..., pack * C]."""
    real_logits, new_d_state = d_logits(d_params, d_state, real)
    fake_logits, _ = d_logits(d_params, d_state, fake)
    return loss.d_loss(real_logits, fake_logits), (new_d_state, real_logits, fake_logits)

  def d_update(state: GANState, real, key, d_step):
    fake_key, reg_key = jax.random.split(key)
    # G runs in train mode (batch statistics) as in the G update; its statistics are updated there only.
    fake, _ = generate(models, state.g_variables(), latents(fake_key), train=True)
    # D's inputs are packs (PacGAN; pack 1 leaves them as they are), and so are the penalties': one
    # interpolation and one input-gradient norm per pack.
    real, fake = pack(real, config.pack), pack(jax.lax.stop_gradient(fake), config.pack)

    def d_loss_fn(d_params):
      adversarial, (d_state, real_logits, fake_logits) = d_adversarial_loss(d_params, state.d_state, real, fake)
      d_fn = lambda x: d_logits(d_params, state.d_state, x)[0]
      terms = regularizer_terms(config.regularizer, d_fn, real, fake, reg_key, d_step)
      return adversarial + sum(terms.values()), (d_state, real_logits, fake_logits, adversarial, terms)

    grads, (d_state, real_logits, fake_logits, adversarial, terms) = jax.grad(d_loss_fn, has_aux=True)(
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
    }
    return state, metrics

  def unrolled_d_params(state: GANState, g_params, reals, key):
    """Unrolled GAN (Metz et al. 2017, Eq. 5-7): D's parameters after k more adversarial updates against
    G(g_params), differentiable with respect to g_params. k = 0 gives D's current parameters."""
    d_params, d_opt_state = state.d_params, state.d_opt_state
    for i in range(config.unrolled_steps):
      z = latents(jax.random.fold_in(key, i))
      fake, _ = generate(models, {"params": g_params, **state.g_state}, z, train=True)
      real = reals[i % reals.shape[0]]
      grads = jax.grad(lambda p: d_adversarial_loss(p, state.d_state, pack(real, config.pack),
                                                    pack(fake, config.pack))[0])(d_params)
      updates, d_opt_state = unroll_tx.update(grads, d_opt_state, d_params)
      d_params = optax.apply_updates(d_params, updates)
    return d_params

  def g_update(state: GANState, reals, key):
    z_key, unroll_key = jax.random.split(key)
    z = latents(z_key)

    def g_loss_fn(g_params):
      fake, g_state = generate(models, {"params": g_params, **state.g_state}, z, train=True)
      d_params = unrolled_d_params(state, g_params, reals, unroll_key)
      # D's collections are unchanged by G's update.
      fake_logits, _ = d_logits(d_params, state.d_state, pack(fake, config.pack))
      return loss.g_loss(fake_logits), g_state

    (g_loss, g_state), grads = jax.value_and_grad(g_loss_fn, has_aux=True)(state.g_params)
    updates, g_opt_state = g_tx.update(grads, state.g_opt_state, state.g_params)
    state = state.replace(g_params=optax.apply_updates(state.g_params, updates), g_state=g_state,
                          g_opt_state=g_opt_state)
    return state, {"g_loss": g_loss, "g_grad_norm": optax.global_norm(grads)}

  def train_step(state: GANState, batch):
    step_key = jax.random.fold_in(state.rng, state.step)
    d_keys = jax.random.split(jax.random.fold_in(step_key, 0), config.num_critic_steps)
    g_key = jax.random.fold_in(step_key, 1)
    d_steps = state.step * config.num_critic_steps + jnp.arange(config.num_critic_steps)

    # A Python loop, not lax.scan: XLA's CPU backend runs convolutions inside a while loop several times
    # slower (dcgan28's step: 1.4 s in a scan of length 1, 0.22 s without), and num_critic_steps is small.
    d_metrics = []
    for i in range(config.num_critic_steps):
      state, metrics = d_update(state, batch["x"][i], d_keys[i], d_steps[i])
      d_metrics.append(metrics)
    d_metrics = jax.tree.map(lambda *m: jnp.mean(jnp.stack(m)), *d_metrics)  # Mean over the critic steps.
    state, g_metrics = g_update(state, batch["x"], g_key)
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
