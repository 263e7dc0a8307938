"""Times the compiled training step (every phase of the objective, then the EMA) of a model; one JSON line per run.

  python scripts/benchmark.py --model=dcgan28 [--batch=64] [--steps=20] [--windows=5] [--warmup=3] [--reuse_fakes]
                              [--dtype=bfloat16]
  python scripts/benchmark.py --model=dcgan28,dcgan64 --dtype=float32,bfloat16   # one line per model and dtype
  python scripts/benchmark.py --model=dcgan28 --vs_torch   # and PyTorch's twin, windows alternating in one process
  python scripts/benchmark.py --matmul [--dtype=bfloat16] [--matmul_size=8192]   # the yardstick for GFLOP/s

The step is train.py's (steps.make_train_step, jitted with the state donated) on random batches already on the
device, so the number is compute and dispatch, not input. It is built from the config alone (models.make,
objectives.make, optimizers.for_networks; no config.validate, which loads the data pipeline), so this script needs
jax, flax, optax, numpy and ml_collections only: no TensorFlow, TFDS or clu (a GPU machine without them runs it;
scripts/gpu_check.sh). ms_per_step is the median over --windows windows of --steps steps each, after a warm-up;
GFLOP per step is XLA's cost analysis of the compiled step. With --vs_torch the ratio is the median of the window
pairs' ratios (ours / PyTorch's), with their range.

Models: dcgan28 (the issue's reference DCGAN for 28x28x1: G 100 -> 7x7x128 -> 14x14x64 -> 28x28x1, D 64 -> 128
-> 1 without BatchNorm, non-saturating loss, Adam 2e-4 (0.5, 0.999); scripts/torch_twin.py is the same model and
step in PyTorch); dcgan64 (the paper's 64x64x3 DCGAN: G 4x4x1024 -> 64x64x3, D 128 -> 1024 with BatchNorm; also
in torch_twin.py); digits (the default experiment); mlp2d (PacGAN's 2D benchmark: experiments/gan_ring.py, batch
100); pix2pix32 and cyclegan32 (experiments/pix2pix_digits_m.py and cyclegan_digits_m.py, batch 16; twins of the
official PyTorch code in torch_twin.py); stylegan2_16 and stylegan2_32 (experiments/stylegan2_digits.py, 64 channels
at 16x16, and stylegan2_mnist.py, 128 channels at 32x32; batch 32; the step holds the lazy phases, which run on
their 1/4 and 1/16 of the timed steps as in training; twins of the official PyTorch code in
torch_twin_stylegan2.py); sngan32 and biggan32 (experiments/sngan_cifar10.py and
biggan_cifar10.py: the papers' CIFAR-10 networks and steps, 5 and 2 D updates of batch 64) and sngan16 (SNGAN's
16x16 reduction at 64 channels, the size the local Fashion-MNIST runs train); attngan and dfgan
(experiments/attngan_shapes.py and dfgan_shapes.py at 32x32, batch 20 and 32, against random DAMSM encoders of
pretrain_damsm.py's sizes: the frozen encoders cost the same trained or not). Batches are random, shaped by the
objective's data roles (sources()) and batch_layout: {"x": [critic steps, B * pack, ...]}, pix2pix's {"input",
"target"}, CycleGAN's {"a", "b"}, text to image's {"x", "caption"} (word ids). --dtype=bfloat16 applies to the
DCGAN models (config.model.dtype); with several models or dtypes the runs a model cannot make print a "skipped" line, and a run
that fails prints a "failed" line (exit status 1) while the others go on.

Each line: check ("benchmark:<model>:<dtype>[:reuse_fakes]" or "matmul:<dtype>:<n>"), status ("ok", "skipped",
"failed"), device_kind (jax.devices()[0].device_kind), platform, jax (version), device (platform, kind, count,
CPUs); for a step also framework, model, batch (per update), reuse_fakes, dtype, supports_bf16, steps, windows,
compile_s, ms_per_step, ms_range ([fastest, slowest window]), images_per_s (batch / step time), gflop_per_step,
gflop_per_s; for --vs_torch torch, torch_ms_per_step, ratio and ratio_range; for --matmul gflop_per_s.
"""
import argparse
import json
import math
import os
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

MODELS = ("dcgan28", "dcgan64", "digits", "mlp2d", "pix2pix32", "cyclegan32", "stylegan2_16", "stylegan2_32",
          "sngan32", "biggan32", "sngan16", "attngan", "dfgan")
# The models scripts/torch_twin.py has.
TWINNED = ("dcgan28", "dcgan64", "pix2pix32", "cyclegan32", "sngan16", "sngan32", "biggan32", "stylegan2_16",
           "stylegan2_32")
