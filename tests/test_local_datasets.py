"""Datasets prepared without network access: mnist and fashion_mnist from local copies of their original files
(gan_jax/data/local_copy.py, scripts/prepare_dataset.py), and edges2fashion derived from fashion_mnist.

Tests that need the original files skip where the directory of local copies (../shared/datasets next to the
repository) is absent; the others build what they need in temporary directories.
"""
import gzip
import hashlib
import os
import shutil
import struct
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds
from scipy import ndimage
from skimage import measure
from tensorflow_datasets.core import hashing

from gan_jax.data import edges2fashion, local_copy
from gan_jax.errors import UserError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOCAL = os.path.normpath(os.path.join(REPO, "..", "shared", "datasets"))
needs_local_copies = pytest.mark.skipif(not os.path.isdir(LOCAL), reason=f"no local copies of the MNIST and "
                                        f"Fashion-MNIST original files in {LOCAL}")
FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
         "t10k-labels-idx1-ubyte.gz")


def _read_idx(path):
  """An idx file (LeCun et al.'s format: big-endian magic 2051 + [count, rows, cols] for images, 2049 + [count] for
  labels), gzipped, as uint8 [count, rows, cols] or [count]."""
  with gzip.open(path, "rb") as f:
    magic, count = struct.unpack(">II", f.read(8))
    if magic == 2051:
      rows, cols = struct.unpack(">II", f.read(8))
      return np.frombuffer(f.read(), np.uint8).reshape(count, rows, cols)
    assert magic == 2049, magic
    return np.frombuffer(f.read(), np.uint8).reshape(count)


# The module's fixtures prepare MNIST and Fashion-MNIST (about a minute): one xdist worker runs all its tests,
# so they are prepared once, not once per worker.
pytestmark = pytest.mark.xdist_group("local_datasets")

def _prepare_cli(*args):
  return subprocess.run([sys.executable, os.path.join(REPO, "scripts", "prepare_dataset.py"), *args], cwd=REPO,
                        capture_output=True, text=True, timeout=600,
                        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
  """A data_dir with mnist prepared by the command line and fashion_mnist by local_copy.prepare, from the local
  copies: {"data_dir", "cli" (the command's CompletedProcess), "seconds" {name: preparation time}}."""
  if not os.path.isdir(LOCAL):
    pytest.skip(f"no local copies of the MNIST and Fashion-MNIST original files in {LOCAL}")
  data_dir = str(tmp_path_factory.mktemp("local_datasets"))
  start = time.time()
  cli = _prepare_cli("--name=mnist", f"--from={os.path.join(LOCAL, 'mnist')}", f"--data_dir={data_dir}")
  seconds = {"mnist": time.time() - start}
  start = time.time()
  local_copy.prepare("fashion_mnist", os.path.join(LOCAL, "fashion_mnist"), data_dir)
  seconds["fashion_mnist"] = time.time() - start
  print(f"preparation seconds: {seconds}")
  return {"data_dir": data_dir, "cli": cli, "seconds": seconds}


# Task 1: the original files, checked, prepared by TFDS.

@needs_local_copies
@pytest.mark.parametrize("name", local_copy.NAMES)
def test_verify_checks_each_file_against_tfds_registered_checksums(name):
  registered = {info.filename: info for info in tfds.builder(name).url_infos.values()}
  assert sorted(registered) == sorted(FILES)
  accepted = local_copy.verify(name, os.path.join(LOCAL, name))
  for filename, info in registered.items():
    path = os.path.join(LOCAL, name, filename)
    with open(path, "rb") as f:
      matches = hashlib.sha256(f.read()).hexdigest() == info.checksum
    # Byte-identical to what TFDS registered, or a re-compressed copy holding the original's bytes.
    assert accepted[filename] == (local_copy.REGISTERED if matches else local_copy.CONTENTS), filename
    if not matches:
      with gzip.open(path, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == local_copy.CONTENTS_SHA256[name][filename]


@needs_local_copies
def test_cli_prepares_mnist(prepared):
  cli = prepared["cli"]
  assert cli.returncode == 0, cli.stderr
  assert f"mnist is prepared in {os.path.join(prepared['data_dir'], 'mnist', '3.0.1')}" in cli.stdout
  assert "(train 60,000, test 10,000 examples)" in cli.stdout
  assert sorted(os.listdir(prepared["data_dir"])) == ["fashion_mnist", "mnist"]  # No downloads/ or staging left.


@needs_local_copies
@pytest.mark.parametrize("name", local_copy.NAMES)
def test_prepared_dataset_is_the_idx_files_in_tfds_order(prepared, name):
  builder = tfds.builder(name, data_dir=prepared["data_dir"])
  registered = tfds.builder(name).url_infos.values()
  assert builder.info.download_size == sum(int(info.size) for info in registered)   # As recorded by a download.
  for split, prefix, count in (("train", "train", 60_000), ("test", "t10k", 10_000)):
    images = _read_idx(os.path.join(LOCAL, name, f"{prefix}-images-idx3-ubyte.gz"))     # [count, 28, 28]
    labels = _read_idx(os.path.join(LOCAL, name, f"{prefix}-labels-idx1-ubyte.gz"))
    examples = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1, shuffle_files=False))
    assert builder.info.splits[split].num_examples == count == len(images) == len(examples["label"])
    # mnist.py keys example i of the idx files by i; TFDS's writer stores examples sorted by the key's hash salted
    # with the split name: the order of every TFDS preparation of these files, a download's included.
    order = sorted(range(count), key=hashing.Hasher(split).hash_key)
    np.testing.assert_array_equal(examples["image"][..., 0], images[order])
    np.testing.assert_array_equal(examples["label"], labels[order])


