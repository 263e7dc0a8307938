"""The config schema shared by every experiment: defaults, `get_config` argument parsing and validation.

Every experiment file starts from `base_config()` and changes what it needs; `validate` rejects unknown keys
and names (model, loss, dataset, optimizer) before anything is built or compiled.
"""
import importlib.util
import json
import os

import ml_collections
from ml_collections import config_dict

from gan_jax.errors import UserError  # noqa: F401  (experiment files raise it as config_lib.UserError)

# Keys that may change when a run is resumed from its workdir: they steer the loop, not the trained state.
RESUMABLE_KEYS = ("total_steps", "log_every", "sample_every", "checkpoint_every", "keep_checkpoints",
                  "data.data_dir", "data.download", "data.cache_mb", "evals", "eval_every", "eval_num_samples",
                  "eval_features", "eval_ref_num", "eval_ref_split", "eval_cache_dir", "eval_retrieval", "on_divergence",
                  "rollback_lr_factor", "max_rollbacks", "augmentation.test_split", "augmentation.synthetic_ratio",
                  "augmentation.steps")


def base_config() -> ml_collections.ConfigDict:
  """Every key an experiment may set, with its default."""
  c = ml_collections.ConfigDict()
  c.seed = 0                     # Every randomness of a run (init, latents, data order) derives from this.
  # What is trained and how: a module in gan_jax/objectives/ and the keyword arguments of its make(). The plain
  # GAN ("gan") takes none: its knobs are the keys below (loss, num_critic_steps, pack, regularizer, ...).
  c.objective = "gan"
  c.objective_kwargs = ml_collections.ConfigDict()
  c.total_steps = 1000           # Generator updates; each follows `num_critic_steps` discriminator updates.
  c.batch_size = 64              # Global batch, split over all devices of all processes.
  c.num_critic_steps = 1         # Discriminator updates per generator update (WGAN: 5).
  c.loss = "non_saturating"      # See gan_jax/losses.py.
  c.pack = 1                     # PacGAN packing degree m (Lin et al. 2018): D judges m samples at once.
  # With pack > 1: G's BatchNorm statistics over each pack slot's batch_size samples, as the PacGAN authors' code
  # runs G once per slot; False: over all batch_size * pack samples of a step.
  c.pack_slot_statistics = True
  c.unrolled_steps = 0           # Unrolled GAN (Metz et al. 2017): G's loss through k unrolled D updates.
  # G's update reuses the last critic step's latents and fakes, back-propagating through that same forward pass
  # (jax.vjp), as PyTorch's DCGAN example does: one G forward pass per step instead of two. False draws fresh
  # latents for G's update (Goodfellow et al. 2014, Algorithm 1). Not with unrolled_steps.
  c.reuse_fakes = False
  # D's and G's updates from the same fakes and the same point: G's gradient is taken against D before D's update
  # (simultaneous gradient descent, as the ALI and PacGAN authors' code trains), not after it. One G forward
  # pass per step, like reuse_fakes. Needs num_critic_steps 1 and unrolled_steps 0.
  c.simultaneous_updates = False
  c.aux_weight = 1.0             # Weight of D's auxiliary head's loss in both losses: AC-GAN's L_C (Odena et al.
                                 # 2017) or InfoGAN's lambda (Chen et al. 2016: 1).
  c.ema_decay = 0.999            # EMA of the generator's variables, the copy that is sampled and evaluated.
  # Or, with ema_kimg > 0, the EMA by its half-life in thousands of images (Karras et al. 2020, StyleGAN2-ADA's
  # training_loop.py: 10 at batch 32), the decay 0.5 ** (batch_size / (1000 ema_kimg)); with ema_rampup > 0 the
  # half-life is at most ema_rampup x the images seen so far (their 0.05).
  c.ema_kimg = 0.0
  c.ema_rampup = 0.0
  c.ema_start = 0                # Before this step the EMA is a copy of G (decay 0): BigGAN-PyTorch's ema_start.
  c.steps_per_call = 1           # Training steps per host call (steps.scan_steps); every *_every must be a multiple.
  # NaN or Inf in a logged loss, gradient norm or parameter norm: "stop" (with an error naming the step, the
  # quantity and the last good checkpoint) or "rollback" to the last good checkpoint with a new RNG and the
  # learning rates times rollback_lr_factor, at most max_rollbacks times.
  c.on_divergence = "stop"
  c.rollback_lr_factor = 0.5
  c.max_rollbacks = 3

  # Discriminator regularisers (gan_jax/regularizers.py); a weight of 0 switches a term off.
  c.regularizer = ml_collections.ConfigDict()
  c.regularizer.gradient_penalty = 0.0  # lambda of WGAN-GP (Gulrajani et al. 2017: 10).
  c.regularizer.r1 = 0.0                # gamma of R1 on reals (Mescheder et al. 2018): adds gamma/2 E||grad D||^2.
  c.regularizer.r2 = 0.0                # gamma of R2 on fakes.
  c.regularizer.lazy_every = 1          # R1/R2 every k D updates, weighted by k (Karras et al. 2020, Sec. 3.1).
  c.regularizer.dragan = 0.0            # lambda of DRAGAN (Kodali et al. 2017: 10).
  c.regularizer.weight_clip = 0.0       # c of WGAN weight clipping (Arjovsky et al. 2017: 0.01).
  c.regularizer.g_orthogonal = 0.0      # beta of G's orthogonal regularisation (Brock et al. 2019, Sec. 3.1: 1e-4).
  c.regularizer.drift = 0.0             # epsilon of the drift term epsilon E[D(x)^2] (Karras et al. 2018, A.1: 0.001).
  # Consistency regularisation: D's outputs on images x and on T(x) (augment.consistency_transform) kept equal.
  c.regularizer.cr_real = 0.0           # lambda on reals: CR (Zhang et al. 2020: 10); with cr_fake, bCR (Zhao et
  c.regularizer.cr_fake = 0.0           # al. 2021: lambda_real = lambda_fake = 10); cr_fake on G's samples.
  c.regularizer.cr_flip = True          # T mirrors an image with probability 1/2 (the papers'; False for digits).
  c.regularizer.cr_translation = 0.125  # T shifts by up to int(this x side) pixels, reflect-padded (4 at 32x32).
  c.regularizer.zcr_d = 0.0             # zCR (Zhao et al. 2021, Eq. 5-6): lambda_dis (5) of ||D(G(z)) - D(G(z + e))||^2
  c.regularizer.zcr_g = 0.0             # in D's loss and lambda_gen (0.5) of -||G(z) - G(z + e)||^2 in G's,
  c.regularizer.zcr_sigma = 0.03        # e ~ N(0, sigma^2 I), sigma_noise 0.03.

  # Differentiable augmentation of everything D sees (gan_jax/augment.py). kind "none"; "diffaugment" (Zhao et
  # al. 2020: the policy's transforms, in order; `fill` what translation and cutout leave, 0 in the authors' code,
  # -1 a black background); "ada" (Karras et al. 2020: the pipeline `pipe` with probability p, starting at `p`,
  # moved every ada_interval steps towards E[sign D(x)] = ada_target, 0 to 1 in ada_kimg thousand images; the
  # paper's 500 suits runs of tens of millions of images); "fixed" (the pipeline with the constant `p`).
  # Objectives that support it: gan (every image family it trains) and stylegan2.
  c.augment = ml_collections.ConfigDict(dict(kind="none", policy="color,translation,cutout", fill=0.0, pipe="bgc",
                                             p=0.0, ada_target=0.6, ada_interval=4, ada_kimg=500.0))

  c.model_name = "dcgan"         # A module in gan_jax/models/.
  c.model = ml_collections.ConfigDict()  # Keyword arguments of that module's `make_models`.

  c.data = ml_collections.ConfigDict()
  c.data.name = "digits"         # Any TFDS image dataset, or an offline builder of gan_jax/data.
  c.data.split = "train"
  c.data.data_dir = config_dict.placeholder(str)  # TFDS data_dir; None: TFDS's default (~/tensorflow_datasets).
  c.data.download = True         # Let TFDS download and prepare a dataset that is not in data_dir yet.
  c.data.feature = "image"       # The TFDS feature holding the samples (an Image, or a vector Tensor).
  c.data.shuffle_buffer = 10_000
  c.data.cache_mb = 1024         # Splits whose decoded samples fit in this many MiB are decoded once, kept in memory.

  # One optimizer per network the objective trains (optimizer.<network>), see gan_jax/optimizers.py.
  c.optimizer = ml_collections.ConfigDict()
  # DCGAN (Radford et al. 2016, Sec. 4): Adam, lr 2e-4, beta1 0.5.
  c.optimizer.g = ml_collections.ConfigDict(dict(name="adam", learning_rate=2e-4, b1=0.5, b2=0.999))
  c.optimizer.d = ml_collections.ConfigDict(dict(name="adam", learning_rate=2e-4, b1=0.5, b2=0.999))

  c.log_every = 50
  c.sample_every = 500
  c.checkpoint_every = 1000
  c.keep_checkpoints = 3
  c.num_grid_samples = 64        # Fixed latents drawn as a square grid under <workdir>/samples/.

  c.evals = ()                   # Evaluators (gan_jax/metrics) run on the EMA generator; see eval_every.
  c.eval_every = 1000            # Also at the end of training. Results: console, TensorBoard, eval.json.
  c.eval_num_samples = 2500      # Generated samples per evaluation (PacGAN's 2,500 for mode coverage).
  # Image metrics (fid, kid, precision_recall, density_coverage, inception_score, class_coverage) compare
  # features of the samples and of real data under one extractor: 'classifier:<bundled name or .npz>',
  # 'inception:<weights file>' or 'parser:captioned_shapes' (gan_jax/metrics). Scores are comparable only under the
  # same extractor and counts.
  c.eval_features = ""
  c.eval_ref_num = 50_000        # Real examples of config.data.split in the reference (all, when fewer).
  # The split the reference comes from, when not the training split: a GAN trained on 100 images (split
  # 'train[:100]') is scored against all of them ('train'), as the limited-data papers score theirs.
  c.eval_ref_split = ""
  c.eval_cache_dir = config_dict.placeholder(str)  # None: $XDG_CACHE_HOME/gan_jax/reference (or ~/.cache/...).
  # The `r_precision` evaluator (text to image) scores under the DAMSM the run trains with and, when this names one,
  # under a second retrieval model trained apart from it (a scripts/pretrain_damsm.py file of another seed):
  # scoring with the training encoder favours models trained against it (Park et al. 2021).
  c.eval_retrieval = ""
  # The `augmentation` evaluator (gan_jax/metrics/augmentation.py): classifiers trained on config.data.split's real
  # images, on them plus round(synthetic_ratio x n) class-conditional samples, and on the samples alone, each for
  # `steps` batches of 64, tested on test_split (real images config.data.split does not hold).
  c.augmentation = ml_collections.ConfigDict(dict(test_split="", synthetic_ratio=1.0, steps=2000))
  return c


