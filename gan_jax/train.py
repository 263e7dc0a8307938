"""The training loop: `train_and_evaluate(config, workdir)`, read top to bottom like Algorithm 1 of the paper.

Sections: config and workdir; mesh; models and optimizers; state (fresh or resumed); input; compiled update
step; logging; the loop (update, log, sample, evaluate, checkpoint).
"""
import os
import time

from absl import logging
from clu import metric_writers, periodic_actions
import jax
import numpy as np

from gan_jax import config as config_lib
from gan_jax import data, images, metrics, models, optimizers, preemption, sharding, steps, workdir as workdir_lib
from gan_jax.checkpoint import Checkpointer
from gan_jax.errors import UserError
from gan_jax.state import GANState, create_state


def fixed_latents(seed: int, purpose: str, num: int, gan) -> np.ndarray:
  """The latents [num, latent_dim] a run draws for `purpose` ("grid" or "eval") from config.seed: the same
  at every evaluation, so metrics move only when the generator does. Host numpy, the same on every process."""
  stream = {"grid": 0x5A3, "eval": 0xE7A}[purpose]
  key = jax.random.fold_in(jax.random.PRNGKey(seed), stream)
  return np.asarray(models.sample_latents(gan, key, num))


def fixed_labels(num: int, gan):
  """Balanced labels [num] (sample i asks for class i mod K) for class-conditional models, else None."""
  return np.arange(num, dtype=np.int32) % gan.num_classes if gan.num_classes else None


def eval_conditions(gan, latents):
  """What the conditional evaluators compare the samples' predicted classes with: the requested labels of a
  class-conditional model, or InfoGAN's categorical codes (None otherwise)."""
  if gan.num_classes:
    return fixed_labels(len(latents), gan)
  if gan.info_categorical:
    return np.asarray(models.categorical_codes(gan, latents))
  return None


def evaluation_samples(seed: int, num: int, gan, ema_g):
  """(samples float32 [num, ...], conditions) from the EMA generator `ema_g` at a run's fixed evaluation
  latents (and balanced labels): what every evaluation of a run (training, gan_jax.evaluate, sweeps) scores."""
  z = fixed_latents(seed, "eval", num, gan)
  return steps.generate_in_batches(gan, ema_g, z, labels=fixed_labels(num, gan)), eval_conditions(gan, z)


def build(config, lr_scale: float = 1.0):
  """Models, optimizers (learning rates times `lr_scale`, which divergence rollbacks lower) and the initial
  state function: what training, sampling and evaluation share."""
  gan = models.make(config.model_name, config.model.to_dict())
  g_tx, d_tx = (optimizers.make({**config.optimizer[which].to_dict(),
                                 "learning_rate": config.optimizer[which].learning_rate * lr_scale})
                for which in ("g", "d"))
  return gan, g_tx, d_tx, lambda: create_state(gan, g_tx, d_tx, config.seed, config.pack)


def restore_or_init(config, workdir, mesh, quarantine: bool = False, checkpointer=None):
  """(models, state, checkpointer, meta): the newest intact checkpoint in workdir (through `checkpointer`
  when given), else a fresh state.

  `meta` is what the checkpoint carries beside the state (e.g. `lr_scale` after rollbacks); {} when fresh.
  With `quarantine` (the trainer, the workdir's one writer), corrupted checkpoints skipped on the way are renamed
  and unfinished saves removed (see checkpoint.Checkpointer); without it the checkpoints are only read.
  """
  gan, _, _, init_fn = build(config)
  state = jax.jit(init_fn, out_shardings=sharding.replicated(mesh))()
  checkpointer = checkpointer or Checkpointer(workdir, config.keep_checkpoints, read_only=not quarantine)
  meta = {}
  if checkpointer.latest_step() is not None:
    state, meta = checkpointer.restore(state, quarantine=quarantine)
    logging.info("Resumed from %s at step %d.", checkpointer.directory, int(state.step))
  return gan, state, checkpointer, meta


def eval_record_fields(config, source: str) -> dict:
  """What an eval.json line says besides the step and results: its sample count, its source ("train" or
  "evaluate") and, for image metrics, the extractor whose features they were computed on (`features`)."""
  fields = {"num_samples": config.eval_num_samples, "source": source}
  if config.eval_features and any(name != "mode_coverage" for name in config.evals):
    fields["features"] = metrics.extractor(config.eval_features).name
  return fields