@needs_local_copies
def test_refuses_missing_and_corrupted_files_by_name(tmp_path):
  data_dir = str(tmp_path / "data")
  missing, corrupted = tmp_path / "missing", tmp_path / "corrupted"
  for directory in (missing, corrupted):
    directory.mkdir()
    for filename in FILES[:-1]:
      os.symlink(os.path.join(LOCAL, "mnist", filename), directory / filename)
  data = bytearray((open(os.path.join(LOCAL, "mnist", FILES[-1]), "rb").read()))
  data[len(data) // 2] ^= 0xFF                                                            # Flip one byte.
  (corrupted / FILES[-1]).write_bytes(bytes(data))
  with pytest.raises(UserError, match=f"in {missing} .*; missing: t10k-labels-idx1-ubyte.gz$"):
    local_copy.prepare("mnist", str(missing), data_dir)
  with pytest.raises(UserError, match=r"wrong checksum: t10k-labels-idx1-ubyte.gz \(sha256 [0-9a-f]{12}\.\.\., "
                                      r"TFDS registered f7ae60f92e00\.\.\.\)$") as error:
    local_copy.prepare("mnist", str(corrupted), data_dir)
  assert str(error.value).startswith("expected " + ", ".join(sorted(FILES)))
  assert not os.path.exists(data_dir)  # Checked before anything is written.


@needs_local_copies
def test_registered_only_refuses_recompressed_copies():
  recompressed = [f for f in sorted(FILES) if local_copy.verify("mnist", os.path.join(LOCAL, "mnist"))[f] ==
                  local_copy.CONTENTS]
  if not recompressed:
    pytest.skip("the local mnist copy is byte-identical to TFDS's registered files")
  with pytest.raises(UserError, match=f"refused with registered_only: {', '.join(recompressed)}$"):
    local_copy.verify("mnist", os.path.join(LOCAL, "mnist"), registered_only=True)


@needs_local_copies
def test_tfds_checks_manual_files_itself_and_a_failure_leaves_nothing(tmp_path, monkeypatch):
  # Claim every file matches TFDS's registered sha256: TFDS hashes the files of its manual directory itself and
  # refuses the re-compressed ones; the failure leaves neither a dataset nor staging files.
  accepted = local_copy.verify("mnist", os.path.join(LOCAL, "mnist"))
  if local_copy.CONTENTS not in accepted.values():
    pytest.skip("the local mnist copy is byte-identical to TFDS's registered files")
  monkeypatch.setattr(local_copy, "verify", lambda *_: {f: local_copy.REGISTERED for f in accepted})
  staging = tmp_path / "tmp"
  staging.mkdir()
  monkeypatch.setattr(local_copy.tempfile, "tempdir", str(staging))
  data_dir = tmp_path / "data"
  data_dir.mkdir()
  with pytest.raises(UserError, match=r"could not prepare mnist from .*: Artifact .* has wrong checksum"):
    local_copy.prepare("mnist", os.path.join(LOCAL, "mnist"), str(data_dir))
  assert os.listdir(data_dir) == []
  assert not [d for d in os.listdir(staging) if "local_copy" in d]  # (TFDS leaves empty tmp*tfds directories.)


def test_cli_bad_from_is_one_error_line(tmp_path):
  result = _prepare_cli("--name=fashion_mnist", f"--from={tmp_path}", f"--data_dir={tmp_path / 'data'}")
  lines = result.stderr.strip().splitlines()
  assert result.returncode == 2 and len(lines) == 1, result.stderr
  assert lines[0] == (f"gan_jax: error: expected {', '.join(sorted(FILES))} in {tmp_path} (the original files of "
                      f"fashion_mnist); missing: {', '.join(sorted(FILES))}")
  assert not os.path.exists(tmp_path / "data")
  with pytest.raises(UserError, match=f"directory {tmp_path / 'absent'} does not exist; it should hold the original "
                                      f"files of mnist: {', '.join(sorted(FILES))}$"):
    local_copy.verify("mnist", str(tmp_path / "absent"))


# Task 2: edges2fashion.

def _as_text(edges):
  return ["".join("#" if v else "." for v in row) for row in edges]


def _two_by_two_blocks(edges):
  """Boolean [h - 1, w - 1]: where a 2x2 block of edge pixels starts (edges: bool [h, w])."""
  return edges[:-1, :-1] & edges[1:, :-1] & edges[:-1, 1:] & edges[1:, 1:]


def test_edge_map_of_a_blank_image_is_empty():
  edges = edges2fashion.edge_map(np.zeros((28, 28, 1), np.uint8))
  assert edges.shape == (32, 32, 1) and edges.dtype == np.uint8 and (edges == 255).all()


def test_edge_map_of_a_filled_rectangle_is_its_outline():
  image = np.zeros((28, 28), np.uint8)
  image[8:20, 6:22] = 200                                   # Rows 10..21, columns 8..23 once padded to 32x32.
  edges = edges2fashion.edge_map(image)[..., 0] == 0
  rectangle = np.zeros((32, 32), bool)
  rectangle[10:22, 8:24] = True
  boundary = rectangle & ~ndimage.binary_erosion(rectangle)  # Its 52 outermost pixels.
  near = lambda mask: ndimage.binary_dilation(mask, np.ones((3, 3), bool))
  # Canny puts a step's edge on either side of it (a tie): every edge pixel is within one pixel of the boundary,
  # every boundary pixel within one pixel of an edge pixel, and the outline is one closed, thin curve.
  assert not (edges & ~near(boundary)).any() and not (boundary & ~near(edges)).any()
  assert measure.label(edges, connectivity=2).max() == 1 and measure.label(~edges, connectivity=1).max() == 2
  assert not _two_by_two_blocks(edges).any()
  assert edges.sum() == 48, "\n".join(_as_text(edges))     # The corners are cut diagonally.


def test_edge_map_of_an_object_touching_the_frame_stays_inside_it():
  image = np.zeros((28, 28), np.uint8)
  image[8:20, :] = 200                                      # Touches the left and right of the 28x28 frame.
  edges = edges2fashion.edge_map(image)[..., 0] == 0
  assert not edges[:, :2].any() and not edges[:, 30:].any() and edges[:, 2].sum() >= 10 and edges[:, 29].sum() >= 10
  assert measure.label(edges, connectivity=2).max() == 1


@pytest.fixture(scope="module")
def edges2fashion_examples(prepared):
  """The first 300 examples of each split of edges2fashion, prepared from the fashion_mnist of `prepared`
  (TFDS's max_examples_per_split), with the fashion_mnist examples they come from."""
  builder = tfds.builder("edges2fashion", data_dir=prepared["data_dir"], download_fashion_mnist=False)
  start = time.time()
  builder.download_and_prepare(download_config=tfds.download.DownloadConfig(max_examples_per_split=300))
  print(f"edges2fashion, 300 examples per split: {time.time() - start:.1f} s")
  fashion = tfds.builder("fashion_mnist", data_dir=prepared["data_dir"])
  return {split: (tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1, shuffle_files=False)),
                  tfds.as_numpy(fashion.as_dataset(split=split, batch_size=-1, shuffle_files=False)))
          for split in ("train", "test")}


