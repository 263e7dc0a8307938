"""Times the compiled training step (D update + G update + EMA) of a model and prints one JSON line.

  python scripts/benchmark.py --model=dcgan28 [--batch=64] [--steps=20] [--windows=5] [--reuse_fakes]
                              [--dtype=bfloat16]
  python scripts/benchmark.py --model=dcgan28 --vs_torch   # and PyTorch's twin, windows alternating in one process
  python scripts/benchmark.py --matmul      # this machine's f32 matmul throughput, the yardstick for GFLOP/s

The step is train.py's (steps.make_train_step, jitted with the state donated) on batches already on the device,
so the number is compute and dispatch, not input. ms_per_step is the median over --windows windows of --steps
steps each, after a warm-up; GFLOP per step is XLA's cost analysis of the compiled step. With --vs_torch the
ratio is the median of the window pairs' ratios (ours / PyTorch's), with their range.

Models: dcgan28 (the issue's reference DCGAN for 28x28x1: G 100 -> 7x7x128 -> 14x14x64 -> 28x28x1, D 64 -> 128
-> 1 without BatchNorm, non-saturating loss, Adam 2e-4 (0.5, 0.999)); scripts/torch_twin.py is the same model and
step in PyTorch); dcgan64 (the paper's 64x64x3 DCGAN: G 4x4x1024 -> 64x64x3, D 128 -> 1024 with BatchNorm);
mlp2d (PacGAN's 2D benchmark: experiments/gan_ring.py, batch 100); digits (the default experiment).
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402


def model_config(name, batch):
  from gan_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  c = config_lib.base_config()
  if name == "dcgan28":
    config_lib.set_model(c, "dcgan", resolution=28, channels=1, latent_dim=100, g_width=64, d_width=64,
                         d_norm="none")
  elif name == "dcgan64":
    config_lib.set_model(c, "dcgan", resolution=64, channels=3, latent_dim=100, g_width=128, d_width=128)
  elif name == "digits":
    c = config_lib.load_experiment(os.path.join(os.path.dirname(__file__), "..", "experiments", "dcgan_digits.py"))
  elif name == "mlp2d":
    c = config_lib.load_experiment(os.path.join(os.path.dirname(__file__), "..", "experiments", "gan_ring.py"))
  else:
    raise SystemExit(f"gan_jax: error: unknown --model {name!r}; allowed: dcgan28, dcgan64, digits, mlp2d")
  c.batch_size = batch or (c.batch_size if name in ("digits", "mlp2d") else 64)
  return c


def compile_step(config):
  """(run, GFLOP per step): run(steps) runs that many compiled training steps and returns seconds per step."""
  from gan_jax import steps as steps_lib, train  # pylint: disable=g-import-not-at-top
  objective, txs = train.build(config)
  state = jax.jit(lambda: objective.init(config.seed, txs))()
  examples, num_stacked = objective.batch_layout(config.batch_size)
  shape = (num_stacked, examples, *objective.models.data_shape)
  batch = {"x": jax.random.uniform(jax.random.PRNGKey(1), shape, minval=-1.0, maxval=1.0)}
  step = jax.jit(steps_lib.make_train_step(objective, txs), donate_argnums=0)
  compiled = step.lower(state, batch).compile()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  holder = [state]

  def run(steps):
    start = time.perf_counter()
    for _ in range(steps):
      holder[0], metrics = compiled(holder[0], batch)
    jax.block_until_ready((holder[0], metrics))
    return (time.perf_counter() - start) / steps

  run(3)  # Warm-up.
  return run, float(cost.get("flops", float("nan"))) / 1e9


def time_windows(runs, steps, windows):
  """Seconds per step of each of `runs` over `windows` windows, the runs alternating window by window so that
  the machine's drift (this VM's speed moves by 10-50% over minutes) falls on all of them alike."""
  times = [[] for _ in runs]
  for _ in range(windows):
    for run, series in zip(runs, times):
      series.append(run(steps))
  return times


def matmul_gflops(n=2048, repeats=10):
  a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32)
  f = jax.jit(lambda a: a @ a)
  jax.block_until_ready(f(a))
  start = time.perf_counter()
  for _ in range(repeats):
    out = f(a)
  jax.block_until_ready(out)
  return 2 * n ** 3 * repeats / (time.perf_counter() - start) / 1e9


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--model", default="dcgan28")
  parser.add_argument("--batch", type=int, default=None)
  parser.add_argument("--steps", type=int, default=20)
  parser.add_argument("--windows", type=int, default=5)
  parser.add_argument("--reuse_fakes", action="store_true",
                      help="G's update reuses the D update's fakes (config.reuse_fakes; torch_twin.py --reuse_fakes).")
  parser.add_argument("--dtype", default="float32", help="Compute dtype of DCGAN models (config.model.dtype).")
  parser.add_argument("--matmul", action="store_true", help="Measure f32 matmul GFLOP/s instead.")
  parser.add_argument("--vs_torch", action="store_true",
                      help="dcgan28: also time scripts/torch_twin.py's step in this process, window by window in "
                           "alternation with ours, and report both and their ratio (needs torch).")
  args = parser.parse_args()
  device = f"{jax.devices()[0].platform}:{jax.devices()[0].device_kind} x{jax.device_count()}, {os.cpu_count()} CPUs"
  if args.matmul:
    print(json.dumps({"benchmark": "matmul_f32_2048", "gflop_per_s": round(matmul_gflops(), 1), "device": device}))
    return
  config = model_config(args.model, args.batch)
  config.reuse_fakes = args.reuse_fakes
  if args.dtype != "float32":
    if "dtype" not in config.model:
      raise SystemExit(f"gan_jax: error: --dtype applies to DCGAN models, not {args.model!r}")
    config.model.dtype = args.dtype
  run, gflop = compile_step(config)
  runs = [run]
  if args.vs_torch:
    if args.model != "dcgan28":
      raise SystemExit("gan_jax: error: --vs_torch compares dcgan28 only (scripts/torch_twin.py)")
    try:
      import torch_twin  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      raise SystemExit(f"gan_jax: error: --vs_torch needs torch (pip install torch==2.13.0): {e}") from None
    torch_step = torch_twin.make_step(config.batch_size, args.reuse_fakes)
    torch_twin.time_window(torch_step, 3)  # Warm-up.
    runs.append(lambda steps: torch_twin.time_window(torch_step, steps))
  times = time_windows(runs, args.steps, args.windows)
  seconds = float(np.median(times[0]))
  result = {"framework": f"jax {jax.__version__}", "model": args.model, "batch": config.batch_size,
            "reuse_fakes": args.reuse_fakes, "dtype": args.dtype,
            "ms_per_step": round(seconds * 1e3, 2), "images_per_s": round(config.batch_size / seconds, 1),
            "gflop_per_step": round(gflop, 3), "gflop_per_s": round(gflop / seconds, 1), "device": device}
  if args.vs_torch:
    ratios = [a / b for a, b in zip(*times)]
    result.update({"torch": torch_twin.torch.__version__, "torch_ms_per_step": round(float(np.median(times[1])) * 1e3, 2),
                   "ratio": round(float(np.median(ratios)), 3),
                   "ratio_range": [round(min(ratios), 3), round(max(ratios), 3)]})
  print(json.dumps(result))


if __name__ == "__main__":
  main()
