"""The training loop: `train_and_evaluate(config, workdir)`, read top to bottom like Algorithm 1 of the paper.

Sections: config and workdir; mesh; models and optimizers; state (fresh or resumed); input; compiled update
step; logging; the loop (update, log, sample, evaluate, checkpoint).
"""
import collections
import os
import time

from absl import logging
from clu import metric_writers
import jax
import numpy as np

from gan_jax import config as config_lib
from gan_jax import console, data, images, metrics, models, objectives, optimizers, preemption, sharding, steps
from gan_jax import workdir as workdir_lib
from gan_jax.checkpoint import Checkpointer
from gan_jax.errors import UserError
from gan_jax.state import TrainState


fixed_conditions = objectives.fixed_conditions

# Training calls dispatched ahead of the devices at most. JAX dispatches asynchronously: on an accelerator the loop
# could run ahead by up to config.log_every calls (until the next metrics fetch), and a SIGTERM's checkpoint would
# wait for all of them, where a preemption notice gives about 30 s. Two calls in flight keep the next dispatch and
# the input's transfer overlapping the current step. (On this project's CPU the lag was small either way: SIGTERM
# to exit of dcgan_digits 4.9 s with the bound, 6.9 s without.)
MAX_IN_FLIGHT = 2


def evaluation_samples(objective, seed: int, num: int, ema: dict):
  """(samples float32 [num, ...], what the conditional evaluators compare them with) from the EMA networks `ema`
  at a run's fixed evaluation conditions: what every evaluation of a run (training, gan_jax.evaluate, sweeps)
  scores."""
  conditions = fixed_conditions(objective, seed, "eval", num)
  return objective.generate(ema, conditions), objective.evaluation_targets(conditions)


def evaluate(config, objective, ema: dict, seed=None) -> dict:
  """{evaluator/metric: value} of config.evals on the samples of `ema` (a run's EMA networks)."""
  seed = config.seed if seed is None else seed
  samples, targets = evaluation_samples(objective, seed, config.eval_num_samples, ema)
  synthetic = None
  if "augmentation" in config.evals:  # Its own count of class-balanced samples: m = synthetic_ratio x n.
    from gan_jax.metrics import augmentation  # pylint: disable=g-import-not-at-top
    images, synthetic_targets = evaluation_samples(objective, seed, augmentation.num_synthetic(config), ema)
    synthetic = (images, synthetic_targets["labels"], seed)
  grouped = objective.diversity_samples(ema, seed) if "diversity" in config.evals else None
  return metrics.evaluate(config, samples, targets, objective.reference_source(), synthetic, grouped)


def build(config, lr_scale: float = 1.0, objective=None):
  """(objective, optimizers {network: tx}) with learning rates times `lr_scale` (which divergence rollbacks
  lower): what training, sampling and evaluation share. `objective`: the one config_lib.validate returned."""
  objective = objective or objectives.make(config, models.make(config.model_name, config.model.to_dict()))
  return objective, optimizers.for_networks(config, objective.networks, lr_scale, objective.lazy_intervals())


def compile_once(fn, out_shardings=None, *args):
  """fn jitted and compiled for one call on `args`. On a CPU, LLVM's full optimisation of the random-number
  kernels takes most of the compile time of an initialiser (8 jax.random.normal of different shapes: 8.2 s; at
  backend optimisation level 1: 1.1 s; a CycleGAN's four networks: 14.6 s) and buys nothing for a program run
  once. At level 1 every golden kept its bits but the projection experiments', whose losses moved by 1e-7
  relative; level 0 moves erf_inv's rounding in every initialiser. The golden tests pin what it gives."""
  lowered = jax.jit(fn, out_shardings=out_shardings).lower(*args)
  options = {"xla_backend_optimization_level": 1} if jax.default_backend() == "cpu" else None
  return lowered.compile(compiler_options=options) if options else lowered.compile()


def restore_or_init(config, workdir, mesh, objective=None, quarantine: bool = False, checkpointer=None):
  """(objective, state, checkpointer, meta): the newest intact checkpoint in workdir (through `checkpointer`
  when given), else a fresh state.

  `meta` is what the checkpoint carries beside the state (e.g. `lr_scale` after rollbacks); {} when fresh.
  With `quarantine` (the trainer, the workdir's one writer), corrupted checkpoints skipped on the way are renamed
  and unfinished saves removed (see checkpoint.Checkpointer); without it the checkpoints are only read.
  """
  objective, txs = build(config, objective=objective)
  state = compile_once(lambda: objective.init(config.seed, txs), sharding.replicated(mesh))()
  checkpointer = checkpointer or Checkpointer(workdir, config.keep_checkpoints, read_only=not quarantine)
  meta = {}
  if checkpointer.latest_step() is not None:
    state, meta = checkpointer.restore(state, quarantine=quarantine)
    if quarantine:
      logging.info("Resumed from %s at step %d.", checkpointer.directory, int(state.step))
  return objective, state, checkpointer, meta


