"""Sweeps: vmapped seeds compute what single runs compute; results tables; grid parsing."""
import csv
import json
import os
import shutil
import subprocess
import sys
import types

import jax
import numpy as np
import pytest

from gan_jax import sweep, train
from gan_jax.errors import UserError

from conftest import REPO, tiny_config


def _ring(data_dir, **overrides):
  return tiny_config(os.path.join(REPO, "experiments", "gan_ring.py"), data_dir,
                     **{"total_steps": 3, "eval_num_samples": 300, **overrides})


def test_vmapped_seeds_equal_single_runs(data_dir, tmp_path):
  config = _ring(data_dir)
  states, results = sweep.train_seeds_vmapped(config, [4, 9])
  for i, seed in enumerate([4, 9]):
    single_config = config.copy_and_resolve_references()
    single_config.seed = seed
    single = train.train_and_evaluate(single_config, str(tmp_path / str(seed)))
    vmapped = jax.tree.map(lambda x, i=i: x[i], states)
    # Batched and unbatched matmuls round differently on CPU: equal up to float32 rounding, not bitwise.
    for a, b in zip(jax.tree.leaves(vmapped), jax.tree.leaves(single)):
      np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    (single_results,), (seconds,) = sweep.train_seeds_sequentially(single_config, [seed], str(tmp_path / f"s{seed}"))
    assert 0 < seconds < 600
    assert results[i].keys() == single_results.keys()
    for key in results[i]:
      np.testing.assert_allclose(results[i][key], single_results[key], rtol=1e-6, equal_nan=True)


def test_a_seeds_wall_clock_is_summed_over_resumes_and_a_restart_does_not_append(data_dir, tmp_path):
  config = _ring(data_dir, total_steps=2, eval_every=1)
  cell = str(tmp_path / "cell")
  (_,), (first,) = sweep.train_seeds_sequentially(config, [0], cell)
  config.total_steps = 4  # The same seed continued: its time is the first part's plus the second's.
  (_,), (total,) = sweep.train_seeds_sequentially(config, [0], cell)
  seed_dir = os.path.join(cell, "seed_0")
  records = [json.loads(line) for line in open(os.path.join(seed_dir, "eval.json"))]
  assert [r["step"] for r in records] == [1, 2, 3, 4] and {r["source"] for r in records} == {"train"}
  assert records[1]["wall_s"] == pytest.approx(first, abs=0.05) and total > first
  # The second part did not start from zero: its last record holds the summed time (it compared the gap between two
  # records with the first part's time, which a loaded machine made fail: 1.8 s against 1.6).
  assert records[3]["wall_s"] == pytest.approx(total, abs=0.05) and records[2]["wall_s"] > first
  # Restarted from step 0 (its checkpoints gone): the old records are set aside, not appended to.
  shutil.rmtree(os.path.join(seed_dir, "checkpoints"))
  config.total_steps = 2
  (_,), (again,) = sweep.train_seeds_sequentially(config, [0], cell)
  assert [json.loads(line)["step"] for line in open(os.path.join(seed_dir, "eval.json"))] == [1, 2]
  assert again < total


def test_a_seed_stopped_by_a_signal_stops_the_sweep(data_dir, tmp_path, monkeypatch):
  # A preempted seed returns early with a checkpoint: the sweep must not report it or go on to the next seed.
  stopped_early = lambda config, workdir: types.SimpleNamespace(step=config.total_steps - 1)
  monkeypatch.setattr(train, "train_and_evaluate", stopped_early)
  with pytest.raises(sweep.Stopped, match="seed_3"):
    sweep.train_seeds_sequentially(_ring(data_dir), [3, 4], str(tmp_path))


def test_results_md_shows_each_seeds_wall_clock(tmp_path):
  summary = sweep.summarise([{"m/x": 1.0}, {"m/x": 3.0}])
  sweep.write_results(str(tmp_path), ["pack"], [((1,), summary, [100.4, 121.0], 2, False),
                                                ((2,), summary, [300.0], 2, True)])
  table = (tmp_path / "results.md").read_text().splitlines()
  assert table[2].endswith("| 2 | 111 s per seed (100, 121) |")
  assert table[3].endswith("| 2 | 300 s, seeds together |")
  with open(tmp_path / "results.csv") as f:
    assert [r["wall_s"] for r in csv.DictReader(f)] == ["100.4 121.0", "300.0"]


def test_summary_is_mean_and_standard_error():
  summary = sweep.summarise([{"m": 1.0}, {"m": 2.0}, {"m": 6.0}])
  np.testing.assert_allclose(summary["m"], (3.0, np.std([1, 2, 6], ddof=1) / np.sqrt(3)))
  assert np.isnan(sweep.summarise([{"m": 1.0}])["m"][1])


def test_grid_parsing_and_errors(data_dir):
  config = _ring(data_dir)
  assert sweep.parse_grid(config, ["pack=1,2", "optimizer.d.learning_rate=1e-4,1e-3", "loss=hinge"]) == [
      ("pack", [1, 2]), ("optimizer.d.learning_rate", [1e-4, 1e-3]), ("loss", ["hinge"])]
  with pytest.raises(UserError, match="unknown config key 'nokey'"):
    sweep.parse_grid(config, ["nokey=1"])
  with pytest.raises(UserError, match="not all int"):
    sweep.parse_grid(config, ["pack=a"])


def test_sweep_cli_writes_tables(data_dir, tmp_path):
  result = subprocess.run(
      [sys.executable, "-m", "gan_jax.sweep", "--config=experiments/gan_ring.py:runlocal",
       f"--config.data.data_dir={data_dir}", "--seeds=2", "--grid=pack=1,2", f"--workdir={tmp_path}"],
      cwd=REPO, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  with open(tmp_path / "results.csv") as f:
    rows = list(csv.DictReader(f))
  assert [r["pack"] for r in rows] == ["1", "2"] and all(r["seeds"] == "2" for r in rows)
  assert {"mode_coverage/modes_covered_mean", "mode_coverage/modes_covered_sem", "wall_s"} <= set(rows[0])
  table = (tmp_path / "results.md").read_text().splitlines()
  assert len(table) == 4 and "±" in table[2] and table[0].startswith("| pack | mode_coverage/modes_covered")


def test_paths_orbax_cannot_checkpoint_under_are_refused_and_sweep_cells_avoid_them(data_dir, tmp_path):
  """orbax skips its OCDBT merge, with a warning only, under a path holding a glob pattern, so checkpoints written
  there never restore (found with a sweep over data.split=train[:100]). The trainer refuses such a workdir before
  writing anything; a sweep names its cells without those characters."""
  from gan_jax import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  bad = tmp_path / "runs[1]"
  with pytest.raises(UserError, match=r"workdir .* contains \[ \]: orbax cannot finalise checkpoints"):
    train.train_and_evaluate(_ring(data_dir), str(bad))
  assert not bad.exists()
  with pytest.raises(UserError, match=r"contains \*"):
    sweep.run_sweep(_ring(data_dir), str(tmp_path / "sweep*"), 1, [], vmap=False)
  assert workdir_lib.safe_name("data.split=train[:100],lr=1e-4") == "data.split=train(:100),lr=1e-4"
  assert workdir_lib.safe_name("a/b*c?") == "a_b_c_"
