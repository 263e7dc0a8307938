"""What the text-to-image objectives (dfgan.py, attngan.py) share: the frozen, pretrained DAMSM (models/damsm.py,
written by scripts/pretrain_damsm.py) carried in the state's `ema` ("text", and "image" where G's loss reads the
image encoder), captions as conditions (the evaluation split's, or strings given to `gan_jax.sample --text`), the
sample grid of one caption per row, and captioned_shapes' facts as evaluation targets (the parser's `attributes`).

objective_kwargs each of them takes: damsm, the .npz of scripts/pretrain_damsm.py (required; "random" gives frozen
random encoders, for smoke tests only); eval_split, whose captions the evaluation and the grid's rows take
("test"); captions_per_image (5, the dataset's).
"""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import data, objectives, state as state_lib
from gan_jax.errors import UserError
from gan_jax.models import damsm as damsm_lib
from gan_jax.objectives import _translation

GRID_CAPTIONS = 8   # Rows of the sample grid: one caption each, with the grid's latents across.
# The `diversity` evaluator's set: the evaluation split's first captions, DIVERSITY_CAPTIONS of them (fewer when
# config.eval_num_samples is under 1,000: a tenth of it), each under DIVERSITY_LATENTS latents (45 pairs each).
DIVERSITY_CAPTIONS, DIVERSITY_LATENTS = 100, 10


def not_applicable(config) -> set:
  return _translation.not_applicable(config) - {"eval_ref_split"}


def require_damsm(objective: str, damsm: str) -> None:
  if not damsm:
    raise UserError(f"objective {objective!r} needs config.objective_kwargs.damsm, the encoders written by "
                    "scripts/pretrain_damsm.py")


def random_damsm(config):
  """(params, meta) of untrained encoders at the sizes pretrain_damsm.py defaults to, on the dataset's vocabulary:
  what objective_kwargs.damsm = "random" trains against (a smoke test's stand-in)."""
  builder = data.load_builder(config.data.name, config.data.data_dir, config.data.download)
  vocabulary = list(builder.info.metadata["vocabulary"])
  hidden = config.model.text_dim
  meta = dict(vocabulary=vocabulary, max_length=int(builder.info.metadata["max_length"]), embed_dim=16,
              hidden=hidden, width=8)
  text, image = damsm_lib.encoders(len(vocabulary), 16, hidden, 8)
  text_key, image_key = jax.random.split(jax.random.PRNGKey(config.seed))
  size = config.model.resolution
  return {"text": text.init(text_key, jnp.ones((1, meta["max_length"]), jnp.int32))["params"],
          "image": image.init(image_key, jnp.zeros((1, size, size, config.model.channels)))["params"]}, meta


