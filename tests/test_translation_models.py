"""pix2pix's U-Net and PatchGAN and CycleGAN's ResNet generator (models/translation.py) against the official PyTorch
code's layout (junyanz/pytorch-CycleGAN-and-pix2pix, models/networks.py) and arithmetic."""
import inspect

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.errors import UserError
from gan_jax.models import translation

from conftest import init_variables

DN = ("NHWC", "HWIO", "NHWC")


def _keys(tree):
  return set(tree)


def _init(model, x, key=1):
  return init_variables(model, jax.random.PRNGKey(key), x, train=False)


def _normal(shape, seed=0):
  """A standard normal test input drawn by numpy: an eager jax.random.normal of a new shape compiles threefry alone
  (0.5 s), and no test here depends on the particular values."""
  return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _unet_vars(model, shape, key=0):
  """The U-Net's variables (shapes only: nothing is computed)."""
  x = jax.ShapeDtypeStruct(shape, jnp.float32)
  return jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(key), x, train=False), x)


def test_unet_layout_at_32_follows_unet_skip_connection_block():
  model = translation.UNetGenerator(out_channels=3, num_downs=5, width=2)   # 32x32 -> 1x1 bottleneck.
  variables = _unet_vars(model, (2, 32, 32, 1))
  params = variables["params"]
  assert _keys(params) == ({f"down_{i}" for i in range(5)} | {f"up_{i}" for i in range(5)}
                           | {f"down_norm_{i}" for i in (1, 2, 3)} | {f"up_norm_{i}" for i in (1, 2, 3, 4)})
  # No norm on the outermost and innermost down convs; with batch norm only the outermost up conv has a bias.
  assert "down_norm_0" not in params and "down_norm_4" not in params
  assert [i for i in range(5) if "bias" in params[f"up_{i}"] or "bias" in params[f"down_{i}"]] == [0]
  # Widths ngf, 2ngf, 4ngf, 8ngf, 8ngf down; the decoder takes [skip, up] concatenated: twice the inner width,
  # but at the innermost level.
  assert [params[f"down_{i}"]["kernel"].shape for i in range(5)] == [(4, 4, 1, 2), (4, 4, 2, 4), (4, 4, 4, 8),
                                                                      (4, 4, 8, 16), (4, 4, 16, 16)]
  assert [params[f"up_{i}"]["kernel"].shape for i in range(5)] == [(4, 4, 4, 3), (4, 4, 8, 2), (4, 4, 16, 4),
                                                                    (4, 4, 32, 8), (4, 4, 16, 16)]
  assert _keys(variables["batch_stats"]) == ({f"down_norm_{i}" for i in (1, 2, 3)}
                                             | {f"up_norm_{i}" for i in (1, 2, 3, 4)})
  assert model.dropout_levels() == ()                                        # num_downs - 5 = 0 dropout blocks.
  # Instance norm: no norm parameters or statistics, and every conv has a bias (official use_bias).
  instance = _unet_vars(translation.UNetGenerator(3, 5, width=2, norm="instance"), (2, 32, 32, 1))
  assert set(instance) == {"params"}
  assert all("bias" in layer for layer in instance["params"].values()) and len(instance["params"]) == 10


@pytest.mark.parametrize("num_downs,dropout,levels", [(8, True, (4, 5, 6)), (7, True, (4, 5)), (6, True, (4,)),
                                                      (5, True, ()), (8, False, ())])
