"""Checks gan_jax's Flax FID Inception against torch: pytorch-fid's InceptionV3, or a TorchScript Inception.

The reference is pytorch-fid's own InceptionV3 loaded with the same weights, or (--torchscript) torch running the
TorchScript FID Inception of StyleGAN2-ADA and clean-fid.

  pip install torch==2.13.0 && pip install --no-deps torchvision==0.28.0 pytorch-fid==0.3.0  # optional
  python scripts/check_inception_parity.py [--weights=pt_inception-2015-12-05-6726825d.pth]
  python scripts/check_inception_parity.py --torchscript=inception-2015-12-05.pt   # needs torch only

Without --weights, pytorch-fid's network gets random weights and random BatchNorm statistics (enough to check
the architecture, the input handling and the weight conversion), saved by torch.save in both the zip and the
legacy format and read back by gan_jax's torch-free reader. With --torchscript, torch.jit.load runs the file
after each input mode's reference handling (inception.MODES: pytorch-fid's F.interpolate, StyleGAN2-ADA's
affine_grid/grid_sample forward, clean-fid's PIL bicubic), on 299 x 299, upsampled and downsampled images.
Prints one JSON line per case with the largest relative difference of the 2,048 pool features (and of the
1,008 logits where the file has them), then one with the worst; exits 1 above 1e-4.
"""
import argparse
import json
import os
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _import_pytorch_fid():
  """pytorch_fid.inception. PyPI's torchvision is a CUDA build whose C ops cannot load beside the CPU torch
  wheel; only its pure-Python Inception3 is needed here, so its operator registrations are skipped."""
  import types  # pylint: disable=g-import-not-at-top
  sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))
  from pytorch_fid import inception as pf  # pylint: disable=g-import-not-at-top
  return pf


def _random_fid_inception(seed):
  import torch  # pylint: disable=g-import-not-at-top
  pf = _import_pytorch_fid()
  torch.manual_seed(seed)
  net = pf._inception_v3(num_classes=1008, aux_logits=False, weights=None, init_weights=True)
  # The blocks pytorch-fid's fid_inception_v3() puts in (it then downloads the weights; we do not).
  net.Mixed_5b, net.Mixed_5c, net.Mixed_5d = (pf.FIDInceptionA(192, 32), pf.FIDInceptionA(256, 64),
                                              pf.FIDInceptionA(288, 64))
  net.Mixed_6b, net.Mixed_6c = pf.FIDInceptionC(768, 128), pf.FIDInceptionC(768, 160)
  net.Mixed_6d, net.Mixed_6e = pf.FIDInceptionC(768, 160), pf.FIDInceptionC(768, 192)
  net.Mixed_7b, net.Mixed_7c = pf.FIDInceptionE_1(1280), pf.FIDInceptionE_2(2048)
  # BatchNorm statistics of one batch of random images (so activations neither vanish nor explode through
  # the 90-odd layers and the features depend on the input), then random affine parameters.
  batch_norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
  with torch.no_grad():
    for module in batch_norms:
      module.momentum = 1.0
    net.train()(torch.rand(8, 3, 299, 299) * 2 - 1)
    for module in batch_norms:
      module.weight.uniform_(0.5, 1.5)
      module.bias.uniform_(-0.2, 0.2)
  return net.eval()


def _torch_outputs(net, images):
  """pytorch-fid's InceptionV3 (resize_input, normalize_input) around `net`: pool features and fc logits."""
  import torch  # pylint: disable=g-import-not-at-top
  pf = _import_pytorch_fid()
  original = pf.fid_inception_v3
  pf.fid_inception_v3 = lambda: net
  try:
    model = pf.InceptionV3([pf.InceptionV3.BLOCK_INDEX_BY_DIM[2048]], resize_input=True,
                           normalize_input=True, use_fid_inception=True).eval()
  finally:
    pf.fid_inception_v3 = original
  x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0   # pytorch-fid's ToTensor: [0, 1]
  with torch.no_grad():
    pool = model(x)[0][:, :, 0, 0]
    logits = net.fc(pool)
  return pool.numpy(), logits.numpy()


def _max_relative(a, b):
  return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def _smooth_images(n, height, width):
  """n smooth RGB images [n, height, width, 3]: slanted sinusoids of different phases and two ramps."""
  y, x = np.mgrid[0:height, 0:width]
  y, x = y / max(height - 1, 1), x / max(width - 1, 1)
  return np.stack([np.stack([127.5 + 127.5 * np.sin(2 * np.pi * (1.5 * x + 0.5 * y) + i), 255 * x,
                             255 * (1 - y) * (0.5 + 0.5 * x)], axis=-1) for i in range(n)]).round().astype(np.uint8)


