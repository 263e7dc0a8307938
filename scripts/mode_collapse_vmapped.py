"""PacGAN's 2D mode-collapse benchmark with several seeds trained together (jax.vmap), without TensorFlow or TFDS.

  python scripts/mode_collapse_vmapped.py [--experiments=gan_ring,pacgan4_grid] [--steps=5000] [--seeds=10]
                                          [--samples=2500] [--steps_per_call=100] [--max_train_s=S]

For each experiment (experiments/<name>.py, a config of experiments/mode_collapse.py), `--seeds` seeds
(config.seed + 0, ..., + S-1) train together as one program: jax.vmap over objective.init and over
steps.make_train_step's step, `--steps_per_call` steps per host call in a lax.scan. The data are the mixture's
100,000 points (data/mixture_points.py: the TFDS dataset's points, made in numpy), on the device; each step of each
seed draws its batch from them uniformly with replacement (gan_jax.sweep's vmapped cells read the tf.data pipeline's
shuffled epochs instead: the same distribution, not the same batches). Then each seed's generator (config.ema_decay
is 0: G itself) samples `--samples` points at the run's evaluation latents (objective.conditions with the key
train.py's evaluations use) and mode_coverage scores them (PacGAN, Lin et al. 2018, Table 1: modes covered,
high-quality samples, reverse KL).

With --max_train_s an experiment's training stops after the first call past that many seconds (a time limit for a
lent GPU): its line gives the steps trained.

One JSON line per experiment: check ("mode_collapse:<experiment>"), status, experiment, data, seeds, steps (trained),
steps_requested, batch (packs per update), pack, samples_per_seed, steps_per_call, compile_s, train_s (training
after compilation), steps_per_s (steps of all seeds together per second), seed_steps_per_s (steps_per_s x seeds),
eval_s, num_modes, modes_covered / high_quality_pct / reverse_kl as {mean, sem, n} over the seeds (sem null for one
seed; reverse KL over the seeds with high-quality samples, n of them; null where none), per_seed (each seed's three
values), device_kind, platform, jax, device.
"""
import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import benchmark  # noqa: E402  (scripts/benchmark.py: build and device_fields)

_DATA_STREAM = 0xDA7A


def load_config(name, steps):
  from gan_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "experiments", f"{name}.py")
  if not os.path.exists(path):
    benchmark.usage_error(f"--experiments: no experiments/{name}.py")
  config = config_lib.load_experiment(path)
  if "mode_coverage" not in config.evals:
    benchmark.usage_error(f"--experiments: {name} is not a mode-collapse experiment (config.evals has no "
                          "mode_coverage)")
  config.total_steps = steps
  return config


