"""pix2pix (Isola, Zhu, Zhou & Efros 2017, "Image-to-Image Translation with Conditional Adversarial Networks"):
a generator G from an input image x to its paired target y, trained against a PatchGAN D that judges (x, y)
pairs, plus an L1 term. Follows the authors' PyTorch code (junyanz/pytorch-CycleGAN-and-pix2pix,
models/pix2pix_model.py): one forward pass of G per step; D's update on the real pair and the fake pair (the fake
detached), its loss halved; then G's update against the updated D, through that same forward pass:

  L_D = 0.5 [l(D(x, y), real) + l(D(x, G(x)), fake)]            (Eq. 1; the 0.5 "slows down D", Sec. 3.3)
  L_G = l(D(x, G(x)), real) + lambda_l1 |y - G(x)|_1             (Eq. 4, lambda 100, Sec. 4)

Variants of Table 1 by objective_kwargs: L1 alone (adversarial=False: no D), cGAN alone (lambda_l1=0), L1+GAN (a
D that does not see x: conditional_d=False), L1+cGAN (the default). Input and target get the same random jitter
(Sec. 6.2: resize to 286/256 of the size, random crop back; mirroring off by default: it breaks digits). At test
time the paper keeps dropout and normalises with the statistics of the test batch (Sec. 3.1: "we apply dropout at
test time, and we apply batch normalization using the statistics of the test batch"; at its batch size 1, each
image's own statistics): here groups of config.batch_size consecutive inputs, the size the generator was trained
at (the last group may be smaller); test_mode "eval" uses the running statistics and no dropout instead. The
learning rate is constant, as in the paper; the official code's default decays it linearly over a second half of
training (--n_epochs_decay), which optimizer.<network>.lr_schedule "linear_decay" gives.
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


def make(config, models, lambda_l1: float = 100.0, adversarial: bool = True, conditional_d: bool = True,
         input_feature: str = "digit", target_feature: str = "image", label_feature: str = "label",
         eval_split: str = "test", jitter: bool = True, flip: bool = False, test_mode: str = "train"):
  """The objective; its keyword arguments are config.objective_kwargs (see the module docstring). label_feature:
  the dataset's class label, kept with the evaluation inputs for class_accuracy ("" when it has none)."""
  if not lambda_l1 >= 0:
    raise UserError(f"config.objective_kwargs.lambda_l1 must be >= 0, got {lambda_l1!r}")
  if not adversarial and not lambda_l1:
    raise UserError("pix2pix without D (adversarial=False) needs lambda_l1 > 0: nothing would be trained")
  if test_mode not in ("train", "eval"):
    raise UserError(f"unknown config.objective_kwargs.test_mode {test_mode!r}; allowed: eval, train")
  return Pix2Pix(config, models, lambda_l1=lambda_l1, adversarial=adversarial, conditional_d=conditional_d,
                 features=(input_feature, target_feature, label_feature), eval_split=eval_split, jitter=jitter,
                 flip=flip, stochastic=test_mode == "train")