def _torch_input(images, mode):
  """The network input [N, 3, 299, 299] that each mode's reference code makes of uint8 images [N, H, W, 3]."""
  import torch  # pylint: disable=g-import-not-at-top
  import torch.nn.functional as F  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
  batch, channels, height, width = x.shape
  if mode == "pytorch_fid":   # pytorch_fid.inception.InceptionV3(resize_input=True, normalize_input=True) of x / 255.
    return 2 * F.interpolate(x / 255, size=(299, 299), mode="bilinear", align_corners=False) - 1
  if mode == "legacy_tensorflow":   # StyleGAN2-ADA's inception-2015-12-05.pt forward, from its TorchScript code.
    theta = torch.eye(2, 3)
    theta[0, 2] += theta[0, 0] / width - theta[0, 0] / 299
    theta[1, 2] += theta[1, 1] / height - theta[1, 1] / 299
    grid = F.affine_grid(theta[None].repeat(batch, 1, 1), [batch, channels, 299, 299], False)
    return (F.grid_sample(x, grid, "bilinear", "border", False) - 128) / 128
  # clean-fid: make_resizer("PIL", False, "bicubic", (299, 299)), then InceptionV3W's (x - 128) / 128.
  resized = np.stack([np.stack([np.asarray(Image.fromarray(image[:, :, c].astype(np.float32), mode="F").resize(
      (299, 299), Image.BICUBIC)).clip(0, 255) for c in range(3)]) for image in images])
  return (torch.from_numpy(resized) - 128) / 128


def _check_torchscript(path, seed):
  """One JSON line per (input mode, image size) of torch running the TorchScript file against gan_jax's port;
  the worst relative difference."""
  import torch  # pylint: disable=g-import-not-at-top
  from gan_jax.metrics import inception  # pylint: disable=g-import-not-at-top
  network = torch.jit.load(path).eval()
  params = inception.load_weights(path)
  has_logits = hasattr(network, "output")
  rng = np.random.default_rng(seed)
  sizes = {"rgb_299x299": (299, 299), "rgb_64x48 (upsampled)": (64, 48), "rgb_340x260 (downsampled)": (340, 260)}
  worst = 0.0
  for case, (height, width) in sizes.items():
    images = np.concatenate([rng.integers(0, 256, (1, height, width, 3), np.uint8), _smooth_images(1, height, width)])
    for mode in inception.MODES:
      with torch.no_grad():
        x = _torch_input(images, mode)
        pool_ref = network.layers(x).reshape(-1, 2048) if has_logits else network(x)
        pool_ref = pool_ref.numpy()
      pool = inception.features(params, images, mode=mode)
      result = {"file_format": "torchscript", "mode": mode, "input": f"{case}, random and smooth",
                "pool_max_rel_diff": _max_relative(pool, pool_ref),
                "pool_spread_between_images": float(np.abs(pool_ref[0] - pool_ref[1]).mean() / np.abs(pool_ref).mean())}
      if has_logits:
        with torch.no_grad():
          logits_ref = network.output(torch.from_numpy(pool_ref)).numpy()
        result["logits_max_rel_diff"] = _max_relative(inception.logits(params, images, mode=mode), logits_ref)
      worst = max(worst, result["pool_max_rel_diff"], result.get("logits_max_rel_diff", 0.0))
      print(json.dumps(result), flush=True)
  return worst


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--weights", help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth (optional)")
  parser.add_argument("--torchscript", help="the TorchScript inception-2015-12-05.pt: check it instead")
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args()
  if args.torchscript:
    worst = _check_torchscript(args.torchscript, args.seed)
    print(json.dumps({"weights": args.torchscript, "worst_max_rel_diff": worst, "pass": worst <= 1e-4}))
    sys.exit(0 if worst <= 1e-4 else 1)
  import torch  # pylint: disable=g-import-not-at-top
  from gan_jax.metrics import inception  # pylint: disable=g-import-not-at-top
  net = _random_fid_inception(args.seed)
  if args.weights:
    net.load_state_dict(torch.load(args.weights, weights_only=True))
  net.eval()
  rng = np.random.default_rng(args.seed)
  cases = {"rgb_32x32 (upsampled)": rng.integers(0, 256, (4, 32, 32, 3), np.uint8),
           "rgb_340x340 (downsampled)": rng.integers(0, 256, (2, 340, 340, 3), np.uint8)}
  worst = 0.0
  with tempfile.TemporaryDirectory() as tmp:
    for fmt, zip_format in (("zip", True), ("legacy", False)):
      path = os.path.join(tmp, f"weights_{fmt}.pth")
      torch.save(net.state_dict(), path, _use_new_zipfile_serialization=zip_format)
      params = inception.load_pytorch_fid_weights(path)
      for case, images in cases.items():
        pool_ref, logits_ref = _torch_outputs(net, images)
        pool, logits = inception.features(params, images), inception.logits(params, images)
        result = {"file_format": fmt, "input": case, "weights": args.weights or f"random (seed {args.seed})",
                  "pool_max_rel_diff": _max_relative(pool, pool_ref),
                  "logits_max_rel_diff": _max_relative(logits, logits_ref),
                  # How much the features differ between images, relative to their size: a check on
                  # features that ignored the input would prove little.
                  "pool_spread_between_images": float(pool_ref.std(axis=0).mean() / np.abs(pool_ref).mean())}
        worst = max(worst, result["pool_max_rel_diff"], result["logits_max_rel_diff"])
        print(json.dumps(result), flush=True)
      if args.weights:
        break
  print(json.dumps({"worst_max_rel_diff": worst, "pass": worst <= 1e-4}))
  sys.exit(0 if worst <= 1e-4 else 1)


if __name__ == "__main__":
  main()