DTYPES = ("float32", "bfloat16")
_EXPERIMENTS = {"digits": "dcgan_digits.py", "mlp2d": "gan_ring.py", "pix2pix32": "pix2pix_digits_m.py",
                "cyclegan32": "cyclegan_digits_m.py", "stylegan2_16": "stylegan2_digits.py",
                "stylegan2_32": "stylegan2_mnist.py", "sngan32": "sngan_cifar10.py", "biggan32": "biggan_cifar10.py",
                "sngan16": "sngan_fashion_mnist.py:res=16,width=64", "attngan": "attngan_shapes.py",
                "dfgan": "dfgan_shapes.py"}
# The text-to-image models' frozen DAMSM: random encoders at scripts/pretrain_damsm.py's default sizes, on a
# vocabulary and caption length of captioned_shapes' (data/captioned_shapes.py: 50 words, 18 tokens; read here
# without TensorFlow, which importing the builder needs; tests/test_gpu_check.py checks they agree).
TEXT_VOCABULARY, TEXT_LENGTH = 50, 18
_DAMSM_SIZES = dict(embed_dim=64, hidden=128, width=32)


def model_config(name, batch):
  """The config of benchmark model `name` with batch size `batch` (None: the experiment's own, 64 for dcgan*)."""
  from gan_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  c = config_lib.base_config()
  if name == "dcgan28":
    config_lib.set_model(c, "dcgan", resolution=28, channels=1, latent_dim=100, g_width=64, d_width=64,
                         d_norm="none")
  elif name == "dcgan64":
    config_lib.set_model(c, "dcgan", resolution=64, channels=3, latent_dim=100, g_width=128, d_width=128)
  elif name in _EXPERIMENTS:
    experiment, _, arg = _EXPERIMENTS[name].partition(":")
    c = config_lib.load_experiment(os.path.join(os.path.dirname(__file__), "..", "experiments", experiment), arg)
  else:
    usage_error(f"unknown --model {name!r}; allowed: {', '.join(MODELS)}")
  c.batch_size = batch or (c.batch_size if name in _EXPERIMENTS else 64)
  return c


def random_damsm_file(config, directory):
  """Writes random DAMSM encoders (models/damsm.py, at _DAMSM_SIZES) to `directory` and points the config at them:
  a text-to-image step costs the same with trained or random encoders."""
  from gan_jax.models import damsm  # pylint: disable=g-import-not-at-top
  vocabulary = ["<pad>", "<unk>"] + [f"w{i}" for i in range(TEXT_VOCABULARY - 2)]
  text, image = damsm.encoders(TEXT_VOCABULARY, **_DAMSM_SIZES)
  side = config.model.resolution
  params = {"text": text.init(jax.random.PRNGKey(0), jnp.ones((1, TEXT_LENGTH), jnp.int32))["params"],
            "image": image.init(jax.random.PRNGKey(1), jnp.zeros((1, side, side, config.model.channels)))["params"]}
  path = os.path.join(directory, "damsm.npz")
  damsm.save(path, jax.device_get(params), dict(vocabulary=vocabulary, max_length=TEXT_LENGTH, **_DAMSM_SIZES))
  config.objective_kwargs.damsm = path


def usage_error(message):
  print(f"gan_jax: error: {message}", file=sys.stderr)
  sys.exit(2)


def build(config):
  """(objective, optimizers {network: tx}) from the config alone, as train.build makes them (without importing
  train.py, which needs clu and TensorFlow)."""
  from gan_jax import models, objectives, optimizers  # pylint: disable=g-import-not-at-top
  objective = objectives.make(config, models.make(config.model_name, config.model.to_dict()))
  return objective, optimizers.for_networks(config, objective.networks, lazy=objective.lazy_intervals())


def random_batch(objective, batch_size, key):
  """{role: [updates per step, examples per update, *shape]} of random data in [-1, 1] (integer labels in
  [0, num_classes) for roles of shape ()): what data.get_dataset serves for the objective's sources()."""
  examples, num_stacked = objective.batch_layout(batch_size)
  num_classes = max(getattr(objective.models, "num_classes", 0) or 0, 1)
  batch = {}
  for src in objective.sources().values():
    for role, _, shape in src.features:
      key, role_key = jax.random.split(key)
      if tuple(shape) == ():
        batch[role] = jax.random.randint(role_key, (num_stacked, examples), 0, num_classes, jnp.int32)
      elif role == "caption":   # Word ids of full-length captions (text to image).
        batch[role] = jax.random.randint(role_key, (num_stacked, examples, *shape), 1, TEXT_VOCABULARY, jnp.int32)
      else:
        batch[role] = jax.random.uniform(role_key, (num_stacked, examples, *shape), minval=-1.0, maxval=1.0)
  return batch


