"""GANs as a source of training data: a conditional GAN (cgan) trained on n real labelled images, then classifiers
trained on those n, on them plus the GAN's samples, and on its samples alone (CAS), tested on real held-out images.

  python -m gan_jax.sweep --config=experiments/augmentation.py:data=digits --seeds=5 --workdir=runs/augment_digits \
      --grid data.split='train[:100],train[:500],train[:80%]'
  python -m gan_jax.main --config=experiments/augmentation.py:data=mnist,n=500 --workdir=runs/augment_mnist_500

Arguments: data = digits | mnist; n (real images, the first n of the training split; default: all of it, which
is `train[:80%]` on digits, whose last 20% is held out); ratio (synthetic images per real one, default 1);
steps (generator updates); runlocal. A sweep's grid can also take `augmentation.synthetic_ratio=0.5,1,4`.

The GAN is experiments/conditional.py's cgan (DCGAN networks, the label concatenated to z and to D's input) at
batch 64 on both datasets (MNIST's n = 100 is smaller than its DCGAN batch of 128). At the end of training the
`augmentation` evaluator (gan_jax/metrics/augmentation.py) trains the three classifiers (the bundled classifiers'
CNN, 2,000 batches of 64, seeded by the run's seed) and reports their accuracies on `test` (MNIST) or
`train[80%:]` (digits), with the GAN's class accuracy under the bundled classifier. The subset is the same for
every seed: seeds vary the GAN's and the classifiers' initialisation and batches, not which images are real.
"""
import os

from gan_jax import config as config_lib


def get_config(arg=None):
  arg = config_lib.parse_arg(arg, data="digits", n=0, ratio=1.0, steps=0, runlocal=False)
  base = os.path.join(os.path.dirname(os.path.abspath(__file__)), "conditional.py")
  config = config_lib.load_experiment(base, f"variant=cgan,data={arg.data},steps={arg.steps}")
  digits = arg.data == "digits"
  config.data.split = f"train[:{arg.n}]" if arg.n else ("train[:80%]" if digits else "train")
  config.augmentation.test_split = "train[80%:]" if digits else "test"
  config.augmentation.synthetic_ratio = arg.ratio
  config.batch_size = 64
  config.evals = ("augmentation", "class_accuracy")
  config.eval_every = config.total_steps
  config.eval_num_samples = 1000
  if arg.runlocal:
    config_lib.make_tiny(config)
    config.data.split = "train[:64]"
    config.augmentation.steps = 5
    config.eval_every = config.total_steps  # At the end only, as the full experiment.
  return config
