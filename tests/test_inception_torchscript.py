"""The TorchScript FID Inception of StyleGAN2-ADA and clean-fid read without torch (gan_jax/metrics/inception.py), and
the three input modes (pytorch-fid's, StyleGAN2-ADA's "legacy_tensorflow", clean-fid's "clean") against their
references. The real weight file and torch are optional: the tests that need them skip without them."""
import os
import zipfile

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from gan_jax.errors import UserError
from gan_jax.metrics import inception

from conftest import REPO

TORCHSCRIPT = os.path.join(REPO, "..", "shared", "weights", "inception-2015-12-05-fid-torchscript.pt")
needs_weights = pytest.mark.skipif(not os.path.isfile(TORCHSCRIPT), reason=f"no TorchScript Inception at {TORCHSCRIPT}")


def _torch():
  return pytest.importorskip("torch", reason="torch (optional: pip install torch==2.13.0) runs the reference")


def _archive(path, data_pkl):
  """A TorchScript-shaped zip (data.pkl, constants.pkl, code/): what the reader takes for a TorchScript file."""
  with zipfile.ZipFile(path, "w") as archive:
    archive.writestr("net/data.pkl", data_pkl)
    archive.writestr("net/constants.pkl", b"\x80\x02).")
    archive.writestr("net/code/__torch__/wrap_net.py", "class WrapNet(Module): ...")
    archive.writestr("net/version", "3\n")


def _module_pickle(value):
  """data.pkl of a TorchScript module `__torch__.wrap_net.WrapNet` (allowed, as an inert stand-in) whose one
  attribute, 'net', is what the pickle opcodes `value` build."""
  return b"\x80\x02c__torch__.wrap_net\nWrapNet\n)\x81}X\x03\x00\x00\x00net" + value + b"sb."


def test_reader_refuses_code_and_files_of_neither_format(tmp_path):
  marker, path = tmp_path / "pwned", tmp_path / "evil.pt"
  command = f"touch {marker}".encode()
  # net = os.system(command): GLOBAL os.system, BINUNICODE command, TUPLE1, REDUCE. Refused before it runs.
  _archive(path, _module_pickle(b"cos\nsystem\nX" + len(command).to_bytes(4, "little") + command + b"\x85R"))
  assert inception.file_format(str(path)) == "torchscript"
  with pytest.raises(UserError, match="refusing to load os.system"):
    inception.load_weights(str(path))
  assert not marker.exists()
  _archive(path, _module_pickle(b"K\x07"))   # net = 7: it unpickles, but holds no FID Inception.
  with pytest.raises(UserError, match="no module holds `layers`"):
    inception.load_weights(str(path))
  text = tmp_path / "notes.pt"
  text.write_text("neither a state dict nor TorchScript")
  with pytest.raises(UserError, match="neither a torch.save file .* nor a TorchScript archive"):
    inception.load_weights(str(text))
  with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
    archive.writestr("readme.txt", "a zip without data.pkl")
  with pytest.raises(UserError, match="no data.pkl"):
    inception.load_weights(str(tmp_path / "other.zip"))


def test_spec_names_the_input_mode(tmp_path):
  weights = tmp_path / "weights.pt"
  weights.write_bytes(b"")
  assert inception.parse_spec(str(weights)) == (str(weights), None)         # The file's own mode.
  assert inception.parse_spec(f"{weights}:clean") == (str(weights), "clean")
  assert inception.parse_spec(f"{weights}:pytorch_fid") == (str(weights), "pytorch_fid")
  with pytest.raises(UserError, match="unknown Inception input mode 'bicubic'.*allowed: pytorch_fid, "
                                      "legacy_tensorflow, clean"):
    inception.parse_spec(f"{weights}:bicubic")
  assert inception.parse_spec("/no/such/file:clean") == ("/no/such/file", "clean")  # check() reports it missing.


def test_conv_geometry_survives_a_cached_trace():
  # CI ran this module after another test had traced init_params: jax reused that trace, no module ran, and the
  # geometry checked against a real file came back empty.
  jax.eval_shape(inception.init_params)
  geometry = inception._conv_geometry()
  assert len(geometry) == 94 and geometry["Conv2d_1a_3x3"] == (2, (0, 0))
  assert inception._conv_geometry() == geometry


