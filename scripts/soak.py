"""Soak test: one long training run watched from outside for memory growth and leaked file descriptors.

  python scripts/soak.py --workdir=/tmp/soak [--steps=20000] [--out=docs/soak]

Runs the default experiment (experiments/dcgan_digits.py, evaluation every 1,000 steps and sample grids every
500, as configured) for --steps steps in a child process, and samples every --every seconds its resident set
size (VmRSS), its peak (VmHWM) and its open file descriptors from /proc, with the step it has logged. Writes
<out>.csv and <out>.png (RSS and descriptors against the step) and prints one JSON line: the RSS after warm-up
(the first --warmup steps, which compile, fill the data cache and the reference features) and at the end, the
growth per 1,000 steps of a line fitted after warm-up, and the descriptors' range after warm-up.

It passes (exit 0) when the RSS grows by less than --max_growth_mb over the run after warm-up, the open descriptors
at the end are within 4 of their number at the end of warm-up, and their median over the last quarter of the run
is within 2 of the first quarter's (files open for a moment while a checkpoint or a PNG is written are no leak). Linux only (/proc). Not part of the test suite: it takes minutes.
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _status_kib(pid, field):
  with open(f"/proc/{pid}/status") as f:
    for line in f:
      if line.startswith(field + ":"):
        return int(line.split()[1])
  return 0


def _last_step(workdir):
  try:
    with open(os.path.join(workdir, "metrics.jsonl"), "rb") as f:
      f.seek(max(0, os.path.getsize(f.name) - 4096))
      lines = [line for line in f.read().decode(errors="replace").splitlines() if line.startswith("{")]
    return json.loads(lines[-1])["step"] if lines else 0
  except (OSError, ValueError, KeyError):
    return 0


def watch(args):
  command = [sys.executable, "-m", "gan_jax.main", "--config=experiments/dcgan_digits.py",
             f"--workdir={args.workdir}", f"--config.total_steps={args.steps}"]
  os.makedirs(args.workdir, exist_ok=True)
  log_path = os.path.join(args.workdir, "soak_console.log")  # A file: a pipe nobody reads would fill and block it.
  with open(log_path, "w") as log:
    child = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
  rows, started = [], time.time()
  while child.poll() is None:
    try:
      rows.append({"seconds": round(time.time() - started, 1), "step": _last_step(args.workdir),
                   "rss_mb": _status_kib(child.pid, "VmRSS") / 1024, "peak_mb": _status_kib(child.pid, "VmHWM") / 1024,
                   "fds": len(os.listdir(f"/proc/{child.pid}/fd"))})
    except (FileNotFoundError, ProcessLookupError):  # It ended between poll() and the reads.
      break
    time.sleep(args.every)
  if child.returncode != 0:
    with open(log_path) as f:
      raise SystemExit(f"soak: the training run failed (exit {child.returncode}): {f.read()[-2000:]}")
  return rows


def summarise(rows, warmup, max_growth_mb):
  after = [r for r in rows if r["step"] >= warmup]
  if len(after) < 3:
    raise SystemExit(f"soak: too few samples after step {warmup} ({len(after)}); use more --steps or a smaller --every")
  steps = np.array([r["step"] for r in after], np.float64)
  rss = np.array([r["rss_mb"] for r in after])
  slope_per_1000 = float(np.polyfit(steps, rss, 1)[0] * 1000) if np.ptp(steps) > 0 else 0.0
  fds = [r["fds"] for r in after]
  summary = {"steps": int(rows[-1]["step"]), "samples": len(rows), "warmup_steps": warmup,
             "rss_mb_after_warmup": round(float(rss[0]), 1), "rss_mb_end": round(float(rss[-1]), 1),
             "rss_mb_max_after_warmup": round(float(rss.max()), 1), "peak_rss_mb": round(rows[-1]["peak_mb"], 1),
             "rss_growth_mb_per_1000_steps": round(slope_per_1000, 2),
             "fds_after_warmup": fds[0], "fds_min": min(fds), "fds_max": max(fds), "fds_end": fds[-1],
             "seconds": rows[-1]["seconds"]}
  growth = slope_per_1000 * (steps[-1] - steps[0]) / 1000
  quarter = max(1, len(fds) // 4)
  summary["fds_median_first_quarter"] = float(np.median(fds[:quarter]))
  summary["fds_median_last_quarter"] = float(np.median(fds[-quarter:]))
  # Descriptors open for a moment (a checkpoint's files, a PNG) are no leak; a count that climbs is.
  summary["passed"] = bool(growth < max_growth_mb and fds[-1] <= fds[0] + 4
                           and summary["fds_median_last_quarter"] <= summary["fds_median_first_quarter"] + 2)
  return summary


def plot(rows, warmup, path):
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot  # pylint: disable=g-import-not-at-top
  steps = [r["step"] for r in rows]
  figure, (top, bottom) = pyplot.subplots(2, 1, figsize=(7, 5), sharex=True)
  top.plot(steps, [r["rss_mb"] for r in rows], label="resident set (VmRSS)")
  top.plot(steps, [r["peak_mb"] for r in rows], "--", label="peak (VmHWM)")
  top.axvline(warmup, color="grey", lw=0.8)
  top.set_ylabel("MiB")
  top.legend(loc="lower right")
  bottom.plot(steps, [r["fds"] for r in rows])
  bottom.set_ylabel("open file descriptors")
  bottom.set_xlabel("training step (default experiment)")
  figure.tight_layout()
  figure.savefig(path, dpi=100)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--steps", type=int, default=20_000)
  parser.add_argument("--warmup", type=int, default=2_000)
  parser.add_argument("--every", type=float, default=2.0, help="seconds between samples")
  parser.add_argument("--max_growth_mb", type=float, default=50.0)
  parser.add_argument("--out", default=None, help="path prefix of the .csv and .png (default: <workdir>/soak)")
  args = parser.parse_args()
  if os.path.exists(os.path.join(args.workdir, "checkpoints")):  # A fresh run: memory from step 0.
    raise SystemExit(f"soak: {args.workdir} holds a run already; give a new --workdir")
  out = args.out or os.path.join(args.workdir, "soak")
  rows = watch(args)
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  with open(out + ".csv", "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
  plot(rows, args.warmup, out + ".png")
  summary = summarise(rows, args.warmup, args.max_growth_mb)
  print(json.dumps(summary))
  sys.exit(0 if summary["passed"] else 1)


if __name__ == "__main__":
  main()
