"""The benchmark's dcgan28 model and training step in PyTorch: the baseline scripts/benchmark.py is compared with.

  pip install torch==2.13.0      # CPU build from the local wheel; never a runtime dependency of gan_jax
  python scripts/torch_twin.py [--batch=64] [--steps=20] [--windows=5] [--reuse_fakes]

Same networks, initialisation scale, loss, optimizer and step as gan_jax's (steps.make_train_step): a D update on
a real batch and G(z1) with z1 fresh, then a G update through D on G(z2) with z2 fresh, Adam 2e-4 (0.5, 0.999),
non-saturating loss, BatchNorm momentum 0.1 (Flax's 0.9), then an EMA of G's parameters and buffers.
With --reuse_fakes, the loop of PyTorch's DCGAN example (and gan_jax's config.reuse_fakes): one G(z) serves
the D update (detached) and the G update.
Prints one JSON line like benchmark.py's.
"""
import argparse
import json
import os
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


class Generator(nn.Module):
  def __init__(self, latent_dim=100):
    super().__init__()
    self.fc = nn.Linear(latent_dim, 7 * 7 * 128, bias=False)
    self.bn0 = nn.BatchNorm2d(128)  # As gan_jax's DCGAN: BatchNorm over channels after the reshape.
    self.up1 = nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1, bias=False)
    self.bn1 = nn.BatchNorm2d(64)
    self.up2 = nn.ConvTranspose2d(64, 1, 4, stride=2, padding=1)

  def forward(self, z):
    x = F.relu(self.bn0(self.fc(z).view(-1, 128, 7, 7)))
    x = F.relu(self.bn1(self.up1(x)))
    return torch.tanh(self.up2(x))


class Discriminator(nn.Module):
  def __init__(self):
    super().__init__()
    self.conv1 = nn.Conv2d(1, 64, 4, stride=2, padding=1)
    self.conv2 = nn.Conv2d(64, 128, 4, stride=2, padding=1)
    self.fc = nn.Linear(7 * 7 * 128, 1)

  def forward(self, x):
    x = F.leaky_relu(self.conv1(x), 0.2)
    x = F.leaky_relu(self.conv2(x), 0.2)
    return self.fc(x.flatten(1))[:, 0]


def _init(module):  # Radford et al. 2016: N(0, 0.02) weights; BatchNorm scale N(1, 0.02).
  for m in module.modules():
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
      nn.init.normal_(m.weight, 0.0, 0.02)
      if m.bias is not None:
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
      nn.init.normal_(m.weight, 1.0, 0.02)
      nn.init.zeros_(m.bias)


def make_step(batch=64, reuse_fakes=False):
  """The training step as a closure over fresh networks, optimizers and a fixed real batch."""
  torch.manual_seed(0)
  g, d = Generator(), Discriminator()
  _init(g), _init(d)
  ema = {k: v.detach().clone() for k, v in g.state_dict().items()}
  g_opt = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
  d_opt = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
  real = torch.rand(batch, 1, 28, 28) * 2 - 1
  ones, zeros = torch.ones(batch), torch.zeros(batch)

  def step():
    if reuse_fakes:
      fake = g(torch.randn(batch, 100))
    else:
      with torch.no_grad():
        fake = g(torch.randn(batch, 100))
    d_loss = (F.binary_cross_entropy_with_logits(d(real), ones)
              + F.binary_cross_entropy_with_logits(d(fake.detach()), zeros))
    d_opt.zero_grad(set_to_none=True)
    d_loss.backward()
    d_opt.step()
    g_fake = fake if reuse_fakes else g(torch.randn(batch, 100))
    g_loss = F.binary_cross_entropy_with_logits(d(g_fake), ones)
    g_opt.zero_grad(set_to_none=True)
    g_loss.backward()
    g_opt.step()
    with torch.no_grad():
      for k, v in g.state_dict().items():
        if v.dtype.is_floating_point:
          ema[k].mul_(0.999).add_(v, alpha=0.001)
    return d_loss, g_loss

  return step


def time_window(step, steps):
  """Seconds per step over one window of `steps` steps."""
  start = time.perf_counter()
  for _ in range(steps):
    step()
  return (time.perf_counter() - start) / steps


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--steps", type=int, default=20)
  parser.add_argument("--windows", type=int, default=5)
  parser.add_argument("--reuse_fakes", action="store_true")
  args = parser.parse_args()
  step = make_step(args.batch, args.reuse_fakes)
  for _ in range(3):
    step()
  seconds = float(np.median([time_window(step, args.steps) for _ in range(args.windows)]))
  print(json.dumps({"framework": f"torch {torch.__version__}", "model": "dcgan28", "batch": args.batch,
                    "reuse_fakes": args.reuse_fakes,
                    "ms_per_step": round(seconds * 1e3, 2), "images_per_s": round(args.batch / seconds, 1),
                    "threads": torch.get_num_threads(), "device": f"cpu, {os.cpu_count()} CPUs"}))


if __name__ == "__main__":
  main()