def _create_workdir(workdir):
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


def dataset(config, gan, *, batch_size, seed, **kwargs):
  """data.get_dataset over `config.data` for model `gan`: `batch_size` packs of config.pack samples per critic
  step; `kwargs` (steps_per_call, start_step, process_index, process_count) go to get_dataset as they are."""
  return data.get_dataset(
      name=config.data.name, split=config.data.split, data_dir=config.data.data_dir,
      download=config.data.download, feature=config.data.feature, shape=gan.data_shape,
      batch_size=batch_size * config.pack, num_stacked=config.num_critic_steps, seed=seed,
      shuffle_buffer=config.data.shuffle_buffer, cache_mb=config.data.cache_mb, **kwargs)


def train_and_evaluate(config, workdir: str) -> GANState:
  """Trains `config` in `workdir` until config.total_steps, resuming from its latest intact checkpoint.

  SIGTERM or SIGINT stops it after the current step with a checkpoint (preemption.StopRequests). NaN or Inf
  in a loss, gradient or parameter stops it with a UserError before any checkpoint of that state, or with
  config.on_divergence = "rollback" restarts from the last good checkpoint with a new RNG and the learning
  rates times config.rollback_lr_factor (at most config.max_rollbacks times).

  One process trains in a workdir at a time: a second one gets a UserError naming the first (workdir.Lock).
  """
  # --- Config and workdir: reject a bad config before anything is built or compiled; take the workdir's lock
  # before writing anything in it.
  config_lib.validate(config)
  started = time.perf_counter()
  _create_workdir(workdir)
  if jax.process_index() != 0:  # The processes of one multi-process run share the workdir; process 0 locks it.
    return _train(config, workdir, started)
  with workdir_lib.Lock(workdir):
    return _train(config, workdir, started)


