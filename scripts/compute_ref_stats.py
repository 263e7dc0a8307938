"""Computes and caches the reference features of an experiment's real data, for its image metrics.

  python scripts/compute_ref_stats.py --config=experiments/dcgan_digits.py
  python scripts/compute_ref_stats.py --config=experiments/dcgan_cifar10.py \
      --config.eval_features=inception:/path/to/pt_inception-2015-12-05-6726825d.pth --config.eval_ref_num=50000

One cache file per (dataset, split, sample shape, extractor, count) under config.eval_cache_dir (default
~/.cache/gan_jax/reference); training and `python -m gan_jax.evaluate` then read it instead of recomputing.
Prints the file and the mean and covariance trace of the features (FID's Gaussian fit).
"""
import json
import os
import sys

from absl import app
from ml_collections import config_flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gan_jax import cli, errors  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "Experiment config file (with :arg).")


def main(argv):
  cli.check_command_line(argv)
  config = cli.load_config(_CONFIG)
  from gan_jax import config as config_lib, metrics  # pylint: disable=g-import-not-at-top
  from gan_jax.metrics import reference, scores  # pylint: disable=g-import-not-at-top
  with cli.user_errors_reported(False):
    objective = config_lib.validate(config)
    if not config.eval_features:
      raise errors.UserError("config.eval_features is empty: name the extractor (e.g. classifier:digits)")
    source = objective.reference_source()
    extractor = metrics.extractor(config.eval_features)
    features, _ = reference.features(config, extractor, source)
  mu, sigma = scores.feature_statistics(features)
  print(json.dumps({"cache": reference.cache_path(config, extractor, source), "extractor": extractor.name,
                    "num": len(features), "dim": features.shape[1], "mean_norm": float(mu @ mu) ** 0.5,
                    "cov_trace": float(sigma.trace())}))


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
