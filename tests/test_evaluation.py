"""Image metrics under the bundled digits classifier, the reference cache, `gan_jax.evaluate`, and the FID
Inception's weight reader (the port itself is checked against pytorch-fid by scripts/check_inception_parity.py)."""
import json
import os
import pickle
import re
import zipfile

import jax
import numpy as np
import pytest
from scipy import ndimage

from gan_jax import data, evaluate, images, metrics, train
from gan_jax.errors import UserError
from gan_jax.metrics import classifier, inception, reference, scores

from conftest import REPO, tiny_config


@pytest.fixture(scope="module")
def digits_features(data_dir):
  """(extractor, real uint8 digits at 16x16 [1797, 16, 16, 1]) for the bundled classifier."""
  examples = data.load_examples(_digits(data_dir))
  return classifier.load("digits"), images.to_uint8(examples["x"]), examples["label"]


def _digits(data_dir):
  return data.Source(name="digits", data_dir=data_dir, features=(("x", "image", (16, 16, 1)), ("label", "label", ())))


def test_bundled_classifier_recognises_digits(digits_features):
  extractor, real, labels = digits_features
  features, probs = extractor.features_and_probs(real)
  assert features.shape == (1797, 128) and probs.shape == (1797, 10)
  assert np.mean(probs.argmax(axis=1) == labels) > 0.97   # Includes the 80% it was trained on.
  assert extractor.meta["test_accuracy"] > 0.95           # Held out: the last 20% of the split.


def _corrupt(x, level, rng):
  """Blur (sigma level/2) and Gaussian noise (std 40 level) on uint8 images [N, 16, 16, 1]."""
  out = ndimage.gaussian_filter(x.astype(np.float64), sigma=(0, level / 2, level / 2, 0))
  return np.clip(out + rng.normal(0, 40 * level, x.shape), 0, 255).round().astype(np.uint8)


def test_fid_grows_monotonically_with_corruption(digits_features):
  extractor, real, _ = digits_features
  reference_half, other_half = real[::2], real[1::2]
  ref = extractor.features_and_probs(reference_half)[0]
  rng = np.random.default_rng(0)
  fids = [scores.fid(ref, extractor.features_and_probs(_corrupt(other_half, level, rng))[0])
          for level in (0.0, 0.5, 1.0, 1.5, 2.0)]
  assert all(a < b for a, b in zip(fids, fids[1:])), fids
  assert fids[0] < 0.2 * fids[-1]


def test_mode_collapse_scores_worse_than_real_data(digits_features):
  extractor, real, _ = digits_features
  reference_half, other_half = real[::2], real[1::2]
  real_f = extractor.features_and_probs(reference_half)
  fair = extractor.features_and_probs(other_half)
  collapsed = extractor.features_and_probs(np.repeat(other_half[:1], len(other_half), axis=0))
  evaluate_all = lambda fake: {k: v for name, fn in metrics._IMAGE_EVALUATORS.items()  # pylint: disable=protected-access
                               for k, v in fn(real_f, fake).items()}
  good, bad = evaluate_all(fair), evaluate_all(collapsed)
  for lower_is_better in ("fid", "kid", "reverse_kl", "max_class_fraction"):
    assert bad[lower_is_better] > good[lower_is_better], lower_is_better
  for higher_is_better in ("recall", "coverage", "is", "classes_covered"):
    assert bad[higher_is_better] < good[higher_is_better], higher_is_better
  # Precision and density measure fidelity, which a copy of a real digit has: they are not asked to drop.
  assert good["precision"] > 0.8 and good["recall"] > 0.8 and good["classes_covered"] == 10
  assert bad["classes_covered"] == 1 and bad["recall"] < 0.05


def test_intra_class_fid_is_the_mean_of_per_class_fids_and_sees_ignored_labels():
  rng = np.random.default_rng(0)
  centres, labels = rng.normal(0, 3, (3, 4)), np.repeat(np.arange(3), 1000)
  real, fake = (centres[labels] + rng.normal(size=(3000, 4)) for _ in range(2))
  right = scores.intra_class_fid(real, labels, fake, labels)
  expected = [scores.fid(real[labels == k], fake[labels == k]) for k in range(3)]
  assert right == {"fid": pytest.approx(np.mean(expected)), "worst": pytest.approx(max(expected)),
                   "worst_class": int(np.argmax(expected)), "classes": 3}
  wrong = scores.intra_class_fid(real, labels, fake, (labels + 1) % 3)   # The same images, their labels ignored.
  assert scores.fid(real, fake) < 0.05 and right["fid"] < 0.05 and wrong["fid"] > 10
  # A class with fewer than 2 samples on either side is left out, and said so; with none left, NaN.
  fewer = scores.intra_class_fid(real, labels, fake[:2001], labels[:2001])
  assert fewer["classes"] == 2 and fewer["fid"] == pytest.approx(np.mean(expected[:2]))
  assert np.isnan(scores.intra_class_fid(real[:1], labels[:1], fake, labels)["fid"])