def test_unet_dropout_sits_on_the_num_downs_minus_5_innermost_intermediate_blocks(num_downs, dropout, levels):
  # unet_256 (num_downs 8): UnetGenerator's three ngf*8 blocks with use_dropout, decoder side, after the norm.
  size = 2 ** num_downs
  model = translation.UNetGenerator(3, num_downs, width=1, dropout=dropout)
  assert model.dropout_levels() == levels
  x = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
  variables = _unet_vars(model, (1, size, size, 3))
  only_dropout = lambda module, _: isinstance(module, nn.Dropout)
  _, state = jax.eval_shape(lambda v, x: model.apply(v, x, train=False, stochastic=True,
                                                     rngs={"dropout": jax.random.PRNGKey(0)},
                                                     capture_intermediates=only_dropout, mutable=["intermediates"]),
                            variables, x)
  assert _keys(state.get("intermediates", {})) == {f"dropout_{i}" for i in levels}
  for i in levels:                                  # Dropout on the ngf*8 decoder output, before the concatenation.
    assert state["intermediates"][f"dropout_{i}"]["__call__"][0].shape == (1, size // 2 ** i, size // 2 ** i, 8)
  assert len(variables["params"]) == 2 * num_downs + 2 * num_downs - 3     # Convs, then norms.


def _official_unet(variables, x, num_downs):
  """networks.py UnetGenerator in eval mode, written as its nested UnetSkipConnectionBlocks on our parameters."""
  params, stats = variables["params"], variables["batch_stats"]
  leaky = lambda h: jax.nn.leaky_relu(h, 0.2)

  def conv(name, h):                                # Conv2d(kernel_size=4, stride=2, padding=1, bias=False)
    return jax.lax.conv_general_dilated(h, params[name]["kernel"], (2, 2), ((1, 1), (1, 1)), dimension_numbers=DN)

  def upconv(name, h):                              # ConvTranspose2d(kernel_size=4, stride=2, padding=1)
    return jax.lax.conv_general_dilated(h, params[name]["kernel"], (1, 1), ((2, 2), (2, 2)), lhs_dilation=(2, 2),
                                        dimension_numbers=DN)

  def norm(name, h):                                # BatchNorm2d in eval mode.
    p, s = params[name], stats[name]
    return (h - s["mean"]) / jnp.sqrt(s["var"] + 1e-5) * p["scale"] + p["bias"]

  def block(level, h):
    outermost, innermost = level == 0, level == num_downs - 1
    down = conv(f"down_{level}", h if outermost else leaky(h))
    if not (outermost or innermost):
      down = norm(f"down_norm_{level}", down)
    up = upconv(f"up_{level}", jax.nn.relu(down if innermost else block(level + 1, down)))
    if outermost:
      return jnp.tanh(up + params["up_0"]["bias"])
    # torch.cat([x, self.model(x)], 1): the in-place LeakyReLU that opens self.model has rewritten x.
    return jnp.concatenate([leaky(h), norm(f"up_norm_{level}", up)], axis=-1)

  return block(0, x)


def _perturbed(variables, seed):
  """Variables with every entry redrawn, so that norms and biases all matter: kernels N(0, 1 / fan_in), BatchNorm
  scales N(1, 0.3), biases and running means N(0, 0.3), running variances U(0.5, 2). Drawn by numpy: with
  jax.random each shape's draw compiles threefry (eagerly 15 s in all; as one program still 4 s a call)."""
  rng = np.random.default_rng(seed)

  def redrawn(path, leaf):
    name = path[-1].key
    if name == "var":
      new = rng.uniform(0.5, 2.0, leaf.shape)
    elif name == "kernel":
      new = rng.standard_normal(leaf.shape) / np.sqrt(np.prod(leaf.shape[:-1]))
    else:
      new = (name == "scale") + 0.3 * rng.standard_normal(leaf.shape)
    return new.astype(np.float32)

  return jax.tree_util.tree_map_with_path(redrawn, variables)


def test_unet_equals_the_official_nested_blocks():
  # num_downs 6 at 64: one ngf*8 intermediate level as well as the four outer ones and the innermost.
  model = translation.UNetGenerator(out_channels=3, num_downs=6, width=2)
  x = _normal((2, 64, 64, 3))
  variables = _perturbed(_init(model, x), 2)
  ours = np.asarray(jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x))
  reference = jax.jit(lambda v, x: _official_unet(v, x, 6))(variables, x)
  assert ours.shape == (2, 64, 64, 3) and float(np.max(np.abs(ours))) <= 1.0
  assert float(np.std(ours)) > 0.1                                           # Not a saturated or vanishing output.
  np.testing.assert_allclose(ours, reference, atol=2e-5)


