"""The data entry point: the offline `digits` builder, the TFDS pipeline (mocked mnist/cifar10), exact resume."""
import os
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds

from gan_jax import data
from gan_jax.errors import UserError


def _take(iterator, n):
  return [next(iterator) for _ in range(n)]


def _source(name, shape, *, feature="image", labels=True, **kwargs):
  """A Source of one sample feature as role "x" (and the class label as "label")."""
  features = (("x", feature, shape),) + ((("label", "label", ()),) if labels else ())
  return data.Source(name=name, features=features, **kwargs)


def _get(name, *, shape, feature="image", labels=True, data_dir=None, download=True, cache_mb=1024, **kwargs):
  source = _source(name, shape, feature=feature, labels=labels, data_dir=data_dir, download=download,
                   cache_mb=cache_mb)
  return data.get_dataset(source, **kwargs)


def test_digits_builder_serves_sklearn_digits(data_dir):
  from sklearn.datasets import load_digits
  builder = data.load_builder("digits", data_dir)
  assert builder.info.splits["train"].num_examples == 1797
  examples = list(tfds.as_numpy(builder.as_dataset(split="train", shuffle_files=False)))
  images = np.stack([e["image"] for e in examples])    # [1797, 8, 8, 1] uint8
  labels = np.array([e["label"] for e in examples])
  assert images.shape == (1797, 8, 8, 1) and images.dtype == np.uint8
  digits = load_digits()
  # Same multiset of (image, label) pairs as scikit-learn, grey levels 0..16 mapped to round(v * 255 / 16).
  expected = np.round(digits.images * 255 / 16).astype(np.uint8)
  key = lambda imgs, labs: sorted(zip(labs.tolist(), imgs.reshape(len(labs), -1).tolist()))
  assert key(images[..., 0], labels) == key(expected, digits.target)
  assert len(np.unique(images)) == 17 and np.bincount(labels).min() >= 170


def test_pipeline_shapes_range_and_labels(data_dir):
  it = _get(name="digits", data_dir=data_dir, shape=(16, 16, 1), batch_size=32,
                        num_stacked=2, seed=0)
  batch = next(it)
  assert batch["x"].shape == (2, 32, 16, 16, 1) and batch["x"].dtype == np.float32
  assert batch["label"].shape == (2, 32)
  assert batch["x"].min() >= -1.0 and batch["x"].max() <= 1.0
  assert batch["x"].min() < -0.99 and batch["x"].max() > 0.9  # Background black, strokes white.
  assert set(np.unique(batch["label"])) <= set(range(10))


def test_pipeline_is_deterministic_and_seed_dependent(data_dir):
  make = lambda seed: _get(name="digits", data_dir=data_dir, shape=(8, 8, 1),
                                       batch_size=64, seed=seed)
  a, b, c = _take(make(3), 3), _take(make(3), 3), _take(make(4), 3)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x["x"], y["x"])
  assert not np.array_equal(a[0]["x"], c[0]["x"])


def test_epochs_are_permutations_reshuffled_each_epoch(data_dir):
  # 1797 = 7 * 256 + 5: two epochs in 14 batches, each example once per epoch.
  it = _get(name="digits", data_dir=data_dir, shape=(8, 8, 1), batch_size=1797, seed=0)
  first, second = next(it), next(it)
  assert np.bincount(first["label"][0]).tolist() == np.bincount(second["label"][0]).tolist()
  assert not np.array_equal(first["label"], second["label"])


@pytest.mark.parametrize("start_step", [1, 7, 30])  # 30 steps * 2 * 32 = 1920 examples: past an epoch.
def test_resume_position_continues_the_stream_exactly(data_dir, start_step):
  kwargs = dict(name="digits", data_dir=data_dir, shape=(8, 8, 1), batch_size=32, num_stacked=2,
                seed=5)
  full = _take(_get(**kwargs), start_step + 3)
  resumed = _take(_get(start_step=start_step, **kwargs), 3)
  for x, y in zip(full[start_step:], resumed):
    np.testing.assert_array_equal(x["x"], y["x"])
    np.testing.assert_array_equal(x["label"], y["label"])