def test_intra_class_fid_through_evaluate_and_the_real_vs_real_floor(data_dir, tmp_path):
  # Real digits as the "samples", once with their own labels and once with each label moved to the next class:
  # FID cannot tell the two apart, intra-class FID must.
  config = tiny_config(os.path.join(REPO, "experiments", "cgan_digits.py"), data_dir, eval_ref_num=None,
                       eval_cache_dir=str(tmp_path), evals=("fid", "intra_fid"))
  source = data.source(config.data, x=("image", (16, 16, 1)))
  examples = data.load_examples(_digits(data_dir))
  samples, labels = examples["x"][1::2], examples["label"][1::2]
  np.testing.assert_array_equal(reference.labels(config, source), examples["label"])
  right = metrics.evaluate(config, samples, {"labels": labels}, source)
  wrong = metrics.evaluate(config, samples, {"labels": (labels + 1) % 10}, source)
  assert right["fid/fid"] == wrong["fid/fid"]
  assert 5 * right["intra_fid/fid"] < wrong["intra_fid/fid"]
  assert right["intra_fid/worst"] >= right["intra_fid/fid"] and 0 <= right["intra_fid/worst_class"] < 10
  assert right["intra_fid/classes"] == 10
  floor = metrics.real_vs_real(config, source)
  assert 0 < floor["intra_fid/fid"] < wrong["intra_fid/fid"] / 5
  from gan_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  config = tiny_config(os.path.join(REPO, "experiments", "dcgan_digits.py"), None, evals=("intra_fid",))
  with pytest.raises(UserError, match="intra_fid needs a class-conditional model"):
    config_lib.validate(config)


def test_reference_features_are_cached(digits_features, data_dir, tmp_path, monkeypatch):
  config = tiny_config(os.path.join(REPO, "experiments", "dcgan_digits.py"), data_dir, eval_ref_num=50,
                       eval_cache_dir=str(tmp_path))
  extractor, real, _ = digits_features
  source = data.source(config.data, x=("image", (16, 16, 1)))
  first = reference.features(config, extractor, source)
  path = reference.cache_path(config, extractor, source)
  assert os.path.basename(path) == "digits_train_16x16x1_" + extractor.name + "_50.npz"  # Older caches stay valid.
  assert os.listdir(tmp_path) == [os.path.basename(path)]
  np.testing.assert_array_equal(first[0], extractor.features_and_probs(real[:50])[0])
  os.utime(path, (0, 0))
  second = reference.features(config, extractor, source)
  np.testing.assert_array_equal(first[0], second[0])
  assert os.stat(path).st_mtime == 0   # Read, not rewritten.
  # Real vs real: the reference's two halves, scored from the cached features without running the extractor again.
  config.evals = ("fid", "class_coverage")
  calls, used = [], metrics.extractor(config.eval_features)
  monkeypatch.setattr(used, "features_and_probs", lambda *a, **k: calls.append(1))
  floor = metrics.real_vs_real(config, source)
  halves = ((first[0][:25], first[1][:25]), (first[0][25:], first[1][25:]))
  assert calls == [] and floor["fid/fid"] == pytest.approx(
      metrics._IMAGE_EVALUATORS["fid"](halves[1], halves[0])["fid"])  # pylint: disable=protected-access
  assert floor["class_coverage/classes_covered"] >= 8
  assert os.path.exists(path.replace(".npz", "_real_vs_real.json"))


