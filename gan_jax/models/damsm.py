"""The deep attentional multimodal similarity model (DAMSM) of AttnGAN (Xu et al. 2018, "AttnGAN: Fine-Grained Text
to Image Generation with Attentional Generative Adversarial Networks", Sec. 3.3), as its authors' code computes it
(taoxugit/AttnGAN, code/model.py RNN_ENCODER and CNN_ENCODER, code/miscc/losses.py words_loss and sent_loss,
code/GlobalAttention.py func_attention): a text encoder giving word features and a sentence feature, an image
encoder giving region features and a global feature in the same space, and the matching losses that pull each image
towards its own caption against the others of the batch, at the level of words attending to regions and of whole
sentences. AttnGAN trains its generator with this loss on the last stage's images, the encoders pretrained and
frozen.

The image encoder differs from the paper's, which is Inception-v3 pretrained on ImageNet (regions from Mixed_6e,
17x17 at 299x299; the global feature after Mixed_7c): no such weights load offline at our image sizes, so here it
is a small CNN trained from scratch with the text encoder, regions at a quarter of the image's side. Captions are
word ids [B, T] with 0 for padding (data/pipeline.py's caption stream); a caption's length is its count of nonzero
ids, and padded positions take no part in anything.
"""
import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

# The authors' smoothing factors (cfg/DAMSM/bird.yml, coco.yml: TRAIN.SMOOTH): gamma1 sharpens the attention over
# regions, gamma2 the word-level aggregation, gamma3 both matching softmaxes (Eq. 9, 10, 11).
GAMMA1, GAMMA2, GAMMA3 = 4.0, 5.0, 10.0


class TextEncoder(nn.Module):
  """RNN_ENCODER: word embeddings (uniform in +-0.1, dropout 0.5 in training) through a one-layer bidirectional
  LSTM with hidden // 2 units each way, over each caption's own length. Returns word features [B, T, hidden] (zero
  at padding) and the sentence feature [B, hidden], the last hidden states of both directions."""
  vocab_size: int
  embed_dim: int = 300
  hidden: int = 256
  dropout: float = 0.5

  @nn.compact
  def __call__(self, ids, train: bool = False):
    lengths = jnp.sum(ids > 0, axis=1).astype(jnp.int32)
    uniform = lambda key, shape, dtype=jnp.float32: jax.random.uniform(key, shape, dtype, -0.1, 0.1)
    x = nn.Embed(self.vocab_size, self.embed_dim, embedding_init=uniform, name="embed")(ids)  # As init_weights.
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    half = self.hidden // 2
    carries, words = nn.Bidirectional(nn.RNN(nn.OptimizedLSTMCell(half), name="forward"),
                                      nn.RNN(nn.OptimizedLSTMCell(half), name="backward"),
                                      return_carry=True, name="lstm")(x, seq_lengths=lengths)
    (_, h_forward), (_, h_backward) = carries                                     # LSTM carries are (c, h).
    mask = (ids > 0)[..., None]
    return jnp.where(mask, words, 0.0), jnp.concatenate([h_forward, h_backward], axis=-1)


class ImageEncoder(nn.Module):
  """The image side: a small CNN from scratch (see the module docstring), images [B, S, S, C] in [-1, 1] ->
  region features [B, S/4, S/4, dim] (a 1x1 projection of the stride-4 feature map, CNN_ENCODER's emb_features)
  and the global feature [B, dim] (a dense projection of the pooled stride-8 map, its emb_cnn_code)."""
  dim: int = 256
  width: int = 64

  @nn.compact
  def __call__(self, images, train: bool = False):
    del train  # No batch statistics.
    x = images
    for i, (features, stride) in enumerate(((self.width, 1), (self.width, 2), (2 * self.width, 1),
                                            (2 * self.width, 2))):
      x = nn.leaky_relu(nn.Conv(features, (3, 3), (stride, stride), name=f"conv{i}")(x), 0.2)
    regions = nn.Conv(self.dim, (1, 1), use_bias=False, name="emb_features")(x)
    x = nn.leaky_relu(nn.Conv(4 * self.width, (3, 3), (2, 2), name="conv4")(x), 0.2)
    return regions, nn.Dense(self.dim, name="emb_cnn_code")(jnp.mean(x, axis=(1, 2)))