@pytest.mark.parametrize("start_step", [0, 3])
def test_processes_read_their_slices_of_the_same_global_batches(data_dir, start_step):
  # Two processes of 6 examples each see exactly the global batches of one process of 12, whatever the step.
  kwargs = dict(name="digits", data_dir=data_dir, shape=(8, 8, 1), num_stacked=2, seed=3, start_step=start_step)
  whole = _take(_get(batch_size=12, **kwargs), 2)
  shares = [_take(_get(batch_size=6, process_index=i, process_count=2, **kwargs), 2) for i in range(2)]
  for step in range(2):
    for key in ("x", "label"):
      np.testing.assert_array_equal(np.concatenate([s[step][key] for s in shares], axis=1), whole[step][key])


@pytest.mark.parametrize("start_step", [0, 30])
def test_decoded_samples_kept_in_memory_give_the_batches_of_the_uncached_stream(data_dir, start_step):
  # Digits at 8x8 take 0.44 MiB decoded: kept with the default cache_mb, decoded per batch with cache_mb 0.
  # 45 steps of 2 x 32 cross the epoch boundary at 1797 examples; two processes slice the same batches.
  kwargs = dict(name="digits", data_dir=data_dir, shape=(8, 8, 1), num_stacked=2, seed=4, start_step=start_step)
  uncached = _take(_get(batch_size=32, cache_mb=0, **kwargs), 45)
  cached = _take(_get(batch_size=32, **kwargs), 45)
  shares = [_take(_get(batch_size=16, process_index=i, process_count=2, **kwargs), 45)
            for i in range(2)]
  for step in range(45):
    for key in ("x", "label"):
      np.testing.assert_array_equal(cached[step][key], uncached[step][key])
      np.testing.assert_array_equal(np.concatenate([s[step][key] for s in shares], axis=1), uncached[step][key])


@pytest.mark.parametrize("name,shape,resolution,channels", [
    ("mnist", (28, 28, 1), 28, 1), ("mnist", (28, 28, 1), 32, 3), ("cifar10", (32, 32, 3), 32, 3),
    ("cifar10", (32, 32, 3), 16, 1)])
def test_standard_datasets_through_the_same_pipeline(name, shape, resolution, channels):
  del shape
  with tfds.testing.mock_data(num_examples=20):
    batch = next(_get(name=name, shape=(resolution, resolution, channels), batch_size=8,
                                  num_stacked=1, seed=0))
  assert batch["x"].shape == (1, 8, resolution, resolution, channels)
  assert -1.0 <= batch["x"].min() and batch["x"].max() <= 1.0 and batch["x"].std() > 0.1
  assert batch["label"].shape == (1, 8)


def test_celeba_is_centre_cropped_to_square():
  with tfds.testing.mock_data(num_examples=4):
    batch = next(_get(name="celeb_a", shape=(64, 64, 3), labels=False, batch_size=2))
  assert batch["x"].shape == (1, 2, 64, 64, 3) and "label" not in batch


def test_unprepared_dataset_without_download_is_a_one_line_user_error(tmp_path):
  with pytest.raises(UserError, match=r"dataset 'mnist' is not prepared .*data_dir") as info:
    _get(name="mnist", data_dir=str(tmp_path), download=False, shape=(28, 28, 1), batch_size=8)
  assert "\n" not in str(info.value)


def test_without_network_a_missing_dataset_fails_at_once_and_leaves_nothing(tmp_path, monkeypatch):
  # TFDS's own retries take minutes offline; one short connection attempt decides instead, before any workdir or
  # download folder is written.
  from gan_jax import train  # pylint: disable=g-import-not-at-top
  from gan_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  from conftest import REPO, tiny_config  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(pipeline, "network_reachable", lambda root=None: False)
  data_dir, workdir = tmp_path / "tfds", tmp_path / "run"
  started = time.perf_counter()
  with pytest.raises(UserError, match=r"dataset 'mnist' is not prepared in .* cannot reach the network to download "
                                      r"it: .*prepare_dataset.py --name=mnist") as info:
    train.train_and_evaluate(tiny_config(os.path.join(REPO, "experiments", "dcgan_mnist.py"), str(data_dir)),
                             str(workdir))
  assert time.perf_counter() - started < 30 and "\n" not in str(info.value)
  assert not workdir.exists()
  assert not data_dir.exists() or not [p for p in data_dir.rglob("*") if p.is_file()]