def test_unet_dropout_and_batch_statistics_at_test_time():
  model = translation.UNetGenerator(out_channels=3, num_downs=6, width=2)   # One dropout level (4).
  x = _normal((2, 64, 64, 3))
  variables = _init(model, x)
  variables = {**variables, "batch_stats": _perturbed(variables["batch_stats"], 2)}
  key_a, key_b = jax.random.PRNGKey(3), jax.random.PRNGKey(4)
  # Every apply jitted, the comparisons in numpy: eagerly, each op of the U-Net compiles alone (150 compilations).
  apply = jax.jit(lambda v, x, key, stochastic: model.apply(v, x, train=False, stochastic=stochastic,
                                                            rngs={"dropout": key}), static_argnums=3)
  train_step = jax.jit(lambda v, x, key: model.apply(v, x, train=True, rngs={"dropout": key}, mutable=["batch_stats"]))
  # pix2pix at test time (Isola et al. Sec. 3.3): dropout on, so two dropout keys give two outputs; nothing is
  # mutable, and the outputs are those of a training step with the same key (batch statistics, not running ones).
  sample_a, sample_b = np.asarray(apply(variables, x, key_a, True)), np.asarray(apply(variables, x, key_b, True))
  assert float(np.max(np.abs(sample_a - sample_b))) > 1e-3
  np.testing.assert_array_equal(apply(variables, x, key_a, True), sample_a)
  trained, state = jax.device_get(train_step(variables, x, key_a))
  np.testing.assert_allclose(trained, sample_a, atol=1e-6)
  moved = jax.tree_util.tree_map(lambda new, old: float(np.max(np.abs(new - old))), state["batch_stats"],
                                 jax.device_get(variables["batch_stats"]))
  assert min(jax.tree_util.tree_leaves(moved)) > 0                           # Training updates every average.
  # Deterministic (train=False): no dropout and the running averages, whatever the key; needs no RNG. (The same
  # program as apply's with stochastic False, whose unused key jit prunes: the persistent cache compiles it once.)
  deterministic = np.asarray(jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x))
  np.testing.assert_array_equal(apply(variables, x, key_a, False), deterministic)
  np.testing.assert_array_equal(apply(variables, x, key_b, False), deterministic)
  assert float(np.max(np.abs(deterministic - sample_a))) > 1e-3


def test_pix2pix_test_batches_are_groups_of_the_training_batch_size():
  # generate_in_batches(group=g): each run of g consecutive inputs normalised by its own statistics with dropout
  # key fold_in(key, group index), whatever batch_size chunks the inputs; the last group may be smaller.
  from gan_jax.objectives import _translation  # pylint: disable=g-import-not-at-top
  model = translation.UNetGenerator(out_channels=3, num_downs=6, width=2)   # One dropout level (4).
  x = _normal((7, 64, 64, 3))
  variables = _init(model, x[:1])
  key = jax.random.PRNGKey(5)
  chunked, whole = (_translation.generate_in_batches(model, variables, x, True, key, batch_size=b, group=3)
                    for b in (4, 256))                                       # Chunks of 3 + 3 + 1; of 6 + 1.
  np.testing.assert_allclose(chunked, whole, atol=1e-6)
  alone = jax.jit(lambda x, g: model.apply(variables, x, train=False, stochastic=True,
                                           rngs={"dropout": jax.random.fold_in(key, g)}))
  np.testing.assert_allclose(whole[:3], alone(x[:3], 0), atol=1e-5)
  np.testing.assert_allclose(whole[6:], alone(x[6:], 2), atol=1e-5)        # The last group: one image.
  assert np.abs(whole[:1] - alone(x[:1], 0)).max() > 1e-3                  # The statistics are the group's.
  other = _translation.generate_in_batches(model, variables, x, True, jax.random.PRNGKey(6), group=3)
  assert np.abs(other - whole).max() > 1e-3                                # Dropout draws from the key.


