"""Progressive growing (Karras et al. 2018) with its authors' settings (tkarras/progressive_growing_of_gans, config.py
and train.py), sized for a CPU: digits (offline, 16x16: 4, 8, 16), MNIST or Fashion-MNIST (32x32: 4 to 32).

  python -m gan_jax.main --config=experiments/progan.py:data=mnist --workdir=runs/progan_mnist
  python -m gan_jax.main --config=experiments/progan.py:data=mnist,grow=0 --workdir=runs/progan_mnist_nogrow

Arguments: data = digits | mnist | fashion_mnist; grow = 1 (from 4x4) or 0 (the authors' '-nogrowing' baseline:
the same networks at full resolution from the start); kimg = thousands of real images per stabilisation and per
transition (their lod_training_kimg and lod_transition_kimg, 600 at 1024x1024 on CelebA-HQ; here 30 on digits, 60
on MNIST); width = feature maps at every level; steps; runlocal. progan_digits.py and progan_mnist.py are this
config with their data.

- Networks (models/progan.py): pixel norm in G, equalized learning rate, minibatch std over groups of 4 in D,
  nearest up-sampling and average pooling, a toRGB and a fromRGB per resolution. Here `width` (64) feature maps at
  every level (channel_base width x resolution / 2, channel_max width; the paper's 512) and latents of 128 (512).
- Training (objectives/progan.py): WGAN-GP, lambda 10, with the drift term epsilon 0.001 (loss.py D_wgangp_acgan);
  one D step per G step; Adam lr 0.001, betas (0, 0.99), eps 1e-8, restarted at every stage; the EMA of G with
  decay 0.999 (G_smoothing); batch 64 (the authors' preset-v2 runs 128 up to 16x16 and 64 at 32x32).
- Evaluation: FID, KID and precision/recall under the dataset's bundled classifier, on G's samples at the current
  level up-sampled to the full resolution.

MNIST and Fashion-MNIST need their TFDS datasets (network, --config.data.data_dir, or scripts/prepare_dataset.py
from the original files).
"""
from gan_jax import config as config_lib

DATA = ("digits", "mnist", "fashion_mnist")


def get_config(arg=None):
  arg = config_lib.parse_arg(arg, data="digits", grow=1, kimg=0.0, width=64, steps=0, runlocal=False)
  if arg.data not in DATA:
    raise config_lib.UserError(f"unknown data {arg.data!r}; allowed: {', '.join(DATA)}")
  if arg.grow not in (0, 1):
    raise config_lib.UserError(f"grow must be 1 (progressive) or 0 (full resolution from the start), got {arg.grow}")
  digits = arg.data == "digits"
  resolution = 16 if digits else 32
  config = config_lib.base_config()
  config.objective = "progan"
  config_lib.set_model(config, "progan", resolution=resolution, channels=1, latent_dim=128,
                       channel_base=arg.width * resolution // 2, channel_max=arg.width, mbstd_group_size=4)
  config.data.name = arg.data
  kimg = arg.kimg or (30.0 if digits else 60.0)
  if arg.grow:
    config.objective_kwargs = dict(initial_resolution=4, stabilise_kimg=kimg, transition_kimg=kimg)
  else:   # config.py's '-nogrowing': lod_initial_resolution = the resolution, both phase lengths 0.
    config.objective_kwargs = dict(initial_resolution=resolution, stabilise_kimg=0.0, transition_kimg=0.0)
  config.loss = "wasserstein"
  config.regularizer.gradient_penalty = 10.0
  config.regularizer.drift = 0.001
  adam = dict(name="adam", learning_rate=0.001, b1=0.0, b2=0.99, eps=1e-8)
  config.optimizer.g, config.optimizer.d = dict(adam), dict(adam)
  config.batch_size = 64
  config.ema_decay = 0.999
  config.total_steps = arg.steps or (3000 if digits else 10_000)
  config.log_every = 100
  config.sample_every = 500
  config.checkpoint_every = 1000
  config.evals = ("fid", "kid", "precision_recall")
  config.eval_features = f"classifier:{arg.data}"
  config.eval_every = 500
  config.eval_num_samples = 1797 if digits else 10_000
  if arg.runlocal:
    config_lib.make_tiny(config)
    # 8x8 (two levels) with a schedule that crosses a stage in two steps of 8 images: step 0 stable at 4x4, step 1
    # fading 8x8 in (alpha 0.5).
    config.model.update(resolution=8, latent_dim=16, channel_base=32, channel_max=8)
    if arg.grow:
      config.objective_kwargs.update(stabilise_kimg=0.004, transition_kimg=0.008)
    else:
      config.objective_kwargs.update(initial_resolution=8)
  return config
