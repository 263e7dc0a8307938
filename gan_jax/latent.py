"""The latent space as a tool: interpolation, attribute vectors and arithmetic, truncation, inversion, InfoGAN's
codes, and StyleGAN2's style mixing and projector, on the EMA generator of a training run.

  python -m gan_jax.latent interpolate --workdir=W --out=DIR [--num=8 --steps=10 --method=slerp]
  python -m gan_jax.latent arithmetic --workdir=W --out=DIR --source=3 --target=8 [--num=2000]
  python -m gan_jax.latent truncation --workdir=W --out=DIR [--thresholds=2,1,0.5,0.25]
                                      (StyleGAN2: in W towards w_avg, --thresholds are psi, default 1,0.7,0.5,0)
  python -m gan_jax.latent invert --workdir=W --out=DIR [--num=16 --steps=300 --restarts=4]
  python -m gan_jax.latent codes --workdir=W --out=DIR        (InfoGAN: one code varied, the rest fixed)
  python -m gan_jax.latent mixing --workdir=W --out=DIR [--num=4]   (StyleGAN2: coarse, middle, fine styles)
  python -m gan_jax.latent project --workdir=W --out=DIR [--num=8 --steps=1000 --space=w|w+]
                                      (StyleGAN2: the projector, real images into W or W+ with optimised noise)

Each writes <out>/<command>.png (a grid) and <out>/<command>.npz (latents, images, numbers) and prints a JSON
line with what it measured. Everything random comes from --seed (default: the run's config.seed).
"""
import functools
import json
import os

from absl import app, flags
import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan_jax import cli, errors

# --- Pure functions on latents [..., D].


def lerp(z0, z1, t):
  """Linear interpolation (1 - t) z0 + t z1."""
  return (1.0 - t) * z0 + t * z1


def slerp(z0, z1, t, eps=1e-7):
  """Spherical interpolation (Shoemake 1985), as White 2016 ("Sampling Generative Networks", Sec. 2.1)
  recommends for Gaussian latents: the path keeps the norm near the shell where the prior's mass lies, while a
  straight line passes through low-norm latents the generator rarely saw. Falls back to lerp for parallel z."""
  z0, z1 = jnp.asarray(z0), jnp.asarray(z1)
  n0, n1 = jnp.linalg.norm(z0, axis=-1, keepdims=True), jnp.linalg.norm(z1, axis=-1, keepdims=True)
  cos = jnp.clip(jnp.sum(z0 * z1, axis=-1, keepdims=True) / (n0 * n1 + eps), -1.0, 1.0)
  omega = jnp.arccos(cos)
  sin = jnp.sin(omega)
  safe = sin > eps
  w0 = jnp.where(safe, jnp.sin((1.0 - t) * omega) / jnp.where(safe, sin, 1.0), 1.0 - t)
  w1 = jnp.where(safe, jnp.sin(t * omega) / jnp.where(safe, sin, 1.0), t)
  return w0 * z0 + w1 * z1


def interpolate(z0, z1, steps: int, method: str = "slerp"):
  """[N, D], [N, D] -> [N, steps, D]: from z0 (t = 0) to z1 (t = 1) in `steps` evenly spaced points."""
  t = jnp.linspace(0.0, 1.0, steps)[None, :, None]
  fn = {"slerp": slerp, "lerp": lerp}[method]
  return fn(jnp.asarray(z0)[:, None, :], jnp.asarray(z1)[:, None, :], t)


def attribute_vector(latents, has_attribute):
  """Mean latent of samples with an attribute minus the mean of those without (White 2016, Sec. 2.3;
  Radford et al. 2016, Sec. 6.3 average three exemplars per concept): adding it to a latent adds the
  attribute."""
  latents, has = np.asarray(latents), np.asarray(has_attribute, bool)
  if has.all() or not has.any():
    raise errors.UserError("an attribute vector needs samples both with and without the attribute")
  return latents[has].mean(axis=0) - latents[~has].mean(axis=0)


def truncated_noise(key, num: int, dim: int, threshold: float):
  """The truncation trick (Brock et al. 2019, BigGAN, Sec. 3.1): z ~ N(0, I) with every value beyond
  +-threshold resampled, i.e. a truncated normal; smaller thresholds trade variety for fidelity."""
  return jax.random.truncated_normal(key, -threshold, threshold, (num, dim), jnp.float32)


