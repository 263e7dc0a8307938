"""DF-GAN's training (Tao et al. 2022; tobran/DF-GAN code/lib/modules.py train, MA_GP, predict_loss): a one-stage
text-to-image GAN conditioned on the sentence feature of a frozen, pretrained DAMSM text encoder
(models/damsm.py, written by scripts/pretrain_damsm.py), with the hinge loss, mismatched pairs and the
matching-aware gradient penalty. Per step, for a batch of real images x each with one of its captions (drawn at
random in the step, as the authors' loader draws one) encoded as s:

  L_D = hinge(D(x, s), real) + [hinge(D(G(z, s)), fake) + hinge(D(x_shifted, s), fake)] / 2 + MA-GP
  MA-GP = k E[ ||(grad_x D(x, s), grad_s D(x, s))||^p ], k = 2, p = 6   (Sec. 3.3, Eq. 5)
  L_G = -D(G(z, s), s)

where x_shifted pairs each sentence with the next image of the batch (the authors roll D's features by one), G's
images are made once per step and D's update is first, then G's through the updated D. Adam G 1e-4, D 4e-4, betas
(0, 0.9) (the experiment's). The text encoder's parameters ride in the state's `ema` under "text" (sampled with G,
never trained: its EMA is itself); its sizes and vocabulary are read from the DAMSM file.

objective_kwargs: magp_weight (2) and magp_power (6); damsm, eval_split and captions_per_image as every text-to-image
objective (_text.py).
"""
import jax
import jax.numpy as jnp
import optax

from gan_jax import objectives, state as state_lib
from gan_jax.errors import UserError
from gan_jax.models import damsm as damsm_lib
from gan_jax.objectives import _text
from gan_jax.steps import apply_gradients

not_applicable = _text.not_applicable


def make(config, models, damsm: str = "", magp_weight: float = 2.0, magp_power: float = 6.0,
         eval_split: str = "test", captions_per_image: int = 5):
  _text.require_damsm("dfgan", damsm)
  if not magp_weight >= 0 or not magp_power > 0:
    raise UserError(f"config.objective_kwargs.magp_weight must be >= 0 and magp_power > 0, got {magp_weight!r} and "
                    f"{magp_power!r}")
  return DFGAN(config, models, damsm=damsm, magp=(magp_weight, magp_power), eval_split=eval_split,
               captions_per_image=captions_per_image)


class DFGAN(_text.TextToImage):
  networks = ("g", "d")
  loss, loss_reason = "hinge", "the hinge loss (the authors' predict_loss)"

  def __init__(self, config, models, *, magp, **kwargs):
    super().__init__(config, models, **kwargs)
    self.magp = magp

  def init(self, seed, txs):
    m = self.models
    g_key, d_key, train_key = jax.random.split(jax.random.PRNGKey(seed), 3)
    z = jnp.zeros((1, m.latent_dim), jnp.float32)
    sentence = jnp.zeros((1, m.text_dim), jnp.float32)
    nets = {"g": state_lib.network(m.generator.init(g_key, z, sentence), txs["g"]),
            "d": state_lib.network(m.discriminator.init(d_key, jnp.zeros((1, *m.data_shape)), sentence), txs["d"])}
    return self.new_state(train_key, nets)

  def _images(self, g_variables, caption, z):
    return self.models.generator.apply(g_variables, z, caption["sentence"])

  # --- The training step.

  def phases(self, txs, batch_sharding=None) -> list:
    m = self.models
    weight, power = self.magp

    def data_parallel(x):
      return x if batch_sharding is None else jax.lax.with_sharding_constraint(x, batch_sharding)

    def d_main(state, batch, key, carry):
      caption_key, z_key = jax.random.split(key)
      real = batch["x"][0]
      ids = damsm_lib.pick_captions(caption_key, batch["caption"][0])
      sentence = self.encode(state.ema["text"], ids)["sentence"]
      z = data_parallel(jax.random.normal(z_key, (real.shape[0], m.latent_dim), jnp.float32))
      fake = m.generator.apply(state.variables("g"), z, sentence)
      d = state.nets["d"]

      def loss_fn(d_params):
        variables = {"params": d_params}
        features = lambda x: m.discriminator.apply(variables, x, method="features")
        logits = lambda f, s: m.discriminator.apply(variables, f, s, method="logits")
        real_logits = logits(features(real), sentence)
        magp = ma_gp(lambda x, s: logits(features(x), s), real, sentence, weight, power)
        mismatched = logits(jnp.roll(features(real), -1, axis=0), sentence)    # Image b + 1 with sentence b.
        fake_logits = logits(features(jax.lax.stop_gradient(fake)), sentence)
        d_real = jnp.mean(jax.nn.relu(1.0 - real_logits))
        d_fake, d_mismatched = jnp.mean(jax.nn.relu(1.0 + fake_logits)), jnp.mean(jax.nn.relu(1.0 + mismatched))
        loss = d_real + (d_fake + d_mismatched) / 2.0 + magp
        return loss, {"d_real": d_real, "d_fake": d_fake, "d_mismatched": d_mismatched, "d_reg_magp": magp,
                      "d_real_prob": jnp.mean(jax.nn.sigmoid(real_logits)),
                      "d_fake_prob": jnp.mean(jax.nn.sigmoid(fake_logits)),
                      "d_real_sign": jnp.mean(jnp.sign(real_logits))}

      (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(d.params)
      state = apply_gradients(state, "d", grads, txs["d"])
      return state, {"d_loss": loss, "d_grad_norm": optax.global_norm(grads), **metrics}, {
          **carry, "z": z, "sentence": sentence}

    def g_main(state, batch, key, carry):
      z, sentence = carry["z"], carry["sentence"]
      d_variables = state.variables("d")

      def loss_fn(g_params):
        fake = m.generator.apply({"params": g_params}, z, sentence)
        return -jnp.mean(m.discriminator.apply(d_variables, fake, sentence))

      loss, grads = jax.value_and_grad(loss_fn)(state.nets["g"].params)
      state = apply_gradients(state, "g", grads, txs["g"])
      return state, {"g_loss": loss, "g_grad_norm": optax.global_norm(grads)}, carry

    return [objectives.Phase("d_main", ("d",), d_main), objectives.Phase("g_main", ("g",), g_main)]



def ma_gp(d_fn, images, sentences, weight: float = 2.0, power: float = 6.0):
  """The matching-aware gradient penalty (Tao et al. 2022, Eq. 5; the authors' MA_GP): weight E[||(grad_x D,
  grad_s D)||^power] at the real images and their own sentences, the gradients of each sample's logit with respect
  to its image and its sentence joined into one vector. d_fn(images, sentences) -> logits [B]."""
  grad_x, grad_s = jax.grad(lambda x, s: jnp.sum(d_fn(x, s)), argnums=(0, 1))(images, sentences)
  norms = jnp.sqrt(jnp.sum(jnp.square(grad_x.reshape(len(images), -1)), axis=1) + jnp.sum(jnp.square(grad_s), 1))
  return weight * jnp.mean(norms ** power)