def _cosine(a, b, eps=1e-8):
  return jnp.sum(a * b, -1) / jnp.maximum(jnp.linalg.norm(a, axis=-1) * jnp.linalg.norm(b, axis=-1), eps)


def word_attention(words, mask, regions, gamma1=GAMMA1):
  """func_attention for every (caption, image) pair: words [Bt, T, D] (query), mask [Bt, T], regions [Bi, R, D]
  (context) -> (region context of each word [Bt, Bi, T, D], attention [Bt, Bi, T, R]). The word-region dot
  products are normalised over the caption's words first (Eq. 8), then, times gamma1, over the regions (Eq. 9)."""
  scores = jnp.einsum("itd,jrd->ijtr", words, regions)                           # Eq. 7
  valid = mask[:, None, :, None]
  over_words = jax.nn.softmax(jnp.where(valid, scores, -jnp.inf), axis=2)       # Eq. 8
  attention = jax.nn.softmax(gamma1 * jnp.where(valid, over_words, 0.0), axis=3)  # Eq. 9
  return jnp.einsum("ijtr,jrd->ijtd", attention, regions), attention


def word_similarity(words, mask, regions, gamma1=GAMMA1, gamma2=GAMMA2):
  """R(Q, D) of every image and caption: [Bi, Bt], log sum over the caption's words of exp(gamma2 cos(word, its
  region context)). The paper's Eq. 10 also takes the gamma2-th root inside the log (a factor 1/gamma2); the
  authors' words_loss does not, and this follows the code their numbers come from."""
  context, _ = word_attention(words, mask, regions, gamma1)
  cos = _cosine(words[:, None], context)                                         # [Bt, Bi, T]
  similarity = jax.nn.logsumexp(jnp.where(mask[:, None, :], gamma2 * cos, -jnp.inf), axis=2)
  return similarity.T


def sentence_similarity(image_codes, sentences):
  """cos(image's global feature, sentence feature) of every image and caption: [Bi, Bt] (sent_loss's scores0
  before gamma3)."""
  return _cosine(image_codes[:, None], sentences[None])


def matching_losses(similarity, gamma3=GAMMA3, same=None):
  """(loss0, loss1) of words_loss / sent_loss for a [B, B] image-caption similarity whose diagonal holds the true
  pairs: the cross-entropy of each image's softmax over the captions (Eq. 11-13, P(D | Q)) and of each caption's
  over the images (P(Q | D)), after scaling by gamma3. `same` [B, B] bool marks off-diagonal pairs that are not
  negatives (the authors mask pairs of the same class on CUB; here, captions whose image has the same facts)."""
  logits = gamma3 * similarity
  if same is not None:
    logits = jnp.where(same & ~jnp.eye(len(logits), dtype=bool), -jnp.inf, logits)
  diagonal = jnp.arange(len(logits))
  loss0 = -jnp.mean(jax.nn.log_softmax(logits, axis=1)[diagonal, diagonal])
  loss1 = -jnp.mean(jax.nn.log_softmax(logits, axis=0)[diagonal, diagonal])
  return loss0, loss1


def damsm_losses(words, mask, sentences, regions, image_codes, gammas=(GAMMA1, GAMMA2, GAMMA3), same=None):
  """{"w_loss0", "w_loss1", "s_loss0", "s_loss1"}, the four terms pretrain_DAMSM.py sums (and AttnGAN adds, times
  lambda, to G's loss): words [B, T, D] with mask [B, T] and sentences [B, D] from TextEncoder, regions
  [B, h, w, D] and image codes [B, D] from ImageEncoder, caption b describing image b."""
  gamma1, gamma2, gamma3 = gammas
  regions = regions.reshape(regions.shape[0], -1, regions.shape[-1])
  w_loss0, w_loss1 = matching_losses(word_similarity(words, mask, regions, gamma1, gamma2), gamma3, same)
  s_loss0, s_loss1 = matching_losses(sentence_similarity(image_codes, sentences), gamma3, same)
  return {"w_loss0": w_loss0, "w_loss1": w_loss1, "s_loss0": s_loss0, "s_loss1": s_loss1}