def test_evaluate_cli_appends_to_eval_json(data_dir, tmp_path, caplog):
  caplog.set_level("INFO")
  config = tiny_config(os.path.join(REPO, "experiments", "dcgan_digits.py"), data_dir,
                       eval_cache_dir=str(tmp_path / "cache"))
  workdir = str(tmp_path / "run")
  train.train_and_evaluate(config, workdir)
  record = evaluate.evaluate(workdir, num=60, evals=["fid", "class_coverage"])
  assert record["step"] == 2 and record["features"].startswith("classifier-digits-")
  assert set(record) == {"step", "features", "num_samples", "source", "fid/fid", "class_coverage/classes_covered",
                         "class_coverage/reverse_kl", "class_coverage/max_class_fraction"}
  assert record["num_samples"] == 60 and record["source"] == "evaluate"
  said, = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Step 2: fid ")]
  assert re.search(r"\nReal vs real: fid [0-9.e+-]+, classes_covered 10 \(two halves", said), said
  with open(os.path.join(workdir, "eval.json")) as f:
    lines = [json.loads(line) for line in f]
  assert [line["step"] for line in lines] == [1, 2, 2] and lines[-1] == record
  for line in lines[:2]:  # Training's own evaluations say so, with the run's wall-clock so far.
    assert line["source"] == "train" and line["num_samples"] == config.eval_num_samples and line["wall_s"] > 0
  assert lines[1]["wall_s"] >= lines[0]["wall_s"]
  assert {"fid/fid", "kid/kid", "precision_recall/recall", "density_coverage/coverage", "inception_score/is",
          "class_coverage/classes_covered"} <= set(lines[0])
  smaller = evaluate.evaluate(workdir, num=60, evals=["fid"], ref_num=40)  # A reference of 40 real digits.
  assert any(name.endswith("_40.npz") for name in os.listdir(tmp_path / "cache"))
  assert smaller["fid/fid"] != record["fid/fid"]
  with pytest.raises(UserError, match="--ref_num must be at least 2"):
    evaluate.evaluate(workdir, ref_num=1)
  with pytest.raises(UserError, match="--split applies to text-to-image runs; .* is a 'gan' run"):
    evaluate.evaluate(workdir, split="test")
  with pytest.raises(UserError, match="is .* the workdir of a training run"):  # The CLI prints it as one line.
    evaluate.evaluate(str(tmp_path / "nothing"))


def test_the_tests_leave_the_users_cache_alone():
  # conftest points $XDG_CACHE_HOME at a temporary directory before gan_jax is imported.
  assert reference.DEFAULT_CACHE_DIR == os.path.join(os.environ["XDG_CACHE_HOME"], "gan_jax", "reference")
  assert not reference.DEFAULT_CACHE_DIR.startswith(os.path.join(os.path.expanduser("~"), ".cache"))


def test_image_metrics_need_a_valid_extractor(data_dir):
  experiment = os.path.join(REPO, "experiments", "dcgan_digits.py")
  with pytest.raises(UserError, match="needs config.eval_features"):
    metrics.check(tiny_config(experiment, data_dir, eval_features=""))
  with pytest.raises(UserError, match="bundled classifiers: digits, digits_m, digits_m_a, edges2fashion, fashion_mnist, mnist"):
    metrics.check(tiny_config(experiment, data_dir, eval_features="classifier:cifar10"))
  with pytest.raises(UserError, match="is not 'classifier"):
    metrics.check(tiny_config(experiment, data_dir, eval_features="vgg:x"))


def test_inception_shapes():
  params = jax.eval_shape(inception.init_params)
  pool, logits = jax.eval_shape(inception._apply, params,  # pylint: disable=protected-access
                                jax.ShapeDtypeStruct((3, 32, 32, 1), np.uint8))
  assert pool.shape == (3, 2048) and logits.shape == (3, 1008)


class _Exploit:
  def __reduce__(self):
    return (os.system, ("touch /tmp/gan_jax_pwned",))


def test_weight_reader_refuses_code_and_wrong_state_dicts(tmp_path):
  path = tmp_path / "evil.pth"
  with zipfile.ZipFile(path, "w") as archive:
    archive.writestr("archive/data.pkl", pickle.dumps({"x": _Exploit()}))
  with pytest.raises(UserError, match="refusing to load"):
    inception.load_pytorch_fid_weights(str(path))
  assert not os.path.exists("/tmp/gan_jax_pwned")
  with pytest.raises(UserError, match="missing Conv2d_1a_3x3"):
    inception.state_dict_to_params({"fc.weight": np.zeros((1008, 2048)), "fc.bias": np.zeros(1008)})
  with pytest.raises(UserError, match="not found"):
    inception.load_pytorch_fid_weights(str(tmp_path / "absent.pth"))


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_weight_reader_matches_torch_load(tmp_path, zip_format):
  torch = pytest.importorskip("torch")  # Optional: torch writes the files the reader must read.
  generator = torch.Generator().manual_seed(0)
  state = {"a.conv.weight": torch.randn(4, 3, 2, 2, generator=generator),
           "a.bn.running_mean": torch.randn(4, generator=generator).double(),
           "transposed": torch.randn(3, 5, generator=generator).t(),       # Non-contiguous strides.
           "view": torch.arange(10, dtype=torch.int64)[2:7],              # A storage offset.
           "a.bn.num_batches_tracked": torch.tensor(7)}
  path = tmp_path / "weights.pth"
  torch.save(state, path, _use_new_zipfile_serialization=zip_format)
  loaded = inception.read_torch_state_dict(str(path))
  assert list(loaded) == list(state)
  for key, value in state.items():
    np.testing.assert_array_equal(loaded[key], value.numpy())
    assert loaded[key].dtype == value.numpy().dtype