def compile_step(config, warmup=3):
  """(run, GFLOP per step, compile seconds): run(steps) runs that many compiled training steps and returns seconds
  per step. On a CPU the step is what train.py runs there: one program per pattern of lazy phases
  (steps.StepPrograms), picked by the step number, so a StyleGAN2 step costs its lazy phases on their 1/4 and 1/16
  of the steps; GFLOP per step is then the mean over a cycle of those patterns."""
  from gan_jax import steps as steps_lib  # pylint: disable=g-import-not-at-top
  start = time.perf_counter()
  objective, txs = build(config)
  state = jax.jit(lambda: objective.init(config.seed, txs))()
  batch = random_batch(objective, config.batch_size, jax.random.PRNGKey(1))
  programs = steps_lib.StepPrograms(objective, txs, None, 1, lambda fns: jax.jit(fns[0], donate_argnums=0),
                                    host_dispatch=jax.default_backend() == "cpu")   # As train.py chooses.
  flops = []
  for step in range(math.lcm(*programs.intervals.values(), 1)):
    pattern = programs.pattern(step)
    if pattern not in programs.programs:  # Compiled by a first call (on a copy: the state is donated).
      jax.block_until_ready(programs(jax.tree.map(jnp.copy, state), batch, step))
    cost = programs.programs[pattern].lower(state, batch).cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    flops.append(float((cost or {}).get("flops", float("nan"))))
  holder = [state, int(state.step)]

  def run(steps):
    start = time.perf_counter()
    for _ in range(steps):
      holder[0], metrics = programs(holder[0], batch, holder[1])
      holder[1] += 1
    jax.block_until_ready((holder[0], metrics))
    return (time.perf_counter() - start) / steps

  run(max(warmup, len(flops)))
  return run, float(np.mean(flops)) / 1e9, time.perf_counter() - start


def time_windows(runs, steps, windows):
  """Seconds per step of each of `runs` over `windows` windows, the runs alternating window by window so that
  the machine's drift (this VM's speed moves by 10-50% over minutes) falls on all of them alike."""
  times = [[] for _ in runs]
  for _ in range(windows):
    for run, series in zip(runs, times):
      series.append(run(steps))
  return times


def matmul_gflops(n=2048, repeats=10, dtype=jnp.float32):
  a = jax.random.normal(jax.random.PRNGKey(0), (n, n), dtype)
  f = jax.jit(lambda a: a @ a)
  jax.block_until_ready(f(a))
  start = time.perf_counter()
  for _ in range(repeats):
    out = f(a)
  jax.block_until_ready(out)
  return 2 * n ** 3 * repeats / (time.perf_counter() - start) / 1e9


def device_fields():
  """What names the machine in every line."""
  device = jax.devices()[0]
  return {"device_kind": device.device_kind, "platform": device.platform, "jax": jax.__version__,
          "device": f"{device.platform}:{device.device_kind} x{jax.device_count()}, {os.cpu_count()} CPUs"}


def check_name(model, dtype, reuse_fakes):
  return f"benchmark:{model}:{dtype}" + (":reuse_fakes" if reuse_fakes else "")


def benchmark(model, dtype, args, torch_twin=None):
  """One model's line: its step timed (and with `torch_twin`, PyTorch's twin in alternation)."""
  config = model_config(model, args.batch)
  config.reuse_fakes = args.reuse_fakes
  if dtype != "float32":
    config.model.dtype = dtype
  with tempfile.TemporaryDirectory() as directory:
    if "damsm" in config.objective_kwargs:
      random_damsm_file(config, directory)
    run, gflop, compile_s = compile_step(config, args.warmup)
  runs = [run]
  if torch_twin is not None:
    on_gpu = jax.devices()[0].platform == "gpu" and torch_twin.torch.cuda.is_available()
    torch_step = torch_twin.make_step(config.batch_size, args.reuse_fakes, model=model,
                                      device="cuda" if on_gpu else "cpu", dtype=dtype)
    torch_twin.time_window(torch_step, args.warmup)
    runs.append(lambda steps: torch_twin.time_window(torch_step, steps))
  times = time_windows(runs, args.steps, args.windows)
  seconds = float(np.median(times[0]))
  result = {"check": check_name(model, dtype, args.reuse_fakes), "status": "ok", "framework": f"jax {jax.__version__}",
            "model": model, "batch": config.batch_size, "reuse_fakes": args.reuse_fakes, "dtype": dtype,
            "supports_bf16": "dtype" in config.model, "steps": args.steps, "windows": args.windows,
            "compile_s": round(compile_s, 1), "ms_per_step": round(seconds * 1e3, 3),
            "ms_range": [round(min(times[0]) * 1e3, 3), round(max(times[0]) * 1e3, 3)],
            "images_per_s": round(config.batch_size / seconds, 1), "gflop_per_step": round(gflop, 3),
            "gflop_per_s": round(gflop / seconds, 1), **device_fields()}
  if torch_twin is not None:
    ratios = [a / b for a, b in zip(*times)]
    result.update({"torch": torch_twin.torch.__version__,
                   "torch_ms_per_step": round(float(np.median(times[1])) * 1e3, 3),
                   "ratio": round(float(np.median(ratios)), 3),
                   "ratio_range": [round(min(ratios), 3), round(max(ratios), 3)]})
  return result


