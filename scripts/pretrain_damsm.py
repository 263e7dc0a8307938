"""Pretrains AttnGAN's DAMSM (gan_jax/models/damsm.py) on a captioned dataset and saves both encoders as .npz.

  python scripts/pretrain_damsm.py --dataset=captioned_shapes/32 --steps=3000 --out=runs/damsm_shapes.npz

As taoxugit/AttnGAN's code/pretrain_DAMSM.py trains it (Adam (0.5, 0.999) at 0.002 decayed 0.98 an epoch, the
text encoder's gradient clipped to 0.25, batch 48, the gammas 4, 5, 10), with a small image CNN from scratch in
place of Inception-v3 (the module docstring says why). On captioned_shapes, pairs of a batch whose images have the
same facts are not counted as negatives (the authors mask same-class pairs on CUB). Held out: the `test` split
and the compositional split `test_compositional`, each scored by its matching losses and by R-precision (R = 1
among 100 captions; chance 1%) with every image's first caption. The encoders are what AttnGAN's generator is
trained against, frozen; the result line is also written as JSON beside --out (.json).
"""
import json
import os
import sys
import time

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gan_jax import cli, errors  # noqa: E402

_DATASET = flags.DEFINE_string("dataset", "captioned_shapes/32", "A captioned TFDS dataset (captions: a Sequence of "
                               "Text with a vocabulary in its metadata).")
_DATA_DIR = flags.DEFINE_string("data_dir", None, "TFDS data_dir.")
_STEPS = flags.DEFINE_integer("steps", 3000, "Training steps.")
_BATCH = flags.DEFINE_integer("batch", 48, "Batch size (the authors' 48).")
_EMBED_DIM = flags.DEFINE_integer("embed_dim", 64, "Word embedding size (the authors' 300).")
_HIDDEN = flags.DEFINE_integer("hidden", 128, "Feature size shared by words, sentences and regions (the authors' "
                               "256).")
_WIDTH = flags.DEFINE_integer("width", 32, "Channels of the image encoder's first convolutions.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of initialisation, batches and caption choice.")
_OUT = flags.DEFINE_string("out", None, "Output .npz path.")


def load(dataset, data_dir, split, shape, captions_shape, with_facts):
  """(images, caption ids [N, K, T], facts [N, F] or zeros) of a split."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from gan_jax import data  # pylint: disable=g-import-not-at-top
  from gan_jax.metrics import shapes_parser  # pylint: disable=g-import-not-at-top  (captioned_shapes' facts)
  features = (("x", "image", shape), ("caption", "captions", captions_shape)) + (
      shapes_parser.fact_features() if with_facts else ())
  examples = data.load_examples(data.Source(name=dataset, split=split, data_dir=data_dir, features=features))
  facts = (shapes_parser.facts_to_array(examples) if with_facts
           else np.zeros((len(examples["x"]), 1), np.int32))
  return examples["x"], examples["caption"], facts


def main(argv):
  cli.check_command_line(argv, out=_OUT.value)
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from gan_jax import data  # pylint: disable=g-import-not-at-top
  from gan_jax.models import damsm  # pylint: disable=g-import-not-at-top
  with cli.user_errors_reported(False):
    for flag in (_STEPS, _BATCH, _EMBED_DIM, _HIDDEN, _WIDTH):
      if flag.value < 1:
        raise errors.UserError(f"--{flag.name} must be a positive integer, got {flag.value}")
    if _HIDDEN.value % 2:
      raise errors.UserError(f"--hidden must be even (half for each direction of the LSTM), got {_HIDDEN.value}")
    builder = data.load_builder(_DATASET.value, _DATA_DIR.value)
    info = builder.info
    if "captions" not in info.features or "vocabulary" not in info.metadata:
      raise errors.UserError(f"dataset {_DATASET.value!r} has no captions with a stored vocabulary")
    vocabulary = list(info.metadata["vocabulary"])
    shape = tuple(info.features["image"].shape)
    captions_shape = (info.features["captions"].shape[0], int(info.metadata["max_length"]))
    from gan_jax.metrics import shapes_parser  # pylint: disable=g-import-not-at-top
    with_facts = all(name in info.features for name in shapes_parser.FACTS)
    sizes = dict(vocab_size=len(vocabulary), embed_dim=_EMBED_DIM.value, hidden=_HIDDEN.value, width=_WIDTH.value)
    images, captions, facts = load(_DATASET.value, _DATA_DIR.value, "train", shape, captions_shape, with_facts)
    if len(images) < _BATCH.value:
      raise errors.UserError(f"the train split has {len(images)} examples, fewer than --batch={_BATCH.value}")
    start = time.perf_counter()
    params, history = damsm.train(images, captions, facts, steps=_STEPS.value, batch_size=_BATCH.value,
                                  seed=_SEED.value, log_every=max(_STEPS.value // 10, 1), **sizes)
    train_s = time.perf_counter() - start
    for step, losses in history:
      print(f"step {step}: " + ", ".join(f"{k} {v:.3f}" for k, v in losses.items()), flush=True)
    scores = {}
    for split in (s for s in ("test", "test_compositional") if s in info.splits):
      x, ids, split_facts = load(_DATASET.value, _DATA_DIR.value, split, shape, captions_shape, with_facts)
      codes, regions, words, sentences = damsm.encode(params, x, ids[:, 0], **sizes)
      losses = [damsm.damsm_losses(words[s:s + _BATCH.value], ids[s:s + _BATCH.value, 0] > 0,
                                   sentences[s:s + _BATCH.value], regions[s:s + _BATCH.value],
                                   codes[s:s + _BATCH.value], same=damsm.same_facts(split_facts[s:s + _BATCH.value]))
                for s in range(0, len(x) - _BATCH.value + 1, _BATCH.value)]
      scores[split] = {"r_precision": damsm.r_precision(codes, sentences, seed=_SEED.value), "num": len(x),
                       **{k: round(float(np.mean([l[k] for l in losses])), 4) for k in losses[0]}}
    meta = dict(dataset=_DATASET.value, vocabulary=vocabulary, max_length=captions_shape[1], image_shape=list(shape),
                steps=_STEPS.value, batch=_BATCH.value, seed=_SEED.value, train_s=round(train_s, 1),
                num_train=len(images), scores=scores, device=str(jax.devices()[0].device_kind), **sizes)
    damsm.save(_OUT.value, params, meta)
    with open(os.path.splitext(_OUT.value)[0] + ".json", "w") as f:
      f.write(json.dumps({k: v for k, v in meta.items() if k != "vocabulary"}) + "\n")
  print(f"wrote {_OUT.value} ({train_s:.0f} s of training): " + "; ".join(
      f"{split} R-precision {s['r_precision']:.3f} (chance 0.010), sentence loss {s['s_loss0']:.3f}"
      for split, s in scores.items()))


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
