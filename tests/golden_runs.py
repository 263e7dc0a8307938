"""Golden numbers: every experiment's tiny run (two steps through train.train_and_evaluate) pinned as its logged
metrics and a SHA-256 digest of each part of the final state, stored in tests/golden/<experiment>.json.

A refactor keeps them bitwise. A change meant to alter numbers (a bug fix) regenerates them in a commit of its
own that says why: GAN_JAX_UPDATE_GOLDEN=1 python -m pytest -q tests -k every_experiment.

XLA's CPU code depends on the processor, the backend's optimisation level and its emitters (conftest's
XLA_FLAGS), so the digests are compared bitwise only on the kind of CPU, jax version and flags they were recorded
with; elsewhere the metrics are compared to 1e-4 and the digests are not.
"""
import json
import os
import platform

import jax
import numpy as np

from gan_jax import checkpoint

GOLDEN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")


def _cpuinfo(*fields) -> list:
  """The first value of each /proc/cpuinfo field ('' where absent or unreadable)."""
  values = dict.fromkeys(fields, "")
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        key, _, value = line.partition(":")
        if key.strip() in values and not values[key.strip()]:
          values[key.strip()] = value.strip()
  except OSError:
    pass
  return [values[field] for field in fields]


def machine() -> str:
  """The CPU (its model name, and its family and model numbers: VMs name different generations alike, "AMD
  EPYC" for a Zen 5 with AVX-512 and an older one without, and XLA compiles differently for each), jax's version
  and the suite's XLA flags."""
  name, family, model = _cpuinfo("model name", "cpu family", "model")
  cpu = f"{name} family {family} model {model}" if family else name
  flags = " ".join(flag for flag in os.environ.get("XLA_FLAGS", "").split()
                   if "optimization_level" in flag or "fusion_emitters" in flag)
  return f"{platform.machine()} {cpu} jax {jax.__version__}" + (f" {flags}" if flags else "")


def state_parts(state) -> dict:
  """{part: subtree} of a training state, named independently of the state's Python layout."""
  parts = {"step": state.step, "rng": state.rng}
  for name, net in state.nets.items():
    parts.update({f"{name}/params": net.params, f"{name}/collections": net.collections,
                  f"{name}/opt_state": net.opt_state})
  parts.update({f"ema/{name}": ema for name, ema in state.ema.items()})
  if state.extra:
    parts["extra"] = state.extra
  return parts


def record(state, metric_rows) -> dict:
  return {"machine": machine(), "metrics": metric_rows,
          "digests": {name: checkpoint.digest(part) for name, part in state_parts(state).items()}}


def check(name: str, state, metric_rows) -> None:
  """Compares a run with tests/golden/<name>.json (or writes it, with GAN_JAX_UPDATE_GOLDEN=1)."""
  path = os.path.join(GOLDEN_DIR, f"{name}.json")
  got = record(state, metric_rows)
  if os.environ.get("GAN_JAX_UPDATE_GOLDEN"):
    with open(path, "w") as f:
      json.dump(got, f, indent=1, sort_keys=True)
      f.write("\n")
    return
  with open(path) as f:
    want = json.load(f)
  assert [sorted(r) for r in got["metrics"]] == [sorted(r) for r in want["metrics"]], "logged metric names differ"
  if got["machine"] != want["machine"]:  # Another CPU: the same numbers up to its rounding.
    for g, w in zip(got["metrics"], want["metrics"]):
      for key in w:
        np.testing.assert_allclose(g[key], w[key], rtol=1e-4, atol=1e-6, err_msg=f"{name}: {key}")
    return
  assert got["metrics"] == want["metrics"], f"{name}: logged metrics differ from tests/golden/{name}.json"
  different = sorted(k for k in want["digests"] if got["digests"].get(k) != want["digests"][k])
  assert not different, f"{name}: state parts {different} differ from tests/golden/{name}.json"
