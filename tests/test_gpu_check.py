"""scripts/gpu_check.sh, the checks for a lent GPU, run here on the CPU in --smoke mode: one JSON line per check,
all present, their numbers finite; and with TensorFlow, TFDS and clu unimportable, as on the GPU machine.
"""
import importlib.util
import json
import math
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "scripts", "gpu_check.sh")
BLOCKED = ("tensorflow", "tensorflow_datasets", "clu")
DEVICE_FIELDS = ("check", "status", "device_kind", "platform", "jax", "device")


def _load_script(name):
  """scripts/<name>.py as a module (the scripts import each other from their folder)."""
  if os.path.join(REPO, "scripts") not in sys.path:
    sys.path.insert(0, os.path.join(REPO, "scripts"))
  spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, "scripts", f"{name}.py"))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def _without_tensorflow(tmp_path):
  """The environment of a Python in which `import tensorflow` (tensorflow_datasets, clu) raises ImportError: a
  sitecustomize on PYTHONPATH sets their sys.modules entries to None before anything runs."""
  site = tmp_path / "blocked_site"
  site.mkdir()
  (site / "sitecustomize.py").write_text(
      "import sys\n" + "".join(f"sys.modules[{name!r}] = None\n" for name in BLOCKED))
  env = dict(os.environ, PYTHON=sys.executable, JAX_PLATFORMS="cpu")
  env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
  return env


def _run(args, env, timeout=600):
  result = subprocess.run(["bash", SCRIPT, *args], capture_output=True, text=True, env=env, timeout=timeout,
                          cwd=REPO)
  lines = [json.loads(line) for line in result.stdout.splitlines()]  # Every stdout line is JSON.
  return result, {line["check"]: line for line in lines}, lines


def _torch_usable():
  try:
    import torch  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
    return True
  except ImportError:
    return False


def test_smoke_run_without_tensorflow_prints_every_check(tmp_path):
  """The smoke run of two models (one with a bfloat16 variant, one without), the twin and one mode-collapse
  experiment, where TensorFlow, TFDS and clu cannot be imported: exit 0, one JSON line per expected check."""
  env = _without_tensorflow(tmp_path)
  probe = subprocess.run([sys.executable, "-c", "import tensorflow"], env=env, capture_output=True, text=True)
  assert probe.returncode != 0 and "None in sys.modules" in probe.stderr  # The block holds in subprocesses.
  result, checks, lines = _run(["--smoke", "--models=dcgan28,mlp2d", "--experiments=gan_ring"], env)
  assert result.returncode == 0, result.stderr[-3000:]
  assert len(checks) == len(lines)  # Names are unique.
  twin_status = "ok" if _torch_usable() else "skipped"
  expected = {"environment": "ok", "benchmark:dcgan28:float32": "ok", "benchmark:dcgan28:bfloat16": "ok",
              "benchmark:mlp2d:float32": "ok", "benchmark:mlp2d:bfloat16": "skipped", "matmul:float32:256": "ok",
              "matmul:bfloat16:256": "ok", "torch_twin:dcgan28:float32": twin_status,
              "torch_twin:dcgan28:bfloat16": twin_status, "mode_collapse:gan_ring": "ok"}
  assert {name: line["status"] for name, line in checks.items()} == expected
  for line in lines:
    assert set(DEVICE_FIELDS) <= set(line), line
    assert line["device_kind"] and line["platform"] == "cpu"
    assert line["jax"] == jax.__version__
  assert checks["environment"]["smoke"] is True and checks["environment"]["flax"]
  for dtype in ("float32", "bfloat16"):
    bench = checks[f"benchmark:dcgan28:{dtype}"]
    assert (bench["model"], bench["dtype"], bench["batch"], bench["steps"], bench["windows"]) == (
        "dcgan28", dtype, 2, 2, 1)
    assert bench["supports_bf16"] is True
    for key in ("ms_per_step", "images_per_s", "gflop_per_step", "gflop_per_s"):
      assert math.isfinite(bench[key]) and bench[key] > 0, (key, bench)
    assert bench["ms_range"][0] <= bench["ms_per_step"] <= bench["ms_range"][1]
    assert bench["images_per_s"] == pytest.approx(2 / bench["ms_per_step"] * 1e3, rel=1e-2)
  # D's and G's passes at batch 2 on 28x28: XLA's count is some tenths of a GFLOP (0.32 measured).
  assert 0.1 < checks["benchmark:dcgan28:float32"]["gflop_per_step"] < 1.0
  assert checks["benchmark:mlp2d:float32"]["supports_bf16"] is False
  assert "float32 only" in checks["benchmark:mlp2d:bfloat16"]["reason"]
  for dtype in ("float32", "bfloat16"):
    assert checks[f"matmul:{dtype}:256"]["gflop_per_s"] > 0
    twin = checks[f"torch_twin:dcgan28:{dtype}"]
    if twin_status == "ok":
      assert twin["ms_per_step"] > 0 and twin["platform"] == "cpu" and twin["tf32"] is False
    else:
      assert "torch" in twin["reason"]
  collapse = checks["mode_collapse:gan_ring"]
  assert (collapse["seeds"], collapse["steps"], collapse["num_modes"], collapse["samples_per_seed"]) == (2, 50, 8, 2500)
  assert collapse["steps_per_s"] > 0 and collapse["seed_steps_per_s"] == pytest.approx(2 * collapse["steps_per_s"],
                                                                                        rel=1e-2)
  covered, quality = collapse["per_seed"]["modes_covered"], collapse["per_seed"]["high_quality_pct"]
  assert len(covered) == 2 and all(0 <= c <= 8 for c in covered) and all(0 <= q <= 100 for q in quality)
  assert collapse["modes_covered"]["mean"] == pytest.approx(np.mean(covered)) and collapse["modes_covered"]["n"] == 2


