"""The training loop: `train_and_evaluate(config, workdir)`, read top to bottom like Algorithm 1 of the paper.

Sections: config and workdir; mesh; models and optimizers; state (fresh or resumed); input; compiled update
step; logging; the loop (update, log, sample, evaluate, checkpoint).
"""
import json
import os

from absl import logging
from clu import metric_writers, periodic_actions
import jax
import numpy as np

from gan_jax import config as config_lib
from gan_jax import data, images, metrics, models, optimizers, sharding, steps
from gan_jax.checkpoint import Checkpointer
from gan_jax.errors import UserError
from gan_jax.state import GANState, create_state


class JsonlWriter(metric_writers.MetricWriter):
  """Appends scalars as JSON lines to <workdir>/metrics.jsonl, for scripts and tests; other kinds are ignored."""

  def __init__(self, path):
    self._path = path

  def write_scalars(self, step, scalars):
    with open(self._path, "a") as f:
      f.write(json.dumps({"step": int(step), **{k: float(v) for k, v in scalars.items()}}) + "\n")

  def write_summaries(self, step, values, metadata=None): pass
  def write_images(self, step, images): pass  # pylint: disable=redefined-outer-name
  def write_videos(self, step, videos): pass
  def write_audios(self, step, audios, *, sample_rate): pass
  def write_texts(self, step, texts): pass
  def write_histograms(self, step, arrays, num_buckets=None): pass
  def write_hparams(self, hparams): pass
  def flush(self): pass
  def close(self): pass


def fixed_latents(seed: int, purpose: str, num: int, latent_dim: int):
  """The latents a run draws for `purpose` ("grid" or "eval") from config.seed: the same at every
  evaluation, so metrics move only when the generator does."""
  stream = {"grid": 0x5A3, "eval": 0xE7A}[purpose]
  return jax.random.normal(jax.random.fold_in(jax.random.PRNGKey(seed), stream), (num, latent_dim))


def build(config):
  """Models, optimizers and the initial state function: what training, sampling and evaluation share."""
  gan = models.make(config.model_name, config.model.to_dict())
  g_tx, d_tx = optimizers.make(config.optimizer.g.to_dict()), optimizers.make(config.optimizer.d.to_dict())
  return gan, g_tx, d_tx, lambda: create_state(gan, g_tx, d_tx, config.seed, config.pack)


def restore_or_init(config, workdir, mesh):
  """(models, g_tx, d_tx, state, checkpointer): the latest checkpoint in workdir, else a fresh state."""
  gan, g_tx, d_tx, init_fn = build(config)
  state = jax.jit(init_fn, out_shardings=sharding.replicated(mesh))()
  checkpointer = Checkpointer(workdir, config.keep_checkpoints)
  if checkpointer.latest_step() is not None:
    state = checkpointer.restore(state)
    logging.info("Resumed from %s at step %d.", checkpointer.directory, int(state.step))
  return gan, g_tx, d_tx, state, checkpointer


def append_eval_record(workdir, step, results, config) -> dict:
  """Appends one JSON line to <workdir>/eval.json and returns it: the step, every result (NaN as null) and,
  for image metrics, the extractor whose features they were computed on (`features`)."""
  record = {"step": int(step), **{k: (v if np.isfinite(v) else None) for k, v in results.items()}}
  if config.eval_features and any(name != "mode_coverage" for name in config.evals):
    record["features"] = metrics.extractor(config.eval_features).name
  with open(os.path.join(workdir, "eval.json"), "a") as f:
    f.write(json.dumps(record) + "\n")
  return record


def _prepare_workdir(config, workdir):
  try:
    os.makedirs(os.path.join(workdir, "samples"), exist_ok=True)
  except OSError as e:
    raise UserError(f"cannot create workdir {workdir!r}: {e.strerror}") from None
  if os.path.exists(os.path.join(workdir, "config.json")) and os.path.isdir(os.path.join(workdir, "checkpoints")):
    changed = config_lib.diff_for_resume(config_lib.load_json(workdir), config)
    if changed:
      raise UserError(f"{workdir} holds a run with a different config (keys {', '.join(changed)} differ); "
                      "use a new --workdir or the same config")
  if jax.process_index() == 0:
    config_lib.save_json(config, workdir)


def _check_finite(step, scalars, checkpointer):
  for name, value in scalars.items():
    if not np.isfinite(value):
      raise UserError(f"training diverged at step {step}: {name} is {value}; no checkpoint of this state was "
                      f"written, the last good one is step {checkpointer.latest_step()} in {checkpointer.directory}")