def parse_arg(arg, **spec) -> ml_collections.ConfigDict:
  """Parses the `get_config` argument string, big_vision style: `"runlocal,res=32"`.

  `spec` gives each allowed key with its default; the default's type converts the value. A bare key sets a
  boolean to True.
  """
  result = ml_collections.ConfigDict(spec)
  for item in filter(None, (arg or "").split(",")):
    key, eq, value = item.partition("=")
    if key not in spec:
      raise UserError(f"unknown config argument {key!r}; allowed: {', '.join(sorted(spec)) or 'none'}")
    default = spec[key]
    if not eq:
      if not isinstance(default, bool):
        raise UserError(f"config argument {key!r} needs a value ({key}=...)")
      result[key] = True
    elif isinstance(default, bool):
      result[key] = value.lower() in ("1", "true", "yes")
    else:
      try:
        result[key] = type(default)(value)
      except ValueError:
        raise UserError(f"config argument {key}={value!r} is not a {type(default).__name__}") from None
  return result


# Sub-configs whose keys are checked by their owner (the model's make_models, the objective's make, the
# optimizers' constructors).
_OPEN_KEYS = ("model", "objective_kwargs", "optimizer")


def _flat_keys(c, prefix=""):
  keys = set()
  for key, value in c.items():
    path = prefix + key
    if isinstance(value, (ml_collections.ConfigDict, dict)) and path not in _OPEN_KEYS:
      keys |= _flat_keys(value, path + ".")
    else:
      keys.add(path)
  return keys


