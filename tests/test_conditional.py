"""Class-conditional GANs, InfoGAN and the latent-space tools: layers and losses against closed forms, the
conditional evaluators on constructed predictions, sampling by label, and every latent command on tiny runs."""
import json
import os
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import latent, models, sample, steps, train
from gan_jax.objectives import gan as gan_objective
from gan_jax.errors import UserError
from gan_jax.metrics import scores
from gan_jax.models import conditioning

from conftest import REPO, init_state, init_variables, tiny_config


def _model(**kwargs):
  return models.make("dcgan", dict(resolution=8, channels=1, latent_dim=6, g_width=4, d_width=4, **kwargs))


@pytest.mark.parametrize("kwargs,aux_shape", [
    (dict(num_classes=3, g_conditioning="concat", d_conditioning="concat"), None),
    (dict(num_classes=3, g_conditioning="cbn", d_conditioning="projection"), None),
    (dict(num_classes=3, d_conditioning="acgan"), (5, 3)),
    (dict(info_categorical=4, info_continuous=2), (5, 6)),
])
def test_conditional_and_infogan_shapes(kwargs, aux_shape):
  gan = _model(**kwargs)
  labels = {"labels": jnp.array([0, 1, 2, 0, 1])} if gan.num_classes else {}
  z = models.sample_latents(gan, jax.random.PRNGKey(0), 5)
  assert z.shape == (5, gan.latent_dim) and gan.latent_dim == 6 + kwargs.get("info_categorical", 0) + kwargs.get(
      "info_continuous", 0)
  g_vars = init_variables(gan.generator, jax.random.PRNGKey(1), z, train=False, **labels)
  x = gan.generator.apply(g_vars, z, train=False, **labels)
  assert x.shape == (5, 8, 8, 1)
  d_vars = init_variables(gan.discriminator, jax.random.PRNGKey(2), x, train=False, **labels)
  out = gan.discriminator.apply(d_vars, x, train=False, **labels)
  if aux_shape is None:
    assert out.shape == (5,) and not gan.aux
  else:
    assert out[0].shape == (5,) and out[1].shape == aux_shape and gan.aux in ("classes", "info")
  if gan.num_classes and kwargs.get("g_conditioning", "concat") == "concat":  # The label changes the sample
    # (conditional BatchNorm starts label-independent: gamma 1, beta 0 for every class).
    other = gan.generator.apply(g_vars, z, train=False, labels=jnp.array([1, 2, 0, 1, 2]))
    assert not np.allclose(x, other)


def test_infogan_latents_hold_one_hot_and_uniform_codes():
  gan = _model(info_categorical=4, info_continuous=2)
  z = np.asarray(models.sample_latents(gan, jax.random.PRNGKey(3), 4000))
  cat, cont = z[:, 6:10], z[:, 10:]
  np.testing.assert_array_equal(cat.sum(axis=1), 1.0)
  assert set(np.unique(cat)) == {0.0, 1.0} and np.abs(np.bincount(cat.argmax(1)) / 4000 - 0.25).max() < 0.03
  assert cont.min() >= -1 and cont.max() <= 1 and abs(cont.mean()) < 0.05
  np.testing.assert_array_equal(models.categorical_codes(gan, z), cat.argmax(1))
  plain = _model()  # Without codes the latents are exactly N(0, 1) from the key, as before InfoGAN existed.
  np.testing.assert_array_equal(models.sample_latents(plain, jax.random.PRNGKey(3), 5),
                                jax.random.normal(jax.random.PRNGKey(3), (5, 6)))


def test_projection_term_and_one_hot_channels_closed_forms():
  features, labels = jnp.arange(12.0).reshape(3, 4) / 10, jnp.array([2, 0, 2])
  v = jnp.arange(12.0).reshape(3, 4) - 5.0
  out = conditioning.ProjectionTerm(3).apply({"params": {"Embed_0": {"embedding": v}}}, features, labels)
  np.testing.assert_allclose(out, np.sum(np.asarray(v)[[2, 0, 2]] * np.asarray(features), axis=1), rtol=1e-6)
  x = conditioning.one_hot_channels(jnp.zeros((2, 2, 2, 1)), jnp.array([1, 0]), 3)
  assert x.shape == (2, 2, 2, 4)
  np.testing.assert_array_equal(x[0, 1, 1], [0, 0, 1, 0])
  np.testing.assert_array_equal(x[1, 0, 0], [0, 1, 0, 0])