def _train(config, workdir, started):
  """train_and_evaluate's body, in the workdir's lock; `started` is time.perf_counter() at the call."""
  _prepare_workdir(config, workdir)

  # --- Mesh: the batch is split over every device of every process; the state is replicated.
  mesh = sharding.make_mesh()
  local_batch_size = sharding.check_batch_size(config.batch_size)
  steps_per_call = config.steps_per_call
  # [num_critic_steps, B, ...], or [steps_per_call, num_critic_steps, B, ...]: the batch axis is sharded.
  input_sharding = sharding.batch_sharding(mesh, batch_axis=1 if steps_per_call == 1 else 2)
  gan = models.make(config.model_name, config.model.to_dict())
  data.check(name=config.data.name, split=config.data.split, data_dir=config.data.data_dir,
             download=config.data.download, feature=config.data.feature, shape=gan.data_shape,
             global_batch_size=config.batch_size * config.pack, num_classes=gan.num_classes)  # Before compiling.

  # --- Models and state: fresh from config.seed, or restored with step, RNG, EMA, optimizers; `meta` carries
  # the rollbacks so far and their learning-rate scale.
  gan, state, checkpointer, meta = restore_or_init(config, workdir, mesh, quarantine=True)
  meta = {"rollbacks": 0, "lr_scale": 1.0, "wall_s": 0.0, **{k: v for k, v in meta.items() if k != "digest"}}
  is_chief = jax.process_index() == 0
  if is_chief:  # Lines logged after the restored step by a run that was killed are moved aside: each step once.
    workdir_lib.set_aside_records_after(workdir, int(state.step))
  # Wall-clock of the training that made the state: the checkpoint's, plus this process's time since the call
  # (work lost to a kill after the last checkpoint is not counted; rollbacks are).
  wall_s = lambda base=meta["wall_s"]: base + time.perf_counter() - started
  grid_latents = fixed_latents(config.seed, "grid", config.num_grid_samples, gan)
  eval_latents = fixed_latents(config.seed, "eval", config.eval_num_samples, gan)
  grid_labels = fixed_labels(len(grid_latents), gan)

  def start(state):
    """(input iterator, compiled step) for training on from `state`: the input continues exactly where that
    step left the stream, two steps ahead on the devices; D updates then a G update (steps_per_call of them
    per call), compiled once, state buffers donated."""
    start_step = int(state.step)
    train_iter = dataset(config, gan, batch_size=local_batch_size, seed=config.seed,
                         steps_per_call=steps_per_call, start_step=start_step,
                         process_index=jax.process_index(), process_count=jax.process_count())
    _, g_tx, d_tx, _ = build(config, meta["lr_scale"])
    step_fn = steps.make_train_step(config, gan, g_tx, d_tx, sharding.batch_sharding(mesh))
    train_step = jax.jit(
        step_fn if steps_per_call == 1 else steps.scan_steps(step_fn, unroll=jax.default_backend() == "cpu"),
        in_shardings=(sharding.replicated(mesh), input_sharding),
        out_shardings=(sharding.replicated(mesh), sharding.replicated(mesh)), donate_argnums=0)
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
    writer.write_scalars(step, scalars)

  def write_samples(step):
    if gan.makes_images:
      picture = images.grid(images.to_uint8(steps.generate_in_batches(gan, state.ema_g, grid_latents,
                                                                      labels=grid_labels)))
    else:  # Vectors (the 2D benchmark): a scatter plot of the evaluation latents' samples.
      picture = images.scatter(steps.generate_in_batches(gan, state.ema_g, eval_latents))
    if is_chief:
      images.save_png(picture, os.path.join(workdir, "samples", f"step_{step:07d}.png"),
                      scale=4 if gan.makes_images else 1)
    writer.write_images(step, {"samples": picture[None]})

  def run_evals(step):
    results = metrics.evaluate(config, *evaluation_samples(config.seed, config.eval_num_samples, gan, state.ema_g))
    writer.write_scalars(step, {f"eval/{k}": v for k, v in results.items()})
    if is_chief:
      workdir_lib.append_eval_record(workdir, step, results, **eval_record_fields(config, "train"),
                                     wall_s=round(wall_s(), 1))
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
    good = restore_or_init(config, workdir, mesh, checkpointer=checkpointer)[1]
    meta["rollbacks"] += 1
    meta["lr_scale"] *= config.rollback_lr_factor
    rng = jax.random.fold_in(jax.random.PRNGKey(config.seed), 0xB0B + meta["rollbacks"])
    logging.warning("Training diverged at step %d (%s is %s): rollback %d of %d to step %d with a new RNG and "
                    "learning rates times %g.", bad_step, name, value, meta["rollbacks"], config.max_rollbacks,
                    int(good.step), meta["lr_scale"])
    writer.write_scalars(int(good.step), {"rollbacks": meta["rollbacks"], "lr_scale": meta["lr_scale"]})
    return good.replace(rng=jax.device_put(rng, sharding.replicated(mesh)))

  # --- The loop: one call of train_step per iteration; logs, samples, evaluations and checkpoints at their
  # steps; a stop request (SIGTERM, SIGINT) ends it after the call with a checkpoint.
  step = int(state.step)
  if step >= config.total_steps:
    logging.info("Nothing to do: step %d >= total_steps %d.", step, config.total_steps)
  logging.info("Training %s from step %d to %d on %d device(s).", config.model_name, step,
               config.total_steps, jax.device_count())
  try:  # The checkpointer is closed however the loop ends: a save in flight is finished, never lost.
    train_iter, train_step = start(state)
    new_progress = lambda: periodic_actions.ReportProgress(  # clu's report; it wants consecutive steps.
        num_train_steps=config.total_steps, writer=writer, every_steps=config.log_every, every_secs=None)
    progress = new_progress()
    with preemption.StopRequests() as stop:
      while step < config.total_steps:
        with jax.profiler.StepTraceAnnotation("train", step_num=step + steps_per_call):
          state, step_metrics = train_step(state, next(train_iter))
        step += steps_per_call
        pending_metrics.append((step, step_metrics))
        for done in range(step - steps_per_call + 1, step + 1):
          progress(done)  # clu's progress report wants every step.
        last, stopping = step == config.total_steps, stop.stop_requested(step // steps_per_call)
        try:
          if last or stopping or step % config.log_every == 0 or step % config.checkpoint_every == 0:
            flush_metrics(step)  # Also the divergence check, before any checkpoint of this state.
        except Diverged as diverged:
          pending_metrics.clear()
          state = roll_back(diverged)
          step = int(state.step)
          train_iter, train_step = start(state)
          progress = new_progress()
          continue
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
  return state