@needs_weights
def test_real_torchscript_file_maps_onto_every_parameter():
  module = inception.read_torchscript(TORCHSCRIPT)
  # WrapNet.net is an InceptionV3 whose `layers` hold 94 Conv2dLayers (weight, beta, mean, var); no classifier.
  assert module.classes[""] == "__torch__.wrap_net.WrapNet"
  assert module.classes["net"] == "__torch__.inceptionv3.InceptionV3"
  expected = {f"net.{conv}.{leaf}" for conv in inception.torchscript_conv_names()
              for leaf in ("weight", "beta", "mean", "var")}
  assert len(expected) == 376 and set(module.tensors) == expected          # Every tensor used, none missing.
  assert module.attributes["net.layers.mixed_4.tower.conv_1.padding"] == [0, 3]   # Mixed_6b.branch7x7_2: 1x7.
  params = inception.load_weights(TORCHSCRIPT)
  want = {k: v.shape for k, v in flax.traverse_util.flatten_dict(jax.eval_shape(inception.init_params)).items()
          if k[0] != "fc"}
  got = {k: np.asarray(v) for k, v in flax.traverse_util.flatten_dict(params).items()}
  assert {k: v.shape for k, v in got.items()} == want                        # 94 x (kernel + 4 BatchNorm) = 470.
  assert len(got) == 470 and all(np.isfinite(v).all() for v in got.values())
  np.testing.assert_array_equal(params["Mixed_5b"]["branch5x5_2"]["conv"]["kernel"],
                                module.tensors["net.layers.mixed.tower.conv_1.weight"].transpose(2, 3, 1, 0))
  np.testing.assert_array_equal(params["Mixed_7c"]["branch_pool"]["bn"]["running_var"],
                                module.tensors["net.layers.mixed_10.tower_2_conv.var"])
  assert all((v == 1.0).all() for k, v in got.items() if k[-2:] == ("bn", "weight"))  # TF's BatchNorm: no scale.
  with pytest.raises(UserError, match="no classifier"):
    inception.logits(params, np.zeros((1, 8, 8, 3), np.uint8))
  with open(os.path.join(os.path.dirname(TORCHSCRIPT), "SHA256SUMS")) as f:
    digest = f.read().split()[0][:12]
  extractor = inception.Extractor(TORCHSCRIPT)
  assert extractor.name == f"inception-{digest}-legacy_tensorflow" and not extractor.has_logits
  assert inception.Extractor(f"{TORCHSCRIPT}:clean").name == f"inception-{digest}-clean"


def _reference_bilinear(x, out_size, tf1):
  """Hand-written bilinear resize along axis 0 of a float64 array: torch's F.interpolate(align_corners=False)
  (source (j + 0.5) in / out - 0.5, clamped at 0) or TF 1's resize_bilinear (source j in / out)."""
  in_size, out = x.shape[0], []
  for j in range(out_size):
    source = j * in_size / out_size if tf1 else max((j + 0.5) * in_size / out_size - 0.5, 0.0)
    low = min(int(np.floor(source)), in_size - 1)
    high, fraction = min(low + 1, in_size - 1), source - low
    out.append((1 - fraction) * x[low] + fraction * x[high])
  return np.stack(out)


def _pil_bicubic(images, size):
  """clean-fid's resize: each channel as a float32 PIL image, Image.resize(BICUBIC); size (height, width)."""
  return np.stack([np.stack([np.asarray(Image.fromarray(image[:, :, c].astype(np.float32), mode="F").resize(
      (size[1], size[0]), Image.BICUBIC)) for c in range(image.shape[-1])], axis=-1) for image in images])


def test_resize_methods_match_their_references():
  images = np.random.default_rng(0).integers(0, 256, (2, 7, 5, 3)).astype(np.float32)   # Tiny, non-square.
  for size in ((4, 9), (13, 3)):                                 # Down one axis and up the other, both ways.
    ours = inception.resize(jnp.asarray(images), size, "bicubic_pil")
    np.testing.assert_allclose(ours, _pil_bicubic(images, size), atol=1e-3)
    for method, tf1 in (("bilinear", False), ("bilinear_tf1", True)):
      by_height = [_reference_bilinear(image, size[0], tf1) for image in images.astype(np.float64)]
      reference = np.stack([_reference_bilinear(x.transpose(1, 0, 2), size[1], tf1).transpose(1, 0, 2)
                            for x in by_height])
      np.testing.assert_allclose(inception.resize(jnp.asarray(images), size, method), reference, atol=1e-3)