class Pix2Pix(objectives.Objective):
  sampled = ("g",)

  def __init__(self, config, models, *, lambda_l1, adversarial, conditional_d, features, eval_split, jitter, flip,
               stochastic):
    super().__init__(config, models)
    self.lambda_l1, self.adversarial, self.conditional_d = lambda_l1, adversarial, conditional_d
    self.input_feature, self.target_feature, self.label_feature = features
    self.jitter, self.flip, self.stochastic = jitter, flip, stochastic
    self.networks = ("g", "d") if adversarial else ("g",)
    self.target_kinds = ("targets", "labels") if self.label_feature else ("targets",)
    self.input_shape = models.shape_a  # What the generator takes.
    eval_features = {"inputs": (self.input_feature, models.shape_a), "targets": (self.target_feature, models.shape_b)}
    if self.label_feature:
      eval_features["labels"] = (self.label_feature, ())
    self.evaluation = _translation.EvaluationExamples(
        dataclasses.replace(data.source(config.data, **eval_features), split=eval_split))

  def check(self) -> None:
    _translation.check_plain_gan_keys(self.config, "pix2pix")

  # --- Data, state and conditions.

  def sources(self) -> dict:
    """One paired stream: the input and the target of the same examples."""
    return {"pairs": data.source(self.config.data, input=(self.input_feature, self.models.shape_a),
                                 target=(self.target_feature, self.models.shape_b))}

  def init(self, seed, txs):
    m = self.models
    g_key, d_key, train_key = jax.random.split(jax.random.PRNGKey(seed), 3)
    x = jnp.zeros((1, *m.shape_a), jnp.float32)
    nets = {"g": state_lib.network(m.g_ab.init({"params": g_key, "dropout": g_key}, x, train=False), txs["g"])}
    if self.adversarial:
      d_input = jnp.zeros((1, *m.shape_b[:2], (m.shape_a[-1] if self.conditional_d else 0) + m.shape_b[-1]))
      nets["d"] = state_lib.network(m.d_b.init(d_key, d_input, train=False), txs["d"])
    return state_lib.new_state(train_key, nets, sampled=self.sampled)

  def conditions(self, key, num: int, inputs=None) -> dict:
    """{"inputs": [num, H, W, C_a]} given, or drawn from the evaluation split with their true "targets" (and
    "labels")."""
    if inputs is not None:
      return {"inputs": _translation.check_inputs(inputs, self.input_shape)[:num]}
    return self.evaluation.pick(key, num)

  def generate(self, ema: dict, conditions: dict, batch_size: int = 256) -> np.ndarray:
    key = jax.random.fold_in(jax.random.PRNGKey(self.config.seed), 0xD50)  # Test-time dropout, fixed per group.
    return _translation.generate_in_batches(self.models.g_ab, ema["g"], conditions["inputs"], self.stochastic,
                                            key, batch_size, group=self.config.batch_size)

  def evaluation_targets(self, conditions) -> dict:
    return {kind: conditions[kind] for kind in self.target_kinds if kind in conditions}

  def reference_source(self):
    """The real targets of the evaluation split: FID compares the outputs with them."""
    return dataclasses.replace(data.source(self.config.data, x=(self.target_feature, self.models.shape_b)),
                               split=self.evaluation.source.split)

  def picture(self, ema: dict, grid_conditions: dict, eval_conditions: dict) -> np.ndarray:
    """Rows: input | output | target, for the first 8 grid examples."""
    shown = {k: v[:8] for k, v in grid_conditions.items()}
    rows = [shown["inputs"], self.generate(ema, shown)] + ([shown["targets"]] if "targets" in shown else [])
    return _translation.rows_picture(rows)

  # --- The training step.

  def phases(self, txs, batch_sharding=None) -> list:
    m, config = self.models, self.config
    d_loss_fn, g_loss_fn = _translation.patch_losses(config.loss)
    size = _translation.load_size(m.shape_a[0])

    def d_input(x, y):
      return jnp.concatenate([x, y], axis=-1) if self.conditional_d else y

    def forward(state, batch, key):
      """(x, y, G(x), G's vjp with respect to its parameters, G's updated collections) for the step's batch."""
      x, y = batch["input"][0], batch["target"][0]
      jitter_key, dropout_key = jax.random.split(key)
      if self.jitter:
        x, y = _translation.random_jitter(jitter_key, (x, y), size, self.flip)
      g = state.nets["g"]
      g_apply = lambda g_params: _translation.apply_train(m.g_ab, g_params, g.collections, x,
                                                          rngs={"dropout": dropout_key})
      fake, g_vjp, g_collections = jax.vjp(g_apply, g.params, has_aux=True)
      return x, y, fake, g_vjp, g_collections

    def d_main(state, batch, key, carry):
      x, y, fake, g_vjp, g_collections = forward(state, batch, key)
      d = state.nets["d"]

      def loss_fn(d_params):
        apply = lambda inputs: _translation.apply_train(m.d_b, d_params, d.collections, inputs)
        (real_logits, collections), (fake_logits, _) = apply(d_input(x, y)), apply(
            d_input(x, jax.lax.stop_gradient(fake)))
        return d_loss_fn(real_logits, fake_logits), (collections, real_logits, fake_logits)

      (loss, (collections, real_logits, fake_logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(d.params)
      state = apply_gradients(state, "d", grads, txs["d"], collections=collections)
      metrics = {"d_loss": loss, "d_real_prob": jnp.mean(jax.nn.sigmoid(real_logits)),
                 "d_fake_prob": jnp.mean(jax.nn.sigmoid(fake_logits)), "d_grad_norm": optax.global_norm(grads),
                 **losses.real_sign(losses.get(config.loss).threshold, real_logits)}
      return state, metrics, {**carry, "forward": (x, y, fake, g_vjp, g_collections)}

    def g_main(state, batch, key, carry):
      x, y, fake, g_vjp, g_collections = carry.get("forward") or forward(state, batch, key)

      def loss_fn(fake):
        l1 = jnp.mean(jnp.abs(y - fake))
        adversarial = jnp.zeros(())
        if self.adversarial:
          d = state.nets["d"]
          logits, _ = _translation.apply_train(m.d_b, d.params, d.collections, d_input(x, fake))
          adversarial = g_loss_fn(logits)
        return adversarial + self.lambda_l1 * l1, (adversarial, l1)

      fake_grads, (adversarial, l1) = jax.grad(loss_fn, has_aux=True)(fake)
      grads, = g_vjp(fake_grads)
      state = apply_gradients(state, "g", grads, txs["g"], collections=g_collections)
      return state, {"g_loss": adversarial, "g_l1": l1, "g_grad_norm": optax.global_norm(grads)}, carry

    g_phase = objectives.Phase("g_main", ("g",), g_main)
    return [objectives.Phase("d_main", ("d",), d_main), g_phase] if self.adversarial else [g_phase]
