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

objective_kwargs: damsm, the .npz of scripts/pretrain_damsm.py (required; "random" gives a frozen random encoder,
for smoke tests only); magp_weight (2) and magp_power (6); eval_split, whose captions the evaluation and the sample
grid's rows take ("test"); captions_per_image (5, the dataset's).
"""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan_jax import data, objectives, state as state_lib
from gan_jax.errors import UserError
from gan_jax.models import damsm as damsm_lib
from gan_jax.objectives import _translation, gan
from gan_jax.steps import apply_gradients

GRID_CAPTIONS = 8   # Rows of the sample grid: one caption each, with the grid's latents across.


def make(config, models, damsm: str = "", magp_weight: float = 2.0, magp_power: float = 6.0,
         eval_split: str = "test", captions_per_image: int = 5):
  if not damsm:
    raise UserError("objective 'dfgan' needs config.objective_kwargs.damsm, the text encoder written by "
                    "scripts/pretrain_damsm.py")
  if not magp_weight >= 0 or not magp_power > 0:
    raise UserError(f"config.objective_kwargs.magp_weight must be >= 0 and magp_power > 0, got {magp_weight!r} and "
                    f"{magp_power!r}")
  return DFGAN(config, models, damsm=damsm, magp=(magp_weight, magp_power), eval_split=eval_split,
               captions_per_image=captions_per_image)


def not_applicable(config) -> set:
  return _translation.not_applicable(config) - {"eval_ref_split"}


def _random_damsm(config):
  """(params, meta) of an untrained text encoder at the sizes pretrain_damsm.py defaults to, on the dataset's
  vocabulary: what objective_kwargs.damsm = "random" trains against (a smoke test's stand-in)."""
  builder = data.load_builder(config.data.name, config.data.data_dir, config.data.download)
  vocabulary = list(builder.info.metadata["vocabulary"])
  hidden = config.model.text_dim
  meta = dict(vocabulary=vocabulary, max_length=int(builder.info.metadata["max_length"]), embed_dim=16,
              hidden=hidden, width=8)
  text, _ = damsm_lib.encoders(len(vocabulary), 16, hidden, 8)
  params = text.init(jax.random.PRNGKey(config.seed), jnp.ones((1, meta["max_length"]), jnp.int32))["params"]
  return {"text": params}, meta


class DFGAN(objectives.Objective):
  networks = ("g", "d")
  sampled = ("g",)
  latent_space = False   # G takes a sentence too: the latent tools (gan_jax.latent) are for G(z) families.

  def __init__(self, config, models, *, damsm, magp, eval_split, captions_per_image):
    super().__init__(config, models)
    self.damsm_path, self.magp, self.eval_split = damsm, magp, eval_split
    self.captions_per_image = captions_per_image
    self._captions, self._damsm = None, None
    from gan_jax.metrics import shapes_parser  # pylint: disable=g-import-not-at-top
    # captioned_shapes states its captions' facts as features: the parser's `attributes` evaluator scores them.
    self.fact_features = shapes_parser.FACTS if config.data.name.split("/")[0] == "captioned_shapes" else ()
    self.target_kinds = ("facts",) if self.fact_features else ()

  # The DAMSM file is read when training, sampling or evaluation first needs it (config.validate reads no file
  # and prepares no dataset): a missing one is a one-line error before anything compiles (check_sources).

  @property
  def damsm(self):
    """(the text encoder's params, the file's meta: sizes, vocabulary, max_length)."""
    if self._damsm is None:
      params, meta = (_random_damsm(self.config) if self.damsm_path == "random" else
                      damsm_lib.load(self.damsm_path))
      self._damsm = (params["text"], meta)
    return self._damsm

  @property
  def text_params(self):
    return self.damsm[0]

  @property
  def vocabulary(self):
    return self.damsm[1]["vocabulary"]

  @property
  def max_length(self) -> int:
    return int(self.damsm[1]["max_length"])

  @property
  def text_encoder(self):
    meta = self.damsm[1]
    return damsm_lib.TextEncoder(len(meta["vocabulary"]), meta["embed_dim"], meta["hidden"])

  def check_sources(self, global_batch_size: int) -> None:
    hidden = self.damsm[1]["hidden"]   # The file, read or refused before anything compiles.
    if hidden != self.models.text_dim:
      raise UserError(f"the DAMSM {self.damsm_path!r} gives sentence features of {hidden}, but config.model.text_dim "
                      f"is {self.models.text_dim}")
    super().check_sources(global_batch_size)

  def check(self) -> None:
    from gan_jax import config as config_lib  # pylint: disable=g-import-not-at-top
    if self.config.loss != "hinge":
      raise UserError(f"objective 'dfgan' trains with the hinge loss (the authors' predict_loss); config.loss must be "
                      f"'hinge', got {self.config.loss!r}")
    config_lib.check_at_defaults(self.config, gan.PLAIN_GAN_KEYS, "dfgan")

  # --- Data, state and conditions.

  def sources(self) -> dict:
    shape = (self.captions_per_image, self.max_length)
    return {"x": data.source(self.config.data, x=(self.config.data.feature, self.models.data_shape),
                             caption=("captions", shape))}

  def init(self, seed, txs):
    m = self.models
    g_key, d_key, train_key = jax.random.split(jax.random.PRNGKey(seed), 3)
    z = jnp.zeros((1, m.latent_dim), jnp.float32)
    sentence = jnp.zeros((1, m.text_dim), jnp.float32)
    nets = {"g": state_lib.network(m.generator.init(g_key, z, sentence), txs["g"]),
            "d": state_lib.network(m.discriminator.init(d_key, jnp.zeros((1, *m.data_shape)), sentence), txs["d"])}
    state = state_lib.new_state(train_key, nets, sampled=self.sampled)
    return state.replace(ema={**state.ema, "text": {"params": self.text_params}})

  def sentences(self, text_variables, ids):
    """The frozen encoder's sentence features [B, hidden] of caption ids [B, T]."""
    return jax.lax.stop_gradient(self.text_encoder.apply(text_variables, ids)[1])

  def evaluation_captions(self):
    """(word ids [N, T] of the first caption of each example of eval_split, in order; their facts [N, 12] as
    shapes_parser.facts_to_array gives them, or None for a dataset without facts). Read once."""
    if self._captions is None:
      from gan_jax.metrics import shapes_parser  # pylint: disable=g-import-not-at-top
      features = (("caption", "captions", (self.captions_per_image, self.max_length)),) + (
          shapes_parser.fact_features() if self.fact_features else ())
      examples = data.load_examples(dataclasses.replace(self.sources()["x"], split=self.eval_split,
                                                        features=features))
      facts = shapes_parser.facts_to_array(examples) if self.fact_features else None
      self._captions = (examples["caption"][:, 0], facts)
    return self._captions

  def tokenize(self, captions) -> np.ndarray:
    """Word ids [N, T] of caption strings, by the encoder's vocabulary (unknown words are <unk>)."""
    from gan_jax.data import captioned_shapes  # pylint: disable=g-import-not-at-top  (its tokenizer, any vocabulary)
    index = {w: i for i, w in enumerate(self.vocabulary)}
    return np.asarray([captioned_shapes.tokenize(c, self.max_length, index)[0] for c in captions],
                      np.int32).reshape(len(captions), self.max_length)

  def conditions(self, key, num: int, text=None) -> dict:
    """{"z": [num, latent_dim], "text": word ids [num, T]}: `text` (caption strings, cycled) as given, else the
    evaluation split's captions in groups of num // GRID_CAPTIONS (so a grid's row shares its caption) when num is
    the grid's, else its first num captions, cycled."""
    z = np.asarray(jax.random.normal(key, (num, self.models.latent_dim), jnp.float32))
    if text is not None:
      ids = self.tokenize(list(text))
      if not len(ids):
        raise UserError("--text: no caption given")
      return {"z": z, "text": ids[np.arange(num) % len(ids)]}
    ids, facts = self.evaluation_captions()
    order = np.arange(num) % len(ids)
    if num == self.config.num_grid_samples and num % GRID_CAPTIONS == 0:
      order = np.arange(num) // (num // GRID_CAPTIONS) % len(ids)
    return {"z": z, "text": ids[order], **({"facts": facts[order]} if facts is not None else {})}

  def generate(self, ema: dict, conditions: dict, batch_size: int = 256) -> np.ndarray:
    if not hasattr(self, "_generate_jit"):
      self._generate_jit = jax.jit(lambda g, text, z, ids: self.models.generator.apply(
          g, z, self.sentences(text, ids)))
    z, ids = conditions["z"], conditions["text"]
    return np.concatenate([np.asarray(jax.device_get(self._generate_jit(
        ema["g"], ema["text"], z[i:i + batch_size], ids[i:i + batch_size])), np.float32)
        for i in range(0, len(z), batch_size)])

  def evaluation_targets(self, conditions) -> dict:
    """{"facts": what each sample's caption states} (captioned_shapes), for the parser's `attributes` evaluator."""
    return {"facts": conditions["facts"]} if "facts" in conditions else {}

  def reference_source(self):
    """Real images of eval_split (config.eval_ref_split when set): what FID compares samples with."""
    source = data.source(self.config.data, x=(self.config.data.feature, self.models.data_shape))
    return dataclasses.replace(source, split=getattr(self.config, "eval_ref_split", "") or self.eval_split)

  def picture(self, ema: dict, grid_conditions: dict, eval_conditions: dict) -> np.ndarray:
    """GRID_CAPTIONS rows, each one caption (the evaluation split's first ones) under different latents."""
    from gan_jax import images  # pylint: disable=g-import-not-at-top
    samples = self.generate(ema, grid_conditions)
    return images.grid(images.to_uint8(samples), columns=max(len(samples) // GRID_CAPTIONS, 1))

  def real_picture(self, num_grid: int, num_points: int):
    from gan_jax import images  # pylint: disable=g-import-not-at-top
    return images.grid(images.to_uint8(data.load_examples(self.reference_source(), num=num_grid)["x"]))

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
      sentence = self.sentences(state.ema["text"], ids)
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
