"""AttnGAN's training (Xu et al. 2018, Sec. 3; taoxugit/AttnGAN code/trainer.py train, code/miscc/losses.py
discriminator_loss, generator_loss, KL_loss): the multi-stage generator of models/attngan.py against one
discriminator per stage, with the DAMSM loss on the last stage's images. Per step, for real images x each with one
of its captions (drawn at random in the step, as the authors' loader draws one), encoded by the frozen DAMSM text
encoder as words w and sentence s, and G's images x_i at every stage i (made once per step, D's updates first):

  L_D_i = [BCE(D_i(x_i^real), 1) + BCE(D_i(x_i^real, s), 1)] / 2
        + [BCE(D_i(x_i), 0) + BCE(D_i(x_i, s), 0) + BCE(D_i(x_i^real, s'), 0)] / 3
  L_G = sum_i [BCE(D_i(x_i), 1) + BCE(D_i(x_i, s), 1)] + lambda (L_words + L_sentence)(x_last, w, s) + KL

where x_i^real is the real image at stage i's side (bilinear, antialiased: the authors' loader resizes with PIL),
s' pairs each real image but the last with the next example's sentence (the mismatched pairs), BCE is on D's
logits (the authors' sigmoid and BCELoss, stably), L_words and L_sentence are the DAMSM's four matching losses
(models/damsm.py: w_loss0 + w_loss1 and s_loss0 + s_loss1) of the last stage's images under the frozen image
encoder against their own captions, lambda is TRAIN.SMOOTH.LAMBDA (5 on CUB, 50 on COCO), and KL is the
conditioning augmentation's KL divergence from N(0, I), averaged over its elements as the authors' KL_loss. Adam
2e-4 (0.5, 0.999) for G and the Ds; the EMA of G (0.999, the authors' avg_param_G) is what is sampled. The
authors' words loss also leaves out pairs of the same class on CUB (class_ids); captioned_shapes has no classes,
and duplicates of a caption's facts in a batch of 20 are rare, so none are left out, as on COCO.

objective_kwargs: damsm_weight (lambda, 5.0); kl_weight (1.0); damsm, eval_split and captions_per_image as every
text-to-image objective (_text.py).
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


def make(config, models, damsm: str = "", damsm_weight: float = 5.0, kl_weight: float = 1.0,
         eval_split: str = "test", captions_per_image: int = 5):
  _text.require_damsm("attngan", damsm)
  if not damsm_weight >= 0 or not kl_weight >= 0:
    raise UserError(f"config.objective_kwargs.damsm_weight and kl_weight must be >= 0, got {damsm_weight!r} and "
                    f"{kl_weight!r}")
  return AttnGAN(config, models, damsm=damsm, damsm_weight=damsm_weight, kl_weight=kl_weight, eval_split=eval_split,
                 captions_per_image=captions_per_image)


def bce(logits, target: float):
  """nn.BCELoss()(sigmoid(logits), target), from the logits."""
  return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, jnp.full_like(logits, target)))


def kl_loss(mu, logvar):
  """KL_loss: -0.5 mean(1 + log sigma^2 - mu^2 - sigma^2), over batch and condition elements."""
  return -0.5 * jnp.mean(1.0 + logvar - jnp.square(mu) - jnp.exp(logvar))


def resize(images, side: int):
  if images.shape[1] == side:
    return images
  return jax.image.resize(images, (images.shape[0], side, side, images.shape[-1]), "linear", antialias=True)


class AttnGAN(_text.TextToImage):
  networks = ("g", "d")
  carried = ("text", "image")   # G's DAMSM loss reads the image encoder.
  loss, loss_reason = "non_saturating", "binary cross-entropy (the authors' BCELoss, G's the non-saturating form)"

  def __init__(self, config, models, *, damsm_weight, kl_weight, **kwargs):
    super().__init__(config, models, **kwargs)
    self.damsm_weight, self.kl_weight = damsm_weight, kl_weight
    self.resolutions = models.discriminator.resolutions

  def init(self, seed, txs):
    m = self.models
    g_key, d_key, train_key = jax.random.split(jax.random.PRNGKey(seed), 3)
    z = jnp.zeros((2, m.latent_dim), jnp.float32)
    caption = {"words": jnp.zeros((2, self.max_length, m.text_dim), jnp.float32),
               "mask": jnp.ones((2, self.max_length), bool), "sentence": jnp.zeros((2, m.text_dim), jnp.float32)}
    g_vars = m.generator.init(g_key, z, caption["sentence"], caption["words"], caption["mask"])
    d_vars = m.discriminator.init(d_key, jnp.zeros((2, *m.data_shape)), caption["sentence"])
    nets = {"g": state_lib.network(g_vars, txs["g"]), "d": state_lib.network(d_vars, txs["d"])}
    return self.new_state(train_key, nets)

  def _stages(self, g_variables, caption, z, train: bool):
    """(images of every stage, attention maps, mu, logvar), and G's new BatchNorm statistics when `train`."""
    args = (z, caption["sentence"], caption["words"], caption["mask"])
    if not train:
      return self.models.generator.apply(g_variables, *args, False, method="stages"), None
    out, new = self.models.generator.apply(g_variables, *args, True, method="stages", mutable=["batch_stats"])
    return out, dict(new)

  def _images(self, g_variables, caption, z):
    return self._stages(g_variables, caption, z, train=False)[0][0][-1]

  def attention_maps(self, ema: dict, conditions: dict):
    """(the last stage's images [N, S, S, C], each attending stage's word attention [N, h, w, T]) of `conditions`
    (the sampled G in eval mode): where each word of the caption was drawn (scripts/attention_maps.py)."""
    caption = self.encode(ema["text"], conditions["text"])
    (images, attentions, _, _), _ = self._stages(ema["g"], caption, conditions["z"], train=False)
    return images[-1], attentions

  # --- The training step.

  def phases(self, txs, batch_sharding=None) -> list:
    m = self.models

    def data_parallel(x):
      return x if batch_sharding is None else jax.lax.with_sharding_constraint(x, batch_sharding)

    def d_apply(params, collections, method, *args):
      """D's `method` in train mode: (its output, the collections after it: BatchNorm's running averages)."""
      out, new = m.discriminator.apply({"params": params, **collections}, *args, method=method,
                                       mutable=["batch_stats"])
      return out, {**collections, **dict(new)}

    def d_main(state, batch, key, carry):
      caption_key, z_key = jax.random.split(key)
      real = batch["x"][0]
      caption = self.encode(state.ema["text"], damsm_lib.pick_captions(caption_key, batch["caption"][0]))
      z = data_parallel(jax.random.normal(z_key, (real.shape[0], m.latent_dim), jnp.float32))
      (fakes, _, _, _), _ = self._stages(state.variables("g"), caption, z, train=True)
      fakes = [jax.lax.stop_gradient(f) for f in fakes]
      sentence = caption["sentence"]
      d = state.nets["d"]

      def loss_fn(params):
        collections, total, metrics = d.collections, 0.0, {}
        for i, side in enumerate(self.resolutions):
          real_features, collections = d_apply(params, collections, "features", resize(real, side), i)
          fake_features, collections = d_apply(params, collections, "features", fakes[i], i)
          real_logits, collections = d_apply(params, collections, "logits", real_features, None, i)
          fake_logits, collections = d_apply(params, collections, "logits", fake_features, None, i)
          cond_real, collections = d_apply(params, collections, "logits", real_features, sentence, i)
          cond_fake, collections = d_apply(params, collections, "logits", fake_features, sentence, i)
          cond_wrong, collections = d_apply(params, collections, "logits", real_features[:-1], sentence[1:], i)
          loss = (bce(real_logits, 1.0) + bce(cond_real, 1.0)) / 2.0 + (
              bce(fake_logits, 0.0) + bce(cond_fake, 0.0) + bce(cond_wrong, 0.0)) / 3.0
          total += loss
          metrics[f"d{i}_loss"] = loss
        metrics.update(d_real_prob=jnp.mean(jax.nn.sigmoid(real_logits)),     # The last stage's.
                       d_fake_prob=jnp.mean(jax.nn.sigmoid(fake_logits)),
                       d_wrong_prob=jnp.mean(jax.nn.sigmoid(cond_wrong)),
                       d_real_sign=jnp.mean(jnp.sign(real_logits)))         # ADA's r_t (Karras et al. 2020).
        return total, (metrics, collections)

      (loss, (metrics, collections)), grads = jax.value_and_grad(loss_fn, has_aux=True)(d.params)
      state = apply_gradients(state, "d", grads, txs["d"], collections=collections)
      return state, {"d_loss": loss, "d_grad_norm": optax.global_norm(grads), **metrics}, {
          **carry, "z": z, "caption": caption}

    def g_main(state, batch, key, carry):
      z, caption = carry["z"], carry["caption"]
      g, d = state.nets["g"], state.nets["d"]

      def loss_fn(params):
        (fakes, _, mu, logvar), g_collections = self._stages({"params": params, **g.collections}, caption, z, True)
        adversarial = 0.0
        for i, fake in enumerate(fakes):
          features, _ = d_apply(d.params, d.collections, "features", fake, i)
          logits, _ = d_apply(d.params, d.collections, "logits", features, None, i)
          cond_logits, _ = d_apply(d.params, d.collections, "logits", features, caption["sentence"], i)
          adversarial += bce(logits, 1.0) + bce(cond_logits, 1.0)
        regions, codes = self.image_encoder.apply(state.ema["image"], fakes[-1])
        losses = damsm_lib.damsm_losses(caption["words"], caption["mask"], caption["sentence"], regions, codes)
        words, sentences = losses["w_loss0"] + losses["w_loss1"], losses["s_loss0"] + losses["s_loss1"]
        kl = kl_loss(mu, logvar)
        loss = adversarial + self.damsm_weight * (words + sentences) + self.kl_weight * kl
        return loss, ({"g_adversarial": adversarial, "g_words": words, "g_sentence": sentences, "g_kl": kl},
                      g_collections)

      (loss, (metrics, collections)), grads = jax.value_and_grad(loss_fn, has_aux=True)(g.params)
      state = apply_gradients(state, "g", grads, txs["g"], collections=collections)
      return state, {"g_loss": loss, "g_grad_norm": optax.global_norm(grads), **metrics}, carry

    return [objectives.Phase("d_main", ("d",), d_main), objectives.Phase("g_main", ("g",), g_main)]