def supports_bf16(model):
  return "dtype" in model_config(model, None).model


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", default="dcgan28", help=f"One or several (comma-separated) of {', '.join(MODELS)}.")
  parser.add_argument("--batch", type=int, default=None)
  parser.add_argument("--steps", type=int, default=20)
  parser.add_argument("--windows", type=int, default=5)
  parser.add_argument("--warmup", type=int, default=3, help="Steps run before the windows (after compiling).")
  parser.add_argument("--reuse_fakes", action="store_true",
                      help="G's update reuses the D update's fakes (config.reuse_fakes; torch_twin.py --reuse_fakes).")
  parser.add_argument("--dtype", default="float32",
                      help="Compute dtype(s), comma-separated: DCGAN models' config.model.dtype, or --matmul's.")
  parser.add_argument("--matmul", action="store_true", help="Measure matmul GFLOP/s instead.")
  parser.add_argument("--matmul_size", type=int, default=2048, help="--matmul's square matrices' size.")
  parser.add_argument("--vs_torch", action="store_true",
                      help=f"{', '.join(TWINNED)}: also time scripts/torch_twin.py's step in this process, window "
                           "by window in alternation with ours, and report both and their ratio (needs torch).")
  args = parser.parse_args(argv)
  args.models, args.dtypes = args.model.split(","), args.dtype.split(",")
  for name in args.models:
    if name not in MODELS:
      usage_error(f"unknown --model {name!r}; allowed: {', '.join(MODELS)}")
  for dtype in args.dtypes:
    if dtype not in DTYPES:
      usage_error(f"unknown --dtype {dtype!r}; allowed: {', '.join(DTYPES)}")
  for flag in ("batch", "steps", "windows", "warmup", "matmul_size"):
    if getattr(args, flag) is not None and getattr(args, flag) < 1:
      usage_error(f"--{flag} must be a positive integer, got {getattr(args, flag)}")
  if args.vs_torch and set(args.models) - set(TWINNED):
    usage_error(f"--vs_torch compares {', '.join(TWINNED)} only (scripts/torch_twin.py)")
  return args


def main(argv=None):
  args = parse_args(argv)
  if args.matmul:
    for dtype in args.dtypes:
      gflops = matmul_gflops(args.matmul_size, dtype=jnp.dtype(dtype))
      name = f"matmul_{'f32' if dtype == 'float32' else 'bf16'}_{args.matmul_size}"
      print(json.dumps({"check": f"matmul:{dtype}:{args.matmul_size}", "status": "ok", "benchmark": name,
                        "dtype": dtype, "n": args.matmul_size, "gflop_per_s": round(gflops, 1), **device_fields()}),
            flush=True)
    return 0
  runs = [(model, dtype) for dtype in args.dtypes for model in args.models]  # float32 first: the table's core.
  if len(runs) == 1 and runs[0][1] != "float32" and not supports_bf16(runs[0][0]):
    usage_error(f"--dtype applies to DCGAN models, not {runs[0][0]!r}")
  torch_twin = None
  if args.vs_torch:
    try:
      import torch_twin  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      usage_error(f"--vs_torch needs torch (pip install torch==2.13.0): {e}")
  failed = 0
  for model, dtype in runs:
    if dtype != "float32" and not supports_bf16(model):
      result = {"check": check_name(model, dtype, args.reuse_fakes), "status": "skipped", "model": model,
                "dtype": dtype, "supports_bf16": False,
                "reason": f"{model} computes in float32 only (config.model has no dtype: only DCGAN models take "
                          "bfloat16)", **device_fields()}
    elif len(runs) == 1:
      result = benchmark(model, dtype, args, torch_twin)
    else:
      try:
        result = benchmark(model, dtype, args, torch_twin)
      except Exception as e:  # pylint: disable=broad-except  (one model's failure is its line; the others go on)
        traceback.print_exc()
        failed += 1
        result = {"check": check_name(model, dtype, args.reuse_fakes), "status": "failed", "model": model,
                  "dtype": dtype, "error": f"{type(e).__name__}: {e}"[:500], **device_fields()}
    print(json.dumps(result), flush=True)
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main())