def eval_record_fields(config, source: str) -> dict:
  """What an eval.json line says besides the step and results: its sample count, its source ("train" or
  "evaluate") and, for image metrics, the extractor whose features they were computed on (`features`)."""
  fields = {"num_samples": config.eval_num_samples, "source": source}
  if config.eval_features and any(name != "mode_coverage" for name in config.evals):
    fields["features"] = metrics.extractor(config.eval_features).name
  return fields


def _create_workdir(workdir):
  workdir_lib.check_path(workdir)
  try:
    os.makedirs(workdir, exist_ok=True)
  except OSError as e:
    raise UserError(f"cannot create workdir {workdir!r}: {e.strerror}") from None


def _prepare_workdir(config, workdir):
  os.makedirs(os.path.join(workdir, "samples"), exist_ok=True)
  if os.path.exists(os.path.join(workdir, "config.json")) and os.path.isdir(os.path.join(workdir, "checkpoints")):
    changed = config_lib.diff_for_resume(config_lib.load_json(workdir), config)
    if changed:
      raise UserError(f"{workdir} holds a run with a different config (keys {', '.join(changed)} differ); "
                      "use a new --workdir or the same config")
  if jax.process_index() == 0:
    try:
      config_lib.save_json(config, workdir)
    except OSError as e:
      raise UserError(f"cannot write {os.path.join(workdir, 'config.json')}: {e.strerror}") from None


def first_non_finite(pending):
  """(step, metric name, value) of the earliest NaN or Inf among `pending` [(last step, metrics)], where a
  call's metrics hold one value per step it ran (steps_per_call), else None."""
  for last_step, step_metrics in pending:
    values = {k: np.atleast_1d(np.asarray(v)) for k, v in step_metrics.items()}
    for i in range(len(next(iter(values.values())))):
      for name, v in values.items():
        if not np.isfinite(v[i]):
          return last_step - len(v) + 1 + i, name, float(v[i])
  return None


class Diverged(Exception):
  """NaN or Inf in the logged losses, gradient norms or parameter norms (raised inside the loop)."""


def dataset(config, objective, *, batch_size, seed, **kwargs):
  """data.get_dataset over the objective's sources: `batch_size` is the batch of one update (the plain GAN's
  packs); `kwargs` (steps_per_call, start_step, process_index, process_count) go to get_dataset as they are."""
  examples, num_stacked = objective.batch_layout(batch_size)
  return data.get_dataset(tuple(objective.sources().values()), batch_size=examples, num_stacked=num_stacked,
                          seed=seed, **kwargs)


def train_and_evaluate(config, workdir: str, objective=None) -> TrainState:
  """Trains `config` in `workdir` until config.total_steps, resuming from its latest intact checkpoint.
  `objective`, when given, is what config_lib.validate(config) returned (the command line validates first).

  SIGTERM or SIGINT stops it after the current step with a checkpoint (preemption.StopRequests). NaN or Inf
  in a loss, gradient or parameter stops it with a UserError before any checkpoint of that state, or with
  config.on_divergence = "rollback" restarts from the last good checkpoint with a new RNG and the learning
  rates times config.rollback_lr_factor (at most config.max_rollbacks times).

  One process trains in a workdir at a time: a second one gets a UserError naming the first (workdir.Lock).
  """
  # --- Config, data and workdir: reject a bad config or unavailable data before anything is written or compiled;
  # take the workdir's lock before writing anything in it.
  objective = config_lib.validate(config) if objective is None else objective
  objective.check_sources(objective.batch_layout(config.batch_size)[0])
  started = time.perf_counter()  # The run's wall-clock counts from here: preparing a dataset is not training.
  _create_workdir(workdir)
  if jax.process_index() != 0:  # The processes of one multi-process run share the workdir; process 0 locks it.
    return _train(config, objective, workdir, started)
  with workdir_lib.Lock(workdir):
    return _train(config, objective, workdir, started)