def test_twins_without_a_gpu_are_skipped_with_the_reason(tmp_path):
  """--torch_device=cuda (the GPU run's default) on a machine without CUDA: a skipped line per twin, saying why."""
  result, checks, _ = _run(["--smoke", "--sections=torch", "--torch_device=cuda", "--models=dcgan28,dcgan64,mlp2d"],
                           _without_tensorflow(tmp_path))
  assert result.returncode == 0, result.stderr[-3000:]
  assert sorted(checks) == [f"torch_twin:{m}:{d}" for m in ("dcgan28", "dcgan64") for d in ("bfloat16", "float32")]
  for line in checks.values():
    assert line["status"] == "skipped" and line["platform"] == "cpu"
    assert ("torch.cuda.is_available() is False" if _torch_usable() else "torch is not installed") in line["reason"]


@pytest.mark.parametrize("args,message", [
    (["--bogus"], "unknown argument '--bogus'"),
    (["--models=dcgan28,resnet"], "unknown --models entry 'resnet'"),
    (["--sections=gpu"], "unknown --sections entry 'gpu'"),
    (["--experiments=nothing"], "unknown --experiments entry 'nothing'"),
    (["--torch_device=tpu"], "unknown --torch_device 'tpu'"),
])
def test_bad_command_lines_exit_2_with_one_line(args, message):
  result = subprocess.run(["bash", SCRIPT, *args], capture_output=True, text=True, timeout=60)
  assert result.returncode == 2 and result.stdout == ""
  assert result.stderr.startswith("gan_jax: error: ") and result.stderr.count("\n") == 1 and message in result.stderr


@pytest.mark.parametrize("model,expected", [
    ("dcgan28", {"x": ((1, 2, 28, 28, 1), np.float32)}),
    ("mlp2d", {"x": ((1, 2, 2), np.float32)}),
    ("pix2pix32", {"input": ((1, 2, 32, 32, 1), np.float32), "target": ((1, 2, 32, 32, 3), np.float32)}),
    ("cyclegan32", {"a": ((1, 2, 32, 32, 3), np.float32), "b": ((1, 2, 32, 32, 3), np.float32)}),
])
def test_benchmark_batches_follow_the_objectives_data_roles(model, expected):
  """benchmark.py's random batches: a key per data role of objective.sources(), shaped [steps, B, ...], values in
  [-1, 1]; the step accepts them (traced, not compiled)."""
  benchmark = _load_script("benchmark")
  from gan_jax import steps  # pylint: disable=g-import-not-at-top
  config = benchmark.model_config(model, 2)
  objective, txs = benchmark.build(config)
  batch = benchmark.random_batch(objective, config.batch_size, jax.random.PRNGKey(0))
  assert {role: (x.shape, x.dtype) for role, x in batch.items()} == expected
  assert all(-1.0 <= float(x.min()) and float(x.max()) <= 1.0 for x in batch.values())
  state = jax.eval_shape(lambda: objective.init(0, txs))
  new_state, metrics = jax.eval_shape(steps.make_train_step(objective, txs), state, batch)
  assert new_state.step.shape == () and metrics and all(m.shape == () for m in metrics.values())