def test_a_failed_preparation_removes_what_it_left(tmp_path, monkeypatch):
  from gan_jax.data import pipeline  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(pipeline, "network_reachable", lambda root=None: True)

  def partial_then_fail(self, *args, **kwargs):  # As a download cut off by the network, after a dependency was
    # prepared (edges2fashion prepares fashion_mnist first): the dependency is kept, the partial files are not.
    os.makedirs(os.path.join(os.path.dirname(self.data_dir), "incomplete.AB12CD_3.0.1"))
    os.makedirs(tmp_path / "downloads" / "extracted")
    (tmp_path / "downloads" / "extracted" / "train-images.gz.tmp").write_bytes(b"partial")
    os.makedirs(tmp_path / "fashion_mnist" / "3.0.1")
    (tmp_path / "fashion_mnist" / "3.0.1" / "dataset_info.json").write_text("{}")
    raise ConnectionError("connection reset by peer")

  monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", partial_then_fail)
  (tmp_path / "kept.txt").write_text("there before")
  with pytest.raises(UserError, match=r"could not be prepared \(connection reset by peer\)"):
    data.load_builder("mnist", data_dir=str(tmp_path))
  assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == [
      "fashion_mnist", "fashion_mnist/3.0.1", "fashion_mnist/3.0.1/dataset_info.json", "kept.txt"]


def test_a_dataset_being_prepared_by_another_process_is_waited_for_not_prepared_again(tmp_path, monkeypatch):
  # Another preparer (here a thread holding the lock file's flock, as another process of a multi-process launch
  # would) prepares digits; load_builder waits for it, finds the dataset prepared and does not prepare it again.
  import fcntl  # pylint: disable=g-import-not-at-top
  import threading  # pylint: disable=g-import-not-at-top
  prepared_by_load_builder = []
  real_prepare = tfds.core.DatasetBuilder.download_and_prepare
  fd = os.open(tmp_path / ".digits.lock", os.O_RDWR | os.O_CREAT)
  fcntl.flock(fd, fcntl.LOCK_EX)
  monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare",
                      lambda self, *a, **k: prepared_by_load_builder.append(self.name) or real_prepare(self, *a, **k))
  result = {}
  waiter = threading.Thread(target=lambda: result.update(builder=data.load_builder("digits", str(tmp_path))))
  waiter.start()
  waiter.join(timeout=1.0)
  assert waiter.is_alive() and not (tmp_path / "digits").exists()  # Waiting on the lock, writing nothing.
  real_prepare(tfds.builder("digits", data_dir=str(tmp_path)))  # The other preparer's work.
  os.close(fd)  # Releases its flock.
  waiter.join(timeout=60)
  assert not waiter.is_alive() and prepared_by_load_builder == []
  assert result["builder"].info.splits["train"].num_examples == 1797


def test_unknown_dataset_is_a_user_error():
  with pytest.raises(UserError, match="nosuchdataset"):
    data.load_builder("nosuchdataset")
  assert "digits" in data.names() and "mnist" in data.names()


