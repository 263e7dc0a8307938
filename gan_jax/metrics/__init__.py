"""Evaluation metrics by name, each cited next to its code: `config.evals` lists those run on the EMA generator
during training (and by `python -m gan_jax.evaluate`).

Vector evaluators take the samples themselves (mode_coverage, on the 2D mixtures). Image evaluators compare
features of the samples with features of real data (`reference.py`, cached on disk), both computed by the
extractor `config.eval_features` names: `classifier:<name or .npz>` (a domain classifier, classifier.py),
`inception:<weights file>` (the FID Inception network, inception.py) or `parser:<name or .npz>` (captioned_shapes'
parser, shapes_parser.py). Results are {evaluator/metric: value}.
"""
import os

from gan_jax.errors import UserError
from gan_jax.metrics import scores
from gan_jax.metrics.mode_coverage import mode_coverage
from gan_jax.metrics.scores import frechet_distance  # noqa: F401  (the public API)


def _mode_coverage(config, samples):
  from gan_jax.data.mixtures import MIXTURES  # pylint: disable=g-import-not-at-top
  modes, sigma = MIXTURES[config.data.name]
  return mode_coverage(samples, modes, sigma)


_VECTOR_EVALUATORS = {"mode_coverage": _mode_coverage}

# name -> f(real, fake) with real/fake = (features [N, D], class probabilities [N, K]).
_IMAGE_EVALUATORS = {
    "fid": lambda real, fake: {"fid": scores.fid(real[0], fake[0])},
    "kid": lambda real, fake: dict(zip(("kid", "kid_std"), scores.kernel_inception_distance(real[0], fake[0]))),
    "precision_recall": lambda real, fake: dict(zip(("precision", "recall"),
                                                    scores.precision_recall(real[0], fake[0]))),
    "density_coverage": lambda real, fake: dict(zip(("density", "coverage"),
                                                    scores.density_coverage(real[0], fake[0]))),
    "inception_score": lambda real, fake: dict(zip(("is", "is_std"), scores.inception_score(fake[1]))),
    "class_coverage": lambda real, fake: scores.class_coverage(fake[1]),
}
# name -> f(real features, real labels, fake features, the labels the samples were generated for): image metrics
# within each class, which also read the real examples' labels (reference.labels).
_CLASS_IMAGE_EVALUATORS = {"intra_fid": scores.intra_class_fid}
# name -> (the target it needs, f(fake class probabilities [N, K], that target [N])). The objective's
# evaluation_targets provide them: "labels" (a class-conditional model's requested labels, or the source labels of
# translated images) or "codes" (InfoGAN's categorical codes).
_CONDITIONAL_EVALUATORS = {"class_accuracy": ("labels", scores.class_accuracy),
                           "code_purity": ("codes", scores.code_purity)}
# name -> f(samples, "targets" [N, ...]): samples against the images they should equal (paired translation).
_PAIRED_EVALUATORS = {"reconstruction": scores.reconstruction_errors}
# name -> f(samples, "facts" [N, F]): text-to-image samples read back by a parser against what their captions state.
_FACT_EVALUATORS = {"attributes": lambda samples, facts: _shapes_parser().evaluate(samples, facts)}


def _r_precision(config, samples, captions) -> dict:
  """R-precision (R = 1 of 100 captions; Xu et al. 2018, Sec. 5) of the samples under the DAMSM the run trains
  with (`damsm`) and, when config.eval_retrieval names one, under an independently trained one (`independent`)."""
  from gan_jax.models import damsm  # pylint: disable=g-import-not-at-top
  files = {"damsm": config.objective_kwargs.damsm, "independent": config.eval_retrieval}
  results = {}
  for name, path in files.items():
    if path:
      if path == "random":   # The smoke tests' frozen random encoders (objectives/_text.py).
        from gan_jax.objectives import _text  # pylint: disable=g-import-not-at-top
        params, meta = _text.random_damsm(config)
      else:
        params, meta = _damsm_file(path)
      results[name] = damsm.r_precision_of(params, meta, samples, captions)
  return results


_damsm_files = {}


