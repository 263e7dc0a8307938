"""StyleGAN2 (Karras et al. 2020) with the ADA code's small-data settings (NVlabs/stylegan2-ada-pytorch, train.py
cfg_specs): digits (offline, 16x16), MNIST or Fashion-MNIST (32x32), CIFAR-10 (32x32, the paper's 'cifar' config).

  python -m gan_jax.main --config=experiments/stylegan2.py:data=digits,n=500 --workdir=runs/stylegan2_digits_500

Arguments: data = digits | mnist | fashion_mnist | cifar10; n = the first n training images (0: all; the
limited-data runs use 100 and 500); augment = none | diffaugment (Zhao et al. 2020: color, translation, cutout on
everything D sees, translation and cutout filling with the background, -1, on the grey datasets and with the authors'
0 on CIFAR-10) | ada (Karras et al. 2020: the 'bgc' pipeline, p from 0 towards r_t = 0.6 every 4 steps, moving by
at most 1 in ada_kimg thousand images: the paper's 500 on CIFAR-10, whose runs are tens of millions of images; 20
elsewhere, a fifth of a 3,000-step run at 32 images a step, where the paper's p can cross 0-1 in 2% of its run) |
fixed (the 'bgc' pipeline with the constant p, default 0.2); steps (training steps); runlocal. The named files
(stylegan2_digits.py, stylegan2_mnist.py, stylegan2_cifar10.py) are this config with their data.

- Networks (models/stylegan2.py): the mapping network (2 layers, the ADA code's small-data 'auto' and 'cifar'
  configs; the paper's 8), the skip generator and residual discriminator, minibatch std over groups of 4.
  Here: 64 channels at every resolution and z = w = 128 on digits (channel_base 1024, channel_max 64); 128
  channels on MNIST; CIFAR-10 at the paper's size (channel_base 32768, channel_max 512, z = w = 512).
- Training (objectives/stylegan2.py): Adam lr 0.0025, betas (0, 0.99), eps 1e-8, with the lazy-regularisation
  correction; R1 every 16 steps with gamma = 0.0002 R^2 / batch ('auto': 0.0016 at 16x16, batch 32; 'cifar':
  0.01); path length every 4 steps (weight 2; 'cifar' switches it off, as it does style mixing); style mixing 0.9;
  the EMA of G by a half-life of batch x 10 / 32 thousand images with ramp-up 0.05 ('cifar': 500 kimg).
- Evaluation: FID, KID and precision/recall under the bundled classifier of the dataset (Inception for CIFAR-10:
  set --config.eval_features=inception:PATH).

MNIST, Fashion-MNIST and CIFAR-10 need their TFDS datasets (network, --config.data.data_dir, or
scripts/prepare_dataset.py from the original files for the first two).
"""
from gan_jax import config as config_lib

DATA = ("digits", "mnist", "fashion_mnist", "cifar10")
AUGMENT = ("none", "diffaugment", "ada", "fixed")


def get_config(arg=None):
  arg = config_lib.parse_arg(arg, data="digits", n=0, augment="none", ada_kimg=0.0, p=0.2, steps=0, runlocal=False)
  if arg.data not in DATA:
    raise config_lib.UserError(f"unknown data {arg.data!r}; allowed: {', '.join(DATA)}")
  if arg.augment not in AUGMENT:
    raise config_lib.UserError(f"unknown augment {arg.augment!r}; allowed: {', '.join(AUGMENT)}")
  if arg.n < 0:
    raise config_lib.UserError(f"n must be >= 0 (0: all training images), got {arg.n}")
  config = config_lib.base_config()
  config.objective = "stylegan2"
  cifar = arg.data == "cifar10"
  resolution = 16 if arg.data == "digits" else 32
  if cifar:   # cfg_specs['cifar'].
    batch, model = 64, dict(latent_dim=512, w_dim=512, channel_base=32768, channel_max=512)
    config.objective_kwargs.pl_weight = 0.0
    config.objective_kwargs.style_mixing = 0.0
  else:       # cfg_specs['auto'] at 32 images per step.
    width = 64 if arg.data == "digits" else 128
    batch, model = 32, dict(latent_dim=128, w_dim=128, channel_base=width * resolution, channel_max=width)
  config_lib.set_model(config, "stylegan2", resolution=resolution, channels=3 if cifar else 1, mapping_layers=2,
                       mbstd_group_size=4, **model)
  config.data.name = arg.data
  if arg.n:  # The first n training images; scored against all of them, as the limited-data papers score.
    config.data.split = f"train[:{arg.n}]"
    config.eval_ref_split = "train"
  config.batch_size = batch
  if arg.augment == "diffaugment":  # Zhao et al. 2020's policy for StyleGAN2; fill: the background of grey digits.
    config.augment.kind, config.augment.policy = "diffaugment", "color,translation,cutout"
    config.augment.fill = 0.0 if cifar else -1.0
  elif arg.augment in ("ada", "fixed"):  # The ADA code's --aug=ada|fixed, --augpipe=bgc, --target=0.6.
    config.augment.kind, config.augment.pipe = arg.augment, "bgc"
    if arg.augment == "fixed":
      config.augment.p = arg.p
    else:
      config.augment.ada_kimg = arg.ada_kimg or (500.0 if cifar else 20.0)
  config.regularizer.lazy_every = 16
  adam = dict(name="adam", learning_rate=0.0025, b1=0.0, b2=0.99, eps=1e-8)
  config.optimizer.g, config.optimizer.d = dict(adam), dict(adam)
  config.total_steps = arg.steps or (5000 if arg.data == "digits" else 20_000)
  config.log_every = 100
  config.sample_every = 1000
  config.checkpoint_every = 1000
  # FID, KID and precision/recall under the dataset's bundled classifier; CIFAR-10's need Inception's weights
  # (--config.evals=fid,kid,precision_recall --config.eval_features=inception:PATH).
  if not cifar:
    config.evals = ("fid", "kid", "precision_recall")
    config.eval_features = f"classifier:{arg.data}"
  config.eval_every = 1000
  config.eval_num_samples = 1797 if arg.data == "digits" else 10_000
  if arg.runlocal:
    config_lib.make_tiny(config)
    # 8x8: one up- and one down-sampling block in every phase. CIFAR-10's tiny run is 4x4 (no resampling block):
    # it checks what its config changes (3 channels, no path length, no style mixing) and compiles in half the time.
    config.model.update(resolution=4 if cifar else 8, latent_dim=16, w_dim=16, channel_base=64, channel_max=8)
  # R1's gamma and the EMA's half-life from the resolution and batch actually run ('auto': 0.0002 R^2 / batch and
  # batch x 10 / 32 kimg; 'cifar': 0.01 and 500 kimg), with the EMA's ramp-up 0.05.
  res, batch = config.model.resolution, config.batch_size
  config.regularizer.r1 = 0.01 if cifar else 0.0002 * res ** 2 / batch
  config.ema_kimg, config.ema_rampup = (500.0 if cifar else batch * 10 / 32), 0.05
  return config
