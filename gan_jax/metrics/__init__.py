"""Evaluation metrics by name, each cited next to its code: `config.evals` lists those run during training.

An evaluator takes (config, samples) with samples float32 [N, *data_shape] from the EMA generator and returns
a dict of numbers.
"""
from gan_jax.errors import UserError
from gan_jax.metrics.mode_coverage import mode_coverage


def _mode_coverage(config, samples):
  from gan_jax.data.mixtures import MIXTURES  # pylint: disable=g-import-not-at-top
  modes, sigma = MIXTURES[config.data.name]
  return mode_coverage(samples, modes, sigma)


_EVALUATORS = {"mode_coverage": _mode_coverage}


def names():
  return tuple(_EVALUATORS)


def check(config) -> None:
  from gan_jax.data.mixtures import MIXTURES  # pylint: disable=g-import-not-at-top
  for name in config.evals:
    if name not in _EVALUATORS:
      raise UserError(f"unknown evaluator {name!r} in config.evals; allowed: {', '.join(names())}")
    if name == "mode_coverage" and config.data.name not in MIXTURES:
      raise UserError(f"mode_coverage needs a Gaussian-mixture dataset ({', '.join(MIXTURES)}), "
                      f"not {config.data.name!r}")


def evaluate(config, samples) -> dict:
  """{name/metric: value} for every evaluator in config.evals."""
  results = {}
  for name in config.evals:
    results.update({f"{name}/{k}": v for k, v in _EVALUATORS[name](config, samples).items()})
  return results