def test_unet_rejects_an_input_the_bottleneck_cannot_halve():
  model = translation.UNetGenerator(3, num_downs=6, width=1)
  with pytest.raises(UserError, match="divisible by 64"):
    _unet_vars(model, (1, 32, 32, 3))


def test_batch_norm_equals_flax_and_uses_batch_statistics_without_writing_them():
  x = 3.0 + 2.0 * _normal((4, 5, 5, 6))
  ours = translation.BatchNorm()
  flax_bn = nn.BatchNorm(momentum=0.9, epsilon=1e-5)
  variables = init_variables(ours, jax.random.PRNGKey(1), x, True, True)
  variables = {**variables, "batch_stats": _perturbed(variables["batch_stats"], 2)}

  @jax.jit
  def applied(variables, x):
    """Both norms in both modes, and ours with batch statistics and nothing mutable, as one program: eagerly, each
    op compiles alone."""
    pairs = [(ours.apply(variables, x, use_batch_stats, use_batch_stats, mutable=["batch_stats"]),
              flax_bn.apply(variables, x, use_running_average=not use_batch_stats, mutable=["batch_stats"]))
             for use_batch_stats in (True, False)]
    return pairs, ours.apply(variables, x, True, False)

  pairs, y = jax.device_get(applied(variables, x))
  for (y_ours, state), (y_flax, state_flax) in pairs:                       # use_batch_stats True, then False.
    np.testing.assert_allclose(y_ours, y_flax, atol=1e-5)
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5), state, state_flax)
  np.testing.assert_allclose(y.mean(axis=(0, 1, 2)), variables["params"]["bias"], atol=1e-5)  # Batch statistics.
  # Init: scale N(1, 0.02) (init_weights' BatchNorm2d weight), bias 0, running mean 0 and variance 1.
  fresh = init_variables(translation.BatchNorm(), jax.random.PRNGKey(3), np.zeros((1, 1, 1, 4096), np.float32),
                         True, True)
  assert abs(float(np.std(fresh["params"]["scale"])) - 0.02) < 0.002
  assert abs(float(np.mean(fresh["params"]["scale"])) - 1.0) < 0.002
  assert not np.any(fresh["params"]["bias"]) and not np.any(fresh["batch_stats"]["mean"])
  np.testing.assert_array_equal(fresh["batch_stats"]["var"], 1.0)


def test_instance_norm_is_the_closed_form():
  x = 5.0 + 3.0 * _normal((3, 7, 6, 4))                                     # numpy: so is the closed form.
  variables = init_variables(translation.InstanceNorm(), jax.random.PRNGKey(1), x)
  assert not jax.tree_util.tree_leaves(variables)                           # affine=False: no parameters.
  mean = x.mean(axis=(1, 2), keepdims=True)
  var = ((x - mean) ** 2).mean(axis=(1, 2), keepdims=True)
  np.testing.assert_allclose(jax.jit(translation.InstanceNorm().apply)(variables, x), (x - mean) / np.sqrt(var + 1e-5),
                             atol=1e-5)


def _torch_conv_transpose(x, weight, stride, padding, output_padding):
  """PyTorch's ConvTranspose2d by its definition, y[s i - p + t] += x[i] W[t]: x [H, W, C_in], weight in PyTorch's
  layout [C_in, C_out, k, k]."""
  k, n = weight.shape[-1], x.shape[0]
  out = (n - 1) * stride - 2 * padding + k + output_padding
  full = np.zeros(((n - 1) * stride + k + output_padding,) * 2 + (weight.shape[1],))
  for i in range(n):
    for j in range(n):
      full[i * stride:i * stride + k, j * stride:j * stride + k] += np.einsum("c,cokl->klo", x[i, j], weight)
  return full[padding:padding + out, padding:padding + out]