def invert(generate_fn, targets, key, latent_dim: int, steps: int = 300, learning_rate: float = 0.05,
           restarts: int = 4, sample_latents=None):
  """Finds latents whose images best match `targets` [N, ...] (images in [-1, 1]): Adam on the mean squared
  pixel error from `restarts` random starts per target, keeping the best (Creswell & Bharath 2018,
  "Inverting the Generator of a GAN"). `generate_fn(z [M, D]) -> images [M, ...]` in eval mode.

  Returns (latents [N, D], reconstructions [N, ...], errors [N]: mean squared error per image).
  """
  targets = jnp.asarray(targets, jnp.float32)
  n = targets.shape[0]
  sample_latents = sample_latents or (lambda k, m: jax.random.normal(k, (m, latent_dim), jnp.float32))
  z = sample_latents(key, n * restarts)                        # [restarts * N, D], target i at rows i::N
  tiled = jnp.tile(targets, (restarts,) + (1,) * (targets.ndim - 1))
  axes = tuple(range(1, targets.ndim))

  def per_image_error(z):
    return jnp.mean(jnp.square(generate_fn(z) - tiled), axis=axes)

  tx = optax.adam(learning_rate)

  @jax.jit
  def step(z, opt_state):
    grads = jax.grad(lambda z: jnp.sum(per_image_error(z)))(z)  # Each latent only moves its own error.
    updates, opt_state = tx.update(grads, opt_state, z)
    return optax.apply_updates(z, updates), opt_state

  opt_state = tx.init(z)
  for _ in range(steps):  # A Python loop: XLA's CPU backend runs convolutions inside while loops slowly.
    z, opt_state = step(z, opt_state)
  errors_all = jax.jit(per_image_error)(z).reshape(restarts, n)
  best = jnp.argmin(errors_all, axis=0)                          # [N]
  z_best = z.reshape(restarts, n, -1)[best, jnp.arange(n)]
  return np.asarray(z_best), np.asarray(jax.jit(generate_fn)(z_best)), np.asarray(errors_all.min(axis=0))


