"""Seeds x hyperparameter grid: `python -m gan_jax.sweep --config=experiments/X.py --seeds=N --workdir=W
[--grid key=v1,v2 ...]` writes W/results.csv and W/results.md, one row per grid cell with each evaluation metric
(config.evals, at the end of training) as mean +- standard error over seeds, and the cell's wall-clock time.

The seeds of a cell train together in one compiled program, vmapped over independent states on one device
(`--vmap`, the default); `--novmap` runs them one after another through the ordinary trainer (with
checkpoints under W/<cell>/seed_<s>). Seed s of a vmapped cell computes what `main` with --config.seed=s does.
"""
import csv
import itertools
import math
import os
import time

from absl import app, flags, logging
import jax
import jax.numpy as jnp
from ml_collections import config_flags
import numpy as np

from gan_jax import cli, errors
from gan_jax import workdir as workdir_lib


def parse_grid(config, specs):
  """['lr=1,2', ...] -> [('lr', [1.0, 2.0]), ...], values converted to the type of the config's value."""
  grid = []
  for spec in specs:
    key, eq, values = spec.partition("=")
    if not eq or not values:
      raise errors.UserError(f"--grid {spec!r} is not of the form key=v1,v2")
    try:
      current = _lookup(config, key)
    except (KeyError, AttributeError):
      raise errors.UserError(f"--grid names unknown config key {key!r}") from None
    convert = (lambda v: v.lower() in ("1", "true")) if isinstance(current, bool) else type(current)
    try:
      grid.append((key, [convert(v) for v in values.split(",")]))
    except ValueError:
      raise errors.UserError(f"--grid {key}: values {values!r} are not all {type(current).__name__}") from None
  return grid


def _lookup(config, dotted):
  node = config
  for part in dotted.split("."):
    node = node[part]
  return node


def train_seeds_vmapped(config, seeds):
  """(stacked final states, [eval results per seed]): the seeds trained together as one vmapped program."""
  from gan_jax import config as config_lib, steps, train  # pylint: disable=g-import-not-at-top
  objective, txs = train.build(config, objective=config_lib.validate(config))
  seed_array = jnp.asarray(seeds, jnp.int32)
  states = train.compile_once(jax.vmap(lambda seed: objective.init(seed, txs)), None, seed_array)(seed_array)
  iterators = [train.dataset(config, objective, batch_size=config.batch_size, seed=seed) for seed in seeds]
  programs = {}  # One vmapped program per stage of the objective (objective.stage_at: ProGAN's resolutions).
  for step in range(1, config.total_steps + 1):
    stage = objective.stage_at(step - 1)
    if stage not in programs:
      programs = {stage: jax.jit(jax.vmap(steps.make_train_step(objective, txs, stage=stage)), donate_argnums=0)}
    seed_batches = [next(it) for it in iterators]
    batch = {k: np.stack([b[k] for b in seed_batches]) for k in seed_batches[0]}  # [S, num_stacked, B, ...]
    states, step_metrics = programs[stage](states, batch)
    if step % config.log_every == 0 or step == config.total_steps:
      logging.info("step %d/%d: %s", step, config.total_steps,
                   ", ".join(f"{k} {np.round(v, 4)}" for k, v in jax.device_get(step_metrics).items()
                             if k.endswith("_loss")))
  results = []
  for i, seed in enumerate(seeds):
    ema = jax.tree.map(lambda x, i=i: x[i], states.ema)
    results.append(train.evaluate(config, objective, ema, seed=seed))
  return states, results


def train_seeds_sequentially(config, seeds, cell_dir):
  """([eval results per seed], [wall-clock seconds per seed]): each seed trained by train.train_and_evaluate in
  cell_dir/seed_<s>, or resumed there. A seed's results are its training's last evaluation and its seconds the
  wall-clock of that training summed over the processes that ran it (eval.json's wall_s)."""
  from gan_jax import train  # pylint: disable=g-import-not-at-top
  results, seconds = [], []
  for seed in seeds:
    seed_config = config.copy_and_resolve_references()
    seed_config.seed = seed
    workdir = os.path.join(cell_dir, f"seed_{seed}")
    if int(train.train_and_evaluate(seed_config, workdir).step) < seed_config.total_steps:
      raise Stopped(workdir)  # A signal stopped it with a checkpoint: no results yet, and no next seed.
    last = final_evaluation(workdir)
    results.append({k: (math.nan if v is None else v) for k, v in last.items() if "/" in k})  # name/metric
    seconds.append(last.get("wall_s", math.nan))
  return results, seconds


class Stopped(Exception):
  """A seed's training stopped early on SIGTERM or SIGINT (with a checkpoint); the sweep stops with it."""


def final_evaluation(workdir):
  """The last eval.json line that training wrote (not `gan_jax.evaluate`)."""
  import json  # pylint: disable=g-import-not-at-top
  with open(os.path.join(workdir, "eval.json")) as f:
    records = [json.loads(line) for line in f if line.strip()]
  return [r for r in records if r.get("source", "train") == "train"][-1]


