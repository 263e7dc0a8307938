"""Trained networks saved as one .npz: the flattened parameters ("a/b/kernel" keys) and `meta`, a JSON string of what
they are and how they scored. The domain classifiers (metrics/classifier.py), the shapes parser
(metrics/shapes_parser.py) and the DAMSM encoders (models/damsm.py) are kept so; checkpoints of runs are orbax's."""
import json
import os

import flax
import numpy as np

from gan_jax.errors import UserError


def save(path, params, meta) -> None:
  flat = {"/".join(k): np.asarray(v) for k, v in flax.traverse_util.flatten_dict(params).items()}
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  np.savez(path, meta=np.array(json.dumps(meta, sort_keys=True)), **flat)


def read(path, what: str, how_to_make: str):
  """(params, meta) of a file `save` wrote; UserError naming `what` it should be and `how_to_make` one when the
  file is missing, and why it cannot be read otherwise (not an .npz, no meta)."""
  try:
    with np.load(path) as f:
      meta = json.loads(str(f["meta"]))
      params = flax.traverse_util.unflatten_dict({tuple(k.split("/")): f[k] for k in f.files if k != "meta"})
  except FileNotFoundError:
    raise UserError(f"{what} {path!r} not found; {how_to_make}") from None
  except (OSError, KeyError, ValueError, TypeError) as e:   # TypeError: a .npy, not an .npz.
    raise UserError(f"cannot read {what} {path}: {e or type(e).__name__}") from None
  return params, meta