@pytest.mark.parametrize("kernel,padding,output_padding", [(4, 1, 0), (3, 1, 1)])  # pix2pix's; CycleGAN's.
def test_transposed_convs_are_pytorchs(kernel, padding, output_padding):
  rng = np.random.default_rng(0)
  x, weight = rng.normal(size=(5, 5, 3)), rng.normal(size=(3, 2, kernel, kernel))
  layer = translation.layers.ConvTranspose(2, (kernel, kernel), (2, 2), use_bias=False,
                                           padding=translation.torch_transpose_padding(kernel, padding, output_padding))
  ours_kernel = jnp.asarray(weight[:, :, ::-1, ::-1].transpose(2, 3, 0, 1), jnp.float32)  # The module doc's port.
  # Jitted: eagerly, each op of the layer compiles alone.
  y = np.asarray(jax.jit(layer.apply)({"params": {"kernel": ours_kernel}}, jnp.asarray(x[None], jnp.float32)))[0]
  assert y.shape == (10, 10, 2)                                              # Twice the input, as in the networks.
  np.testing.assert_allclose(y, _torch_conv_transpose(x, weight, 2, padding, output_padding), atol=1e-4)


def test_reflect_pad_is_reflection_pad_2d():
  x = np.arange(2 * 4 * 5 * 3, dtype=np.float32).reshape(2, 4, 5, 3)
  expected = np.pad(x, ((0, 0), (3, 3), (3, 3), (0, 0)), mode="reflect")   # ReflectionPad2d: edge not repeated.
  np.testing.assert_array_equal(translation.reflect_pad(jnp.asarray(x), 3), expected)
  assert expected[0, 2, 3, 0] == x[0, 1, 0, 0]                               # Row -1 mirrors row 1.


@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_resnet_generator_layout_and_output(norm):
  model = translation.ResnetGenerator(out_channels=3, width=2, num_blocks=3, norm=norm)
  x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 1)).astype(np.float32)
  variables = _init(model, x)
  params = variables["params"]
  assert sorted(k for k in params if k.startswith("block_")) == ["block_0", "block_1", "block_2"]
  shapes = {name: params[name]["kernel"].shape for name in ("conv_in", "down_0", "down_1", "up_0", "up_1", "conv_out")}
  assert shapes == {"conv_in": (7, 7, 1, 2), "down_0": (3, 3, 2, 4), "down_1": (3, 3, 4, 8), "up_0": (3, 3, 8, 4),
                    "up_1": (3, 3, 4, 2), "conv_out": (7, 7, 2, 3)}
  assert params["block_1"]["conv_0"]["kernel"].shape == params["block_1"]["conv_1"]["kernel"].shape == (3, 3, 8, 8)
  with_bias = sorted(k for k, layer in params.items() if "bias" in layer and "kernel" in layer)
  if norm == "instance":                           # Biases everywhere; no norm parameters or statistics.
    assert with_bias == ["conv_in", "conv_out", "down_0", "down_1", "up_0", "up_1"] and set(variables) == {"params"}
    assert all("bias" in conv for conv in params["block_0"].values())
  else:                                            # Only the last conv; norms after every other conv.
    assert with_bias == ["conv_out"]
    assert _keys(params["block_0"]) == {"conv_0", "norm_0", "conv_1", "norm_1"}
    assert {"norm_in", "down_norm_0", "down_norm_1", "up_norm_0", "up_norm_1"} <= _keys(params)
  # init_weights('normal', 0.02) on every conv and transposed conv (4,568 weights), biases 0. (Checked in numpy,
  # and the forward pass below jitted: eagerly, each op of a new shape compiles alone.)
  params = jax.device_get(params)
  kernels = np.concatenate([leaf.ravel() for path, leaf in jax.tree_util.tree_leaves_with_path(params)
                            if path[-1].key == "kernel"])
  assert kernels.size == 4568 and abs(float(np.std(kernels)) - 0.02) < 1.5e-3
  assert not any(np.any(leaf) for path, leaf in jax.tree_util.tree_leaves_with_path(params)
                 if path[-1].key == "bias" and "norm" not in jax.tree_util.keystr(path))
  y = np.asarray(jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x))
  assert y.shape == (2, 32, 32, 3) and float(np.max(np.abs(y))) <= 1.0