def flatten(c, prefix="") -> dict:
  """{'data.name': 'digits', ...}: the config as flat dotted keys (model kwargs included)."""
  flat = {}
  for key, value in c.items():
    if isinstance(value, (ml_collections.ConfigDict, dict)):
      flat.update(flatten(value, prefix + key + "."))
    else:
      flat[prefix + key] = value
  return flat


def _choose(what, value, allowed):
  if value not in allowed:
    raise UserError(f"unknown {what} {value!r}; allowed: {', '.join(sorted(allowed))}")


def validate(config):
  """Raises UserError naming the first bad key or value, and compiles nothing; returns the run's objective
  (objectives.Objective, its models inside), built once here for the callers to use."""
  # TensorFlow comes in with `data`, imported at the dataset check: the errors before it take a second, not ten.
  from gan_jax import losses, metrics, models, objectives, optimizers  # pylint: disable=g-import-not-at-top

  unknown = _flat_keys(config) - _flat_keys(base_config())
  if unknown:
    raise UserError(f"unknown config key(s) {', '.join(sorted(unknown))}; "
                    f"allowed: {', '.join(sorted(_flat_keys(base_config())))}")
  # `--config.evals=fid,kid` on the command line arrives as one comma-separated name (ml_collections parses a
  # tuple field's override as a Python literal only): split, as the docs' commands write it.
  evals = (config.evals,) if isinstance(config.evals, str) else tuple(config.evals)
  if any("," in name for name in evals):
    config.evals = tuple(part.strip() for name in evals for part in name.split(",") if part.strip())
  for key in ("total_steps", "batch_size", "num_critic_steps", "pack", "log_every", "sample_every",
              "checkpoint_every", "keep_checkpoints", "num_grid_samples", "eval_every", "eval_num_samples",
              "eval_ref_num", "steps_per_call"):
    if not isinstance(config[key], int) or config[key] < 1:
      raise UserError(f"config.{key} must be a positive integer, got {config[key]!r}")
  for key in ("gradient_penalty", "r1", "r2", "dragan", "weight_clip", "g_orthogonal", "drift", "cr_real", "cr_fake",
              "zcr_d", "zcr_g"):
    if not config.regularizer[key] >= 0.0:
      raise UserError(f"config.regularizer.{key} must be >= 0, got {config.regularizer[key]!r}")
  if not config.regularizer.zcr_sigma > 0.0:
    raise UserError(f"config.regularizer.zcr_sigma must be > 0, got {config.regularizer.zcr_sigma!r}")
  if not 0.0 <= config.regularizer.cr_translation < 1.0:
    raise UserError(f"config.regularizer.cr_translation must be in [0, 1), got {config.regularizer.cr_translation!r}")
  if not isinstance(config.regularizer.cr_flip, bool):
    raise UserError(f"config.regularizer.cr_flip must be True or False, got {config.regularizer.cr_flip!r}")
  if isinstance(config.data.cache_mb, bool) or not isinstance(config.data.cache_mb, (int, float)) or not (
      config.data.cache_mb >= 0):
    raise UserError(f"config.data.cache_mb must be >= 0, got {config.data.cache_mb!r}")
  if not isinstance(config.regularizer.lazy_every, int) or config.regularizer.lazy_every < 1:
    raise UserError(f"config.regularizer.lazy_every must be a positive integer, got {config.regularizer.lazy_every!r}")
  if isinstance(config.ema_start, bool) or not isinstance(config.ema_start, int) or config.ema_start < 0:
    raise UserError(f"config.ema_start must be a non-negative integer, got {config.ema_start!r}")
  if not isinstance(config.unrolled_steps, int) or config.unrolled_steps < 0:
    raise UserError(f"config.unrolled_steps must be a non-negative integer, got {config.unrolled_steps!r}")
  if not isinstance(config.pack_slot_statistics, bool):
    raise UserError(f"config.pack_slot_statistics must be True or False, got {config.pack_slot_statistics!r}")
  if not isinstance(config.reuse_fakes, bool):
    raise UserError(f"config.reuse_fakes must be True or False, got {config.reuse_fakes!r}")
  if not isinstance(config.simultaneous_updates, bool):
    raise UserError(f"config.simultaneous_updates must be True or False, got {config.simultaneous_updates!r}")
  if config.simultaneous_updates and (config.num_critic_steps != 1 or config.unrolled_steps):
    raise UserError("config.simultaneous_updates needs config.num_critic_steps 1 and config.unrolled_steps 0: "
                    "one D and one G update from the same point")
  if config.reuse_fakes and config.unrolled_steps:
    raise UserError("config.reuse_fakes needs config.unrolled_steps 0: unrolled GAN's generator loss draws its "
                    "own fakes through the look-ahead updates")
  for key in ("total_steps", "log_every", "sample_every", "checkpoint_every", "eval_every"):
    if config[key] % config.steps_per_call:
      raise UserError(f"config.{key} ({config[key]}) must be a multiple of config.steps_per_call "
                      f"({config.steps_per_call})")
  _choose("config.on_divergence", config.on_divergence, ("stop", "rollback"))
  if not 0.0 < config.rollback_lr_factor <= 1.0:
    raise UserError(f"config.rollback_lr_factor must be in (0, 1], got {config.rollback_lr_factor!r}")
  if not isinstance(config.max_rollbacks, int) or config.max_rollbacks < 0:
    raise UserError(f"config.max_rollbacks must be a non-negative integer, got {config.max_rollbacks!r}")
  if not isinstance(config.eval_retrieval, str):
    raise UserError(f"config.eval_retrieval must be the path of a DAMSM file (or ''), got {config.eval_retrieval!r}")
  if not isinstance(config.eval_ref_split, str):
    raise UserError(f"config.eval_ref_split must be a TFDS split (or '' for config.data.split), got "
                    f"{config.eval_ref_split!r}")
  if not 0.0 <= config.ema_decay < 1.0:
    raise UserError(f"config.ema_decay must be in [0, 1), got {config.ema_decay!r}")
  for key in ("ema_kimg", "ema_rampup"):
    if isinstance(config[key], bool) or not isinstance(config[key], (int, float)) or not config[key] >= 0:
      raise UserError(f"config.{key} must be a number >= 0, got {config[key]!r}")
  _choose("loss", config.loss, losses.names())
  _choose("model_name", config.model_name, models.names())
  built = models.check_kwargs(config.model_name, config.model.to_dict())
  if not config.aux_weight >= 0.0:
    raise UserError(f"config.aux_weight must be >= 0, got {config.aux_weight!r}")
  from gan_jax import data  # pylint: disable=g-import-not-at-top
  _choose("dataset", config.data.name.split("/")[0].split(":")[0], data.names())  # A builder, maybe with a config.
  _choose("config.objective", config.objective, objectives.names())
  objectives.check_kwargs(config.objective, config.objective_kwargs.to_dict())
  from gan_jax import augment  # pylint: disable=g-import-not-at-top
  augment.check(config)
  objective = objectives.make(config, built)
  if config.augment.kind != "none" and not objective.augments_d_inputs:
    raise UserError(f"config.augment.kind {config.augment.kind!r} is not wired into objective {config.objective!r} "
                    f"yet (it is into: gan, stylegan2)")
  objective.check()
  metrics.check(config, objective.target_kinds)
  given, needed = sorted(config.optimizer), sorted(objective.networks)
  if given != needed:
    raise UserError(f"config.optimizer has entries for {', '.join(given) or 'no network'} but objective "
                    f"{config.objective!r} trains {', '.join(needed)}: one optimizer.<network> each")
  for name in needed:
    optimizers.check(f"optimizer.{name}", config.optimizer[name].to_dict())
  return objective


