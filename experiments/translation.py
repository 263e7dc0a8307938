"""Image-to-image translation: pix2pix (Isola et al. 2017, paired) and CycleGAN (Zhu et al. 2017, unpaired).

  python -m gan_jax.main --config=experiments/translation.py:method=pix2pix,data=digits_m --workdir=runs/p2p

Arguments: method = pix2pix | cyclegan; data = digits_m | edges2fashion | horse2zebra; variant (pix2pix: l1_cgan,
the default, l1, cgan, l1_gan: the rows of Isola et al. Table 1; cyclegan: full, the default, gan (GAN alone), cycle
(cycle alone), gan_cycle (no identity): the rows of Zhu et al. Table 4); steps; runlocal. The named files
(pix2pix_digits_m.py, pix2pix_edges2fashion.py, cyclegan_digits_m.py, cyclegan_horse2zebra.py) are this config
with their arguments.

- digits_m (offline): grey digits (A) to digits-M (B, MNIST-M's blend of digits into photo patches, Ganin et al.
  2016), 32x32, class labels kept. pix2pix trains on the paired features, CycleGAN on disjoint halves of train;
  A is given 3 channels for CycleGAN so the identity loss can map B images through G_ab, as the paper does.
- edges2fashion: pix2pix's edges2shoes/edges2handbags protocol on Fashion-MNIST's shoes and bags, 32x32 grey
  (needs fashion_mnist: TFDS download, or scripts/prepare_dataset.py from its original files).
- horse2zebra: TFDS cycle_gan/horse2zebra (trainA/trainB/testA/testB) at the paper's size: 256x256, ResNet
  generators with 9 blocks, width 64, batch 1, 200 epochs of 1,334 steps (the official unaligned dataset's length
  is the larger domain's: 1,334 zebras; 1,067 horses) with the learning rates decaying linearly over the second
  100. For a GPU with network; no evaluator runs by default (pass an Inception extractor and evals=fid for FID).

At 32x32 (digits_m, edges2fashion), sized for a 2-core CPU: pix2pix a U-Net G (5 downsamplings: a 1x1 bottleneck;
at that depth the official UnetGenerator has no dropout block, num_downs - 5 = 0, so G has no noise at all)
and a PatchGAN D with 2 layers (receptive field 34, about the image, as 70 is at 256 where the paper found it best);
CycleGAN ResNet generators with 3 residual blocks (the paper: 6 at 128, 9 at 256) and 2-layer PatchGANs on each
domain, instance norm; widths 32 (the papers: 64); batch 16 (the papers: 1). Every network: Adam 2e-4 (0.5, 0.999)
(both papers); CycleGAN's learning rates constant for the first half of training, then linearly to 0. Losses:
pix2pix vanilla GAN + 100 L1; CycleGAN LSGAN + 10 cycle + 5 identity (0.5 x 10). EMA off (ema_decay 0): both papers
sample the trained generators themselves.

Evaluation on the test split, A -> B, under a bundled classifier of the target domain's images (weights/digits_m.npz,
weights/edges2fashion.npz, trained by scripts/train_classifier.py): FID against the real test targets, class_accuracy
(the share of outputs classified as their input's class, the FCN-score analogue), and for pix2pix, whose outputs
have true targets, reconstruction (MAE, PSNR, SSIM).
"""
from gan_jax import config as config_lib

_VARIANTS = {
    "pix2pix": {"l1_cgan": {}, "l1": {"adversarial": False}, "cgan": {"lambda_l1": 0.0},
                "l1_gan": {"conditional_d": False}},
    "cyclegan": {"full": {}, "gan": {"lambda_cycle": 0.0, "lambda_identity": 0.0},
                 "cycle": {"adversarial": False}, "gan_cycle": {"lambda_identity": 0.0}},
}
# data -> (TFDS name, A feature, B feature, channels A for pix2pix / CycleGAN, channels B, label feature, and
# CycleGAN objective_kwargs of its own: horse2zebra's splits, and mirroring, on for photos as the official default
# is, off for digits, which mirrored are not digits).
_DATA = {
    "digits_m": dict(name="digits_m", a="digit", b="image", channels_a=(1, 3), channels_b=3, label="label"),
    "edges2fashion": dict(name="edges2fashion", a="edges", b="image", channels_a=(1, 1), channels_b=1, label="label"),
    "horse2zebra": dict(name="cycle_gan/horse2zebra", a="image", b="image", channels_a=(3, 3), channels_b=3, label="",
                        cyclegan_kwargs=dict(split_a="trainA", split_b="trainB", eval_split_a="testA",
                                             eval_split_b="testB", flip=True)),
}