def _train(config, objective, workdir, started):
  """train_and_evaluate's body, in the workdir's lock; `started` is time.perf_counter() at the call."""
  _prepare_workdir(config, workdir)

  # --- Mesh: the batch is split over every device of every process; the state is replicated.
  mesh = sharding.make_mesh()
  local_batch_size = sharding.check_batch_size(config.batch_size)
  steps_per_call = config.steps_per_call
  # [num_stacked, B, ...], or [steps_per_call, num_stacked, B, ...]: the batch axis is sharded.
  input_sharding = sharding.batch_sharding(mesh, batch_axis=1 if steps_per_call == 1 else 2)

  # --- State: fresh from config.seed, or restored with step, RNG, networks, EMA, extra; `meta` carries the
  # rollbacks so far, their learning-rate scale and the run's wall-clock.
  objective, state, checkpointer, meta = restore_or_init(config, workdir, mesh, objective, quarantine=True)
  meta = {"rollbacks": 0, "lr_scale": 1.0, "wall_s": 0.0, **{k: v for k, v in meta.items() if k != "digest"}}
  is_chief = jax.process_index() == 0
  if is_chief:  # Lines logged after the restored step by a run that was killed are moved aside: each step once.
    workdir_lib.set_aside_records_after(workdir, int(state.step))
  # Wall-clock of the training that made the state: the checkpoint's, plus this process's time since the call
  # (work lost to a kill after the last checkpoint is not counted; rollbacks are).
  wall_s = lambda base=meta["wall_s"]: base + time.perf_counter() - started
  grid_conditions = fixed_conditions(objective, config.seed, "grid", config.num_grid_samples)
  eval_conditions = fixed_conditions(objective, config.seed, "eval", config.eval_num_samples)

  def start(state):
    """(input iterator, compiled step) for training on from `state`: the input continues exactly where that
    step left the stream, two steps ahead on the devices; the objective's phases (steps_per_call steps per
    call), compiled once, state buffers donated."""
    train_iter = dataset(config, objective, batch_size=local_batch_size, seed=config.seed,
                         steps_per_call=steps_per_call, start_step=int(state.step),
                         process_index=jax.process_index(), process_count=jax.process_count())
    txs = build(config, meta["lr_scale"], objective)[1]
    jit = lambda fn: jax.jit(fn, in_shardings=(sharding.replicated(mesh), input_sharding),
                             out_shardings=(sharding.replicated(mesh), sharding.replicated(mesh)), donate_argnums=0)
    # On CPUs lazy phases are picked on the host and K steps unrolled; elsewhere lazy phases run under lax.cond and
    # K steps in a lax.scan (unrolled where a call spans two of the objective's stages; steps.StepPrograms).
    cpu = jax.default_backend() == "cpu"
    compile_fn = lambda fns: jit(fns[0] if len(fns) == 1 else steps.scan_steps(fns[0])
                                 if not cpu and all(fn is fns[0] for fn in fns) else steps.unrolled_steps(fns))
    train_step = steps.StepPrograms(objective, txs, sharding.batch_sharding(mesh), steps_per_call, compile_fn,
                                    host_dispatch=cpu)
    return sharding.prefetch_to_device(train_iter, input_sharding), train_step

  # --- Logging: TensorBoard and console through clu (process 0 writes), plus metrics.jsonl.
  writer = metric_writers.create_default_writer(workdir, just_logging=not is_chief, asynchronous=False)
  if is_chief:
    writer = metric_writers.MultiWriter([writer, workdir_lib.JsonlWriter(os.path.join(workdir, "metrics.jsonl"))])
  pending_metrics = []  # (last step, metrics of one call) since the last flush, still on the devices.

  def flush_metrics(step):
    """Writes the mean of the pending metrics at `step`; raises Diverged on a NaN or Inf among them."""
    if not pending_metrics:
      return
    fetched = jax.device_get(pending_metrics)
    pending_metrics.clear()
    bad = first_non_finite(fetched)
    if bad:
      raise Diverged(*bad)
    scalars = {k: float(np.mean([m[k] for _, m in fetched])) for k in fetched[0][1]}
    progress.log(step, scalars)
    writer.write_scalars(step, scalars)
    if progress.rate:  # Training only: samples, evaluations and checkpoints set aside.
      writer.write_scalars(step, {"steps_per_sec": progress.rate})

  def write_real_grid():
    """samples/real.png once: real data shown as the samples are, to compare them at a glance."""
    path = os.path.join(workdir, "samples", "real.png")
    if is_chief and not os.path.exists(path):
      picture = objective.real_picture(max(config.num_grid_samples, 1), config.eval_num_samples)
      if picture is not None:
        images.save_png(picture, path, scale=objective.picture_scale)

  def write_samples(step):
    picture = objective.picture(state.ema, grid_conditions, eval_conditions)
    if is_chief:
      images.save_png(picture, os.path.join(workdir, "samples", f"step_{step:07d}.png"), scale=objective.picture_scale)
    writer.write_images(step, {"samples": picture[None]})

  def run_evals(step):
    results = evaluate(config, objective, state.ema)
    writer.write_scalars(step, {f"eval/{k}": v for k, v in results.items()})
    console.evaluation(step, results, config.eval_num_samples)
    if is_chief:
      workdir_lib.append_eval_record(workdir, step, results, **eval_record_fields(config, "train"),
                                     wall_s=round(wall_s(), 1))
    last_evaluation.update(results)
    return results

  def roll_back(diverged: Diverged):
    """The last good checkpoint's state (or a fresh one) with a new RNG; lower learning rates from now on."""
    bad_step, name, value = diverged.args
    if config.on_divergence != "rollback" or meta["rollbacks"] >= config.max_rollbacks:
      tried = f" after {meta['rollbacks']} rollback(s)" if config.on_divergence == "rollback" else ""
      raise UserError(f"training diverged at step {bad_step}: {name} is {value}{tried}; no checkpoint of this "
                      f"state was written, the last good one is step {checkpointer.latest_step()} in "
                      f"{checkpointer.directory}") from None
    checkpointer.wait()  # Any save in flight is the last good checkpoint.
    good = restore_or_init(config, workdir, mesh, objective, checkpointer=checkpointer)[1]
    meta["rollbacks"] += 1
    meta["lr_scale"] *= config.rollback_lr_factor
    rng = jax.random.fold_in(jax.random.PRNGKey(config.seed), 0xB0B + meta["rollbacks"])
    logging.warning("Training diverged at step %d (%s is %s): rollback %d of %d to step %d with a new RNG and "
                    "learning rates times %g.", bad_step, name, value, meta["rollbacks"], config.max_rollbacks,
                    int(good.step), meta["lr_scale"])
    if is_chief:  # The steps after the good one are trained again: what was logged of them is set aside.
      workdir_lib.set_aside_records_after(workdir, int(good.step))
    writer.write_scalars(int(good.step), {"rollbacks": meta["rollbacks"], "lr_scale": meta["lr_scale"]})
    return good.replace(rng=jax.device_put(rng, sharding.replicated(mesh)))

  # --- The loop: one call of train_step per iteration; logs, samples, evaluations and checkpoints at their
  # steps; a stop request (SIGTERM, SIGINT) ends it after the call with a checkpoint.
  step = int(state.step)
  if step >= config.total_steps:
    logging.info("Nothing to do: the run in %s is at step %d of %d.", workdir, step, config.total_steps)
    checkpointer.close()
    return state
  logging.info("Training %s (objective %s) from step %d to %d on %d device(s).", config.model_name,
               config.objective, step, config.total_steps, jax.device_count())
  last_evaluation = {}
  write_real_grid()
  in_flight = collections.deque()  # The metrics of the calls dispatched and maybe not computed yet.
  try:  # The checkpointer is closed however the loop ends: a save in flight is finished, never lost.
    train_iter, train_step = start(state)
    progress = console.Progress(step, config.total_steps)
    with preemption.StopRequests() as stop:
      while step < config.total_steps:
        with jax.profiler.StepTraceAnnotation("train", step_num=step + steps_per_call):
          state, step_metrics = train_step(state, next(train_iter), step)
        step += steps_per_call
        pending_metrics.append((step, step_metrics))
        in_flight.append(step_metrics)
        if len(in_flight) > MAX_IN_FLIGHT:  # Dispatch stays at most MAX_IN_FLIGHT calls ahead of the devices.
          jax.block_until_ready(in_flight.popleft())
        last, stopping = step == config.total_steps, stop.stop_requested(step // steps_per_call)
        try:
          if last or stopping or step % config.log_every == 0 or step % config.checkpoint_every == 0:
            flush_metrics(step)  # Also the divergence check, before any checkpoint of this state.
        except Diverged as diverged:
          pending_metrics.clear()
          state = roll_back(diverged)
          step = int(state.step)
          train_iter, train_step = start(state)
          progress = console.Progress(step, config.total_steps)
          continue
        with progress.paused():  # Not training: kept out of the throughput and the ETA.
          if last or step % config.sample_every == 0:
            write_samples(step)
          if config.evals and (last or step % config.eval_every == 0):
            run_evals(step)
          if last or stopping or step % config.checkpoint_every == 0:
            checkpointer.save(state, {**meta, "wall_s": wall_s()})
        if stopping and not last:
          logging.warning("Stopped by %s at step %d with a checkpoint in %s; run the same command to resume.",
                          stop.received, step, checkpointer.directory)
          break
  finally:
    checkpointer.close()
  writer.flush()
  if is_chief and step == config.total_steps:
    real = metrics.real_vs_real(config, objective.reference_source()) if last_evaluation else {}
    console.summary(workdir, step, wall_s(), progress.rate, last_evaluation, real)
  return state