class TextToImage(objectives.Objective):
  """A generator of images from z and a caption's encoding by the frozen DAMSM. Subclasses define `networks`,
  `phases` and `_images(g variables, encoded caption, z)`, the sampled images, where the encoded caption is
  {"words" [B, T, D], "mask" [B, T], "sentence" [B, D]}; `carried` names the DAMSM encoders the state holds."""
  sampled = ("g",)
  latent_space = False   # G takes a caption too: the latent tools (gan_jax.latent) are for G(z) families.
  carried = ("text",)
  loss = ""              # The config.loss the authors train with, and why (`loss_reason`).
  loss_reason = ""

  def __init__(self, config, models, *, damsm, eval_split, captions_per_image):
    super().__init__(config, models)
    self.damsm_path, self.eval_split, self.captions_per_image = damsm, eval_split, captions_per_image
    self._captions, self._damsm = None, None
    from gan_jax.metrics import shapes_parser  # pylint: disable=g-import-not-at-top
    # captioned_shapes states its captions' facts as features: the parser's `attributes` evaluator scores them.
    self.fact_features = shapes_parser.FACTS if config.data.name.split("/")[0] == "captioned_shapes" else ()
    self.target_kinds = ("captions",) + (("facts",) if self.fact_features else ())

  # The DAMSM file is read when training, sampling or evaluation first needs it (config.validate reads no file
  # and prepares no dataset): a missing one is a one-line error before anything compiles (check_sources).

  @property
  def damsm(self):
    """({"text", "image"} encoder params, the file's meta: sizes, vocabulary, max_length)."""
    if self._damsm is None:
      self._damsm = (random_damsm(self.config) if self.damsm_path == "random" else damsm_lib.load(self.damsm_path))
    return self._damsm

  @property
  def text_params(self):
    return self.damsm[0]["text"]

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

  @property
  def image_encoder(self):
    meta = self.damsm[1]
    return damsm_lib.ImageEncoder(meta["hidden"], meta["width"])

  def check_sources(self, global_batch_size: int) -> None:
    hidden = self.damsm[1]["hidden"]   # The file, read or refused before anything compiles.
    if hidden != self.models.text_dim:
      raise UserError(f"the DAMSM {self.damsm_path!r} gives sentence features of {hidden}, but config.model.text_dim "
                      f"is {self.models.text_dim}")
    super().check_sources(global_batch_size)

  def check(self) -> None:
    from gan_jax import config as config_lib  # pylint: disable=g-import-not-at-top
    from gan_jax.objectives import gan  # pylint: disable=g-import-not-at-top
    name = self.config.objective
    if self.config.loss != self.loss:
      raise UserError(f"objective {name!r} trains with {self.loss_reason}; config.loss must be {self.loss!r}, got "
                      f"{self.config.loss!r}")
    config_lib.check_at_defaults(self.config, gan.PLAIN_GAN_KEYS, name)

  # --- Data, state and conditions.

  def sources(self) -> dict:
    shape = (self.captions_per_image, self.max_length)
    return {"x": data.source(self.config.data, x=(self.config.data.feature, self.models.data_shape),
                             caption=("captions", shape))}

  def new_state(self, rng, nets: dict):
    """Step 0 of `nets`, with the DAMSM encoders named in `carried` in the EMA (sampled with G, never trained)."""
    state = state_lib.new_state(rng, nets, sampled=self.sampled)
    return state.replace(ema={**state.ema, **{name: {"params": self.damsm[0][name]} for name in self.carried}})

  def encode(self, text_variables, ids) -> dict:
    """The frozen text encoder's {"words" [B, T, D], "mask" [B, T], "sentence" [B, D]} of caption ids [B, T]."""
    words, sentence = jax.lax.stop_gradient(self.text_encoder.apply(text_variables, ids))
    return {"words": words, "mask": ids > 0, "sentence": sentence}

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

  def _images(self, g_variables, caption: dict, z):
    raise NotImplementedError

  def generate(self, ema: dict, conditions: dict, batch_size: int = 256) -> np.ndarray:
    if not hasattr(self, "_generate_jit"):
      self._generate_jit = jax.jit(lambda g, text, z, ids: self._images(g, self.encode(text, ids), z))
    z, ids = conditions["z"], conditions["text"]
    return np.concatenate([np.asarray(jax.device_get(self._generate_jit(
        ema["g"], ema["text"], z[i:i + batch_size], ids[i:i + batch_size])), np.float32)
        for i in range(0, len(z), batch_size)])

  def diversity_samples(self, ema: dict, seed: int):
    """The `diversity` evaluator's sets: (samples float32 [M K, ...] of the evaluation split's first M captions,
    each under K latents drawn from `seed`; the caption index of each [M K]; uint8 real images grouped the same
    way, or None: on captioned_shapes each caption's scene rendered K times with a fresh jitter)."""
    ids, facts = self.evaluation_captions()
    num_captions = min(DIVERSITY_CAPTIONS, max(self.config.eval_num_samples // DIVERSITY_LATENTS, 2), len(ids))
    order = np.repeat(np.arange(num_captions), DIVERSITY_LATENTS)
    z = objectives.fixed_conditions(self, seed, "diversity", len(order))["z"]
    samples = self.generate(ema, {"z": z, "text": ids[order]})
    real = None
    if facts is not None:
      from gan_jax.data import captioned_shapes  # pylint: disable=g-import-not-at-top
      from gan_jax.metrics import shapes_parser  # pylint: disable=g-import-not-at-top
      rng = np.random.default_rng((seed, objectives.STREAMS["diversity"]))
      real = captioned_shapes.render_facts(shapes_parser.array_to_facts(facts[order]), self.models.data_shape[0],
                                           rng)
    return samples, order, real

  def evaluation_targets(self, conditions) -> dict:
    """{"captions": each sample's caption ids (for `r_precision`), "facts": what it states (captioned_shapes, for
    the parser's `attributes` evaluator)}."""
    return {"captions": conditions["text"], **({"facts": conditions["facts"]} if "facts" in conditions else {})}

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
