"""DF-GAN (Tao et al. 2022), the sentence-only text-to-image baseline, on captioned_shapes at 32x32.

  python scripts/pretrain_damsm.py --dataset=captioned_shapes/32 --steps=3000 --out=runs/damsm_shapes32.npz
  python -m gan_jax.main --config=experiments/dfgan_shapes.py --workdir=runs/dfgan_shapes

The authors' settings (tobran/DF-GAN code/cfg/bird.yml, code/src/train.py): z 100, ngf = ndf = 32, batch 32, Adam G
1e-4 and D 4e-4 with betas (0, 0.9), hinge loss with mismatched pairs and MA-GP (k 2, p 6; objectives/dfgan.py),
the frozen DAMSM sentence encoder (models/damsm.py, pretrained by scripts/pretrain_damsm.py; the authors take
AttnGAN's). Their network is built for 256x256 (6 up-sampling blocks); at 32x32 it has 3. No EMA in the authors'
code: config.ema_decay 0 samples G itself. Arguments: steps; runlocal (2 steps of narrow networks against a frozen
random text encoder, a smoke test).

Evaluation: `attributes`, the bundled shapes parser (gan_jax/metrics/shapes_parser.py) reading 2,000 samples, one
per test caption, back into facts against what their captions state (shape, colour, size, place or relation, and
exact match); `r_precision` under the training DAMSM (and config.eval_retrieval's, when set); FID and
precision/recall under the parser's features against the 2,000 real test images; `diversity`, the spread of 10
samples for each of 100 captions under those features against 10 renders of each caption's scene. The sample
grid's rows are the test split's first 8 captions.
"""
from gan_jax import config as config_lib


def get_config(arg=None):
  arg = config_lib.parse_arg(arg, steps=0, runlocal=False)
  config = config_lib.base_config()
  config.objective = "dfgan"
  config.objective_kwargs.damsm = "runs/damsm_shapes32.npz"   # What the docstring's pretraining command writes.
  config.loss = "hinge"
  config_lib.set_model(config, "dfgan", resolution=32, channels=3, latent_dim=100, ngf=32, ndf=32, text_dim=128)
  config.data.name = "captioned_shapes/32"
  config.data.feature = "image"
  config.batch_size = 32
  config.optimizer.g = dict(name="adam", learning_rate=1e-4, b1=0.0, b2=0.9)
  config.optimizer.d = dict(name="adam", learning_rate=4e-4, b1=0.0, b2=0.9)
  config.ema_decay = 0.0
  config.total_steps = arg.steps or 20_000
  config.log_every = 100
  config.sample_every = 1000
  config.checkpoint_every = 1000
  config.num_grid_samples = 64   # 8 captions x 8 latents.
  config.evals = ("attributes", "r_precision", "fid", "precision_recall", "diversity")
  config.eval_features = "parser:captioned_shapes"   # The bundled parser's features (metrics/shapes_parser.py).
  config.eval_every = 2000
  config.eval_num_samples = 2000
  if arg.runlocal:
    config_lib.make_tiny(config)
    config.model.update(ngf=4, ndf=4, text_dim=16)
    config.objective_kwargs.damsm = "random"
  return config