def test_resnet_blocks_are_residual():
  # A block whose last norm is zeroed (batch norm, scale 0, bias 0) is the identity: x + 0.
  block = translation.ResnetBlock(norm="batch")
  x = _normal((1, 6, 6, 4))
  variables = init_variables(block, jax.random.PRNGKey(1), x, train=False)
  params = {**variables["params"], "norm_1": jax.tree_util.tree_map(np.zeros_like, variables["params"]["norm_1"])}
  apply = jax.jit(lambda v, x: block.apply(v, x, train=False))              # Eagerly, each op compiles alone.
  np.testing.assert_allclose(apply({**variables, "params": params}, x), x, atol=1e-6)


@pytest.mark.parametrize("num_layers,expected", [(1, 14), (2, 6), (3, 2)])
def test_patch_discriminator_output_size_is_pytorchs(num_layers, expected):
  # Conv2d(kernel 4, padding 1): stride 2 halves, stride 1 takes one off: 32 -> 16 -> 8 -> 4 -> 3 -> 2 for 3.
  assert translation.patch_output_size(num_layers, 32) == expected
  model = translation.PatchDiscriminator(width=2, num_layers=num_layers)
  x = _normal((2, 32, 32, 4))
  variables = _init(model, x)
  apply = jax.jit(lambda v, x: model.apply(v, x, train=False))              # Eagerly, each op compiles alone.
  assert apply(variables, x).shape == (2, expected, expected)
  assert _keys(variables["params"]) == ({f"conv_{i}" for i in range(num_layers + 2)}
                                        | {f"norm_{i}" for i in range(1, num_layers + 1)})
  widths = [variables["params"][f"conv_{i}"]["kernel"].shape[-1] for i in range(num_layers + 2)]
  assert widths == [2 * min(2 ** n, 8) for n in range(num_layers + 1)] + [1]
  assert sorted(k for k, v in variables["params"].items() if "bias" in v and "kernel" in v) == [
      "conv_0", f"conv_{num_layers + 1}"]
  # pix2pix's 70x70 PatchGAN on 256x256 gives 30x30 logits (shapes only).
  big = jax.ShapeDtypeStruct((1, 256, 256, 6), jnp.float32)
  shape = jax.eval_shape(lambda x: translation.PatchDiscriminator(2).init_with_output(
      jax.random.PRNGKey(0), x, train=False)[0], big).shape
  assert shape == (1, 30, 30) and translation.patch_output_size(3, 256) == 30


@pytest.mark.parametrize("num_layers,size", [(1, 16), (2, 34), (3, 70)])
def test_patch_receptive_field_by_formula_and_by_gradient(num_layers, size):
  assert translation.receptive_field(num_layers) == size
  # The recurrence r <- r * stride + kernel - stride, by hand over the layers (4, 2) * num_layers, (4, 1), (4, 1).
  by_hand = 1 + 3 + 3
  for _ in range(num_layers):
    by_hand = 2 * by_hand + 2
  assert by_hand == size
  # Empirically: the gradient of the centre logit is nonzero exactly on a size x size square (eval-mode batch norm
  # is per channel, so it does not mix positions; the square stays clear of the 128x128 input's borders).
  model = translation.PatchDiscriminator(width=2, num_layers=num_layers)
  x = _normal((1, 128, 128, 1))
  variables = _init(model, x)
  centre = translation.patch_output_size(num_layers, 128) // 2
  # One program: eagerly, each op of the forward and backward passes compiles alone.
  grad = np.asarray(jax.jit(jax.grad(lambda x: model.apply(variables, x, train=False)[0, centre, centre]))(x))
  seen = np.any(grad[0] != 0, axis=-1)
  rows, cols = np.flatnonzero(seen.any(axis=1)), np.flatnonzero(seen.any(axis=0))
  assert rows[0] > 0 and cols[0] > 0 and rows[-1] < 127 and cols[-1] < 127
  assert rows[-1] - rows[0] + 1 == size and cols[-1] - cols[0] + 1 == size
  assert seen.sum() == size * size


