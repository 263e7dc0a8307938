"""Class-conditional GANs and InfoGAN on DCGAN networks: digits (offline, 16x16) or MNIST (28x28).

  python -m gan_jax.main --config=experiments/conditional.py:variant=acgan,data=digits --workdir=runs/acgan

Arguments: variant = cgan | acgan | projection | infogan; data = digits | mnist; steps (generator updates);
runlocal. The named files (cgan_digits.py, infogan_mnist.py, ...) are this config with their arguments.

- cgan: Mirza & Osindero 2014: the label as a one-hot vector concatenated to z, and as one-hot channels
  concatenated to D's input. The paper's MLPs with maxout, dropout and SGD schedules are not reproduced: the
  networks and optimiser are DCGAN's (Adam 2e-4, beta1 0.5), as in convolutional cGANs.
- acgan: Odena et al. 2017: G takes the label (concatenated one-hot), D has an auxiliary classifier head; D
  maximises L_S + L_C, G maximises L_C - L_S (Eq. 2-3); Adam 2e-4, beta1 0.5 (Appendix A).
- projection: Miyato & Koyama 2018: G with conditional BatchNorm, D with the projection term (Eq. 3),
  spectral normalisation and no BatchNorm, hinge loss, Adam 2e-4 (beta1 0, beta2 0.9), 5 D updates per G
  update (Sec. 5).
- infogan: Chen et al. 2016, Appendix C.1: 62 noise values, one 10-way categorical code and 2 continuous
  codes U(-1, 1); Q shares D's body (FC 128 - BN - LeakyReLU - FC); lambda 1; Adam lr 2e-4 for D and 1e-3 for
  G, beta1 0.5. No labels are used in training.

Each run is evaluated with the bundled classifier of its dataset (digits or mnist, trained by
scripts/train_classifier.py): class_accuracy (the fraction of samples classified as the class they were generated
for, per class) and intra-class FID (each class's samples against that class's real images, averaged) or, for
InfoGAN, code_purity, with FID, KID, precision/recall and class coverage (2,000 samples on digits, 10,000 on
MNIST). MNIST needs TFDS's `mnist` (network, --config.data.data_dir, or
scripts/prepare_dataset.py from the original files).
"""
from gan_jax import config as config_lib

VARIANTS = ("cgan", "acgan", "projection", "infogan")


def get_config(arg=None):
  arg = config_lib.parse_arg(arg, variant="cgan", data="digits", steps=0, runlocal=False)
  if arg.variant not in VARIANTS:
    raise config_lib.UserError(f"unknown variant {arg.variant!r}; allowed: {', '.join(VARIANTS)}")
  if arg.data not in ("digits", "mnist"):
    raise config_lib.UserError(f"unknown data {arg.data!r}; allowed: digits, mnist")
  config = config_lib.base_config()
  digits = arg.data == "digits"
  resolution, widths = (16, 32) if digits else (28, 64)
  model = dict(resolution=resolution, channels=1, latent_dim=64 if digits else 100, g_width=widths,
               d_width=widths)
  if arg.variant == "cgan":
    model.update(num_classes=10, g_conditioning="concat", d_conditioning="concat")
  elif arg.variant == "acgan":
    model.update(num_classes=10, g_conditioning="concat", d_conditioning="acgan")
  elif arg.variant == "projection":
    model.update(num_classes=10, g_conditioning="cbn", d_conditioning="projection", d_norm="none",
                 d_spectral_norm=True)
    config.loss = "hinge"
    config.num_critic_steps = 5
    adam = dict(name="adam", learning_rate=2e-4, b1=0.0, b2=0.9)
    config.optimizer.g, config.optimizer.d = dict(adam), dict(adam)
  else:
    model.update(latent_dim=62, info_categorical=10, info_continuous=2)
    config.optimizer.g.learning_rate = 1e-3
  config_lib.set_model(config, "dcgan", **model)
  config.data.name = arg.data
  config.batch_size = 64 if digits else 128
  config.total_steps = arg.steps or (3000 if digits else 10_000)
  config.log_every = 100
  config.sample_every = 500
  config.checkpoint_every = 1000
  config.num_grid_samples = 100  # A 10 x 10 grid: sample i asks for class i mod 10, so column c is class c.
  conditional_evals = ("code_purity",) if arg.variant == "infogan" else ("class_accuracy", "intra_fid")
  config.evals = (*conditional_evals, "fid", "kid", "precision_recall", "class_coverage")
  config.eval_features = f"classifier:{arg.data}"  # Bundled: gan_jax/metrics/weights/{digits,mnist}.npz.
  config.eval_num_samples = 2000 if digits else 10_000
  if arg.runlocal:
    config_lib.make_tiny(config)
  return config