@needs_local_copies
@pytest.mark.parametrize("split", ["train", "test"])
def test_edges2fashion_examples_are_the_shoes_and_bags_with_their_edges(edges2fashion_examples, split):
  examples, fashion = edges2fashion_examples[split]
  kept = np.flatnonzero(np.isin(fashion["label"], edges2fashion.KEPT_LABELS))[:300]   # fashion_mnist's order.
  assert len(examples["label"]) == 300
  for feature in ("edges", "image"):
    assert examples[feature].shape == (300, 32, 32, 1) and examples[feature].dtype == np.uint8
  np.testing.assert_array_equal(examples["fashion_mnist_label"], fashion["label"][kept])
  np.testing.assert_array_equal(examples["label"], [edges2fashion.KEPT_LABELS.index(k) for k in fashion["label"][kept]])
  assert set(np.unique(examples["label"])) == {0, 1, 2, 3}
  np.testing.assert_array_equal(examples["image"][:, 2:30, 2:30], fashion["image"][kept])
  ring = np.ones((32, 32), bool)
  ring[2:30, 2:30] = False
  assert (examples["image"][:, ring] == 0).all() and (examples["edges"][:, ring] == 255).all()  # Background.
  # Deterministic: computing the edge maps again gives the stored ones, bit for bit.
  recomputed = np.stack([edges2fashion.edge_map(image) for image in fashion["image"][kept]])
  np.testing.assert_array_equal(examples["edges"], recomputed)
  assert set(np.unique(examples["edges"])) == {0, 255}
  for edges in examples["edges"][..., 0] == 0:
    components = np.bincount(measure.label(edges, connectivity=2).ravel())[1:]
    assert components.min() >= edges2fashion.MIN_EDGE_PIXELS and edges.sum() >= 20