def train_and_evaluate(config, workdir: str) -> GANState:
  """Trains `config` in `workdir` until config.total_steps, resuming from its latest checkpoint."""
  # --- Config and workdir: reject a bad config before anything is built or compiled.
  config_lib.validate(config)
  _prepare_workdir(config, workdir)

  # --- Mesh: the batch is split over every device of every process; the state is replicated.
  mesh = sharding.make_mesh()
  local_batch_size = sharding.check_batch_size(config.batch_size)
  steps_per_call = config.steps_per_call
  # [num_critic_steps, B, ...], or [steps_per_call, num_critic_steps, B, ...]: the batch axis is sharded.
  input_sharding = sharding.batch_sharding(mesh, batch_axis=1 if steps_per_call == 1 else 2)

  # --- Models, optimizers and state: fresh from config.seed, or restored with step, RNG, EMA, optimizers.
  gan, g_tx, d_tx, state, checkpointer = restore_or_init(config, workdir, mesh)
  start_step = int(state.step)

  # --- Input: this process's share, continuing exactly where the restored step left the stream, two steps
  # ahead on the devices.
  train_iter = data.get_dataset(
      name=config.data.name, split=config.data.split, data_dir=config.data.data_dir,
      download=config.data.download, feature=config.data.feature, shape=gan.data_shape,
      batch_size=local_batch_size * config.pack, num_stacked=config.num_critic_steps,
      steps_per_call=steps_per_call, seed=config.seed, shuffle_buffer=config.data.shuffle_buffer,
      start_step=start_step, process_index=jax.process_index(), process_count=jax.process_count())
  train_iter = sharding.prefetch_to_device(train_iter, input_sharding)

  # --- The update step: D updates then a G update (steps_per_call of them per call), compiled once, state
  # buffers donated.
  step_fn = steps.make_train_step(config, gan, g_tx, d_tx, sharding.batch_sharding(mesh))
  train_step = jax.jit(
      step_fn if steps_per_call == 1 else steps.scan_steps(step_fn, unroll=jax.default_backend() == "cpu"),
      in_shardings=(sharding.replicated(mesh), input_sharding),
      out_shardings=(sharding.replicated(mesh), sharding.replicated(mesh)), donate_argnums=0)
  grid_latents = fixed_latents(config.seed, "grid", config.num_grid_samples, gan.latent_dim)
  eval_latents = fixed_latents(config.seed, "eval", config.eval_num_samples, gan.latent_dim)

  # --- Logging: TensorBoard and console through clu (process 0 writes), plus metrics.jsonl.
  is_chief = jax.process_index() == 0
  writer = metric_writers.create_default_writer(workdir, just_logging=not is_chief, asynchronous=False)
  if is_chief:
    writer = metric_writers.MultiWriter([writer, JsonlWriter(os.path.join(workdir, "metrics.jsonl"))])
  progress = periodic_actions.ReportProgress(num_train_steps=config.total_steps, writer=writer,
                                             every_steps=config.log_every, every_secs=None)
  pending_metrics = []

  def flush_metrics(step):
    if not pending_metrics:
      return
    fetched = jax.device_get(pending_metrics)
    scalars = {k: float(np.mean([m[k] for m in fetched])) for k in fetched[0]}
    pending_metrics.clear()
    _check_finite(step, scalars, checkpointer)
    writer.write_scalars(step, scalars)

  def write_samples(step):
    if gan.makes_images:
      picture = images.grid(images.to_uint8(steps.generate_in_batches(gan, state.ema_g, grid_latents)))
    else:  # Vectors (the 2D benchmark): a scatter plot of the evaluation latents' samples.
      picture = images.scatter(steps.generate_in_batches(gan, state.ema_g, eval_latents))
    if is_chief:
      images.save_png(picture, os.path.join(workdir, "samples", f"step_{step:07d}.png"),
                      scale=4 if gan.makes_images else 1)
    writer.write_images(step, {"samples": picture[None]})

  def run_evals(step):
    results = metrics.evaluate(config, steps.generate_in_batches(gan, state.ema_g, eval_latents))
    writer.write_scalars(step, {f"eval/{k}": v for k, v in results.items()})
    if is_chief:
      append_eval_record(workdir, step, results, config)
    return results

  # --- The loop.
  if start_step >= config.total_steps:
    logging.info("Nothing to do: step %d >= total_steps %d.", start_step, config.total_steps)
  logging.info("Training %s from step %d to %d on %d device(s).", config.model_name, start_step,
               config.total_steps, jax.device_count())
  for step in range(start_step + steps_per_call, config.total_steps + 1, steps_per_call):
    with jax.profiler.StepTraceAnnotation("train", step_num=step):
      batch = next(train_iter)
      state, step_metrics = train_step(state, batch)
    pending_metrics.append(step_metrics)
    for done in range(step - steps_per_call + 1, step + 1):
      progress(done)  # clu's progress report wants every step.
    last = step == config.total_steps
    if last or step % config.log_every == 0 or step % config.checkpoint_every == 0:
      flush_metrics(step)  # Also the divergence check, before any checkpoint of this state.
    if last or step % config.sample_every == 0:
      write_samples(step)
    if config.evals and (last or step % config.eval_every == 0):
      run_evals(step)
    if last or step % config.checkpoint_every == 0:
      checkpointer.save(state)
  checkpointer.close()
  writer.flush()
  return state
