"""Images for people: [-1, 1] floats to uint8, square grids, PNG files."""
import math

import numpy as np
from PIL import Image


def to_uint8(images) -> np.ndarray:
  """[..., H, W, C] in [-1, 1] -> uint8 in [0, 255]."""
  return np.clip(np.round((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def grid(images: np.ndarray, columns=None, padding: int = 1) -> np.ndarray:
  """uint8 [N, H, W, C] -> one uint8 [rows*(H+p)+p, columns*(W+p)+p, C] image, row-major."""
  n, h, w, c = images.shape
  columns = columns or math.ceil(math.sqrt(n))
  rows = math.ceil(n / columns)
  out = np.zeros((rows * (h + padding) + padding, columns * (w + padding) + padding, c), np.uint8)
  for i, image in enumerate(images):
    top, left = padding + (i // columns) * (h + padding), padding + (i % columns) * (w + padding)
    out[top:top + h, left:left + w] = image
  return out


def side_by_side(*groups) -> np.ndarray:
  """uint8 [N, H, W, C_i] groups (e.g. input, output, target) -> one grid whose rows hold ceil(sqrt(N / k)) examples,
  each as its k images side by side (k = len(groups)); grey groups are given 3 channels where another has them."""
  channels = max(g.shape[-1] for g in groups)
  groups = [np.repeat(g, channels, axis=-1) if g.shape[-1] != channels else g for g in groups]
  per_row = math.ceil(math.sqrt(len(groups[0]) / len(groups)))
  return grid(np.stack(groups, axis=1).reshape(-1, *groups[0].shape[1:]), columns=per_row * len(groups))


def save_png(image: np.ndarray, path: str, scale: int = 1) -> None:
  """Writes uint8 [H, W, C] (C = 1 or 3) to `path`, each pixel enlarged `scale` times (nearest)."""
  image = np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)
  Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(path)


def load_png(path: str) -> np.ndarray:
  """uint8 [H, W, C] of a PNG file (C = 1 for greyscale, else 3)."""
  with Image.open(path) as image:
    array = np.asarray(image.convert("L" if image.mode in ("L", "I", "1") else "RGB"))
  return array[..., None] if array.ndim == 2 else array


def scatter(points: np.ndarray, limit: float = None, size: int = 480) -> np.ndarray:
  """uint8 [size, size, 3] picture of 2D points [N, 2] (axes symmetric around 0, +-limit or fitted)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot  # pylint: disable=g-import-not-at-top
  limit = limit or float(np.ceil(np.abs(points).max() * 1.1 + 1e-6))
  figure = pyplot.figure(figsize=(size / 100, size / 100), dpi=100)
  axes = figure.add_subplot(111, aspect="equal", xlim=(-limit, limit), ylim=(-limit, limit))
  axes.scatter(points[:, 0], points[:, 1], s=2, c="black", alpha=0.3)
  figure.tight_layout()
  figure.canvas.draw()
  picture = np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()
  pyplot.close(figure)
  return picture