@needs_local_copies
def test_edges_are_thin_except_at_rare_junctions(prepared):
  # Over all 4,000 test images: a 2x2 block of edge pixels remains only where thinning cannot remove any of its
  # pixels without cutting a line, a junction with a branch at every pixel of the block; in at most 0.1% of images.
  fashion = tfds.as_numpy(tfds.builder("fashion_mnist", data_dir=prepared["data_dir"]).as_dataset(
      split="test", batch_size=-1, shuffle_files=False))
  images = fashion["image"][np.isin(fashion["label"], edges2fashion.KEPT_LABELS)]
  assert len(images) == 4000
  with_blocks = 0
  for image in images:
    edges = edges2fashion.edge_map(image)[..., 0] == 0
    blocks = np.argwhere(_two_by_two_blocks(edges))
    with_blocks += len(blocks) > 0
    for r, c in blocks:
      window = edges[r - 1:r + 3, c - 1:c + 3].copy()        # The block and its 8-neighbourhood.
      window[1:3, 1:3] = False
      for dr, dc in ((0, 0), (0, 1), (1, 0), (1, 1)):         # Each block pixel has a neighbour outside the block.
        assert window[dr:dr + 3, dc:dc + 3].any()
  assert with_blocks <= 4, with_blocks                      # 1 with scikit-image 0.26.0.


def test_edges2fashion_without_fashion_mnist_says_how_to_prepare_it(tmp_path):
  builder = tfds.builder("edges2fashion", data_dir=str(tmp_path), download_fashion_mnist=False)
  with pytest.raises(UserError, match="scripts/prepare_dataset.py --name=fashion_mnist --from=DIR"):
    builder.download_and_prepare()
  assert not tfds.builder("edges2fashion", data_dir=str(tmp_path)).is_prepared()
  assert not any("incomplete" in d for _, dirs, _ in os.walk(tmp_path) for d in dirs)
