"""The mode-collapse benchmark of PacGAN (Lin et al. 2018, Sec. 4.1, Table 1) on 2D Gaussian mixtures.

  python -m gan_jax.main --config=experiments/mode_collapse.py:data=grid25,variant=pacgan4 --workdir=runs/x

Arguments: data = ring8 | grid25; variant = gan | pacgan2 | pacgan3 | pacgan4 | unrolled | wgangp;
steps = generator updates (the paper: 400 epochs of 100,000 points in batches of 100, i.e. 400,000);
runlocal. The named files (gan_ring.py, pacgan4_grid.py, ...) are this config with their arguments.
Protocol from the authors' code: G 4 x 400 ReLU + BatchNorm, 2-d latent; D 3 maxout layers (200 units,
5 pieces); Adam lr 1e-4, beta1 0.8; batch 100 (packs, so PacGANm's G draws 100 m points per update); D and G
updated simultaneously from one forward pass (GAN and PacGAN; unrolled GAN and WGAN-GP alternate, as their
papers' algorithms do); metrics on 2,500 samples of G with population statistics (ema_decay 0: G itself is
evaluated). G runs once per pack slot, as in the authors' code, so its BatchNorm statistics are over each slot's
100 points (config.pack_slot_statistics; False runs G once over all 100 m points of a step).
"""
from gan_jax import config as config_lib

_VARIANTS = ("gan", "pacgan2", "pacgan3", "pacgan4", "unrolled", "wgangp")


def get_config(arg=None):
  arg = config_lib.parse_arg(arg, data="ring8", variant="gan", steps=400_000, runlocal=False)
  if arg.data not in ("ring8", "grid25"):
    raise config_lib.UserError(f"unknown data {arg.data!r}; allowed: grid25, ring8")
  if arg.variant not in _VARIANTS:
    raise config_lib.UserError(f"unknown variant {arg.variant!r}; allowed: {', '.join(_VARIANTS)}")
  config = config_lib.base_config()
  config_lib.set_model(config, "mlp")
  config.data.name = arg.data
  config.data.feature = "points"
  config.batch_size = 100
  config.total_steps = arg.steps
  adam = dict(name="adam", learning_rate=1e-4, b1=0.8, b2=0.999)
  config.optimizer.g, config.optimizer.d = dict(adam), dict(adam)
  config.ema_decay = 0.0
  config.evals = ("mode_coverage",)
  config.eval_every = 10_000
  config.eval_num_samples = 2500
  config.log_every = 1000
  config.sample_every = 10_000
  config.checkpoint_every = 10_000
  if arg.variant == "gan" or arg.variant.startswith("pacgan"):
    # The authors' code (ali_algorithm) updates D and G simultaneously, from the gradients of one forward pass.
    config.simultaneous_updates = True
  if arg.variant.startswith("pacgan"):
    config.pack = int(arg.variant[len("pacgan"):])  # PacGAN (Lin et al. 2018): D sees m packed samples.
  elif arg.variant == "unrolled":
    config.unrolled_steps = 5                       # Metz et al. 2017, Sec. 3.1: 5 unrolling steps in 2D.
  elif arg.variant == "wgangp":
    # WGAN-GP (Gulrajani et al. 2017, Algorithm 1): lambda 10, 5 critic steps, Adam 1e-4 (0.5, 0.9).
    config.loss = "wasserstein"
    config.regularizer.gradient_penalty = 10.0
    config.num_critic_steps = 5
    wgan_adam = dict(name="adam", learning_rate=1e-4, b1=0.5, b2=0.9)
    config.optimizer.g, config.optimizer.d = dict(wgan_adam), dict(wgan_adam)
  if arg.runlocal:
    config_lib.make_tiny(config)
  return config
