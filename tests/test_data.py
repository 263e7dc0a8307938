"""The data entry point: the offline `digits` builder, the TFDS pipeline (mocked mnist/cifar10), exact resume."""
import numpy as np
import pytest
import tensorflow_datasets as tfds

from gan_jax import data
from gan_jax.errors import UserError


def _take(iterator, n):
  return [next(iterator) for _ in range(n)]


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
  it = data.get_dataset(name="digits", data_dir=data_dir, resolution=16, channels=1, batch_size=32,
                        num_stacked=2, seed=0)
  batch = next(it)
  assert batch["image"].shape == (2, 32, 16, 16, 1) and batch["image"].dtype == np.float32
  assert batch["label"].shape == (2, 32)
  assert batch["image"].min() >= -1.0 and batch["image"].max() <= 1.0
  assert batch["image"].min() < -0.99 and batch["image"].max() > 0.9  # Background black, strokes white.
  assert set(np.unique(batch["label"])) <= set(range(10))


def test_pipeline_is_deterministic_and_seed_dependent(data_dir):
  make = lambda seed: data.get_dataset(name="digits", data_dir=data_dir, resolution=8, channels=1,
                                       batch_size=64, seed=seed)
  a, b, c = _take(make(3), 3), _take(make(3), 3), _take(make(4), 3)
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x["image"], y["image"])
  assert not np.array_equal(a[0]["image"], c[0]["image"])


def test_epochs_are_permutations_reshuffled_each_epoch(data_dir):
  # 1797 = 7 * 256 + 5: two epochs in 14 batches, each example once per epoch.
  it = data.get_dataset(name="digits", data_dir=data_dir, resolution=8, channels=1, batch_size=1797, seed=0)
  first, second = next(it), next(it)
  assert np.bincount(first["label"][0]).tolist() == np.bincount(second["label"][0]).tolist()
  assert not np.array_equal(first["label"], second["label"])


@pytest.mark.parametrize("start_step", [1, 7, 30])  # 30 steps * 2 * 32 = 1920 examples: past an epoch.
def test_resume_position_continues_the_stream_exactly(data_dir, start_step):
  kwargs = dict(name="digits", data_dir=data_dir, resolution=8, channels=1, batch_size=32, num_stacked=2,
                seed=5)
  full = _take(data.get_dataset(**kwargs), start_step + 3)
  resumed = _take(data.get_dataset(start_step=start_step, **kwargs), 3)
  for x, y in zip(full[start_step:], resumed):
    np.testing.assert_array_equal(x["image"], y["image"])
    np.testing.assert_array_equal(x["label"], y["label"])


def test_processes_read_disjoint_shares(data_dir):
  shares = [next(data.get_dataset(name="digits", data_dir=data_dir, resolution=8, channels=1, batch_size=898,
                                  seed=0, process_index=i, process_count=2)) for i in range(2)]
  flat = [s["image"].reshape(898, -1) for s in shares]
  overlap = {r.tobytes() for r in flat[0]} & {r.tobytes() for r in flat[1]}
  assert len(overlap) < 20  # The digits set has a few duplicate images; shares of examples are disjoint.


@pytest.mark.parametrize("name,shape,resolution,channels", [
    ("mnist", (28, 28, 1), 28, 1), ("mnist", (28, 28, 1), 32, 3), ("cifar10", (32, 32, 3), 32, 3),
    ("cifar10", (32, 32, 3), 16, 1)])
def test_standard_datasets_through_the_same_pipeline(name, shape, resolution, channels):
  del shape
  with tfds.testing.mock_data(num_examples=20):
    batch = next(data.get_dataset(name=name, resolution=resolution, channels=channels, batch_size=8,
                                  num_stacked=1, seed=0))
  assert batch["image"].shape == (1, 8, resolution, resolution, channels)
  assert -1.0 <= batch["image"].min() and batch["image"].max() <= 1.0 and batch["image"].std() > 0.1
  assert batch["label"].shape == (1, 8)


def test_celeba_is_centre_cropped_to_square():
  with tfds.testing.mock_data(num_examples=4):
    batch = next(data.get_dataset(name="celeb_a", resolution=64, channels=3, batch_size=2))
  assert batch["image"].shape == (1, 2, 64, 64, 3) and "label" not in batch


def test_unprepared_dataset_without_download_is_a_one_line_user_error(tmp_path):
  with pytest.raises(UserError, match=r"dataset 'mnist' is not prepared .*data_dir") as info:
    data.get_dataset(name="mnist", data_dir=str(tmp_path), download=False, resolution=28, channels=1,
                     batch_size=8)
  assert "\n" not in str(info.value)


def test_unknown_dataset_is_a_user_error():
  with pytest.raises(UserError, match="nosuchdataset"):
    data.load_builder("nosuchdataset")
  assert "digits" in data.names() and "mnist" in data.names()
