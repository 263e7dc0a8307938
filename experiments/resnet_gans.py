"""The ResNet GANs of the GAN benchmarks (models/resnet.py): SNGAN, SAGAN and BigGAN, class-conditional by default.

  python -m gan_jax.main --config=experiments/resnet_gans.py:variant=sngan,data=fashion_mnist --workdir=runs/sngan

Arguments: variant = sngan | sagan | biggan; data = cifar10 | fashion_mnist | mnist (28x28 resized to 32x32,
bilinear); conditional (default 1; 0: unconditional); res = 32 | 16 (the 16x16 reduction that fits a CPU, with
the networks' widths given by width); width (G's and D's block channels; 0: the papers'); steps (G updates);
cr = none | cr | bcr | zcr | icr (consistency regularisation: CR on reals, Zhang et al. 2020, lambda 10; bCR on
reals and fakes, lambda 10 each; zCR, lambda_dis 5 and lambda_gen 0.5 at sigma 0.03; icr = bCR + zCR, Zhao et al.
2021, Sec. 4; T flips and shifts by up to 1/8 of the side, their CIFAR-10 setting); runlocal (2 steps of the
16x16 networks at width 8). The named files (sngan_cifar10.py, biggan_fashion_mnist.py,
...) are this config with their arguments.

- sngan: Miyato et al. 2018 (Appendix B.4; pfnet-research/sngan_projection, configs/sn_cifar10.yml): G 256 and D
  128 channels, z 128, spectral norm in D, Glorot init; hinge loss, 5 D updates per G update, Adam 2e-4 (0, 0.9),
  both learning rates decaying linearly to 0 over training; 50,000 G updates of batch 64 on CIFAR-10. Conditional:
  conditional BatchNorm in G, the projection discriminator (Miyato & Koyama 2018). No EMA: the papers sample G.
- sagan: Zhang et al. 2019: sngan's networks with self-attention at 16x16 in G and D (StudioGAN's CIFAR-10
  placement; the paper's ImageNet G attends at 32x32), spectral norm in G too; TTUR (G 1e-4, D 4e-4), Adam (0,
  0.999) as the authors' code, one D update per G update. StudioGAN's CIFAR-10 SAGAN instead keeps 2e-4 for both,
  beta1 0.5 and 5 D updates; pass those as overrides to run theirs.
- biggan: Brock et al. 2019: 256 channels in G and D (BigGAN-PyTorch's CIFAR G_ch = D_ch = 64, x4), spectral norm
  in both, orthogonal init, hierarchical z (128 = 4 chunks of 32) with a 128-d shared class embedding feeding
  every G block's BatchNorm; orthogonal regularisation beta 1e-4 (Sec. 3.1), Adam (0, 0.999) with G 1e-4 and D
  4e-4 and 2 D updates (the paper's ImageNet settings, Appendix C); the EMA of G (0.9999) from update 1,000
  (the authors' CIFAR script: --ema_start 1000). Their CIFAR script itself turns off the shared embedding,
  hierarchical z and the orthogonal penalty and takes 4 D updates at 2e-4.

Evaluation: Fashion-MNIST and MNIST under their bundled classifiers (FID, KID, precision/recall; class accuracy
and intra-class FID when conditional), 10,000 samples against 50,000 training images. CIFAR-10 has no bundled features: add
--config.evals=fid,kid,precision_recall --config.eval_features=inception:PATH (the FID Inception's weights).
The papers' CIFAR-10 FIDs (SNGAN 21.7, with projection 17.5; BigGAN 14.73; StudioGAN's conditional table: SNGAN
13.25, SAGAN 14.01, BigGAN 8.03) are measured on 50,000 samples under that Inception network.
"""
from gan_jax import config as config_lib

VARIANTS = ("sngan", "sagan", "biggan")
DATA = ("cifar10", "fashion_mnist", "mnist")
# config.regularizer's consistency weights of each `cr` (Zhao et al. 2021, Sec. 4: lambda_real = lambda_fake = 10,
# lambda_dis = 5, lambda_gen = 0.5; CR alone is Zhang et al. 2020's lambda 10 on reals).
CONSISTENCY = {"none": {}, "cr": dict(cr_real=10.0), "bcr": dict(cr_real=10.0, cr_fake=10.0),
               "zcr": dict(zcr_d=5.0, zcr_g=0.5), "icr": dict(cr_real=10.0, cr_fake=10.0, zcr_d=5.0, zcr_g=0.5)}