# --- Pretraining (taoxugit/AttnGAN code/pretrain_DAMSM.py): both encoders together on the four matching losses.

def encoders(vocab_size: int, embed_dim: int, hidden: int, width: int):
  """(TextEncoder, ImageEncoder) sharing the feature size `hidden` (the authors' TEXT.EMBEDDING_DIM, 256)."""
  return TextEncoder(vocab_size, embed_dim, hidden), ImageEncoder(hidden, width)


def pick_captions(key, captions):
  """One caption per example [B, T] of its candidates [B, K, T], drawn uniformly (the authors' get_caption)."""
  choice = jax.random.randint(key, (captions.shape[0],), 0, captions.shape[1])
  return jnp.take_along_axis(captions, choice[:, None, None], axis=1)[:, 0]


def same_facts(facts):
  """[B, B] bool: examples whose facts [B, F] are equal, so that each one's captions describe the other too."""
  return jnp.all(facts[:, None] == facts[None], axis=-1)


def _encode(text, image, params, ids, images, train=False, key=None):
  rngs = {"dropout": key} if train else None
  words, sentences = text.apply({"params": params["text"]}, ids, train=train, rngs=rngs)
  regions, codes = image.apply({"params": params["image"]}, images)
  return words, ids > 0, sentences, regions, codes


