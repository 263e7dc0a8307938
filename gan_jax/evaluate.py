"""Evaluates a workdir's latest checkpoint: `python -m gan_jax.evaluate --workdir=W [--num=N] [--evals=fid,kid]
[--features=inception:FILE] [--ref_num=R] [--direction=ba] [--retrieval=DAMSM_FILE] [--split=SPLIT]`.

Runs the evaluators of the run's config (or --evals) on N samples of the EMA generator drawn from the same
fixed latents as training's evaluations (`train.evaluation_samples`), prints the results
as one JSON line and appends them to <workdir>/eval.json with the checkpoint's step. A CycleGAN run is evaluated
in the direction its config samples (A -> B by default); --direction=ba evaluates G_ba on the B test images
against the real A ones instead (with --features, an extractor of domain A), and its eval.json line says so.
--retrieval scores a text-to-image run's `r_precision` under a DAMSM trained apart from the run's too
(config.eval_retrieval); --split takes a text-to-image run's captions from another split (captioned_shapes'
`test_compositional`), and its eval.json line says so.
"""
import json

from absl import app, flags, logging

from gan_jax import cli, errors


def evaluate(workdir: str, num=None, evals=None, features=None, ref_num=None, direction=None,
             retrieval=None, split=None) -> dict:
  """The eval.json record appended for the latest checkpoint of `workdir`: step, {name/metric: value}, the
  sample count, source "evaluate" and the extractor's name (`features`) for image metrics. `ref_num` real
  examples make the reference (default: the run's config.eval_ref_num); `direction` ("ab", "ba"): a CycleGAN
  run's direction to evaluate (default: its config's); `retrieval` a DAMSM file for r_precision's `independent`
  (default: the run's config.eval_retrieval); `split` the split whose captions a text-to-image run is evaluated on
  (default: its objective_kwargs.eval_split)."""
  from gan_jax import config as config_lib, console, metrics, sharding, train  # pylint: disable=g-import-not-at-top
  from gan_jax import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  config = config_lib.load_json(workdir)
  if num is not None:
    if num < 2:
      raise errors.UserError(f"--num must be at least 2, got {num}")
    config.eval_num_samples = num
  if ref_num is not None:
    if ref_num < 2:
      raise errors.UserError(f"--ref_num must be at least 2, got {ref_num}")
    config.eval_ref_num = ref_num
  if evals is not None:
    config.evals = tuple(evals)
  if features is not None:
    config.eval_features = features
  if retrieval is not None:
    config.eval_retrieval = retrieval
  if split is not None:
    import inspect  # pylint: disable=g-import-not-at-top
    from gan_jax import objectives  # pylint: disable=g-import-not-at-top
    if "eval_split" not in inspect.signature(objectives.module(config.objective).make).parameters:
      raise errors.UserError(f"--split applies to text-to-image runs; {workdir} is a {config.objective!r} run")
    config.objective_kwargs.eval_split = split
  if direction is not None:
    if config.objective != "cyclegan":
      raise errors.UserError(f"--direction applies to CycleGAN runs; {workdir} is a {config.objective!r} run")
    config.objective_kwargs.direction = direction
  if not config.evals:
    raise errors.UserError("nothing to evaluate: the run's config.evals is empty and --evals is not given")
  objective = config_lib.validate(config)
  objective, state, checkpointer, _ = train.restore_or_init(config, workdir, sharding.make_mesh(), objective)
  checkpointer.close()
  if checkpointer.latest_step() is None:
    raise errors.UserError(f"{workdir} holds no complete checkpoint to evaluate")
  step = int(state.step)
  results = train.evaluate(config, objective, state.ema)
  fields = train.eval_record_fields(config, "evaluate")
  if direction is not None:
    fields["direction"] = direction
  if split is not None:
    fields["split"] = split
  record = workdir_lib.append_eval_record(workdir, step, results, **fields)
  real = metrics.real_vs_real(config, objective.reference_source())  # From the reference just used: no new pass.
  if real:
    logging.info("Step %d: %s\nReal vs real: %s (two halves of the real reference, same extractor)", step,
                 console.headline(results), console.headline(real))
  return record


def run():
  """The command line; its flags exist only when this module runs as a program."""
  workdir = flags.DEFINE_string("workdir", None, "Workdir of a training run (holds config.json, checkpoints/).")
  num = flags.DEFINE_integer("num", None, "Generated samples; default: the run's config.eval_num_samples.")
  evals = flags.DEFINE_list("evals", None, "Evaluators; default: the run's config.evals.")
  features = flags.DEFINE_string("features", None, "Extractor; default: the run's config.eval_features.")
  ref_num = flags.DEFINE_integer("ref_num", None, "Real examples in the reference; default: the run's "
                                 "config.eval_ref_num (all of the split when fewer).")
  direction = flags.DEFINE_enum("direction", None, ["ab", "ba"], "CycleGAN runs: the direction to evaluate, A -> B "
                                 "or B -> A; default: the run's config.objective_kwargs.direction.")
  retrieval = flags.DEFINE_string("retrieval", None, "Text to image: a DAMSM file trained apart from the run's, "
                                  "for r_precision's `independent` score; default: the run's config.eval_retrieval.")
  split = flags.DEFINE_string("split", None, "Text to image: the split whose captions the samples are drawn for "
                              "(e.g. test_compositional); default: the run's objective_kwargs.eval_split.")
  verbose = flags.DEFINE_bool("verbose", False, "Show tracebacks for user errors, and the libraries' log lines.")

  def main(argv):
    cli.check_command_line(argv, workdir=workdir.value)
    with cli.user_errors_reported(verbose.value):
      try:
        results = evaluate(workdir.value, num.value, evals.value, features.value, ref_num.value,
                           direction.value, retrieval.value, split.value)
      except OSError as e:
        # Writing eval.json or the reference cache (config.eval_cache_dir), or reading the dataset.
        raise errors.UserError(f"file error while evaluating {workdir.value}: {e}") from None
    print(json.dumps(results))

  app.run(main, flags_parser=cli.parse_flags)


if __name__ == "__main__":
  run()