def get_config(arg=None):
  arg = config_lib.parse_arg(arg, variant="sngan", data="cifar10", conditional=1, res=32, width=0, steps=0,
                             cr="none", runlocal=False)
  if arg.variant not in VARIANTS:
    raise config_lib.UserError(f"unknown variant {arg.variant!r}; allowed: {', '.join(VARIANTS)}")
  if arg.data not in DATA:
    raise config_lib.UserError(f"unknown data {arg.data!r}; allowed: {', '.join(DATA)}")
  if arg.res not in (16, 32):
    raise config_lib.UserError(f"res must be 32 or 16, got {arg.res}")
  if arg.cr not in CONSISTENCY:
    raise config_lib.UserError(f"unknown cr {arg.cr!r}; allowed: {', '.join(CONSISTENCY)}")
  if arg.conditional not in (0, 1):
    raise config_lib.UserError(f"conditional must be 0 or 1, got {arg.conditional}")
  if arg.runlocal:  # The 16x16 reduction (two G blocks, three D blocks): SNGAN's tiny step compiled in 13.5 s, not 21.
    arg.res = 16
  config = config_lib.base_config()
  cifar = arg.data == "cifar10"
  g_width, d_width = (256, 128) if arg.variant != "biggan" else (256, 256)
  if arg.width:
    g_width = d_width = arg.width
  model = dict(resolution=arg.res, channels=3 if cifar else 1, latent_dim=128, g_width=g_width, d_width=d_width,
               num_classes=10 if arg.conditional else 0)
  adam = dict(name="adam", learning_rate=2e-4, b1=0.0, b2=0.9)
  config.optimizer.g, config.optimizer.d = dict(adam), dict(adam)
  config.loss = "hinge"
  config.ema_decay = 0.0
  if arg.variant == "sngan":
    config.num_critic_steps = 5
    config.total_steps = arg.steps or 50_000
  elif arg.variant == "sagan":
    model.update(attention_resolution=arg.res // 2, g_spectral_norm=True)
    config.optimizer.g.update(learning_rate=1e-4, b2=0.999)
    config.optimizer.d.update(learning_rate=4e-4, b2=0.999)
    config.num_critic_steps = 1
    config.total_steps = arg.steps or 100_000
  else:
    # 128 = 4 chunks of 32 at 32x32 (3 G blocks and the first layer); 120 = 3 chunks of 40 at 16x16.
    model.update(g_spectral_norm=True, hierarchical=True, shared_dim=128, weight_init="ortho",
                 latent_dim=128 if arg.res == 32 else 120)
    config.optimizer.g.update(learning_rate=1e-4, b2=0.999)
    config.optimizer.d.update(learning_rate=4e-4, b2=0.999)
    config.num_critic_steps = 2
    config.regularizer.g_orthogonal = 1e-4
    config.ema_decay, config.ema_start = 0.9999, 1000
    config.total_steps = arg.steps or 100_000
  config_lib.set_model(config, "resnet", **model)
  config.regularizer.update(CONSISTENCY[arg.cr])
  config.data.name = arg.data
  config.batch_size = 64
  config.log_every = 100
  config.sample_every = 1000
  config.checkpoint_every = 1000
  config.num_grid_samples = 100  # 10 x 10: sample i asks for class i mod 10 (conditional), so column c is class c.
  if not cifar:
    config.evals = (("class_accuracy", "intra_fid") if arg.conditional else ()) + ("fid", "kid", "precision_recall")
    config.eval_features = f"classifier:{arg.data}"  # Bundled: gan_jax/metrics/weights/<data>.npz.
    config.eval_num_samples = 10_000
  config.eval_every = 5000
  if arg.runlocal:
    config_lib.make_tiny(config)
    config.model.update(g_width=8, d_width=8, shared_dim=8)
    # One D update per step: each is written out in the program on a CPU, and the loop over several is the
    # projection GAN's and WGAN-GP's tiny runs' to exercise.
    config.num_critic_steps = 1
  if arg.variant == "sngan":  # Linear decay to 0 over the run, in each optimizer's own updates.
    config.optimizer.g.update(lr_schedule="linear_decay", decay_begin=0, decay_end=config.total_steps)
    config.optimizer.d.update(lr_schedule="linear_decay", decay_begin=0,
                              decay_end=config.total_steps * config.num_critic_steps)
  return config