def train(images, captions, facts, *, vocab_size, embed_dim=64, hidden=128, width=32, steps=3000, batch_size=48,
          learning_rate=0.002, seed=0, log_every=0):
  """{"text", "image"} params of both encoders trained on float32 images [N, H, W, C], caption ids [N, K, T] and
  facts [N, F] (pairs with equal facts are not negatives). As pretrain_DAMSM.py: Adam (0.5, 0.999) at 0.002,
  decayed by 0.98 an epoch down to a tenth; the text encoder's gradient clipped to norm 0.25 (RNN_GRAD_CLIP); a
  random caption of each image at every step; batch 48. Returns (params, [(step, losses)] every log_every steps)."""
  import optax  # pylint: disable=g-import-not-at-top
  text, image = encoders(vocab_size, embed_dim, hidden, width)
  key = jax.random.PRNGKey(seed)
  text_key, image_key, key = jax.random.split(key, 3)
  params = {"text": jax.jit(text.init)(text_key, jnp.asarray(captions[:2, 0]))["params"],
            "image": jax.jit(image.init)(image_key, jnp.asarray(images[:2]))["params"]}
  epoch = max(len(images) // batch_size, 1)
  schedule = optax.exponential_decay(learning_rate, epoch, 0.98, staircase=True, end_value=learning_rate / 10)
  tx = optax.adam(schedule, b1=0.5, b2=0.999)
  opt_state = tx.init(params)
  images, captions, facts = jnp.asarray(images), jnp.asarray(captions), jnp.asarray(facts)

  @jax.jit
  def step(params, opt_state, key):
    index_key, caption_key, dropout_key = jax.random.split(key, 3)
    index = jax.random.choice(index_key, len(images), (batch_size,), replace=False)
    ids = pick_captions(caption_key, captions[index])

    def loss_fn(p):
      losses = damsm_losses(*_encode(text, image, p, ids, images[index], True, dropout_key), same=same_facts(
          facts[index]))
      return sum(losses.values()), losses

    (_, losses), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    grads = {**grads, "text": optax.clip_by_global_norm(0.25).update(grads["text"], None)[0]}
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, losses

  history = []
  for i in range(steps):
    params, opt_state, losses = step(params, opt_state, jax.random.fold_in(key, i))
    if log_every and (i + 1) % log_every == 0:
      history.append((i + 1, {k: float(v) for k, v in losses.items()}))
  return params, history


@functools.lru_cache(maxsize=None)
def _encode_program(vocab_size: int, embed_dim: int, hidden: int, width: int):
  """_encode of the encoders of these sizes, jitted once per process (a new lambda each call compiled anew: every
  r_precision evaluation of a run)."""
  text, image = encoders(vocab_size, embed_dim, hidden, width)
  return jax.jit(lambda p, i, x: _encode(text, image, p, i, x))


def encode(params, images, ids, *, vocab_size, embed_dim, hidden, width, batch_size=500):
  """(image codes [N, D], regions [N, h, w, D], word features [N, T, D], sentences [N, D]) of images [N, ...] and
  one caption each [N, T], in batches."""
  fn = _encode_program(vocab_size, embed_dim, hidden, width)
  parts = [fn(params, jnp.asarray(ids[s:s + batch_size]), jnp.asarray(images[s:s + batch_size]))
           for s in range(0, len(images), batch_size)]
  words, _, sentences, regions, codes = (jnp.concatenate([p[k] for p in parts]) for k in range(5))
  return codes, regions, words, sentences


def r_precision(image_codes, sentences, *, candidates: int = 100, seed: int = 0) -> float:
  """R-precision with R = 1 (Xu et al. 2018, Sec. 5): for each image, its own caption and candidates - 1 others
  drawn at random from the set, ranked by the cosine of the image's global feature and each sentence feature; the
  fraction of images whose own caption ranks first. Chance is 1 / candidates."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  codes, sentences = np.asarray(image_codes, np.float64), np.asarray(sentences, np.float64)
  codes /= np.maximum(np.linalg.norm(codes, axis=1, keepdims=True), 1e-8)
  sentences /= np.maximum(np.linalg.norm(sentences, axis=1, keepdims=True), 1e-8)
  rng = np.random.default_rng(seed)
  hits = 0
  for i in range(len(codes)):
    others = rng.choice(len(codes) - 1, candidates - 1, replace=False)
    others += others >= i                                                   # Every index but i.
    scores = sentences[np.concatenate([[i], others])] @ codes[i]
    hits += int(np.argmax(scores) == 0)
  return hits / len(codes)


def r_precision_of(params, meta, images, ids, *, candidates: int = 100, seed: int = 0) -> float:
  """r_precision of images [N, ...] (float, in [-1, 1]) each against its own caption ids [N, T], under the encoders
  `params` whose sizes `meta` gives (a file of `save`, as `load` returns it)."""
  codes, _, _, sentences = encode(params, images, ids, vocab_size=len(meta["vocabulary"]),
                                  embed_dim=meta["embed_dim"], hidden=meta["hidden"], width=meta["width"])
  return r_precision(codes, sentences, candidates=min(candidates, len(images)), seed=seed)


def save(path, params, meta) -> None:
  """One .npz (gan_jax/weights.py): the {"text", "image"} params and `meta` (the encoders' sizes, the vocabulary,
  the data and the held-out scores)."""
  from gan_jax import weights  # pylint: disable=g-import-not-at-top
  weights.save(path, params, meta)


def load(path):
  """(params, meta) of a file `save` wrote; a clear UserError for anything else."""
  from gan_jax import weights  # pylint: disable=g-import-not-at-top
  from gan_jax.errors import UserError  # pylint: disable=g-import-not-at-top
  params, meta = weights.read(path, "DAMSM encoders", "write them with scripts/pretrain_damsm.py")
  if set(params) != {"text", "image"} or not {"vocabulary", "embed_dim", "hidden", "width"} <= set(meta):
    raise UserError(f"{path} is not a DAMSM file of scripts/pretrain_damsm.py (it needs text and image encoders and "
                    f"their sizes)")
  return params, meta
