"""The training step, for every objective: its phases in order, then the EMA of the sampled networks.

`make_train_step(objective, txs)` returns train_step(state, batch) -> (state, metrics), a pure function of its
inputs ready for jax.jit: phase i gets the key fold_in(fold_in(rng, step), i) and runs when its interval allows
(objectives.Phase), each passing what later phases need in a `carry` dict; then every sampled network's EMA
moves towards its new variables, the step counter advances, and every network's parameter norm is logged (a NaN
or Inf in any parameter shows there: train.py's divergence check). The EMA's decay is config.ema_decay warmed up
(ema_decay_at) or, with config.ema_kimg, StyleGAN2-ADA's half-life in images (half_life_decay).
"""
import jax
import jax.numpy as jnp
import optax

from gan_jax.state import TrainState


def apply_gradients(state: TrainState, name: str, grads, tx: optax.GradientTransformation, **changes) -> TrainState:
  """Network `name` updated by optimizer `tx` from `grads`; `changes` replace other fields of it (its new
  collections)."""
  net = state.nets[name]
  updates, opt_state = tx.update(grads, net.opt_state, net.params)
  return state.replace_net(name, params=optax.apply_updates(net.params, updates), opt_state=opt_state, **changes)


def ema_decay_at(step, decay):
  """Warm-up as tf.train.ExponentialMovingAverage(num_updates=step): min(decay, (1 + t) / (10 + t)).

  Early samples then follow the trained generator instead of its random initialisation.
  """
  step = jnp.asarray(step, jnp.float32)
  return jnp.minimum(decay, (1.0 + step) / (10.0 + step))


def half_life_decay(step, batch_size: int, ema_kimg: float, ema_rampup: float = 0.0):
  """StyleGAN2-ADA's EMA (training_loop.py): the decay whose half-life is ema_kimg thousand images,
  0.5 ** (batch_size / ema_nimg), with ema_nimg = min(1000 ema_kimg, ema_rampup x images seen before this step)
  when ema_rampup > 0 (so the first step copies the generator)."""
  ema_nimg = jnp.float32(ema_kimg * 1000.0)
  if ema_rampup:
    ema_nimg = jnp.minimum(ema_nimg, jnp.asarray(step, jnp.float32) * batch_size * ema_rampup)
  return jnp.power(0.5, batch_size / jnp.maximum(ema_nimg, 1e-8))


def ema_update(ema, new, decay):
  return jax.tree.map(lambda e, n: decay * e + (1.0 - decay) * n, ema, new)


def moved_ema(ema: dict, variables: dict, decay, copies=()) -> dict:
  """A network's EMA variables moved towards its `variables`; the collections named in `copies` are copied."""
  return {k: v if k in copies else ema_update(ema[k], v, decay) for k, v in variables.items()}


def _lazily(phase, state, batch, key, carry, active=None):
  """`phase` on the steps whose index is a multiple of phase.every; on the others its metrics are zeros (logged
  as such: a lazy phase's metrics are meaningful on its own steps only). A lazy phase reads the carry, but what it
  adds is not passed on: the phases after it cannot rely on a phase that may not have run. `active` (a bool known
  when tracing, see make_train_step) runs or skips it outright instead of under lax.cond."""
  run = lambda state: phase.run(state, batch, key, carry)[:2]
  _, metric_shapes = jax.eval_shape(run, state)
  skip = lambda state: (state, jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), metric_shapes))
  if active is None:
    state, metrics = jax.lax.cond(state.step % phase.every == 0, run, skip, state)
  else:
    state, metrics = run(state) if active else skip(state)
  return state, metrics, carry


def lazy_intervals(objective, txs) -> dict:
  """{phase name: its interval} of the objective's lazy phases (every > 1)."""
  return {p.name: p.every for p in objective.phases(txs) if p.every > 1}


def active_lazy_phases(intervals: dict, step: int) -> frozenset:
  """The lazy phases that run at `step` (a multiple of their interval)."""
  return frozenset(name for name, every in intervals.items() if step % every == 0)