def check_at_defaults(config, keys, objective: str) -> None:
  """Rejects any of the flat `keys` changed from base_config's default: plain-GAN knobs an objective would ignore."""
  default, given = flatten(base_config()), flatten(config)
  for key in keys:
    if given[key] != default[key]:
      raise UserError(f"config.{key} is a plain-GAN setting that objective {objective!r} does not use; leave it at "
                      f"{default[key]!r}")


def load_experiment(path, arg=None) -> ml_collections.ConfigDict:
  """Loads `get_config(arg)` from an experiment file (what --config=path:arg does)."""
  spec = importlib.util.spec_from_file_location("experiment_config", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def not_applicable(config) -> list:
  """Flat keys (flatten's) whose values this run does not use: the model's and the objective's (their
  `not_applicable` hooks: an unconditional DCGAN's conditioning, a U-Net's num_blocks, pix2pix's plain-GAN keys),
  and the rollback settings when divergence stops the run. (The evaluation settings stay, even without
  config.evals: gan_jax.evaluate and gan_jax.latent read them later.)"""
  from gan_jax import augment, models, objectives  # pylint: disable=g-import-not-at-top
  keys = {"model." + k for k in models.not_applicable(config.model_name, config.model.to_dict())}
  keys |= set(objectives.not_applicable(config))
  if config.on_divergence == "stop":
    keys |= {"rollback_lr_factor", "max_rollbacks"}
  keys |= {"ema_decay"} if config.ema_kimg else {"ema_rampup"}
  keys |= augment.not_applicable(config)
  return sorted(keys)


def as_run(config) -> dict:
  """The config as a nested dict with the keys that do not apply to the run (not_applicable) set to None: what
  config.json holds, so that no key looks as if it steered a run it did not."""
  nested = json.loads(config.to_json())
  for key in not_applicable(config):
    *parents, last = key.split(".")
    node = nested
    for parent in parents:
      node = node.get(parent, {})
    if last in node:
      node[last] = None
  return nested


def save_json(config, workdir) -> None:
  """Writes config.json (as_run: keys that do not apply are null) atomically (a temporary file, then a rename):
  the other processes of a multi-process run, and any reader, see the previous file or the new one, never a
  half-written one; a full disk leaves the previous one intact."""
  path = os.path.join(workdir, "config.json")
  temporary = f"{path}.{os.getpid()}.tmp"
  try:
    with open(temporary, "w") as f:
      f.write(json.dumps(as_run(config), indent=2, sort_keys=True))
    os.replace(temporary, path)
  finally:
    if os.path.exists(temporary):
      os.remove(temporary)


def load_json(workdir) -> ml_collections.ConfigDict:
  """The config a run was started with, keys added to gan_jax since then at their defaults (with_defaults)."""
  path = os.path.join(workdir, "config.json")
  try:
    with open(path) as f:
      loaded = json.load(f)
  except FileNotFoundError:
    raise UserError(f"{path} not found: is {workdir!r} the workdir of a training run?") from None
  except (OSError, json.JSONDecodeError) as e:
    raise UserError(f"cannot read {path}: {e}") from None
  return with_defaults(loaded)


def with_defaults(stored: dict) -> ml_collections.ConfigDict:
  """`stored` (a config as JSON) on top of base_config() and the model's own defaults, so that a workdir
  written before a key existed loads, samples and resumes as it ran (the new key at its default, which is
  what the older code did). A null (a key that did not apply to the run, as_run) keeps the default, so the
  config builds as before. The optimizers and objective_kwargs are taken whole: their keys depend on the
  objective."""
  from gan_jax import models  # pylint: disable=g-import-not-at-top
  merged = base_config().to_dict()
  name = stored.get("model_name", merged["model_name"])
  if name in models.names():
    merged["model"] = models.default_kwargs(name)

  def update(base, new, prefix=""):
    for key, value in new.items():
      if isinstance(value, dict) and isinstance(base.get(key), dict) and prefix + key not in _TAKEN_WHOLE:
        update(base[key], value, prefix + key + ".")
      elif value is None and base.get(key) is not None:
        continue
      else:
        base[key] = value

  merged.update({k: v for k, v in _BEFORE_THEIR_KEY.items() if k not in stored})  # Null: the key existed.
  update(merged, stored)
  return ml_collections.ConfigDict(merged)


# Stored sub-configs taken as they are: their keys depend on the objective (its networks, its make()'s arguments).
_TAKEN_WHOLE = ("optimizer", "objective_kwargs")

# Keys added with a default that changes what runs did before the key existed: a stored config without the key
# gets the earlier behaviour instead of the default.
_BEFORE_THEIR_KEY = {"pack_slot_statistics": False}


def diff_for_resume(stored, current) -> list:
  """Keys whose values differ between a workdir's stored config and the current one, except resumable ones and
  those that apply to neither run (not_applicable)."""
  a, b = flatten(as_run(stored)), flatten(as_run(current))
  return sorted(k for k in set(a) | set(b)
                if k not in RESUMABLE_KEYS and _normalise(a.get(k)) != _normalise(b.get(k)))


def _normalise(value):
  return json.loads(json.dumps(value))  # Tuples and lists compare equal, as they do after a JSON round trip.


def set_model(config, name, **kwargs) -> None:
  """Sets config.model_name and config.model with every model keyword, so each can be overridden by flag."""
  from gan_jax import models  # pylint: disable=g-import-not-at-top
  config.model_name = name
  config.model = models.default_kwargs(name, **kwargs)


def make_tiny(config) -> None:
  """The `runlocal` variant: a few steps of a narrow model, logging every step (for tests and smoke runs)."""
  config.total_steps = 2
  config.batch_size = 8
  config.log_every = config.sample_every = config.checkpoint_every = 1
  config.num_grid_samples = 4
  config.eval_every, config.eval_num_samples, config.eval_ref_num = 1, 100, 100
  config.data.shuffle_buffer = 64
  for key in ("g_width", "d_width", "g_hidden", "d_hidden"):
    if key in config.model:
      config.model[key] = 4 if key.endswith("width") else 16
  # Two critic updates (WGAN's and the projection GAN's 5) and two look-ahead steps (unrolled GAN's 5) exercise
  # the same loops as the full counts: on a CPU each is written out in the step, so each adds its compile time.
  config.num_critic_steps = min(config.num_critic_steps, 2)
  config.unrolled_steps = min(config.unrolled_steps, 2)