def _damsm_file(path):
  """damsm.load(path), read once per process and file version (every evaluation of a run scores under it)."""
  from gan_jax.models import damsm  # pylint: disable=g-import-not-at-top
  stat = os.stat(path) if os.path.exists(path) else None
  key = (os.path.abspath(path), stat and (stat.st_mtime_ns, stat.st_size))
  if key not in _damsm_files:
    _damsm_files[key] = damsm.load(path)
  return _damsm_files[key]


# name -> f(config, samples, "captions" word ids [N, T]): text-to-image samples against their own captions.
_CAPTION_EVALUATORS = {"r_precision": _r_precision}


def _diversity(features, grouped) -> dict:
  """scores.caption_diversity of a text-to-image model's samples for fixed captions (objective.diversity_samples:
  samples, their caption index, real images grouped the same way or None) under the run's extractor."""
  from gan_jax import images  # pylint: disable=g-import-not-at-top
  samples, groups, real = grouped
  fake = features.features_and_probs(images.to_uint8(samples))[0]
  real_features = None if real is None else features.features_and_probs(real)[0]
  return scores.caption_diversity(fake, groups, real_features, None if real is None else groups)


# name -> f(extractor, grouped samples): evaluators of samples grouped by condition, drawn apart from the others
# (train.evaluate asks objective.diversity_samples for them); they read features, and need captions.
_GROUPED_EVALUATORS = {"diversity": _diversity}


def _shapes_parser():
  from gan_jax.metrics import shapes_parser  # pylint: disable=g-import-not-at-top
  return shapes_parser
# Evaluators that train classifiers on generated samples (augmentation.py), on their own samples: train.evaluate
# draws augmentation.num_synthetic(config) of them, class-balanced, and passes them as `synthetic`.
_TRAINING_EVALUATORS = ("augmentation",)


def names():
  return tuple(_VECTOR_EVALUATORS) + tuple(_IMAGE_EVALUATORS) + tuple(_CLASS_IMAGE_EVALUATORS) + tuple(
      _CONDITIONAL_EVALUATORS) + tuple(_PAIRED_EVALUATORS) + tuple(_FACT_EVALUATORS) + tuple(
      _CAPTION_EVALUATORS) + tuple(_GROUPED_EVALUATORS) + _TRAINING_EVALUATORS


def _needs_extractor(name) -> bool:
  return (name not in _VECTOR_EVALUATORS and name not in _PAIRED_EVALUATORS and name not in _TRAINING_EVALUATORS
          and name not in _FACT_EVALUATORS and name not in _CAPTION_EVALUATORS)


_NEEDS = {"labels": "a class-conditional model (config.model.num_classes > 0) or translated images with source "
                    "labels",
          "codes": "an InfoGAN model with a categorical code (config.model.info_categorical)",
          "targets": "paired translation (pix2pix), whose outputs have true targets",
          "facts": "a text-to-image model on captioned_shapes, whose captions' facts the parser checks",
          "captions": "a text-to-image model (its samples' captions)"}