def train_seeds(config, objective, txs, seeds, steps, steps_per_call, max_train_s=None):
  """(stacked final states, steps trained, compile seconds, training seconds): `seeds` trained together for `steps`
  steps, or fewer where `max_train_s` seconds of training end it at a call's boundary."""
  from gan_jax import steps as steps_lib  # pylint: disable=g-import-not-at-top
  from gan_jax.data import mixture_points  # pylint: disable=g-import-not-at-top
  points = jnp.asarray(mixture_points.sample(config.data.name)[0])    # [100000, 2]
  examples, num_stacked = objective.batch_layout(config.batch_size)
  train_step = steps_lib.make_train_step(objective, txs)

  def one_seed(state, data_key):
    """steps_per_call steps of one seed; batches {"x": [num_stacked, examples, 2]} drawn from the points."""
    def body(state, key):
      index = jax.random.randint(key, (num_stacked, examples), 0, points.shape[0])
      state, metrics = train_step(state, {"x": points[index]})
      return state, metrics
    state, metrics = jax.lax.scan(body, state, jax.random.split(data_key, steps_per_call))
    return state, jax.tree.map(lambda m: m[-1], metrics)

  start = time.perf_counter()
  seed_array = jnp.asarray(seeds, jnp.int32)
  states = jax.jit(jax.vmap(lambda seed: objective.init(seed, txs)))(seed_array)
  data_keys = jax.vmap(lambda seed: jax.random.fold_in(jax.random.PRNGKey(seed), _DATA_STREAM))(seed_array)
  call_keys = lambda i: jax.vmap(lambda key: jax.random.fold_in(key, i))(data_keys)
  chunk = jax.jit(jax.vmap(one_seed), donate_argnums=0).lower(states, call_keys(0)).compile()
  compile_s = time.perf_counter() - start
  start, done = time.perf_counter(), 0
  while done < steps:
    states, metrics = chunk(states, call_keys(done // steps_per_call))
    done += steps_per_call
    if max_train_s is not None:
      jax.block_until_ready(metrics)
      if time.perf_counter() - start > max_train_s:
        break
  jax.block_until_ready((states, metrics))
  return states, done, compile_s, time.perf_counter() - start


def summary(values):
  """{mean, sem, n} of the finite values (sem null below two; mean null for none)."""
  finite = [v for v in values if v is not None and math.isfinite(v)]
  n = len(finite)
  mean = float(np.mean(finite)) if n else None
  sem = float(np.std(finite, ddof=1) / math.sqrt(n)) if n > 1 else None
  return {"mean": None if mean is None else round(mean, 4), "sem": None if sem is None else round(sem, 4), "n": n}


def run_experiment(name, args):
  from gan_jax import objectives  # pylint: disable=g-import-not-at-top
  from gan_jax.data import mixture_points  # pylint: disable=g-import-not-at-top
  from gan_jax.metrics.mode_coverage import mode_coverage  # pylint: disable=g-import-not-at-top
  config = load_config(name, args.steps)
  objective, txs = benchmark.build(config)
  seeds = [config.seed + i for i in range(args.seeds)]
  states, steps, compile_s, train_s = train_seeds(config, objective, txs, seeds, args.steps, args.steps_per_call,
                                                  args.max_train_s)
  start = time.perf_counter()
  modes, sigma = mixture_points.MIXTURES[config.data.name]
  per_seed = []
  for i, seed in enumerate(seeds):
    ema = jax.tree.map(lambda x, i=i: x[i], states.ema)
    conditions = objectives.fixed_conditions(objective, seed, "eval", args.samples)
    scores = mode_coverage(objective.generate(ema, conditions), modes, sigma)
    per_seed.append({k: (round(v, 4) if math.isfinite(v) else None) for k, v in scores.items()})
  eval_s = time.perf_counter() - start
  steps_per_s = steps / train_s
  return {"check": f"mode_collapse:{name}", "status": "ok", "experiment": name, "data": config.data.name,
          "seeds": args.seeds, "steps": steps, "steps_requested": args.steps, "batch": config.batch_size,
          "pack": config.pack,
          "samples_per_seed": args.samples, "steps_per_call": args.steps_per_call, "compile_s": round(compile_s, 1),
          "train_s": round(train_s, 2), "steps_per_s": round(steps_per_s, 1),
          "seed_steps_per_s": round(steps_per_s * args.seeds, 1), "eval_s": round(eval_s, 1),
          "num_modes": len(modes), **{k: summary([s[k] for s in per_seed]) for k in per_seed[0]},
          "per_seed": {k: [s[k] for s in per_seed] for k in per_seed[0]}, **benchmark.device_fields()}


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--experiments", default="gan_ring,pacgan4_grid",
                      help="Comma-separated names of experiments/*.py with the mode_coverage evaluator.")
  parser.add_argument("--steps", type=int, default=5000)
  parser.add_argument("--seeds", type=int, default=10)
  parser.add_argument("--samples", type=int, default=2500, help="Generated points per seed for mode_coverage.")
  parser.add_argument("--steps_per_call", type=int, default=100)
  parser.add_argument("--max_train_s", type=float, default=None,
                      help="Stop an experiment's training after the call that passes this many seconds.")
  args = parser.parse_args(argv)
  for flag in ("steps", "seeds", "samples", "steps_per_call"):
    if getattr(args, flag) < 1:
      benchmark.usage_error(f"--{flag} must be a positive integer, got {getattr(args, flag)}")
  args.steps_per_call = min(args.steps_per_call, args.steps)
  if args.steps % args.steps_per_call:
    benchmark.usage_error(f"--steps ({args.steps}) must be a multiple of --steps_per_call ({args.steps_per_call})")
  names = args.experiments.split(",")
  configs = [load_config(name, args.steps) for name in names]  # Every name checked before anything compiles.
  del configs
  for name in names:
    print(json.dumps(run_experiment(name, args)), flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
