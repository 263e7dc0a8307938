"""Checks gan_jax's Flax FID Inception against pytorch-fid's own InceptionV3 loaded with the same weights.

  pip install torch==2.13.0 && pip install --no-deps torchvision==0.28.0 pytorch-fid==0.3.0  # optional
  python scripts/check_inception_parity.py [--weights=pt_inception-2015-12-05-6726825d.pth]

Without --weights, pytorch-fid's network gets random weights and random BatchNorm statistics (enough to check
the architecture, the input handling and the weight conversion), saved by torch.save in both the zip and the
legacy format and read back by gan_jax's torch-free reader. Prints one JSON line per case with the largest
relative difference of the 2,048 pool features and of the 1,008 logits; exits 1 above 1e-4.
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


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--weights", help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth (optional)")
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args()
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