def noise_regularization(noise_maps):
  """The projector's noise regulariser (Karras et al. 2020, Sec. 5; stylegan2-ada-pytorch projector.py): for each
  noise map [B, r, r, 1] and its 2x2 average-pooled versions down to 8x8, the squared mean of its product with
  itself rolled by one pixel, horizontally and vertically. [B]: zero for maps without spatial correlation, so the
  optimiser cannot hide the image in the noise."""
  total = 0.0
  for noise in noise_maps:
    while True:
      for axis in (1, 2):
        total = total + jnp.square(jnp.mean(noise * jnp.roll(noise, 1, axis=axis), axis=(1, 2, 3)))
      if noise.shape[1] <= 8:
        break
      b, r = noise.shape[0], noise.shape[1]
      noise = noise.reshape(b, r // 2, 2, r // 2, 2, 1).mean(axis=(2, 4))
  return total


@functools.partial(jax.jit, static_argnums=(1, 2))
def unit_noise(key, num: int, resolutions: tuple) -> list:
  """Noise maps [num, r, r, 1] of N(0, 1), one per resolution (the projector's start, as projector.py's randn_like),
  drawn in one compiled program."""
  return [jax.random.normal(jax.random.fold_in(key, i), (num, r, r, 1), jnp.float32) for i, r in enumerate(resolutions)]


def projection_schedule(step: int, steps: int, learning_rate: float = 0.1, noise_factor: float = 0.05,
                        rampdown: float = 0.25, rampup: float = 0.05, noise_ramp: float = 0.75):
  """projector.py's schedule at `step` of `steps`: (learning rate: a linear ramp-up over the first 5% and a cosine
  ramp-down over the last 25%; the scale of the noise added to w, times w's standard deviation: quadratic decay to 0
  at 75%)."""
  t = step / steps
  ramp = min(1.0, (1.0 - t) / rampdown)
  ramp = (0.5 - 0.5 * np.cos(ramp * np.pi)) * min(1.0, t / rampup)
  return learning_rate * ramp, noise_factor * max(0.0, 1.0 - t / noise_ramp) ** 2


def project(synthesize, targets, w_avg, w_std, num_ws: int, noise_resolutions, key, features=None, steps=1000,
            w_plus=False, learning_rate=0.1, feature_weight=1.0, pixel_weight=1.0, noise_weight=1e5):
  """The StyleGAN2 projector (Karras et al. 2020, Sec. 5; stylegan2-ada-pytorch projector.py): finds, for each target
  image [N, ...] in [-1, 1], one w (or, with `w_plus`, one w per layer, Abdal et al. 2019's W+) and the noise maps
  whose synthesis matches it. Starts at w_avg and random unit noise; Adam (0.9, 0.999) on feature_weight x the
  features' distance + pixel_weight x the mean squared pixel error + noise_weight x noise_regularization, with
  projection_schedule's learning rate and decaying noise on w, the noise maps renormalised to zero mean and unit
  variance after every step. The authors compare VGG16's LPIPS features, not available offline: here `features`
  (images -> [N, F], differentiable: a domain classifier's) as unit vectors, as LPIPS normalises each layer's.

  synthesize(ws [N, num_ws, w_dim], noise maps [N, r, r, 1] per r in noise_resolutions) -> images.
  Returns (ws [N, num_ws, w_dim], noise maps, {"images": the synthesis [N, ...], "pixel_mse": [N],
  "feature_distance": [N]} at the end, and "start_pixel_mse": [N] of the start: w_avg and the initial noise maps).
  """
  targets = jnp.asarray(targets, jnp.float32)
  n, axes = targets.shape[0], tuple(range(1, targets.ndim))
  unit = lambda f: f * jax.lax.rsqrt(jnp.sum(jnp.square(f), axis=-1, keepdims=True) + 1e-8)
  target_features = unit(features(targets)) if features is not None else None
  noise_key, key = jax.random.split(key)
  w = jnp.broadcast_to(jnp.asarray(w_avg, jnp.float32), (n, num_ws if w_plus else 1, w_avg.shape[-1]))
  noise = unit_noise(noise_key, n, tuple(noise_resolutions))

  def distances(params, w_noise):
    w, noise = params
    images = synthesize(jnp.broadcast_to(w + w_noise, (n, num_ws, w.shape[-1])), noise)
    pixel = jnp.mean(jnp.square(images - targets), axis=axes)
    feature = (jnp.sum(jnp.square(unit(features(images)) - target_features), axis=-1) if features is not None
               else jnp.zeros_like(pixel))
    total = feature_weight * feature + pixel_weight * pixel + noise_weight * noise_regularization(noise)
    return total, pixel, feature, images

  tx = optax.inject_hyperparams(optax.adam)(learning_rate=0.0, b1=0.9, b2=0.999)

  @jax.jit
  def step(params, opt_state, lr, w_noise_scale, key):
    w_noise = jax.random.normal(key, params[0].shape) * w_noise_scale
    grads = jax.grad(lambda p: jnp.sum(distances(p, w_noise)[0]))(params)   # Each image only moves its own loss.
    opt_state.hyperparams["learning_rate"] = lr
    updates, opt_state = tx.update(grads, opt_state, params)
    w, noise = optax.apply_updates(params, updates)
    noise = [m - jnp.mean(m, axis=(1, 2, 3), keepdims=True) for m in noise]
    noise = [m * jax.lax.rsqrt(jnp.mean(jnp.square(m), axis=(1, 2, 3), keepdims=True)) for m in noise]
    return (w, noise), opt_state

  params = (w, noise)
  measure = jax.jit(distances)
  start_pixel = measure(params, 0.0)[1]
  opt_state = tx.init(params)
  for i in range(steps):   # A Python loop: XLA's CPU backend runs convolutions inside while loops slowly.
    lr, noise_factor = projection_schedule(i, steps, learning_rate)
    params, opt_state = step(params, opt_state, lr, w_std * noise_factor, jax.random.fold_in(key, i))
  w, noise = params
  _, pixel, feature, images = measure(params, 0.0)
  ws = jnp.broadcast_to(w, (n, num_ws, w.shape[-1]))
  return np.asarray(ws), [np.asarray(m) for m in noise], {
      "images": np.asarray(images), "pixel_mse": np.asarray(pixel), "feature_distance": np.asarray(feature),
      "start_pixel_mse": np.asarray(start_pixel)}


# --- Commands: each takes the loaded run and writes a grid, an .npz and a JSON summary.


class Run:
  """A training run's EMA generator, ready to generate from latents (and labels)."""

  def __init__(self, workdir: str):
    from gan_jax import sample  # pylint: disable=g-import-not-at-top
    self.config, self.objective, state = sample.load_run(workdir)
    if not self.objective.latent_space:
      raise errors.UserError(f"gan_jax.latent works on generators with a latent space; objective "
                             f"{self.config.objective!r} has none")
    self.models, self.ema = self.objective.models, state.ema
    self._jitted = {}   # StyleGAN2's generator methods, compiled once each (_apply).
    if not self.models.makes_images:
      raise errors.UserError("gan_jax.latent works on image models; this run's model makes vectors")

  def generate(self, z, labels=None):
    """float32 images [N, ...] in [-1, 1] for latents [N, D] (and labels [N] of conditional models; all classes
    in turn when not given)."""
    conditions = {"z": np.asarray(z)}
    if self.models.num_classes:
      conditions["labels"] = np.arange(len(z), dtype=np.int32) % self.models.num_classes if labels is None else (
          np.asarray(labels, np.int32))
    return self.objective.generate(self.ema, conditions)

  def latents(self, key, num):
    return self.objective.conditions(key, num)["z"]

  # StyleGAN2's W space (models/stylegan2.py Generator's mapping, truncate and synthesis).

  @property
  def style_based(self) -> bool:
    from gan_jax.models import stylegan2  # pylint: disable=g-import-not-at-top
    return isinstance(self.models.generator, stylegan2.Generator)

  def _apply(self, method, *args):
    if not self.style_based:
      raise errors.UserError(f"this command works in StyleGAN2's W space; this run's model is "
                             f"{self.config.model_name!r}")
    if method not in self._jitted:   # Compiled once per method and shape, not at every call.
      module = self.models.generator
      self._jitted[method] = jax.jit(lambda v, *a: module.apply(v, *a, method=method), static_argnums=(
          (2,) if method == "truncate" else ()))
    return np.asarray(self._jitted[method](self.ema["g"], *args))

  def mapped(self, z, labels=None):
    """ws [N, num_ws, w_dim] of latents z (and labels of conditional models; all classes in turn when not given)."""
    if self.models.num_classes and labels is None:
      labels = np.arange(len(z), dtype=np.int32) % self.models.num_classes
    return self._apply("mapping", jnp.asarray(z), None if labels is None else jnp.asarray(labels, jnp.int32))

  def truncated(self, ws, psi: float):
    return self._apply("truncate", jnp.asarray(ws), psi)

  def synthesised(self, ws):
    """Images [N, ...] of ws [N, num_ws, w_dim], the noise fixed as in sampling."""
    return self._apply("synthesis", jnp.asarray(ws))

  def classifier(self, spec=None):
    from gan_jax import metrics  # pylint: disable=g-import-not-at-top
    spec = spec or self.config.eval_features
    if not spec:
      raise errors.UserError("this command needs a classifier: pass --features=classifier:NAME_OR_FILE "
                             "(the run's config.eval_features is empty)")
    return metrics.extractor(spec)


def predicted_classes(classifier, images_float):
  from gan_jax import images  # pylint: disable=g-import-not-at-top
  return classifier.features_and_probs(images.to_uint8(images_float))[1].argmax(axis=1)


def run_interpolate(run, key, num=8, steps=10, method="slerp"):
  z0_key, z1_key = jax.random.split(key)
  z = interpolate(run.latents(z0_key, num), run.latents(z1_key, num), steps, method)   # [num, steps, D]
  flat = np.asarray(z).reshape(num * steps, -1)
  labels = None if not run.models.num_classes else np.repeat(np.arange(num) % run.models.num_classes, steps)
  pictures = run.generate(flat, labels)
  return {"latents": flat, "images": pictures}, {"pairs": num, "steps": steps, "method": method}, steps


def run_arithmetic(run, key, source: int, target: int, num=2000, features=None, show=10):
  """Turns samples of class `source` into `target`. Unconditional models: add the attribute vector (mean
  latent of samples the classifier calls `target` minus that of `source`). Class-conditional models: keep
  the latent and change the label (their class is an input). Reports the fraction classified as `target`."""
  classifier = run.classifier(features)
  z = run.latents(key, num)
  if run.models.num_classes:
    before_labels = np.full(num, source, np.int32)
    before = run.generate(z, before_labels)
    chosen = np.flatnonzero(predicted_classes(classifier, before) == source)
    if not len(chosen):
      raise errors.UserError(f"none of {num} samples generated for class {source} is classified as {source}; "
                             "use a better-trained run")
    after = run.generate(z[chosen], np.full(len(chosen), target, np.int32))
    moved, vector = z[chosen], None
    before = before[chosen]
  else:
    images_z = run.generate(z)
    predicted = predicted_classes(classifier, images_z)
    missing = [c for c in (source, target) if not (predicted == c).any()]
    if missing:
      raise errors.UserError(f"none of {num} samples is classified as {missing[0]}; use a larger --num or a "
                             "better-trained run")
    vector = attribute_vector(z[(predicted == source) | (predicted == target)],
                              predicted[(predicted == source) | (predicted == target)] == target)
    chosen = np.flatnonzero(predicted == source)
    moved = z[chosen] + vector
    before, after = images_z[chosen], run.generate(moved)
  became = predicted_classes(classifier, after)
  summary = {"source": source, "target": target, "samples_of_source": int(len(chosen)),
             "fraction_now_target": float(np.mean(became == target)),
             "method": "label swap (conditional model)" if vector is None else "attribute vector"}
  k = min(show, len(chosen))
  return ({"latents": moved, "before": before, "after": after, "images": np.concatenate([before[:k], after[:k]]),
           **({} if vector is None else {"vector": vector})}, summary, k)


def run_truncation(run, key, thresholds=(2.0, 1.0, 0.5, 0.25), num=10):
  """Rows: the same draws truncated at each threshold (one key, so each row maps the same uniforms through
  a narrower truncated normal); InfoGAN's codes are kept. StyleGAN2: the truncation trick in W (Karras et al.
  2019, Sec. 2): rows of the same latents' w moved towards w_avg, w_avg + psi (w - w_avg), one psi per row."""
  if run.style_based:
    z = np.asarray(run.latents(key, num))
    ws = run.mapped(z)
    rows = [run.synthesised(run.truncated(ws, psi)) for psi in thresholds]
    return ({"latents": z, "images": np.concatenate(rows),
             "psi": np.asarray(thresholds, np.float32)},
            {"space": "W", "psi": list(thresholds), "pixel_std_per_row": [float(r.std(axis=0).mean()) for r in rows]},
            num)
  base, noise_key, noise_dim = run.latents(key, num), jax.random.fold_in(key, 1), run.models.noise_dim
  rows, latents = [], []
  for t in thresholds:
    z = np.array(base)
    z[:, :noise_dim] = np.asarray(truncated_noise(noise_key, num, noise_dim, t))
    latents.append(z)
    rows.append(run.generate(z))
  return ({"latents": np.concatenate(latents), "images": np.concatenate(rows),
           "thresholds": np.asarray(thresholds, np.float32)},
          {"thresholds": list(thresholds), "pixel_std_per_row": [float(r.std(axis=0).mean()) for r in rows]}, num)


def run_invert(run, key, num=16, steps=300, learning_rate=0.05, restarts=4, targets=None):
  """Inverts `targets` (default: the first `num` real examples of the run's dataset) and reports the mean
  squared pixel error, against the error of the random starting latents."""
  from gan_jax import data, models  # pylint: disable=g-import-not-at-top
  from gan_jax.objectives import gan  # pylint: disable=g-import-not-at-top
  labels = None
  if targets is None:
    examples = data.load_examples(run.objective.sources()["x"], num=num)
    targets, labels = examples["x"], examples.get("label")  # Labels: class-conditional models only.
  # Latent r * N + i is matched against target i (see invert), so it gets target i's label.
  generate = lambda z: gan.generate(run.models, run.ema["g"], z, False, None if labels is None else
                                    jnp.tile(jnp.asarray(labels), restarts)[:z.shape[0]])[0]
  sample_fn = lambda k, m: models.sample_latents(run.models, k, m)
  start_key, _ = jax.random.split(key)
  start = sample_fn(start_key, len(targets))
  start_error = np.mean(np.square(run.generate(np.asarray(start), labels) - targets), axis=(1, 2, 3))
  z, reconstructions, errs = invert(generate, targets, key, run.models.latent_dim, steps, learning_rate,
                                    restarts, sample_fn)
  summary = {"images": len(targets), "steps": steps, "restarts": restarts,
             "mse_random_latent": float(start_error.mean()), "mse_inverted": float(errs.mean())}
  return ({"latents": z, "targets": targets, "reconstructions": reconstructions, "errors": errs,
           "images": np.concatenate([targets, reconstructions])}, summary, len(targets))


def run_project(run, key, num=8, steps=1000, space="w", features=None, feature_weight=1.0, pixel_weight=1.0,
                w_avg_samples=10_000, targets=None):
  """Projects `targets` (default: the first `num` real examples of the run's dataset) into W or W+ (`project`), the
  features those of `features` (default: the run's classifier; none with feature_weight 0). w's mean and standard
  deviation come from w_avg_samples mapped latents, as projector.py computes them. Reports the mean squared pixel
  error of the projector's start (w_avg, its initial noise maps), of the projection with its optimised noise, and of
  its ws with the generator's own fixed noise (what projector.py's saved w alone reproduces), the features'
  distance, and the share of projections the classifier puts in their target's class."""
  from gan_jax import data  # pylint: disable=g-import-not-at-top
  from gan_jax.models import stylegan2  # pylint: disable=g-import-not-at-top
  if space not in ("w", "w+"):
    raise errors.UserError(f"--space must be w or w+, got {space!r}")
  if not run.style_based:
    raise errors.UserError(f"project works in StyleGAN2's W space; this run's model is {run.config.model_name!r} "
                           "(use invert)")
  if targets is None:
    targets = data.load_examples(run.objective.sources()["x"], num=num)["x"]
  classifier = run.classifier(features) if feature_weight else None
  if classifier is not None and not hasattr(classifier, "features"):
    raise errors.UserError(f"project compares a domain classifier's features; {classifier.name} is not one "
                           "(--features=classifier:NAME_OR_FILE, or --feature_weight=0 for pixels alone)")
  stats_key, _, key = jax.random.split(key, 3)   # (The middle key drew a start noise of its own until 2026-11-30.)
  ws = run.mapped(run.latents(stats_key, w_avg_samples))[:, 0]
  w_avg = ws.mean(axis=0)
  w_std = float(np.sqrt(np.sum(np.square(ws - w_avg)) / len(ws)))
  generator, variables = run.models.generator, run.ema["g"]
  synthesize = lambda ws, noise: generator.apply(variables, ws, noise, method="synthesis")
  resolutions = stylegan2.noise_resolutions(generator.resolution)
  num_ws = stylegan2.num_ws(generator.resolution)
  ws, _, measured = project(synthesize, targets, w_avg, w_std, num_ws, resolutions, key,
                            classifier.features if classifier is not None else None, steps, space == "w+",
                            feature_weight=feature_weight, pixel_weight=pixel_weight)
  projected, fixed_noise = measured["images"], run.synthesised(ws)
  summary = {"images": len(targets), "steps": steps, "space": space, "w_std": w_std,
             "features": classifier.name if classifier is not None else None,
             "mse_start": float(measured["start_pixel_mse"].mean()),
             "mse_projected": float(measured["pixel_mse"].mean()),
             "mse_fixed_noise": float(np.mean(np.square(fixed_noise - targets))),
             "feature_distance": float(measured["feature_distance"].mean())}
  if classifier is not None:   # The share of projections the classifier puts in their target's class.
    summary["class_agreement"] = float(np.mean(predicted_classes(classifier, projected) ==
                                               predicted_classes(classifier, targets)))
  return ({"ws": ws, "targets": targets, "projections": projected, "fixed_noise": fixed_noise,
           "pixel_mse": measured["pixel_mse"], "images": np.concatenate([targets, projected, fixed_noise])},
          summary, len(targets))


def run_codes(run, key, span=2.0, steps=9):
  """InfoGAN (Chen et al. 2016, Fig. 2): for each continuous code a grid whose row r has categorical code r
  and whose columns vary that code from -span to +span, the noise and the other codes fixed."""
  m = run.models
  if not (m.info_categorical or m.info_continuous):
    raise errors.UserError("`codes` is for InfoGAN runs (config.model.info_categorical / info_continuous)")
  rows = max(m.info_categorical, 1)
  base = np.array(run.latents(key, 1)[0])
  base[m.noise_dim + m.info_categorical:] = 0.0
  grids = []
  for j in range(max(m.info_continuous, 1)):
    z = np.tile(base, (rows * steps, 1))
    for r in range(rows):
      if m.info_categorical:
        z[r * steps:(r + 1) * steps, m.noise_dim:m.noise_dim + m.info_categorical] = np.eye(m.info_categorical)[r]
      if m.info_continuous:
        z[r * steps:(r + 1) * steps, m.noise_dim + m.info_categorical + j] = np.linspace(-span, span, steps)
    grids.append(z)
  z = np.concatenate(grids)
  return {"latents": z, "images": run.generate(z)}, {"grids": len(grids), "rows": rows, "columns": steps}, steps


# StyleGAN2's style bands by the ws they cover (Karras et al. 2019, Sec. 3.1 and Fig. 3): coarse the 4x4 and 8x8
# blocks' (ws 0-3: pose, shape), middle 16x16 and 32x32 (ws 4-7: features), fine 64x64 on (colour, texture).
STYLE_BANDS = (("coarse", 0, 4), ("middle", 4, 8), ("fine", 8, None))


def mix_styles(ws_rows, ws_columns, start: int, stop):
  """[R, C, num_ws, w_dim]: each row source's ws with the layers [start, stop) taken from each column source."""
  rows = np.broadcast_to(ws_rows[:, None], (len(ws_rows), len(ws_columns), *ws_rows.shape[1:])).copy()
  rows[:, :, start:stop] = np.broadcast_to(ws_columns[None, :, start:stop], rows[:, :, start:stop].shape)
  return rows


def run_mixing(run, key, num=4):
  """Style-mixing grids (Karras et al. 2019, Fig. 3): a header row of `num` column sources B; then, for each style
  band the generator has (STYLE_BANDS within its num_ws), one row per row source A: A, then A with that band's
  ws from each B. Reports, per band, the mean pixel distance of the mixes to A and to B."""
  row_key, column_key = jax.random.split(key)
  ws_a, ws_b = run.mapped(run.latents(row_key, num)), run.mapped(run.latents(column_key, num))
  images_a, images_b = run.synthesised(ws_a), run.synthesised(ws_b)
  num_ws = ws_a.shape[1]
  corner = np.full_like(images_a[:1], -1.0)
  pictures, summary = [corner, images_b], {"num_ws": num_ws, "bands": {}}
  for name, start, stop in STYLE_BANDS:
    stop = num_ws if stop is None else min(stop, num_ws)
    if start >= stop:
      continue
    mixed = run.synthesised(mix_styles(ws_a, ws_b, start, stop).reshape(num * num, *ws_a.shape[1:]))
    mixed = mixed.reshape(num, num, *mixed.shape[1:])
    for i in range(num):
      pictures += [images_a[i:i + 1], mixed[i]]
    summary["bands"][name] = {"ws": [start, stop],
                              "distance_to_rows": float(np.mean(np.abs(mixed - images_a[:, None]))),
                              "distance_to_columns": float(np.mean(np.abs(mixed - images_b[None])))}
  return {"ws_rows": ws_a, "ws_columns": ws_b, "images": np.concatenate(pictures)}, summary, num + 1


COMMANDS = ("interpolate", "arithmetic", "truncation", "invert", "codes", "mixing", "project")


def main_cli():
  """The command line; its flags exist only when this module runs as a program."""
  workdir = flags.DEFINE_string("workdir", None, "Workdir of a training run.")
  out = flags.DEFINE_string("out", None, "Output directory for <command>.png and <command>.npz.")
  seed = flags.DEFINE_integer("seed", None, "Seed; default: the run's config.seed.")
  num = flags.DEFINE_integer("num", None, "interpolate: pairs (8); arithmetic: samples (2000); invert: images (16); "
                                             "mixing: sources per side (4); project: images (8).")
  steps = flags.DEFINE_integer("steps", None, "interpolate: points per path (10); invert: Adam steps (300); "
                                                 "project: Adam steps (1000).")
  method = flags.DEFINE_enum("method", "slerp", ["slerp", "lerp"], "Interpolation path.")
  source = flags.DEFINE_integer("source", None, "arithmetic: the class to turn into --target.")
  target = flags.DEFINE_integer("target", None, "arithmetic: the class to reach.")
  features = flags.DEFINE_string("features", None, "arithmetic, project: classifier (default: the run's "
                                                   "eval_features).")
  space = flags.DEFINE_enum("space", "w", ["w", "w+"], "project: one w per image, or one per layer (W+).")
  feature_weight = flags.DEFINE_float("feature_weight", 1.0, "project: weight of the classifier features' distance "
                                                              "(0: pixels alone).")
  pixel_weight = flags.DEFINE_float("pixel_weight", 1.0, "project: weight of the mean squared pixel error.")
  thresholds = flags.DEFINE_list("thresholds", None, "truncation thresholds (2,1,0.5,0.25); StyleGAN2: psi "
                                                     "(1,0.7,0.5,0).")
  restarts = flags.DEFINE_integer("restarts", 4, "invert: random starts per image.")
  learning_rate = flags.DEFINE_float("learning_rate", 0.05, "invert: Adam's learning rate.")
  verbose = flags.DEFINE_bool("verbose", False, "Show tracebacks for user errors, and the libraries' log lines.")

  def main(argv):
    if len(argv) != 2 or argv[1] not in COMMANDS:
      errors.exit_with(f"give one command: {' | '.join(COMMANDS)} (python -m gan_jax.latent COMMAND --workdir=W "
                       "--out=DIR)")
    command = argv[1]
    cli.check_command_line(argv[:1], workdir=workdir.value, out=out.value)
    with cli.user_errors_reported(verbose.value):
      run = Run(workdir.value)
      key = jax.random.PRNGKey(run.config.seed if seed.value is None else seed.value)
      given = lambda flag, default: default if flag.value is None else flag.value
      if command == "interpolate":
        result = run_interpolate(run, key, given(num, 8), given(steps, 10), method.value)
      elif command == "arithmetic":
        if source.value is None or target.value is None:
          raise errors.UserError("arithmetic needs --source and --target (class ids)")
        result = run_arithmetic(run, key, source.value, target.value, given(num, 2000), features.value)
      elif command == "truncation":
        given_thresholds = thresholds.value or (["1", "0.7", "0.5", "0"] if run.style_based else
                                                ["2", "1", "0.5", "0.25"])
        try:
          values = tuple(float(t) for t in given_thresholds)
        except ValueError:
          raise errors.UserError(f"--thresholds {given_thresholds} are not numbers") from None
        result = run_truncation(run, key, values)
      elif command == "invert":
        result = run_invert(run, key, given(num, 16), given(steps, 300), learning_rate.value, restarts.value)
      elif command == "mixing":
        result = run_mixing(run, key, given(num, 4))
      elif command == "project":
        result = run_project(run, key, given(num, 8), given(steps, 1000), space.value, features.value,
                             feature_weight.value, pixel_weight.value)
      else:
        result = run_codes(run, key)
    arrays, summary, columns = result
    from gan_jax import images  # pylint: disable=g-import-not-at-top
    try:
      os.makedirs(out.value, exist_ok=True)
      np.savez_compressed(os.path.join(out.value, f"{command}.npz"), **arrays)
      images.save_png(images.grid(images.to_uint8(arrays["images"]), columns=columns),
                      os.path.join(out.value, f"{command}.png"), scale=4)
    except OSError as e:
      errors.exit_with(f"cannot write to --out {out.value}: {e}")
    print(json.dumps({"command": command, **summary}))

  app.run(main, flags_parser=cli.parse_flags)


if __name__ == "__main__":
  main_cli()