def get_config(arg=None):
  arg = config_lib.parse_arg(arg, method="pix2pix", data="digits_m", variant="", steps=0, runlocal=False)
  if arg.method not in _VARIANTS:
    raise config_lib.UserError(f"unknown method {arg.method!r}; allowed: {', '.join(_VARIANTS)}")
  if arg.data not in _DATA:
    raise config_lib.UserError(f"unknown data {arg.data!r}; allowed: {', '.join(_DATA)}")
  variants = _VARIANTS[arg.method]
  variant = arg.variant or next(iter(variants))
  if variant not in variants:
    raise config_lib.UserError(f"unknown variant {variant!r} for {arg.method}; allowed: {', '.join(variants)}")
  pix2pix, spec, paper_size = arg.method == "pix2pix", _DATA[arg.data], arg.data == "horse2zebra"
  config = config_lib.base_config()
  config.objective = arg.method
  features = {"input_feature": spec["a"], "target_feature": spec["b"]} if pix2pix else {
      "feature_a": spec["a"], "feature_b": spec["b"], **spec.get("cyclegan_kwargs", {})}
  config.objective_kwargs = {**features, "label_feature": spec["label"], **variants[variant]}
  config.data.name = spec["name"]
  resolution = 256 if paper_size else 32
  config_lib.set_model(config, "translation", resolution=resolution, channels_a=spec["channels_a"][0 if pix2pix else 1],
                       channels_b=spec["channels_b"], generator="unet" if pix2pix else "resnet",
                       g_width=64 if paper_size else 32, d_width=64 if paper_size else 32,
                       d_layers=3 if paper_size else 2, num_blocks=9 if paper_size else 3,
                       norm="batch" if pix2pix else "instance", dropout=pix2pix)
  config.loss = "non_saturating" if pix2pix else "lsgan"
  config.batch_size = 1 if paper_size else 16
  config.total_steps = arg.steps or (200 * 1334 if paper_size else (3000 if pix2pix else 6000))
  adam = dict(name="adam", learning_rate=2e-4, b1=0.5, b2=0.999)
  if not pix2pix:  # Constant for the first half, then linearly to 0 (Zhu et al. 2017, Sec. 4).
    adam.update(lr_schedule="linear_decay", decay_begin=config.total_steps // 2, decay_end=config.total_steps)
  networks = ("g", "d") if pix2pix else ("g_ab", "g_ba", "d_a", "d_b")
  if variants[variant].get("adversarial") is False:
    networks = networks[:1] if pix2pix else networks[:2]
  config.optimizer = {name: dict(adam) for name in networks}
  config.ema_decay = 0.0
  config.log_every = 100
  config.sample_every = 500
  config.checkpoint_every = 1000
  config.num_grid_samples = 8
  if not paper_size:
    config.evals = ("fid", "class_accuracy") + (("reconstruction",) if pix2pix else ())
    config.eval_features = f"classifier:{arg.data}"
    config.eval_every = 1000
    config.eval_num_samples = config.eval_ref_num = 1000
  if arg.runlocal:
    config_lib.make_tiny(config)
    config.model.resolution = 32
    config.model.num_blocks = 1
    config.eval_num_samples = config.eval_ref_num = 32
    if not pix2pix:  # Batches of 8 into pools of 10: the second step fills 2 slots and swaps (the pool's both paths).
      config.objective_kwargs.pool_size = 10
    for spec_ in config.optimizer.values():
      if spec_.get("lr_schedule") == "linear_decay":
        spec_.decay_begin, spec_.decay_end = 1, 2
  return config