@pytest.mark.parametrize("name,num_modes,sigma,radius", [("ring8", 8, 0.01, 1.0), ("grid25", 25, 0.05, None)])
def test_gaussian_mixture_builders(data_dir, name, num_modes, sigma, radius):
  from gan_jax.data.mixtures import MIXTURES
  builder = data.load_builder(name, data_dir)
  assert builder.info.splits["train"].num_examples == 100_000
  batch = next(_get(name=name, data_dir=data_dir, feature="points", shape=(2,), batch_size=20_000))
  points, labels = batch["x"][0], batch["label"][0]
  modes, expected_sigma = MIXTURES[name]
  assert expected_sigma == sigma and modes.shape == (num_modes, 2)
  offsets = points - modes[labels]
  np.testing.assert_allclose(offsets.std(axis=0), [sigma, sigma], rtol=0.03)
  np.testing.assert_allclose(np.bincount(labels, minlength=num_modes) / len(labels), 1 / num_modes, atol=0.01)
  if radius:
    np.testing.assert_allclose(np.linalg.norm(modes, axis=1), radius)
  else:
    assert sorted(set(modes[:, 0])) == [-4, -2, 0, 2, 4]


def test_points_feature_must_match_the_model_shape(data_dir):
  with pytest.raises(UserError, match=r"feature 'points' has shape \(2,\) but the model makes \(3,\)"):
    _get(name="ring8", data_dir=data_dir, feature="points", shape=(3,), batch_size=8)
  with pytest.raises(UserError, match="feature 'image' holds images but the model makes samples of shape"):
    _get(name="digits", data_dir=data_dir, shape=(2,), batch_size=8)


def test_paired_roles_come_from_the_same_examples(data_dir):
  # Paired data (pix2pix's input and target): two roles of one Source are features of one example. Here the
  # same digit at 8x8 and at 16x16; each row of a batch must be one example of the split at both sizes.
  source = data.Source(name="digits", data_dir=data_dir, features=(
      ("small", "image", (8, 8, 1)), ("large", "image", (16, 16, 1)), ("label", "label", ())))
  split = data.load_examples(source)
  batch = next(data.get_dataset(source, batch_size=64, seed=2))
  assert batch["small"].shape == (1, 64, 8, 8, 1) and batch["large"].shape == (1, 64, 16, 16, 1)
  index = {row.tobytes(): i for i, row in enumerate(split["large"])}
  rows = [index[row.tobytes()] for row in batch["large"][0]]
  np.testing.assert_array_equal(batch["small"][0], split["small"][rows])
  np.testing.assert_array_equal(batch["label"][0], split["label"][rows])


def test_unpaired_sources_are_independent_streams_with_the_same_guarantees(data_dir):
  # Unpaired data (CycleGAN's domains A and B): one Source per stream, each shuffled from its own seed; every
  # stream is the one it would be alone, resumes at the same position and splits over processes the same way.
  a = data.Source(name="digits", split="train[:50%]", data_dir=data_dir, features=(("a", "image", (8, 8, 1)),))
  b = data.Source(name="digits", split="train[50%:]", data_dir=data_dir, features=(("b", "image", (8, 8, 1)),))
  both = _take(data.get_dataset((a, b), batch_size=16, num_stacked=2, seed=7), 60)  # Past both epochs' ends.
  alone_a = _take(data.get_dataset(a, batch_size=16, num_stacked=2, seed=data.stream_seed(7, 0)), 60)
  alone_b = _take(data.get_dataset(b, batch_size=16, num_stacked=2, seed=data.stream_seed(7, 1)), 60)
  for step in range(60):
    assert set(both[step]) == {"a", "b"}
    np.testing.assert_array_equal(both[step]["a"], alone_a[step]["a"])
    np.testing.assert_array_equal(both[step]["b"], alone_b[step]["b"])
  resumed = _take(data.get_dataset((a, b), batch_size=16, num_stacked=2, seed=7, start_step=40), 20)
  shares = [_take(data.get_dataset((a, b), batch_size=8, num_stacked=2, seed=7, process_index=i, process_count=2), 3)
            for i in range(2)]
  for step in range(20):
    for role in ("a", "b"):
      np.testing.assert_array_equal(resumed[step][role], both[40 + step][role])
  for step in range(3):
    for role in ("a", "b"):
      np.testing.assert_array_equal(np.concatenate([s[step][role] for s in shares], axis=1), both[step][role])
  assert not np.array_equal(both[0]["a"], both[0]["b"])