def test_benchmark_text_to_image_models_on_captioned_shapes_sizes_without_tensorflow(tmp_path):
  """benchmark.py's attngan and dfgan: random DAMSM encoders on captioned_shapes' vocabulary size and caption
  length, batches of full-length word ids, and a step traced in a Python where TensorFlow cannot be imported (the
  GPU machine's)."""
  benchmark = _load_script("benchmark")
  from gan_jax.data import captioned_shapes  # pylint: disable=g-import-not-at-top
  assert (benchmark.TEXT_VOCABULARY, benchmark.TEXT_LENGTH) == (len(captioned_shapes.VOCABULARY),
                                                                  captioned_shapes.MAX_LENGTH)
  program = f"""
import json, sys
sys.path.insert(0, {os.path.join(REPO, "scripts")!r})
import jax, numpy as np
import benchmark
from gan_jax import steps
for model in ("attngan", "dfgan"):
  config = benchmark.model_config(model, 2)
  benchmark.random_damsm_file(config, {str(tmp_path)!r})
  objective, txs = benchmark.build(config)
  batch = benchmark.random_batch(objective, config.batch_size, jax.random.PRNGKey(0))
  state = jax.eval_shape(lambda: objective.init(0, txs))
  new_state, metrics = jax.eval_shape(steps.make_train_step(objective, txs), state, batch)
  ids = np.asarray(batch["caption"])
  print(json.dumps({{"model": model, "shapes": {{k: list(v.shape) for k, v in batch.items()}},
                    "ids": [int(ids.min()), int(ids.max())], "metrics": sorted(metrics),
                    "tf": "tensorflow" in sys.modules and sys.modules["tensorflow"] is not None}}))
"""
  result = subprocess.run([sys.executable, "-c", program], cwd=REPO, env=_without_tensorflow(tmp_path),
                          capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  lines = {line["model"]: line for line in map(json.loads, result.stdout.strip().splitlines())}
  for model, batch_size in (("attngan", 20), ("dfgan", 32)):
    line = lines[model]
    assert line["shapes"] == {"x": [1, 2, 32, 32, 3], "caption": [1, 2, 5, 18]} and not line["tf"]
    assert 1 <= line["ids"][0] and line["ids"][1] < benchmark.TEXT_VOCABULARY and "g_loss" in line["metrics"]
    assert benchmark.model_config(model, None).batch_size == batch_size   # The authors' batches.


def test_mixture_points_are_the_datasets_points():
  """mixture_points.sample, which the TFDS builders and the GPU check share: each point within 5 sigma of the mode
  its label names, the modes equally likely, and the same points for the same seed."""
  from gan_jax.data import mixture_points  # pylint: disable=g-import-not-at-top
  for name, (modes, sigma) in mixture_points.MIXTURES.items():
    points, labels = mixture_points.sample(name, 20_000)
    assert points.shape == (20_000, 2) and points.dtype == np.float32
    assert np.max(np.linalg.norm(points - modes[labels], axis=1)) < 5 * sigma
    counts = np.bincount(labels, minlength=len(modes))
    assert counts.min() > 0.8 * 20_000 / len(modes) and counts.max() < 1.2 * 20_000 / len(modes)
    again, _ = mixture_points.sample(name, 20_000)
    np.testing.assert_array_equal(points, again)
  assert mixture_points.MIXTURES["ring8"][0].shape == (8, 2) and mixture_points.MIXTURES["grid25"][1] == 0.05