def summarise(results):
  """{metric: (mean, standard error)} over seeds; the standard error is NaN for one seed."""
  summary = {}
  for key in results[0]:
    values = np.array([r[key] for r in results], np.float64)
    sem = values.std(ddof=1) / math.sqrt(len(values)) if len(values) > 1 else math.nan
    summary[key] = (float(values.mean()), float(sem))
  return summary


def _seconds(rows_seconds, vmapped):
  """The wall-clock cell of results.md: each seed's own, or the cell's when its seeds trained together."""
  if vmapped:
    return f"{rows_seconds[0]:.0f} s, seeds together"
  return f"{np.mean(rows_seconds):.0f} s per seed ({', '.join(f'{s:.0f}' for s in rows_seconds)})"


def write_results(workdir, grid_keys, rows):
  """rows: [(cell values, summary, seconds, number of seeds, vmapped)] -> results.csv and results.md. `seconds`
  is one value per seed (its own training's wall-clock, summed over resumes) or, for a vmapped cell, one for all
  its seeds."""
  metric_names = list(rows[0][1])
  with open(os.path.join(workdir, "results.csv"), "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow([*grid_keys, *(f"{m}_{s}" for m in metric_names for s in ("mean", "sem")), "seeds",
                     "seeds_trained_together", "wall_s"])
    for values, summary, seconds, num_seeds, vmapped in rows:
      writer.writerow([*values, *(x for m in metric_names for x in summary[m]), num_seeds, vmapped,
                       " ".join(f"{s:.1f}" for s in seconds)])
  with open(os.path.join(workdir, "results.md"), "w") as f:
    f.write("| " + " | ".join([*grid_keys, *metric_names, "seeds", "wall-clock"]) + " |\n")
    f.write("|" + " --- |" * (len(grid_keys) + len(metric_names) + 2) + "\n")
    for values, summary, seconds, num_seeds, vmapped in rows:
      cells = [f"{summary[m][0]:.3g} ± {summary[m][1]:.2g}" for m in metric_names]
      f.write("| " + " | ".join([*map(str, values), *cells, str(num_seeds),
                                 _seconds(seconds, vmapped)]) + " |\n")


def run_sweep(config, workdir, num_seeds, grid_specs, vmap=True):
  if num_seeds < 1:
    raise errors.UserError(f"--seeds must be positive, got {num_seeds}")
  if not config.evals:
    raise errors.UserError("a sweep reports config.evals, which is empty for this config")
  grid = parse_grid(config, grid_specs)
  if not vmap:  # Its seeds write checkpoints under it.
    workdir_lib.check_path(workdir)
  os.makedirs(workdir, exist_ok=True)
  seeds = [config.seed + i for i in range(num_seeds)]
  rows = []
  for values in itertools.product(*(v for _, v in grid)):
    cell = config.copy_and_resolve_references()
    cell.update_from_flattened_dict({k: v for (k, _), v in zip(grid, values)})
    name = ",".join(f"{k}={v}" for (k, _), v in zip(grid, values)) or "base"
    logging.info("Cell %s: %d seeds (%s).", name, num_seeds, "vmapped" if vmap else "sequential")
    if vmap:
      start = time.perf_counter()
      results = train_seeds_vmapped(cell, seeds)[1]
      seconds = [time.perf_counter() - start]
    else:
      results, seconds = train_seeds_sequentially(cell, seeds, os.path.join(workdir, workdir_lib.safe_name(name)))
    rows.append((values, summarise(results), seconds, num_seeds, vmap))
    write_results(workdir, [k for k, _ in grid], rows)  # After every cell: a partial sweep is not lost.
  return rows


def run():
  """The command line; its flags exist only when this module runs as a program."""
  config_flag = config_flags.DEFINE_config_file("config", None, "Experiment config file (with :arg).")
  workdir = flags.DEFINE_string("workdir", None, "Directory for results.csv and results.md.")
  num_seeds = flags.DEFINE_integer("seeds", 3, "Seeds per grid cell: config.seed + 0, ..., + N-1.")
  grid = flags.DEFINE_multi_string("grid", [], "key=v1,v2,...: a config key and the values to sweep.")
  vmap = flags.DEFINE_bool("vmap", True, "Train a cell's seeds together, vmapped on one device.")
  verbose = flags.DEFINE_bool("verbose", False, "Show tracebacks for user errors, and the libraries' log lines.")

  def main(argv):
    cli.check_command_line(argv, workdir=workdir.value)
    config = cli.load_config(config_flag)
    try:
      with cli.user_errors_reported(verbose.value):
        run_sweep(config, workdir.value, num_seeds.value, grid.value, vmap.value)
    except Stopped as stopped:
      logging.warning("Sweep stopped with a checkpoint in %s; run the same command to resume.", stopped.args[0])
    except OSError as e:
      errors.exit_with(f"cannot write results under {workdir.value}: {e}")

  app.run(main, flags_parser=cli.parse_flags)


if __name__ == "__main__":
  run()