def test_conditional_batchnorm_is_per_class_scale_and_shift():
  x = jax.random.normal(jax.random.PRNGKey(0), (6, 4)) * 3 + 1
  labels = jnp.array([0, 1, 0, 1, 0, 1])
  cbn = conditioning.ConditionalBatchNorm(2, use_running_average=False)
  variables = cbn.init(jax.random.PRNGKey(1), x, labels)
  normalised = (x - x.mean(0)) / jnp.sqrt(x.var(0) + 1e-5)
  out, _ = cbn.apply(variables, x, labels, mutable=["batch_stats"])
  np.testing.assert_allclose(out, normalised, atol=1e-5)  # gamma 1, beta 0 at initialisation.
  params = {"BatchNorm_0": {}, "gamma": {"embedding": jnp.array([[1.0] * 4, [2.0] * 4])},
            "beta": {"embedding": jnp.array([[0.0] * 4, [3.0] * 4])}}
  out, _ = cbn.apply({"params": params, "batch_stats": variables["batch_stats"]}, x, labels, mutable=["batch_stats"])
  expected = jnp.where((labels == 1)[:, None], 2 * normalised + 3, normalised)
  np.testing.assert_allclose(out, expected, atol=1e-5)


def test_auxiliary_losses_closed_forms():
  logits = jnp.array([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
  acgan = _model(num_classes=3, d_conditioning="acgan")
  expected = np.mean([-jax.nn.log_softmax(logits[0])[0], -jax.nn.log_softmax(logits[1])[1]])
  np.testing.assert_allclose(gan_objective.auxiliary_loss(acgan, logits, jnp.array([0, 1]), None), expected, rtol=1e-6)
  info = _model(info_categorical=3, info_continuous=1)  # z = [6 noise, 3 one-hot, 1 continuous]
  z = jnp.concatenate([jnp.zeros((2, 6)), jax.nn.one_hot(jnp.array([0, 1]), 3), jnp.array([[0.5], [-1.0]])], 1)
  q = jnp.concatenate([logits, jnp.array([[0.0], [-0.5]])], axis=1)
  expected_info = expected + np.mean([0.5 * 0.5 ** 2, 0.5 * 0.5 ** 2])  # CE + Gaussian NLL, unit std.
  np.testing.assert_allclose(gan_objective.auxiliary_loss(info, q, None, z), expected_info, rtol=1e-6)


@pytest.mark.parametrize("experiment,head", [("acgan_digits", "Dense_1"), ("infogan_digits", "QHead_0")])
def test_aux_weight_scales_the_auxiliary_head_in_both_losses(data_dir, experiment, head):
  # config.aux_weight multiplies AC-GAN's L_C / InfoGAN's lambda L_I in D's and G's losses: at 0 the head gets
  # no gradient (its parameters stay put under Adam) and G's update is the adversarial one; the logged auxiliary
  # losses do not depend on the weight, the gradient norms do.
  def one_step(weight):
    config = tiny_config(os.path.join(REPO, "experiments", f"{experiment}.py"), data_dir, aux_weight=weight)
    objective, txs = train.build(config)
    state = init_state(objective, config.seed, txs)
    batch = {"x": jax.random.uniform(jax.random.PRNGKey(5), (1, 8, 16, 16, 1), minval=-1.0, maxval=1.0),
             "label": jnp.arange(8, dtype=jnp.int32)[None] % 10}
    return state, *jax.jit(steps.make_train_step(objective, txs))(state, batch)

  start, off, off_metrics = one_step(0.0)
  _, on, on_metrics = one_step(1.0)
  _, double, double_metrics = one_step(2.0)
  head_of = lambda state: state.nets["d"].params[head]
  for a, b in zip(jax.tree.leaves(head_of(off)), jax.tree.leaves(head_of(start)), strict=True):
    np.testing.assert_array_equal(a, b)  # Untouched at weight 0.
  assert any(not np.allclose(a, b) for a, b in zip(jax.tree.leaves(head_of(on)), jax.tree.leaves(head_of(start))))
  # D's auxiliary loss is logged at D's parameters before its update: the same whatever the weight.
  np.testing.assert_allclose(float(on_metrics["d_aux"]), float(double_metrics["d_aux"]), rtol=1e-6)
  np.testing.assert_allclose(float(off_metrics["d_aux"]), float(on_metrics["d_aux"]), rtol=1e-6)
  assert float(off_metrics["g_aux"]) > 0 and float(on_metrics["d_aux"]) > 0
  assert float(double_metrics["g_grad_norm"]) != pytest.approx(float(on_metrics["g_grad_norm"]), rel=1e-3)


def test_class_accuracy_and_code_purity():
  probs = np.eye(3)[[0, 0, 1, 2, 2, 2]]
  result = scores.class_accuracy(probs, np.array([0, 1, 1, 2, 2, 0]))
  assert result["accuracy"] == pytest.approx(4 / 6) and result["accuracy_0"] == 0.5 and result["accuracy_2"] == 1.0
  purity = scores.code_purity(probs, np.array([5, 5, 7, 9, 9, 7]))  # code 7 holds one class-1 and one class-2.
  assert purity["purity"] == pytest.approx(5 / 6) and purity["code_5_class"] == 0 and purity["code_9_class"] == 2
  assert purity["classes_matched"] == 3


def test_invalid_conditional_configs_are_user_errors():
  with pytest.raises(UserError, match="either class-conditional"):
    _model(num_classes=3, info_categorical=2)
  with pytest.raises(UserError, match="unknown config.model.d_conditioning"):
    _model(num_classes=3, d_conditioning="nope")
  config = tiny_config(os.path.join(REPO, "experiments", "acgan_digits.py"), None)
  config.pack = 2
  from gan_jax import config as config_lib  # pylint: disable=g-import-not-at-top
  with pytest.raises(UserError, match="PacGAN packing and unrolled GAN are not implemented"):
    config_lib.validate(config)
  config = tiny_config(os.path.join(REPO, "experiments", "dcgan_digits.py"), None, evals=("class_accuracy",))
  with pytest.raises(UserError, match="class_accuracy needs a class-conditional model"):
    config_lib.validate(config)


def test_latent_path_functions():
  z0, z1 = jnp.array([[3.0, 0.0]]), jnp.array([[0.0, 3.0]])
  path = latent.interpolate(z0, z1, 5, "slerp")[0]
  np.testing.assert_allclose(path[0], z0[0], atol=1e-6)
  np.testing.assert_allclose(path[-1], z1[0], atol=1e-6)
  np.testing.assert_allclose(jnp.linalg.norm(path, axis=-1), 3.0, rtol=1e-5)  # On the circle, not the chord.
  np.testing.assert_allclose(path[2], [3 / np.sqrt(2), 3 / np.sqrt(2)], rtol=1e-5)
  np.testing.assert_allclose(latent.interpolate(z0, z1, 3, "lerp")[0, 1], [1.5, 1.5])
  np.testing.assert_allclose(latent.slerp(z0, 2 * z0, 0.5), 1.5 * z0, rtol=1e-5)  # Parallel: linear.
  vector = latent.attribute_vector(np.array([[1.0, 0], [3, 0], [0, 2], [0, 4]]), [True, True, False, False])
  np.testing.assert_allclose(vector, [2.0, -3.0])
  noise = latent.truncated_noise(jax.random.PRNGKey(0), 1000, 8, 0.5)
  assert float(jnp.abs(noise).max()) <= 0.5


def test_inversion_recovers_the_latent_of_a_linear_generator():
  a = jax.random.normal(jax.random.PRNGKey(0), (4, 12))
  generate = lambda z: jnp.tanh(z @ a).reshape(-1, 2, 2, 3)
  truth = jax.random.normal(jax.random.PRNGKey(1), (3, 4)) * 0.5
  z, recon, errors = latent.invert(generate, generate(truth), jax.random.PRNGKey(2), 4, steps=400,
                                   learning_rate=0.05, restarts=2)
  assert errors.max() < 1e-5 and np.abs(z - truth).max() < 1e-2
  np.testing.assert_allclose(recon, generate(truth), atol=1e-2)


@pytest.fixture(scope="module")
def tiny_runs(data_dir, tmp_path_factory):
  """Two-step runs of a class-conditional model (cGAN) and of InfoGAN, shared by the tests below."""
  runs = {}
  for name in ("cgan_digits", "infogan_digits"):
    workdir = str(tmp_path_factory.mktemp(name))
    train.train_and_evaluate(tiny_config(os.path.join(REPO, "experiments", f"{name}.py"), data_dir, evals=()), workdir)
    runs[name] = workdir
  return runs


@pytest.mark.xdist_group("conditional_runs")  # One worker trains tiny_runs once for all its users.
def test_sampling_by_label(tiny_runs, tmp_path):
  workdir = tiny_runs["cgan_digits"]
  by_label = lambda num, spec, seed=1: sample.sample(workdir, num, seed=seed, labels=sample.parse_labels(spec, num))
  images, conditions = by_label(5, "3")
  assert images.shape == (5, 16, 16, 1) and conditions["labels"].tolist() == [3] * 5
  assert by_label(5, "1,7")[1]["labels"].tolist() == [1, 7, 1, 7, 1]
  assert by_label(12, "all")[1]["labels"].tolist() == list(range(10)) + [0, 1]
  three, eight = images, by_label(5, "8")[0]
  assert not np.array_equal(three, eight)  # Same latents, another class.
  with pytest.raises(UserError, match=r"class\(es\) \[12\] not in \[0, 10\)"):
    by_label(5, "12")
  np.save(tmp_path / "labels.npy", np.array([4, 2]))  # From a file, cycled through.
  assert by_label(3, str(tmp_path / "labels.npy"))[1]["labels"].tolist() == [4, 2, 4]
  with pytest.raises(UserError, match="--labels is for class-conditional models"):
    sample.sample(tiny_runs["infogan_digits"], 5, labels=sample.parse_labels("3", 5))
  with pytest.raises(UserError, match=r"takes no --inputs; it takes: --labels"):
    sample.sample(workdir, 5, inputs=np.zeros((5, 16, 16, 1), np.float32))


@pytest.mark.xdist_group("conditional_runs")  # One worker trains tiny_runs once for all its users.
def test_export_writes_a_labelled_dataset_other_pipelines_read(tiny_runs, tmp_path):
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from gan_jax import export  # pylint: disable=g-import-not-at-top
  workdir = tiny_runs["cgan_digits"]
  path = export.export(workdir, 20, str(tmp_path / "tfds"), labels="all", name="cgan_synthetic")
  examples = list(tfds.as_numpy(tfds.builder_from_directory(path).as_dataset(split="train")))
  images, conditions = sample.sample(workdir, 20)  # The same samples as gan_jax.sample with these arguments.
  np.testing.assert_array_equal(np.stack([e["image"] for e in examples]), images)
  assert [int(e["label"]) for e in examples] == list(range(10)) * 2 == conditions["labels"].tolist()
  record = json.loads((tmp_path / "tfds" / "cgan_synthetic.json").read_text())
  assert record["step"] == 2 and record["num"] == 20 and record["config"]["model_name"] == "dcgan"
  npz = export.export(workdir, 6, str(tmp_path / "npz"), labels="3", fmt="npz", seed=5)
  with np.load(npz) as f:
    assert f["images"].shape == (6, 16, 16, 1) and f["labels"].tolist() == [3] * 6
    np.testing.assert_array_equal(f["images"], sample.sample(workdir, 6, seed=5, labels=np.full(6, 3))[0])
  unconditional = export.export(tiny_runs["infogan_digits"], 4, str(tmp_path / "u"), fmt="npz")
  with np.load(unconditional) as f:
    assert set(f) == {"images"}  # No labels to give.


@pytest.mark.xdist_group("conditional_runs")  # One worker trains tiny_runs once for all its users.
def test_latent_commands_on_tiny_runs(tiny_runs):
  run = latent.Run(tiny_runs["cgan_digits"])
  key = jax.random.PRNGKey(0)
  arrays, summary, columns = latent.run_interpolate(run, key, num=2, steps=4)
  assert arrays["images"].shape == (8, 16, 16, 1) and columns == 4 and summary["method"] == "slerp"
  arrays, summary, _ = latent.run_truncation(run, key, thresholds=(1.0, 0.1), num=3)
  assert arrays["images"].shape == (6, 16, 16, 1) and np.abs(arrays["latents"][3:, :64]).max() <= 0.1
  arrays, summary, _ = latent.run_invert(run, key, num=2, steps=3, restarts=2)
  assert arrays["reconstructions"].shape == (2, 16, 16, 1) and summary["mse_inverted"] >= 0
  info = latent.Run(tiny_runs["infogan_digits"])
  arrays, summary, columns = latent.run_codes(info, key, steps=3)
  assert arrays["images"].shape == (2 * 10 * 3, 16, 16, 1) and summary == {"grids": 2, "rows": 10, "columns": 3}
  with pytest.raises(UserError, match="`codes` is for InfoGAN runs"):
    latent.run_codes(run, key)
  with pytest.raises(UserError, match="project works in StyleGAN2's W space"):
    latent.run_project(run, key)


@pytest.mark.xdist_group("conditional_runs")  # One worker trains tiny_runs once for all its users.
def test_latent_cli_writes_grid_and_npz(tiny_runs, tmp_path):
  result = subprocess.run([sys.executable, "-m", "gan_jax.latent", "interpolate", f"--workdir={tiny_runs['cgan_digits']}",
                           f"--out={tmp_path}", "--num=2", "--steps=3", "--method=lerp"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-2000:]
  assert json.loads(result.stdout.strip().splitlines()[-1]) == {"command": "interpolate", "pairs": 2, "steps": 3,
                                                               "method": "lerp"}
  assert np.load(tmp_path / "interpolate.npz")["images"].shape == (6, 16, 16, 1)
  assert (tmp_path / "interpolate.png").stat().st_size > 0
  bad = subprocess.run([sys.executable, "-m", "gan_jax.latent", "nope", f"--workdir={tmp_path}", f"--out={tmp_path}"],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
  assert bad.returncode == 2 and bad.stderr.strip().splitlines()[-1].startswith("gan_jax: error: give one command")
