"""Pure update steps built from the config: the discriminator update, the generator update, the EMA.

`make_train_step` returns train_step(state, batch) -> (state, metrics): `num_critic_steps` D updates (one
real batch each, batch['image']: [num_critic_steps, B, H, W, C]) then one G update (Goodfellow et al. 2014,
Algorithm 1), then the EMA of G. It is a pure function of its inputs, ready for jax.jit.
"""
import jax
import jax.numpy as jnp
import optax

from gan_jax import losses
from gan_jax.models import GANModels
from gan_jax.state import GANState


def generate(models: GANModels, variables, z, train: bool):
  """G(z): images [B, H, W, C], and G's updated non-param collections when `train`."""
  if not train:
    return models.generator.apply(variables, z, train=False), None
  mutable = [k for k in variables if k != "params"]
  images, new_state = models.generator.apply(variables, z, train=True, mutable=mutable)
  return images, dict(new_state)


def _discriminate(models: GANModels, variables, images):
  mutable = [k for k in variables if k != "params"]
  logits, new_state = models.discriminator.apply(variables, images, train=True, mutable=mutable)
  return logits, dict(new_state)


def ema_decay_at(step, decay):
  """Warm-up as tf.train.ExponentialMovingAverage(num_updates=step): min(decay, (1 + t) / (10 + t)).

  Early samples then follow the trained generator instead of its random initialisation.
  """
  step = jnp.asarray(step, jnp.float32)
  return jnp.minimum(decay, (1.0 + step) / (10.0 + step))


def ema_update(ema, new, decay):
  return jax.tree.map(lambda e, n: decay * e + (1.0 - decay) * n, ema, new)


def make_train_step(config, models: GANModels, g_tx: optax.GradientTransformation,
                    d_tx: optax.GradientTransformation, batch_sharding=None):
  """`batch_sharding` (a NamedSharding over the batch axis) keeps latents and fakes data-parallel."""
  loss = losses.get(config.loss)
  batch_size = config.batch_size

  def latents(key):
    z = jax.random.normal(key, (batch_size, models.latent_dim), jnp.float32)  # [B, latent_dim]
    return z if batch_sharding is None else jax.lax.with_sharding_constraint(z, batch_sharding)

  def d_update(state: GANState, real_images, key):
    # G runs in train mode (batch statistics) as in the G update; its statistics are updated there only.
    fake_images, _ = generate(models, state.g_variables(), latents(key), train=True)
    fake_images = jax.lax.stop_gradient(fake_images)

    def d_loss_fn(d_params):
      variables = {"params": d_params, **state.d_state}
      real_logits, d_state = _discriminate(models, variables, real_images)
      fake_logits, d_state = _discriminate(models, {"params": d_params, **d_state}, fake_images)
      return loss.d_loss(real_logits, fake_logits), (d_state, real_logits, fake_logits)

    (d_loss, (d_state, real_logits, fake_logits)), grads = jax.value_and_grad(d_loss_fn, has_aux=True)(
        state.d_params)
    updates, d_opt_state = d_tx.update(grads, state.d_opt_state, state.d_params)
    state = state.replace(d_params=optax.apply_updates(state.d_params, updates), d_state=d_state,
                          d_opt_state=d_opt_state)
    metrics = {
        "d_loss": d_loss,
        "d_real_prob": jnp.mean(jax.nn.sigmoid(real_logits)),  # Mean D(x); 0.5 at equilibrium.
        "d_fake_prob": jnp.mean(jax.nn.sigmoid(fake_logits)),  # Mean D(G(z)); 0.5 at equilibrium.
        "d_grad_norm": optax.global_norm(grads),
    }
    return state, metrics

  def g_update(state: GANState, key):
    z = latents(key)

    def g_loss_fn(g_params):
      fake_images, g_state = generate(models, {"params": g_params, **state.g_state}, z, train=True)
      fake_logits, _ = _discriminate(models, state.d_variables(), fake_images)  # D's statistics unchanged.
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

    def critic_step(state, inputs):
      real_images, key = inputs
      return d_update(state, real_images, key)

    state, d_metrics = jax.lax.scan(critic_step, state, (batch["image"], d_keys))
    d_metrics = jax.tree.map(jnp.mean, d_metrics)  # Mean over the critic steps.
    state, g_metrics = g_update(state, g_key)
    decay = ema_decay_at(state.step, config.ema_decay)
    state = state.replace(ema_g=ema_update(state.ema_g, state.g_variables(), decay),
                          step=state.step + 1)
    return state, {**d_metrics, **g_metrics}

  return train_step