def test_init_is_normal_0_02_with_zero_biases():
  # init_weights('normal', 0.02): conv weights N(0, 0.02), biases 0 (the ResNet test checks the transposed ones).
  from gan_jax import train  # pylint: disable=g-import-not-at-top
  x = jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32)            # lazy_init: parameters only, no forward pass.
  model = translation.PatchDiscriminator(width=32)
  # One program compiled as the trainer's initialisers are (conftest.init_variables): eagerly, each initialiser
  # compiles alone, at XLA's full optimisation (10 s).
  params = train.compile_once(lambda: model.lazy_init(jax.random.PRNGKey(0), x, train=False))()["params"]
  kernel = np.asarray(params["conv_3"]["kernel"])                            # 4 * 4 * 128 * 256 weights.
  assert abs(float(np.std(kernel)) - 0.02) < 2e-4 and abs(float(np.mean(kernel))) < 2e-4
  assert not np.any(params["conv_0"]["bias"]) and not np.any(params["conv_4"]["bias"])


def test_make_models_builds_pix2pix_and_cyclegan_pairs():
  params = inspect.signature(translation.make_models).parameters
  assert [p for p, v in params.items() if v.default is inspect.Parameter.empty] == ["resolution", "channels_a",
                                                                                    "channels_b"]
  pix2pix = translation.make_models(resolution=32, channels_a=1, channels_b=3, g_width=2, d_width=2)
  assert pix2pix.makes_images and pix2pix.shape_a == (32, 32, 1) and pix2pix.shape_b == (32, 32, 3)
  assert isinstance(pix2pix.g_ab, translation.UNetGenerator) and pix2pix.g_ab.num_downs == 5
  assert (pix2pix.g_ab.out_channels, pix2pix.g_ba.out_channels) == (3, 1) and pix2pix.g_ab.dropout
  assert pix2pix.d_b.num_layers == 3 and pix2pix.d_b.norm == "batch"
  # G (A -> B) and pix2pix's D on [input, output] concatenated on channels (shapes only).
  a = jax.ShapeDtypeStruct((2, 32, 32, 1), jnp.float32)
  fake = jax.eval_shape(lambda a: pix2pix.g_ab.init_with_output(jax.random.PRNGKey(0), a, train=False)[0], a)
  assert fake.shape == (2, 32, 32, 3)
  pair = jax.ShapeDtypeStruct((2, 32, 32, 4), jnp.float32)
  logits = jax.eval_shape(lambda x: pix2pix.d_b.init_with_output(jax.random.PRNGKey(0), x, train=False)[0], pair)
  assert logits.shape == (2, 2, 2)
  cyclegan = translation.make_models(resolution=32, channels_a=3, channels_b=3, generator="resnet", num_blocks=6,
                                     norm="instance", dropout=False)
  assert isinstance(cyclegan.g_ba, translation.ResnetGenerator) and cyclegan.g_ba.num_blocks == 6
  assert cyclegan.g_ba.norm == cyclegan.d_a.norm == "instance" and not cyclegan.g_ab.dropout
  assert cyclegan.g_ab is not cyclegan.g_ba and cyclegan.d_a is not cyclegan.d_b


@pytest.mark.parametrize("kwargs,key", [
    (dict(generator="vae"), "generator"), (dict(norm="group"), "norm"), (dict(dropout="yes"), "dropout"),
    (dict(resolution=48), "resolution"), (dict(resolution=30, generator="resnet"), "resolution"),
    (dict(resolution=True), "resolution"), (dict(resolution=4), "resolution"), (dict(channels_a=0), "channels_a"),
    (dict(channels_b=2.5), "channels_b"), (dict(g_width=0), "g_width"), (dict(d_width=-1), "d_width"),
    (dict(d_layers=0), "d_layers"), (dict(d_layers=5), "d_layers"), (dict(num_blocks=-1), "num_blocks")])
def test_make_models_rejects_bad_values_naming_the_key(kwargs, key):
  with pytest.raises(UserError, match=rf"config\.model\.{key}\b.*(allowed|must be)"):
    translation.make_models(**{**dict(resolution=32, channels_a=3, channels_b=3), **kwargs})