def _pixels(x, mode):
  """The network's input back on the [0, 255] scale of the resized image."""
  return (np.asarray(x) + 1) * 127.5 if mode == "pytorch_fid" else np.asarray(x) * 128 + 128


def test_input_modes_differ_on_resized_images_and_agree_at_299():
  rng = np.random.default_rng(1)
  small = rng.integers(0, 256, (1, 40, 30, 3), np.uint8)
  resized = {mode: _pixels(inception.preprocess(small, mode), mode) for mode in inception.MODES}
  assert all(x.shape == (1, 299, 299, 3) for x in resized.values())
  for a, b in (("pytorch_fid", "legacy_tensorflow"), ("pytorch_fid", "clean"), ("legacy_tensorflow", "clean")):
    assert np.abs(resized[a] - resized[b]).mean() > 5.0, (a, b)      # Pixel levels, of 255.
  np.testing.assert_allclose(resized["clean"], np.clip(_pil_bicubic(small, (299, 299)), 0, 255), atol=1e-3)
  full = rng.integers(0, 256, (1, 299, 299, 1), np.uint8)             # Gray: repeated to RGB.
  for mode in inception.MODES:                                       # No resizing at 299: only the scaling differs.
    np.testing.assert_allclose(_pixels(inception.preprocess(full, mode), mode), np.repeat(full, 3, -1), atol=1e-4)
  np.testing.assert_array_equal(inception.preprocess(full, "clean"), (np.repeat(full, 3, -1) - 128.0) / 128.0)


def test_resizes_match_torch():
  torch = _torch()
  functional = torch.nn.functional
  images = np.random.default_rng(2).integers(0, 256, (2, 40, 30, 3)).astype(np.float32)
  x = torch.from_numpy(images).permute(0, 3, 1, 2)
  bilinear = functional.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
  # StyleGAN2-ADA's inception-2015-12-05.pt forward: an identity theta shifted by 1/size - 1/299, then grid_sample.
  theta = torch.eye(2, 3)
  theta[0, 2] += 1 / 30 - 1 / 299
  theta[1, 2] += 1 / 40 - 1 / 299
  grid = functional.affine_grid(theta[None].repeat(2, 1, 1), [2, 3, 299, 299], False)
  tf1 = functional.grid_sample(x, grid, "bilinear", "border", False)
  for method, reference, atol in (("bilinear", bilinear, 1e-3), ("bilinear_tf1", tf1, 0.02)):  # float32 grid.
    ours = inception.resize(jnp.asarray(images), (299, 299), method)
    np.testing.assert_allclose(ours, reference.permute(0, 2, 3, 1).numpy(), atol=atol, err_msg=method)


def _smooth_image(size=299):
  """A smooth RGB image: a slanted sinusoid, a horizontal and a vertical ramp."""
  y, x = np.mgrid[0:size, 0:size] / (size - 1)
  channels = (127.5 + 127.5 * np.sin(2 * np.pi * (1.5 * x + 0.5 * y)), 255 * x, 255 * (1 - y) * (0.5 + 0.5 * x))
  return np.stack(channels, axis=-1).round().astype(np.uint8)


@needs_weights
def test_torchscript_features_match_torch():
  torch = _torch()
  images = np.stack([np.random.default_rng(3).integers(0, 256, (299, 299, 3), np.uint8), _smooth_image()])
  network = torch.jit.load(TORCHSCRIPT).eval()   # Its forward: 3-channel input, layers, reshape to [-1, 2048].
  with torch.no_grad():
    reference = network((torch.from_numpy(images).permute(0, 3, 1, 2).float() - 128) / 128).numpy()
  ours = inception.features(inception.load_weights(TORCHSCRIPT), images, mode="legacy_tensorflow")
  assert ours.shape == reference.shape == (2, 2048)
  assert np.abs(ours - reference).max() / np.abs(reference).max() < 1e-4
  assert np.abs(reference[0] - reference[1]).max() > 0.1 * np.abs(reference).max()   # The images do matter.