def make_train_step(objective, txs, batch_sharding=None, active=None, stage=None):
  """train_step(state, batch) -> (state, metrics) of `objective` with optimizers `txs` {network name: tx}.
  `batch_sharding` (a NamedSharding over the batch axis) keeps what the phases draw data-parallel.

  Lazy phases run under lax.cond on the step number, or, with `active` (a set of phase names: active_lazy_phases
  of the step the program will run), exactly those run and the others are skipped, with no conditional in the
  program. XLA's CPU backend runs convolutions inside a conditional 10-16 times slower (StyleGAN2's 16x16 step: R1
  in a cond 2.5 s, alone 0.15 s), so on CPUs the trainer compiles one program per pattern of lazy phases and picks
  it on the host, as the authors' PyTorch loop picks phases (StepPrograms). `stage` (objective.stage_at of the
  step) picks the phases of an objective whose step changes as training goes on (ProGAN's resolutions)."""
  phases = objective.phases(txs, batch_sharding) if stage is None else objective.stage_phases(txs, batch_sharding,
                                                                                             stage)
  config = objective.config
  ema_kimg = getattr(config, "ema_kimg", 0.0)

  def decay_at(step):
    if ema_kimg:
      decay = half_life_decay(step, config.batch_size, ema_kimg, config.ema_rampup)
    else:
      decay = ema_decay_at(step, config.ema_decay)
    ema_start = getattr(config, "ema_start", 0)  # A copy of G on the updates before ema_start (BigGAN-PyTorch's
    # utils.ema: its iteration count starts at 1 where this step number starts at 0).
    return decay if not ema_start else jnp.where(step + 1 < ema_start, 0.0, decay)

  def train_step(state: TrainState, batch):
    step_key = jax.random.fold_in(state.rng, state.step)
    metrics, carry = {}, {}
    for index, phase in enumerate(phases):
      key = jax.random.fold_in(step_key, index)
      if phase.every == 1:
        state, phase_metrics, carry = phase.run(state, batch, key, carry)
      else:
        state, phase_metrics, carry = _lazily(phase, state, batch, key, carry,
                                              None if active is None else phase.name in active)
      metrics.update(phase_metrics)
    decay = decay_at(state.step)
    # EMA entries without a network of their name (a frozen encoder the sampled networks read) stay as they are.
    state = state.replace(ema={name: moved_ema(ema, state.variables(name), decay, objective.ema_copies)
                               if name in state.nets else ema for name, ema in state.ema.items()},
                          step=state.step + 1)
    norms = {f"{name}_param_norm": optax.global_norm(net.params) for name, net in state.nets.items()}
    return state, {**metrics, **norms}

  return train_step


class StepPrograms:
  """The trainer's compiled step: one program per pattern, over the steps of a call, of the objective's stage
  (objective.stage_at, make_train_step's `stage`) and, with `host_dispatch` (on CPUs), of the active lazy phases
  (make_train_step's `active`; without it, on accelerators, lazy phases run under lax.cond). Each is compiled by
  `compile_fn(list of K step functions)` when first needed, the same function object where steps share their
  pattern, and picked by the call's first step number. With one stage and no lazy phase there is one program, the
  plain step. A program whose stage is over is dropped (stages do not come back)."""

  def __init__(self, objective, txs, batch_sharding, steps_per_call: int, compile_fn, host_dispatch: bool = True):
    self.objective, self.txs, self.batch_sharding = objective, txs, batch_sharding
    self.steps_per_call, self.compile_fn = steps_per_call, compile_fn
    self.intervals = lazy_intervals(objective, txs) if host_dispatch else {}
    self.programs = {}

  def pattern(self, first_step: int) -> tuple:
    """((stage, active lazy phases or None), ...) of the call's steps."""
    steps = range(first_step, first_step + self.steps_per_call)
    return tuple((self.objective.stage_at(s), active_lazy_phases(self.intervals, s) if self.intervals else None)
                 for s in steps)

  def __call__(self, state, batch, first_step: int):
    pattern = self.pattern(first_step)
    if pattern not in self.programs:
      stages = {stage for stage, _ in pattern}
      self.programs = {p: fn for p, fn in self.programs.items() if {stage for stage, _ in p} & stages}
      made = {}
      for key in pattern:
        if key not in made:
          made[key] = make_train_step(self.objective, self.txs, self.batch_sharding, active=key[1], stage=key[0])
      self.programs[pattern] = self.compile_fn([made[key] for key in pattern])
    return self.programs[pattern](state, batch)


def unrolled_steps(step_fns):
  """The K step functions `step_fns` one after the other in one call: (state, batch with a leading axis K) ->
  (state, metrics stacked [K, ...])."""
  def unrolled(state, batches):
    metrics = []
    for i, step_fn in enumerate(step_fns):
      state, step_metrics = step_fn(state, jax.tree.map(lambda x, i=i: x[i], batches))
      metrics.append(step_metrics)
    return state, jax.tree.map(lambda *m: jnp.stack(m), *metrics)
  return unrolled


def scan_steps(train_step, unroll: bool = False):
  """K training steps in one call: (state, batch with a leading axis K) -> (state, metrics stacked [K, ...]).

  One compiled program, so the host dispatches once per K steps: a `jax.lax.scan` over the steps, or with
  `unroll` the K steps written out (K times the compile time; for CPUs, whose backend runs convolutions
  inside a loop several times slower, see objectives/gan.py's d_main).
  """
  def unrolled(state, batches):
    return unrolled_steps([train_step] * jax.tree.leaves(batches)[0].shape[0])(state, batches)

  return unrolled if unroll else (lambda state, batches: jax.lax.scan(train_step, state, batches))
