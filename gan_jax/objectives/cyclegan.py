"""CycleGAN (Zhu, Park, Isola & Efros 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent
Adversarial Networks"): generators G_ab: A -> B and G_ba: B -> A and PatchGAN discriminators D_a, D_b, trained
on two unpaired streams. Follows the authors' PyTorch code (junyanz/pytorch-CycleGAN-and-pix2pix,
models/cycle_gan_model.py, util/image_pool.py): per step, one update of both generators with the discriminators
fixed, then one update of each discriminator on real images and on fakes drawn through an image pool:

  L_G = l(D_b(G_ab(a)), real) + l(D_a(G_ba(b)), real)                                     (Eq. 1, LSGAN, Sec. 4)
        + lambda_cycle (|G_ba(G_ab(a)) - a|_1 + |G_ab(G_ba(b)) - b|_1)                      (Eq. 2, lambda 10)
        + lambda_identity lambda_cycle (|G_ab(b) - b|_1 + |G_ba(a) - a|_1)                   (Sec. 5.2, 0.5)
  L_D_b = 0.5 [l(D_b(b), real) + l(D_b(pool_b(G_ab(a))), fake)], and L_D_a the same way     (Sec. 4)

Each domain's real images get the official pipeline's random jitter (resize to 286/256 of the size, random crop
back; mirroring with flip=True), drawn per image and per domain. The pools keep 50 fakes per domain (Shrivastava
et al. 2017): while filling, a fake is stored and shown to D; then with probability 1/2 D sees a stored fake that
the new one replaces, else the new fake. They are state arrays in `state.extra`, drawn with the step's key, so
the step stays jitted and resume stays exact (pool_size=0: no pool, D sees the newest fakes). Ablations (the
paper's Table 4) by objective_kwargs: adversarial=False (cycle alone), lambda_cycle=0 (GAN alone),
lambda_identity=0. Identity needs A and B images of the same shape (give grey digits 3 channels to pair them with
colour ones). Learning rates: constant for the first half of training, then linearly to 0 (optimizer.<network>
lr_schedule "linear_decay"); Adam 2e-4 (0.5, 0.999); weights N(0, 0.02) (the model file).
"""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan_jax import data, losses, objectives, state as state_lib
from gan_jax.errors import UserError
from gan_jax.objectives import _translation
from gan_jax.steps import apply_gradients


not_applicable = _translation.not_applicable


def make(config, models, lambda_cycle: float = 10.0, lambda_identity: float = 0.5, adversarial: bool = True,
         pool_size: int = 50, feature_a: str = "digit", feature_b: str = "image", split_a: str = "train[:50%]",
         split_b: str = "train[50%:]", eval_split_a: str = "test", eval_split_b: str = "test",
         label_feature: str = "label", direction: str = "ab", jitter: bool = True, flip: bool = False):
  """The objective; its keyword arguments are config.objective_kwargs (see the module docstring). Domain A is
  `feature_a` of config.data's `split_a` (`eval_split_a` for evaluation), B likewise (TFDS's cycle_gan/* datasets:
  feature "image" of splits trainA, trainB, testA, testB). `direction`: what is sampled and evaluated, A -> B
  ("ab") or B -> A ("ba"); label_feature: the class label kept with the evaluation inputs for class_accuracy ("" when
  the data has none). `jitter`, `flip`: the official data pipeline's random resize-and-crop and mirroring, drawn
  for each image of each domain on its own (the domains are unpaired); flip is off by default, as digits mirrored
  are not digits (the official default, on for photos: horse2zebra)."""
  for name, value in (("lambda_cycle", lambda_cycle), ("lambda_identity", lambda_identity)):
    if not value >= 0:
      raise UserError(f"config.objective_kwargs.{name} must be >= 0, got {value!r}")
  if not isinstance(pool_size, int) or pool_size < 0:
    raise UserError(f"config.objective_kwargs.pool_size must be a non-negative integer, got {pool_size!r}")
  if direction not in ("ab", "ba"):
    raise UserError(f"unknown config.objective_kwargs.direction {direction!r}; allowed: ab, ba")
  if lambda_identity and lambda_cycle and tuple(models.shape_a) != tuple(models.shape_b):
    raise UserError(f"the identity loss maps B images through G_ab, so A and B must have one shape; got "
                    f"{tuple(models.shape_a)} and {tuple(models.shape_b)} (set config.objective_kwargs."
                    "lambda_identity=0, or give both domains the same channels)")
  if not adversarial and not lambda_cycle:
    raise UserError("CycleGAN without discriminators (adversarial=False) needs lambda_cycle > 0")
  return CycleGAN(config, models, lambda_cycle=lambda_cycle, lambda_identity=lambda_identity,
                  adversarial=adversarial, pool_size=pool_size, features=(feature_a, feature_b, label_feature),
                  splits=(split_a, split_b, eval_split_a, eval_split_b), direction=direction, jitter=jitter,
                  flip=flip)