def check(config, target_kinds=()) -> None:
  """Rejects unknown evaluators, and evaluators that do not fit the data, lack an extractor, or need targets the
  objective does not provide (`target_kinds`: what its evaluation_targets hold: labels, codes, targets)."""
  from gan_jax.data.mixtures import MIXTURES  # pylint: disable=g-import-not-at-top
  for name in config.evals:
    if name not in names():
      raise UserError(f"unknown evaluator {name!r} in config.evals; allowed: {', '.join(names())}")
    if name == "mode_coverage" and config.data.name not in MIXTURES:
      raise UserError(f"mode_coverage needs a Gaussian-mixture dataset ({', '.join(MIXTURES)}), "
                      f"not {config.data.name!r}")
    needed = _CONDITIONAL_EVALUATORS[name][0] if name in _CONDITIONAL_EVALUATORS else (
        "targets" if name in _PAIRED_EVALUATORS else "facts" if name in _FACT_EVALUATORS else
        "captions" if name in _CAPTION_EVALUATORS or name in _GROUPED_EVALUATORS else
        "labels" if name in _TRAINING_EVALUATORS or name in _CLASS_IMAGE_EVALUATORS else None)
    if needed and needed not in target_kinds:
      raise UserError(f"{name} needs {_NEEDS[needed]}")
    if name == "augmentation":
      _check_augmentation(config)
    if _needs_extractor(name) and not config.eval_features:
      raise UserError(f"evaluator {name!r} needs config.eval_features, e.g. 'classifier:digits' or "
                      "'inception:/path/to/pt_inception-2015-12-05-6726825d.pth'")
  if config.eval_features:
    kind, _, where = config.eval_features.partition(":")
    if kind not in ("classifier", "inception", "parser") or not where:
      raise UserError(f"config.eval_features {config.eval_features!r} is not 'classifier:<name or file>', "
                      "'inception:<weights file>[:pytorch_fid|legacy_tensorflow|clean]' or 'parser:<name or file>'")
    from gan_jax.metrics import classifier, inception, shapes_parser  # pylint: disable=g-import-not-at-top
    path = (classifier.resolve_path(where) if kind == "classifier" else shapes_parser.resolve_path(where)
            if kind == "parser" else inception.parse_spec(where)[0])
    if not os.path.isfile(path):
      bundled = {"classifier": classifier.bundled_names, "parser": shapes_parser.bundled_names}.get(kind)
      raise UserError(f"config.eval_features {config.eval_features!r}: no file {path}" + (
          f" (bundled {kind}s: {', '.join(bundled())})" if bundled else ""))
    needs_classes = [n for n in config.evals
                     if n in ("inception_score", "class_coverage") or n in _CONDITIONAL_EVALUATORS]
    if needs_classes and kind == "parser":
      raise UserError(f"{needs_classes[0]} needs class probabilities, which the shapes parser's features "
                      f"({config.eval_features!r}) do not give: drop it from config.evals")
    if needs_classes and kind == "inception" and not extractor(config.eval_features).has_logits:
      raise UserError(f"{needs_classes[0]} needs class probabilities, but the Inception file {path} has no classifier "
                      "layer (the TorchScript FID network stops at the pool features): drop it from config.evals")


def _check_augmentation(config) -> None:
  settings = config.augmentation
  if config.objective != "gan":
    raise UserError(f"the augmentation evaluator is for class-conditional GANs, not objective {config.objective!r} "
                    "(translated training data: scripts/train_classifier.py --translate)")
  if not settings.test_split:
    raise UserError("the augmentation evaluator needs config.augmentation.test_split, real held-out images that "
                    "config.data.split does not hold (e.g. 'test', or digits' 'train[80%:]')")
  if settings.test_split == config.data.split:
    raise UserError(f"config.augmentation.test_split is config.data.split ({settings.test_split!r}): the classifiers "
                    "would be tested on their own training images")
  if not settings.synthetic_ratio > 0.0:
    raise UserError(f"config.augmentation.synthetic_ratio must be > 0, got {settings.synthetic_ratio!r}")
  if not isinstance(settings.steps, int) or settings.steps < 1:
    raise UserError(f"config.augmentation.steps must be a positive integer, got {settings.steps!r}")


_extractors = {}


def extractor(spec):
  """The feature extractor named by config.eval_features (loaded once per process)."""
  if spec not in _extractors:
    from gan_jax.metrics import classifier, inception, shapes_parser  # pylint: disable=g-import-not-at-top
    kind, _, where = spec.partition(":")
    _extractors[spec] = (classifier.load(where) if kind == "classifier" else shapes_parser.Extractor(where)
                         if kind == "parser" else inception.Extractor(where))
  return _extractors[spec]


