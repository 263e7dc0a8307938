"""Evaluation curves of several runs on one plot: a metric of eval.json against training wall-clock or step.

  python scripts/plot_evals.py --workdirs=runs/a,runs/b --labels=progressive,full --metric=fid/fid --x=wall_s \
      --out=docs/curves.png

Each workdir's eval.json lines from training (source "train") are plotted in step order; `wall_s` is the run's
wall-clock at the evaluation (train.py: since the run began, summed over resumes; compiling, sampling and the
earlier evaluations included), so runs are compared at matched time. Also prints the points as a Markdown table.
"""
import json
import os

from absl import app, flags

_WORKDIRS = flags.DEFINE_list("workdirs", None, "Run directories holding eval.json.", required=True)
_LABELS = flags.DEFINE_list("labels", None, "A legend label per workdir (default: the directory names).")
_METRIC = flags.DEFINE_string("metric", "fid/fid", "The eval.json key to plot.")
_X = flags.DEFINE_enum("x", "wall_s", ["wall_s", "step"], "The horizontal axis.")
_LOG = flags.DEFINE_bool("log", True, "A logarithmic vertical axis.")
_OUT = flags.DEFINE_string("out", None, "The PNG to write.", required=True)
_TITLE = flags.DEFINE_string("title", "", "The plot's title.")


def read_curve(workdir: str, metric: str, x: str):
  """[(x, value, step)] of the training evaluations in workdir/eval.json, in step order."""
  path = os.path.join(workdir, "eval.json")
  if not os.path.exists(path):
    raise SystemExit(f"plot_evals: error: {path} does not exist")
  with open(path) as f:
    records = [json.loads(line) for line in f if line.strip()]
  points = [(r[x], r[metric], r["step"]) for r in records
            if r.get("source", "train") == "train" and metric in r and x in r]
  if not points:
    raise SystemExit(f"plot_evals: error: no training evaluation with {metric!r} and {x!r} in {path}")
  return sorted(points, key=lambda p: p[2])


def main(argv):
  del argv
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  labels = _LABELS.value or [os.path.basename(os.path.normpath(w)) for w in _WORKDIRS.value]
  if len(labels) != len(_WORKDIRS.value):
    raise SystemExit("plot_evals: error: --labels must name every workdir")
  fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
  for workdir, label in zip(_WORKDIRS.value, labels):
    points = read_curve(workdir, _METRIC.value, _X.value)
    xs = [p[0] / 60.0 if _X.value == "wall_s" else p[0] for p in points]
    ax.plot(xs, [p[1] for p in points], marker=".", label=label)
    print(f"\n{label} ({workdir})\n\n| step | {_X.value} | {_METRIC.value} |\n| --- | --- | --- |")
    for x, value, step in points:
      print(f"| {step} | {x:g} | {value:.4g} |")
  ax.set_xlabel("training wall-clock (minutes)" if _X.value == "wall_s" else "step")
  ax.set_ylabel(_METRIC.value)
  if _LOG.value:
    ax.set_yscale("log")
  if _TITLE.value:
    ax.set_title(_TITLE.value)
  ax.grid(True, alpha=0.3)
  ax.legend()
  fig.tight_layout()
  fig.savefig(_OUT.value)
  print(f"\nwrote {_OUT.value}")


if __name__ == "__main__":
  app.run(main)
