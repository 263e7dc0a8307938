"""AttnGAN (Xu et al. 2018) on captioned_shapes at 32x32: three stages (8, 16, 32) with word attention in the last
two, one discriminator per stage, the DAMSM loss on the last stage's images.

  python scripts/pretrain_damsm.py --dataset=captioned_shapes/32 --steps=3000 --out=runs/damsm_shapes32.npz
  python -m gan_jax.main --config=experiments/attngan_shapes.py --workdir=runs/attngan_shapes
  python -m gan_jax.main --config=experiments/attngan_shapes.py:damsm_weight=0 --workdir=runs/attngan_shapes_l0

The authors' settings (taoxugit/AttnGAN code/cfg/bird_attn2.yml, code/trainer.py): ngf (GF_DIM) 32, ndf (DF_DIM)
64, z 100, condition 100, R_NUM 2, batch 20, Adam 2e-4 (0.5, 0.999) for G and the Ds, the EMA of G at 0.999, and
the DAMSM loss weight lambda (TRAIN.SMOOTH.LAMBDA) 5 as on CUB (50 on COCO); KL weight 1. Their three stages reach
256x256 from 64x64; here 32x32 from 8x8 (models/attngan.py). The frozen DAMSM (models/damsm.py) is pretrained by
the first command; its text size is config.model.text_dim (pretrain_damsm.py's 128; the authors' 256).
Arguments: damsm_weight (lambda; 0 is the ablation without the DAMSM term); steps; runlocal (2 steps of narrow
networks against frozen random encoders, a smoke test).

Evaluation: `attributes`, the bundled shapes parser (gan_jax/metrics/shapes_parser.py) reading 2,000 samples, one
per test caption, back into facts against what their captions state (shape, colour, size, place or relation, and
exact match); `r_precision` under the training DAMSM (and config.eval_retrieval's, when set); FID and
precision/recall under the parser's features against the 2,000 real test images; `diversity`, the spread of 10
samples for each of 100 captions under those features against 10 renders of each caption's scene. The sample
grid's rows are the test split's first 8 captions.
"""
from gan_jax import config as config_lib


def get_config(arg=None):
  arg = config_lib.parse_arg(arg, damsm_weight=5.0, steps=0, runlocal=False)
  config = config_lib.base_config()
  config.objective = "attngan"
  config.objective_kwargs.damsm = "runs/damsm_shapes32.npz"   # What the docstring's pretraining command writes.
  config.objective_kwargs.damsm_weight = float(arg.damsm_weight)
  config.loss = "non_saturating"
  config_lib.set_model(config, "attngan", resolution=32, channels=3, latent_dim=100, condition_dim=100, ngf=32,
                       ndf=64, num_stages=3, r_num=2, text_dim=128)
  config.data.name = "captioned_shapes/32"
  config.data.feature = "image"
  config.batch_size = 20
  adam = dict(name="adam", learning_rate=2e-4, b1=0.5, b2=0.999)
  config.optimizer.g, config.optimizer.d = dict(adam), dict(adam)
  config.ema_decay = 0.999
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
    config.model.update(ngf=4, ndf=4, condition_dim=4, text_dim=16)
    config.objective_kwargs.damsm = "random"
  return config