def evaluate(config, samples, targets=None, reference_source=None, synthetic=None, grouped=None) -> dict:
  """{name/metric: value} for every evaluator in config.evals; samples float32 [N, *data_shape] from G;
  `targets` the objective's evaluation_targets ({"labels"}: the class each sample was generated for or
  translated from; {"codes"}: InfoGAN's categorical codes; {"targets"}: the images paired samples should equal);
  for the image metrics, the data.Source of the real images they are compared with (its one feature); for the
  training evaluators, `synthetic` = (samples, their labels, the seed) drawn for them; for `diversity`, `grouped`
  = objective.diversity_samples' sets."""
  from gan_jax import images  # pylint: disable=g-import-not-at-top
  from gan_jax.metrics import reference  # pylint: disable=g-import-not-at-top
  results, targets = {}, targets or {}
  image_evals = [name for name in config.evals if _needs_extractor(name)]
  if image_evals:
    features = extractor(config.eval_features)
    fake = features.features_and_probs(images.to_uint8(samples))
    if any(name in _IMAGE_EVALUATORS or name in _CLASS_IMAGE_EVALUATORS for name in image_evals):
      real = reference.features(config, features, reference_source)
  for name in config.evals:
    if name in _IMAGE_EVALUATORS:
      values = _IMAGE_EVALUATORS[name](real, fake)
    elif name in _CLASS_IMAGE_EVALUATORS:
      values = _CLASS_IMAGE_EVALUATORS[name](real[0], reference.labels(config, reference_source), fake[0],
                                             targets["labels"])
    elif name in _CONDITIONAL_EVALUATORS:
      needed, fn = _CONDITIONAL_EVALUATORS[name]
      values = fn(fake[1], targets[needed])
    elif name in _PAIRED_EVALUATORS:
      values = _PAIRED_EVALUATORS[name](samples, targets["targets"])
    elif name in _FACT_EVALUATORS:
      values = _FACT_EVALUATORS[name](samples, targets["facts"])
    elif name in _CAPTION_EVALUATORS:
      values = _CAPTION_EVALUATORS[name](config, samples, targets["captions"])
    elif name in _GROUPED_EVALUATORS:
      values = _GROUPED_EVALUATORS[name](features, grouped)
    elif name == "augmentation":
      from gan_jax.metrics import augmentation  # pylint: disable=g-import-not-at-top
      values = augmentation.score(config, *synthetic)
    else:
      values = _VECTOR_EVALUATORS[name](config, samples)
    results.update({f"{name}/{k}": v for k, v in values.items()})
  return results


def real_vs_real(config, reference_source) -> dict:
  """{name/metric: value} of config.evals' image metrics between two halves of the real reference examples (the
  first half as if generated): what real data itself scores under this extractor, a point of comparison, not a
  bound. Each half has half the reference's size, and FID's bias grows as samples shrink (Chong & Forsyth 2020),
  so a generator scored on full-size sets can come out below it. The halves' features are the reference's own
  (reference.features, computed once: through Inception on a CPU they take most of an evaluation's time).
  Cached as JSON beside the reference features."""
  import json  # pylint: disable=g-import-not-at-top
  from gan_jax.metrics import reference  # pylint: disable=g-import-not-at-top
  names = [name for name in config.evals if name in _IMAGE_EVALUATORS or name in _CLASS_IMAGE_EVALUATORS]
  if not names:
    return {}
  features = extractor(config.eval_features)
  path = reference.cache_path(config, features, reference_source).replace(".npz", "_real_vs_real.json")
  if os.path.exists(path):
    with open(path) as f:
      cached = json.load(f)
    if all(any(k.startswith(name + "/") for k in cached) for name in names):
      return {k: v for k, v in cached.items() if k.split("/")[0] in names}
  real_features, real_probs = reference.features(config, features, reference_source)
  half = len(real_features) // 2
  first, second = ((real_features[part], real_probs[part]) for part in (slice(0, half), slice(half, 2 * half)))
  results = {}
  for name in names:
    if name in _CLASS_IMAGE_EVALUATORS:
      real_labels = reference.labels(config, reference_source)
      values = _CLASS_IMAGE_EVALUATORS[name](second[0], real_labels[half:2 * half], first[0], real_labels[:half])
    else:
      values = _IMAGE_EVALUATORS[name](second, first)
    results.update({f"{name}/{k}": float(v) for k, v in values.items()})
  os.makedirs(os.path.dirname(path), exist_ok=True)
  temporary = f"{path}.{os.getpid()}.tmp"
  with open(temporary, "w") as f:
    json.dump(results, f)
  os.replace(temporary, path)
  return results