def pool_query(pool, filled, fakes, key):
  """The image pool of util/image_pool.py on a batch of fakes [B, ...]: (what D sees [B, ...], new pool, new
  fill count). pool [P, ...] holds `filled` stored fakes; images are taken in order, each with its own draw."""
  size = pool.shape[0]
  if size == 0:
    return fakes, pool, filled

  def one(carry, inputs):
    pool, filled = carry
    fake, image_key = inputs
    coin_key, index_key = jax.random.split(image_key)
    filling = filled < size
    swap = jnp.logical_and(~filling, jax.random.uniform(coin_key) > 0.5)
    index = jnp.where(filling, filled, jax.random.randint(index_key, (), 0, size))
    shown = jnp.where(swap, pool[index], fake)
    pool = jnp.where(jnp.logical_or(filling, swap), pool.at[index].set(fake), pool)
    return (pool, filled + filling.astype(filled.dtype)), shown

  (pool, filled), shown = jax.lax.scan(one, (pool, filled), (fakes, jax.random.split(key, fakes.shape[0])))
  return shown, pool, filled


class CycleGAN(objectives.Objective):

  def __init__(self, config, models, *, lambda_cycle, lambda_identity, adversarial, pool_size, features, splits,
               direction, jitter, flip):
    super().__init__(config, models)
    self.jitter, self.flip = jitter, flip
    self.lambda_cycle, self.lambda_identity, self.adversarial = lambda_cycle, lambda_identity, adversarial
    self.pool_size, self.direction = pool_size, direction
    self.feature_a, self.feature_b, self.label_feature = features
    self.split_a, self.split_b, self.eval_split_a, self.eval_split_b = splits
    self.networks = ("g_ab", "g_ba", "d_a", "d_b") if adversarial else ("g_ab", "g_ba")
    self.sampled = ("g_ab", "g_ba")
    self.target_kinds = ("labels",) if self.label_feature else ()
    (source, source_split), (target, target_split) = self._domains(direction)
    self.input_shape = source[1]  # What the sampled generator takes: the input domain's image shape.
    eval_features = {"inputs": source}
    if self.label_feature:
      eval_features["labels"] = (self.label_feature, ())
    self.evaluation = _translation.EvaluationExamples(
        dataclasses.replace(data.source(config.data, **eval_features), split=source_split))
    self._reference = dataclasses.replace(data.source(config.data, x=target), split=target_split)

  def _domains(self, direction):
    """(((feature, shape), evaluation split) of the input domain, the same of the output domain) of a direction."""
    a = ((self.feature_a, self.models.shape_a), self.eval_split_a)
    b = ((self.feature_b, self.models.shape_b), self.eval_split_b)
    return (a, b) if direction == "ab" else (b, a)

  def check(self) -> None:
    _translation.check_plain_gan_keys(self.config, "cyclegan")

  # --- Data, state and conditions.

  def sources(self) -> dict:
    """Two unpaired streams, each shuffled on its own: A's images and B's."""
    return {"a": dataclasses.replace(data.source(self.config.data, a=(self.feature_a, self.models.shape_a)),
                                     split=self.split_a),
            "b": dataclasses.replace(data.source(self.config.data, b=(self.feature_b, self.models.shape_b)),
                                     split=self.split_b)}

  def init(self, seed, txs):
    m = self.models
    keys = jax.random.split(jax.random.PRNGKey(seed), 5)
    a, b = jnp.zeros((1, *m.shape_a), jnp.float32), jnp.zeros((1, *m.shape_b), jnp.float32)
    nets = {"g_ab": state_lib.network(m.g_ab.init({"params": keys[0], "dropout": keys[0]}, a, train=False),
                                      txs["g_ab"]),
            "g_ba": state_lib.network(m.g_ba.init({"params": keys[1], "dropout": keys[1]}, b, train=False),
                                      txs["g_ba"])}
    if self.adversarial:
      nets["d_a"] = state_lib.network(m.d_a.init(keys[2], a, train=False), txs["d_a"])
      nets["d_b"] = state_lib.network(m.d_b.init(keys[3], b, train=False), txs["d_b"])
    extra = {}
    if self.pool_size:  # (Orbax cannot save arrays of size 0: no pools at all without them.)
      extra = {"pool_a": jnp.zeros((self.pool_size, *m.shape_a), jnp.float32),
               "pool_a_filled": jnp.zeros((), jnp.int32),
               "pool_b": jnp.zeros((self.pool_size, *m.shape_b), jnp.float32),
               "pool_b_filled": jnp.zeros((), jnp.int32)}
    return state_lib.new_state(keys[4], nets, sampled=self.sampled, extra=extra)

  def conditions(self, key, num: int, inputs=None) -> dict:
    """{"inputs": [num, ...]} of the sampled direction's input domain: given, or drawn from the evaluation split
    (with their "labels")."""
    if inputs is not None:
      return {"inputs": _translation.check_inputs(inputs, self.input_shape)[:num]}
    return self.evaluation.pick(key, num)

  def _generator(self, direction):
    return (self.models.g_ab, "g_ab") if direction == "ab" else (self.models.g_ba, "g_ba")

  def generate(self, ema: dict, conditions: dict, batch_size: int = 256) -> np.ndarray:
    module, name = self._generator(self.direction)
    key = jax.random.PRNGKey(0)  # No dropout in CycleGAN's generators by default; a fixed key if there is.
    return _translation.generate_in_batches(module, ema[name], conditions["inputs"], False, key, batch_size)

  def evaluation_targets(self, conditions) -> dict:
    return {"labels": conditions["labels"]} if "labels" in conditions else {}

  def reference_source(self):
    """The real images of the output domain in the evaluation split: FID compares the translations with them."""
    return self._reference

  def picture(self, ema: dict, grid_conditions: dict, eval_conditions: dict) -> np.ndarray:
    """Rows: input | translation | translated back, for the first 8 grid examples."""
    inputs = grid_conditions["inputs"][:8]
    out = self.generate(ema, {"inputs": inputs})
    back_module, back_name = self._generator("ba" if self.direction == "ab" else "ab")
    back = _translation.generate_in_batches(back_module, ema[back_name], out, False, jax.random.PRNGKey(0))
    return _translation.rows_picture([inputs, out, back])

  # --- The training step.

  def phases(self, txs, batch_sharding=None) -> list:
    m = self.models
    d_loss_fn, g_loss_fn = _translation.patch_losses(self.config.loss)
    threshold = losses.get(self.config.loss).threshold
    l1 = lambda x, y: jnp.mean(jnp.abs(x - y))

    def g_main(state, batch, key, carry):
      """Both generators, one optimizer step each, with D_a and D_b fixed."""
      a, b = batch["a"][0], batch["b"][0]
      g_ab, g_ba = state.nets["g_ab"], state.nets["g_ba"]
      keys = jax.random.split(key, 8)
      if self.jitter:  # Each domain's images on their own: the streams are unpaired.
        a, = _translation.random_jitter(keys[6], (a,), _translation.load_size(m.shape_a[0]), self.flip)
        b, = _translation.random_jitter(keys[7], (b,), _translation.load_size(m.shape_b[0]), self.flip)

      def loss_fn(params):
        run_ab = lambda x, collections, k: _translation.apply_train(m.g_ab, params["g_ab"], collections, x,
                                                                    rngs={"dropout": k})
        run_ba = lambda x, collections, k: _translation.apply_train(m.g_ba, params["g_ba"], collections, x,
                                                                    rngs={"dropout": k})
        fake_b, ab_collections = run_ab(a, g_ab.collections, keys[0])
        fake_a, ba_collections = run_ba(b, g_ba.collections, keys[1])
        cycle = l1(run_ba(fake_b, ba_collections, keys[2])[0], a) + l1(run_ab(fake_a, ab_collections, keys[3])[0], b)
        terms = {"g_cycle": cycle}
        total = self.lambda_cycle * cycle
        if self.lambda_identity and self.lambda_cycle:
          identity = l1(run_ab(b, ab_collections, keys[4])[0], b) + l1(run_ba(a, ba_collections, keys[5])[0], a)
          terms["g_identity"] = identity
          total += self.lambda_identity * self.lambda_cycle * identity
        if self.adversarial:
          d_a, d_b = state.nets["d_a"], state.nets["d_b"]
          logits_b, _ = _translation.apply_train(m.d_b, d_b.params, d_b.collections, fake_b)
          logits_a, _ = _translation.apply_train(m.d_a, d_a.params, d_a.collections, fake_a)
          terms["g_loss"] = g_loss_fn(logits_b) + g_loss_fn(logits_a)
          total += terms["g_loss"]
        return total, (terms, {"g_ab": ab_collections, "g_ba": ba_collections}, fake_a, fake_b)

      params = {"g_ab": g_ab.params, "g_ba": g_ba.params}
      grads, (terms, collections, fake_a, fake_b) = jax.grad(loss_fn, has_aux=True)(params)
      for name in ("g_ab", "g_ba"):
        state = apply_gradients(state, name, grads[name], txs[name], collections=collections[name])
      metrics = {**terms, "g_grad_norm": optax.global_norm(grads)}
      fakes = {"fake_a": jax.lax.stop_gradient(fake_a), "fake_b": jax.lax.stop_gradient(fake_b)}
      return state, metrics, {**carry, **fakes, "real_a": a, "real_b": b}   # D sees the same jittered reals.

    def d_main(state, batch, key, carry):
      """D_a and D_b, each on its domain's real images and on pooled fakes."""
      metrics, extra = {}, dict(state.extra)
      for domain, key_d in zip(("a", "b"), jax.random.split(key)):
        shown = carry[f"fake_{domain}"]
        if self.pool_size:
          shown, extra[f"pool_{domain}"], extra[f"pool_{domain}_filled"] = pool_query(
              extra[f"pool_{domain}"], extra[f"pool_{domain}_filled"], shown, key_d)
        name, module = f"d_{domain}", (m.d_a if domain == "a" else m.d_b)
        d = state.nets[name]
        real = carry[f"real_{domain}"]

        def loss_fn(d_params, d=d, module=module, real=real, shown=shown):
          real_logits, collections = _translation.apply_train(module, d_params, d.collections, real)
          fake_logits, _ = _translation.apply_train(module, d_params, d.collections, shown)
          return d_loss_fn(real_logits, fake_logits), (collections, real_logits)

        (loss, (collections, real_logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(d.params)
        state = apply_gradients(state, name, grads, txs[name], collections=collections)
        metrics[f"{name}_loss"] = loss
        metrics.update(losses.real_sign(threshold, real_logits, name))   # d_a_real_sign, d_b_real_sign.
      return state.replace(extra=extra), metrics, carry

    phases = [objectives.Phase("g_main", ("g_ab", "g_ba"), g_main)]
    if self.adversarial:
      phases.append(objectives.Phase("d_main", ("d_a", "d_b"), d_main))
    return phases
