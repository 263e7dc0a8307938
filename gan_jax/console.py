"""What a training run prints: a progress line at each log step (losses, training-only throughput, a correct ETA),
a short line per evaluation, and a closing summary with the headline metrics and the commands to go on.
"""
import time

from absl import logging


def _duration(seconds: float) -> str:
  seconds = int(round(seconds))
  hours, rest = divmod(seconds, 3600)
  return f"{hours}h {rest // 60:02d}m" if hours else f"{rest // 60}m {rest % 60:02d}s"


# Evaluators whose first few metrics are all headline: the augmentation evaluator's three accuracies.
_HEADLINE_METRICS = {"augmentation": 3}


def headline(results: dict, limit: int = 6) -> str:
  """The first metric of each evaluator ({'fid/fid': 19.1, 'kid/kid': 34.6, 'kid/kid_std': ...} -> 'fid 19.1,
  kid 34.6'), at most `limit` evaluators."""
  first = {}
  for name, value in results.items():
    evaluator, metric = name.split("/")[0], name.split("/")[-1]
    shown = first.setdefault(evaluator, [])
    if len(shown) < _HEADLINE_METRICS.get(evaluator, 1) and value is not None:
      shown.append((f"{evaluator} {metric}" if evaluator in _HEADLINE_METRICS else metric, value))
  return ", ".join(f"{metric} {value:.4g}" for shown in list(first.values())[:limit] for metric, value in shown)


class Progress:
  """Training throughput and ETA from the time spent in training steps only: the time the loop spends sampling,
  evaluating and checkpointing is set aside (`paused`), so neither the rate nor the ETA drops after an
  evaluation. The first interval (compilation) gives no rate."""

  def __init__(self, start_step: int, total_steps: int):
    self.total_steps = total_steps
    self._last_step, self._last_time, self._paused = start_step, time.perf_counter(), 0.0
    self._compiled = False  # The first interval includes compilation: no rate from it.
    self.rate = None  # Steps per second of training over the last interval.

  def paused(self):
    """Context manager around work that is not training (samples, evaluations, checkpoints)."""
    progress = self

    class _Pause:
      def __enter__(self):
        self.start = time.perf_counter()

      def __exit__(self, *exc):
        progress._paused += time.perf_counter() - self.start

    return _Pause()

  def log(self, step: int, scalars: dict) -> None:
    now = time.perf_counter()
    seconds = now - self._last_time - self._paused
    if self._compiled and step > self._last_step and seconds > 0:
      self.rate = (step - self._last_step) / seconds
    self._compiled = True
    self._last_step, self._last_time, self._paused = step, now, 0.0
    losses = ", ".join(f"{k} {v:.4g}" for k, v in sorted(scalars.items()) if k.endswith("loss"))[:120]
    speed = (f"{self.rate:.1f} steps/s, ETA {_duration((self.total_steps - step) / self.rate)}" if self.rate
             else "compiling")
    logging.info("step %d/%d (%d%%): %s | %s", step, self.total_steps, 100 * step // self.total_steps, losses, speed)


def evaluation(step: int, results: dict, num_samples: int) -> None:
  logging.info("eval at step %d (%d samples): %s", step, num_samples, headline(results))


def summary(workdir: str, step: int, seconds: float, rate, results, real_vs_real) -> None:
  """The closing lines: where the run is, its last evaluation next to real data's own scores under the same
  extractor (metrics.real_vs_real: two halves of the reference, a comparison, not a bound), and what to run
  next."""
  lines = [f"Done: step {step} in {_duration(seconds)}" + (f" ({rate:.1f} training steps/s)." if rate else ".") +
           f" Workdir: {workdir}"]
  if results:
    lines.append(f"  last evaluation: {headline(results)}")
    if real_vs_real:
      lines.append(f"  real vs real:    {headline(real_vs_real)}  (two halves of the real data, same extractor)")
  lines += [f"  samples:  python -m gan_jax.sample --workdir={workdir} --num=64 --out=samples.npz --grid=samples.png",
            f"  evaluate: python -m gan_jax.evaluate --workdir={workdir}",
            f"  curves:   tensorboard --logdir {workdir}"]
  logging.info("\n".join(lines))
