"""Which digit does each sample show? A quick check of a digits generator with a scikit-learn classifier.

  python scripts/digits_class_coverage.py --samples=samples.npz

Fits an RBF SVM on scikit-learn's 8x8 digits (held-out accuracy printed), shrinks the samples to 8x8 (area
average) and prints the class histogram of the predictions. A stand-in until gan_jax/metrics has the domain
classifier of the evaluation issue; its numbers are only comparable with numbers from this same script.
"""
import argparse
import json
import sys

import numpy as np


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--samples", required=True, help=".npz from `python -m gan_jax.sample` (key images)")
  args = parser.parse_args()
  from sklearn.datasets import load_digits
  from sklearn.model_selection import train_test_split
  from sklearn.svm import SVC
  try:
    images = np.load(args.samples)["images"]  # uint8 [N, H, W, 1]
  except (OSError, KeyError, ValueError) as e:
    sys.exit(f"gan_jax: error: cannot read images from {args.samples}: {e}")
  n, h, w, _ = images.shape
  if h % 8 or w % 8:
    sys.exit(f"gan_jax: error: samples of {h}x{w} cannot be area-averaged to 8x8")
  small = images[..., 0].reshape(n, 8, h // 8, 8, w // 8).mean(axis=(2, 4)) * 16.0 / 255.0  # digits' 0..16
  digits = load_digits()
  x_train, x_test, y_train, y_test = train_test_split(digits.data, digits.target, test_size=0.25, random_state=0)
  classifier = SVC(gamma=0.001).fit(x_train, y_train)
  predicted = classifier.predict(small.reshape(n, 64))
  counts = np.bincount(predicted, minlength=10)
  print(json.dumps({"classifier_test_accuracy": round(float(classifier.score(x_test, y_test)), 4),
                    "num_samples": int(n), "classes_present": int((counts > 0).sum()),
                    "class_histogram": counts.tolist()}))


if __name__ == "__main__":
  main()
