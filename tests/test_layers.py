"""The sub-pixel transposed convolution equals flax.linen.ConvTranspose and jax.lax.conv_transpose, and the strided
convolution with a sub-pixel input gradient equals jax.lax.conv_general_dilated (values, first and second
derivatives), for the kernel/stride/padding combinations generators and discriminators use; both keep flax's
parameter layout. Tall kernels with few outputs (row split) and small maps (one patch product) equal jax.lax too."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.models import layers

from conftest import init_variables

CASES = [  # (input H, W), kernel, stride, padding: DCGAN, ResNet/U-Net style, odd sizes, explicit pads.
    ((7, 7), (4, 4), (2, 2), "SAME"),        # DCGAN 7 -> 14 (MNIST).
    ((4, 4), (4, 4), (2, 2), "SAME"),        # DCGAN 4 -> 8.
    ((5, 6), (3, 3), (2, 2), "SAME"),
    ((4, 4), (4, 4), (2, 2), "VALID"),
    ((4, 5), (4, 4), (2, 2), ((2, 2), (2, 2))),  # PyTorch ConvTranspose2d(k=4, s=2, p=1) (U-Net, pix2pix).
    ((4, 4), (4, 4), (2, 2), ((1, 2), (0, 3))),
    ((4, 4), (2, 2), (2, 2), "SAME"),        # k = s: non-overlapping up-sampling.
    ((3, 3), (5, 5), (2, 2), "SAME"),
    ((5, 5), (3, 3), (1, 1), "SAME"),
    ((4, 4), (1, 1), (3, 3), "VALID"),       # Kernel smaller than the stride: phases no tap reaches.
    ((6, 5), (3, 3), (3, 2), "SAME"),
]


def _one_program(*fs):
  """A function of the arguments returning each f(*args), compiled as one program: run eagerly, each of their few
  dozen operations of new shapes would compile on its own (20-40 ms each on a 2-core CPU), for every case. The
  inputs are numpy float32 arrays for the same reason: jnp.asarray's float64 -> float32 conversion compiled too."""
  return jax.jit(lambda *args: tuple(f(*args) for f in fs))


@pytest.mark.parametrize("merge", [0.0, np.inf], ids=["per_phase", "merged"])
@pytest.mark.parametrize("size,kernel,strides,padding", CASES)
def test_conv_transpose_equals_lax_in_values_and_gradients(size, kernel, strides, padding, merge, monkeypatch):
  # Both forward paths: one convolution per phase, and all phases from one convolution where the kernel size
  # is a multiple of the stride (MAX_MERGED_OVERHEAD decides between them by cost; here it forces each).
  monkeypatch.setattr(layers, "MAX_MERGED_OVERHEAD", merge)
  rng = np.random.default_rng(0)
  x = rng.standard_normal((2, *size, 3)).astype(np.float32)
  w = rng.standard_normal((*kernel, 3, 5)).astype(np.float32)
  reference = lambda x, w: jax.lax.conv_transpose(x, w, strides, padding)
  ours = lambda x, w: layers.conv_transpose(x, w, strides, padding)
  loss = lambda f: lambda x, w: jnp.sum(jnp.sin(f(x, w)))
  y, want_y, grads, want_grads = _one_program(
      ours, reference, jax.grad(loss(ours), (0, 1)), jax.grad(loss(reference), (0, 1)))(x, w)
  np.testing.assert_allclose(y, want_y, atol=1e-5, rtol=1e-5)
  for got, want in zip(grads, want_grads):
    np.testing.assert_allclose(got, want, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("use_bias", [True, False])
def test_conv_transpose_module_is_a_drop_in_for_flax(use_bias):
  # Input from numpy and initialisers compiled once: eagerly, jax.random compiles threefry (0.5 s) and each
  # initialiser's operations compile one by one.
  x = np.random.default_rng(0).standard_normal((2, 7, 7, 8)).astype(np.float32)
  kwargs = dict(features=4, kernel_size=(4, 4), strides=(2, 2), padding="SAME", use_bias=use_bias,
                bias_init=nn.initializers.normal(1.0))
  flax_layer, our_layer = nn.ConvTranspose(**kwargs), layers.ConvTranspose(**kwargs)
  flax_vars = init_variables(flax_layer, jax.random.PRNGKey(1), x)
  our_vars = init_variables(our_layer, jax.random.PRNGKey(1), x)
  # Same tree, shapes and initial values: checkpoints of either load into the other.
  assert jax.tree.structure(flax_vars) == jax.tree.structure(our_vars)
  for a, b in zip(jax.tree.leaves(flax_vars), jax.tree.leaves(our_vars)):
    np.testing.assert_array_equal(a, b)
  np.testing.assert_allclose(*_one_program(our_layer.apply, flax_layer.apply)(flax_vars, x), atol=1e-5)


@pytest.mark.parametrize("size,kernel,strides,padding", [CASES[0], CASES[4], CASES[9]])
def test_conv_transpose_second_derivatives_equal_lax(size, kernel, strides, padding):
  # The custom backward pass is itself differentiable (gradient penalties through G, unrolled updates).
  rng = np.random.default_rng(1)
  x = rng.standard_normal((2, *size, 3)).astype(np.float32)
  w = rng.standard_normal((*kernel, 3, 5)).astype(np.float32)
  def grad_norm(f):
    return lambda x, w: jnp.sum(jax.grad(lambda x, w: jnp.sum(jnp.tanh(f(x, w))), (0, 1))(x, w)[0] ** 2)
  reference = grad_norm(lambda x, w: jax.lax.conv_transpose(x, w, strides, padding))
  ours = grad_norm(lambda x, w: layers.conv_transpose(x, w, strides, padding))
  for got, want in zip(*_one_program(jax.grad(ours, (0, 1)), jax.grad(reference, (0, 1)))(x, w)):
    np.testing.assert_allclose(got, want, atol=1e-3, rtol=1e-3)  # float32 rounding of sums of ~100 terms.


@pytest.mark.parametrize("size", [(7, 7), (1, 1)], ids=["phases", "patch_product"])
def test_conv_transpose_keeps_bfloat16(size):
  x = np.ones((2, *size, 4), jnp.bfloat16)
  w = np.ones((4, 4, 4, 3), jnp.bfloat16)
  dx, dw = jax.jit(jax.grad(  # One program: eagerly, each of its operations compiles on its own.
      lambda x, w: jnp.sum(layers.conv_transpose(x, w, (2, 2)).astype(jnp.float32)), (0, 1)))(x, w)
  assert dx.dtype == dw.dtype == jnp.bfloat16


CONV_CASES = [  # Input gradient from conv_transpose: (input H, W), kernel, stride, padding.
    ((14, 14), (4, 4), (2, 2), "SAME"),      # dcgan28's D: 14 -> 7.
    ((28, 28), (4, 4), (2, 2), "SAME"),
    ((16, 16), (4, 4), (2, 2), ((1, 1), (1, 1))),  # PyTorch Conv2d(k=4, s=2, p=1).
    ((8, 8), (4, 4), (2, 2), "VALID"),
    ((20, 18), (4, 4), (2, 2), ((2, 1), (1, 2))),
    ((24, 24), (6, 6), (3, 3), "SAME"),
]
LAX_CONV_CASES = [  # Left to jax.lax.
    ((8, 8), (4, 4), (2, 2), "SAME"),        # 8 -> 4: the phases would not merge into one convolution.
    ((9, 10), (3, 3), (2, 2), "SAME"),       # Phases with different numbers of taps.
    ((9, 11), (5, 3), (2, 3), ((2, 1), (0, 2))),
    ((7, 7), (1, 1), (2, 2), "VALID"),       # Kernel smaller than the stride: inputs no tap reads.
    ((6, 6), (3, 3), (1, 1), "SAME"),        # Stride 1.
    ((6, 6), (3, 3), (2, 2), ((3, 0), (0, 0))),  # Padding beyond the kernel.
]


@pytest.mark.parametrize("size,kernel,strides,padding", CONV_CASES + LAX_CONV_CASES)
def test_strided_conv_equals_lax_in_values_and_first_and_second_derivatives(size, kernel, strides, padding):
  rng = np.random.default_rng(2)
  x = rng.standard_normal((2, *size, 6)).astype(np.float32)  # More than layers.PATCH_MAX_CHANNELS inputs.
  w = rng.standard_normal((*kernel, 6, 5)).astype(np.float32)
  dn = ("NHWC", "HWIO", "NHWC")
  reference = lambda x, w: jax.lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=dn)
  ours = lambda x, w: layers.conv_general_dilated(x, w, strides, padding, dimension_numbers=dn)
  custom = "custom_vjp_call" in str(jax.make_jaxpr(ours)(x, w))
  assert custom == ((size, kernel, strides, padding) in CONV_CASES)
  loss = lambda f: lambda x, w: jnp.sum(jnp.sin(f(x, w)))
  # The backward pass is itself differentiable: gradient penalties (WGAN-GP, R1) differentiate D's input
  # gradient with respect to D's parameters.
  def grad_norm(f):
    return lambda x, w: jnp.sum(jax.grad(lambda x, w: jnp.sum(jnp.tanh(f(x, w))))(x, w) ** 2)
  y, want_y, grads, want_grads, grad_norm_grads, want_grad_norm_grads = _one_program(
      ours, reference, jax.grad(loss(ours), (0, 1)), jax.grad(loss(reference), (0, 1)),
      jax.grad(grad_norm(ours), (0, 1)), jax.grad(grad_norm(reference), (0, 1)))(x, w)
  np.testing.assert_array_equal(y, want_y)  # The forward pass is jax.lax's own.
  for got, want in zip(grads, want_grads):
    np.testing.assert_allclose(got, want, atol=2e-5, rtol=1e-5)
  for got, want in zip(grad_norm_grads, want_grad_norm_grads):
    np.testing.assert_allclose(got, want, atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("size,kernel,outputs,padding", [
    ((12, 12), (7, 7), 3, ((3, 3), (3, 3))),   # CycleGAN's c7s1-3 (on a reflection-padded input: VALID).
    ((9, 11), (5, 3), 1, "SAME"),
    ((10, 8), (6, 6), 4, ((0, 2), (1, 0))),
    ((9, 8), (7, 7), 2, "VALID"),
])
def test_tall_kernels_with_few_outputs_are_row_split_and_equal_lax(size, kernel, outputs, padding):
  rng = np.random.default_rng(3)
  x = rng.standard_normal((2, *size, 5)).astype(np.float32)
  w = rng.standard_normal((*kernel, 5, outputs)).astype(np.float32)
  dn = ("NHWC", "HWIO", "NHWC")
  reference = lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), padding, dimension_numbers=dn)
  ours = lambda x, w: layers.conv_general_dilated(x, w, (1, 1), padding, dimension_numbers=dn)
  # One 1 x kw convolution to kh * outputs channels, not the kh x kw one.
  assert f"{kernel[1]},5,{kernel[0] * outputs}]" in str(jax.make_jaxpr(ours)(x, w)).replace(" ", "")
  loss = lambda f: lambda x, w: jnp.sum(jnp.sin(f(x, w)))
  wider = rng.standard_normal((*kernel, 5, layers.ROW_SPLIT_MAX_OUTPUTS + 1)).astype(np.float32)
  computed = lambda f: lambda x, w, wider: (f(x, w), jax.grad(loss(f), (0, 1))(x, w), f(x, wider))
  (y, grads, wide_y), (want_y, want_grads, want_wide_y) = _one_program(computed(ours), computed(reference))(
      x, w, wider)
  np.testing.assert_allclose(y, want_y, atol=1e-4, rtol=1e-5)
  for got, want in zip(grads, want_grads):
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)
  np.testing.assert_array_equal(wide_y, want_wide_y)  # More outputs: jax.lax's own.


SMALL_CONV_CASES = [  # Convolutions to at most layers.PATCH_MAX_POSITIONS outputs: (input H, W), kernel, stride, pads.
    ((4, 4), (4, 4), (2, 2), ((1, 1), (1, 1))),   # pix2pix32's U-Net, 4 -> 2.
    ((2, 2), (4, 4), (2, 2), ((1, 1), (1, 1))),   # Its innermost 2 -> 1: only the middle taps reach the input.
    ((4, 4), (4, 4), (1, 1), "VALID"),            # A DCGAN discriminator's last layer, 4 -> 1.
    ((3, 3), (3, 3), (2, 2), "SAME"),
    ((5, 4), (3, 2), (3, 3), ((0, 1), (1, 0))),
    ((6, 6), (3, 3), (2, 2), ((-1, 0), (0, -1))),  # Negative padding crops.
]
FEW_CHANNEL_CASES = [  # Stride-1 convolutions of at most layers.PATCH_MAX_CHANNELS inputs: (size, kernel, padding, in).
    ((12, 12), (7, 7), "VALID", 3),              # CycleGAN's c7s1-32 on its reflection-padded RGB input.
    ((9, 10), (3, 3), "SAME", 1),                # SNGAN's discriminator on grey images.
    ((8, 8), (5, 3), ((1, 2), (0, 1)), 4),
]
SMALL_CONV_TRANSPOSE_CASES = [  # Transposed convolutions from at most layers.PATCH_MAX_POSITIONS inputs.
    ((1, 1), (4, 4), (2, 2), ((2, 2), (2, 2))),   # pix2pix32's U-Net, 1 -> 2 (PyTorch's k=4, s=2, p=1).
    ((2, 2), (4, 4), (2, 2), ((2, 2), (2, 2))),   # 2 -> 4.
    ((1, 1), (4, 4), (1, 1), "VALID"),            # A DCGAN generator's first layer, 1 -> 4.
    ((2, 1), (3, 3), (2, 2), "SAME"),
    ((1, 2), (5, 5), (3, 3), ((1, 2), (0, 3))),
]


@pytest.mark.parametrize("transposed,size,kernel,strides,padding,channels",
                         [(False, *case, 6) for case in SMALL_CONV_CASES]
                         + [(False, size, kernel, (1, 1), padding, c) for size, kernel, padding, c in FEW_CHANNEL_CASES]
                         + [(True, *case, 6) for case in SMALL_CONV_TRANSPOSE_CASES])
def test_small_maps_and_few_channels_are_one_patch_product_and_equal_lax(transposed, size, kernel, strides, padding,
                                                                         channels):
  rng = np.random.default_rng(4)
  x = rng.standard_normal((2, *size, channels)).astype(np.float32)
  w = rng.standard_normal((*kernel, channels, 5)).astype(np.float32)
  dn = ("NHWC", "HWIO", "NHWC")
  if transposed:
    reference = lambda x, w: jax.lax.conv_transpose(x, w, strides, padding)
    ours = lambda x, w: layers.conv_transpose(x, w, strides, padding)
  else:
    reference = lambda x, w: jax.lax.conv_general_dilated(x, w, strides, padding, dimension_numbers=dn)
    ours = lambda x, w: layers.conv_general_dilated(x, w, strides, padding, dimension_numbers=dn)
  jaxpr = str(jax.make_jaxpr(ours)(x, w))
  assert "dot_general" in jaxpr and "conv_general_dilated" not in jaxpr  # im2col's one matrix product.
  if not transposed:  # At stride 2, few channels alone do not make a patch product (slower there); few outputs do.
    strided = lambda x, w: layers.conv_general_dilated(x, w, (2, 2), "SAME", dimension_numbers=dn)
    outputs = -(-size[0] // 2) * -(-size[1] // 2)
    assert ("conv_general_dilated" in str(jax.make_jaxpr(strided)(x, w))) == (outputs > layers.PATCH_MAX_POSITIONS)
  loss = lambda f: lambda x, w: jnp.sum(jnp.sin(f(x, w)))
  def grad_norm(f):  # Gradient penalties differentiate the input gradient again.
    return lambda x, w: jnp.sum(jax.grad(lambda x, w: jnp.sum(jnp.tanh(f(x, w))))(x, w) ** 2)
  computed = lambda f: lambda x, w: (f(x, w), jax.grad(loss(f), (0, 1))(x, w), jax.grad(grad_norm(f), (0, 1))(x, w))
  (y, grads, second), (want_y, want_grads, want_second) = _one_program(computed(ours), computed(reference))(x, w)
  np.testing.assert_allclose(y, want_y, atol=1e-5, rtol=1e-5)
  for got, want in zip(grads, want_grads):  # Float rounding of sums of up to 147 terms of size ~10, as the row split.
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)
  for got, want in zip(second, want_second):
    np.testing.assert_allclose(got, want, atol=1e-3, rtol=1e-3)


def test_patch_products_are_for_the_cpu_only(monkeypatch):
  # Measured on the CPU only; on an accelerator the same small maps stay XLA's convolutions.
  x, w = np.ones((2, 2, 2, 6), np.float32), np.ones((4, 4, 6, 5), np.float32)
  down = lambda x, w: layers.conv_general_dilated(x, w, (2, 2), ((1, 1), (1, 1)),
                                                  dimension_numbers=("NHWC", "HWIO", "NHWC"))
  up = lambda x, w: layers.conv_transpose(x[:, :1, :1], w, (2, 2), ((2, 2), (2, 2)))
  jaxpr = lambda f: str(jax.make_jaxpr(lambda *args: f(*args))(x, w))  # A new function: traced again.
  assert all("conv_general_dilated" not in jaxpr(f) for f in (down, up))
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  assert all("conv_general_dilated" in jaxpr(f) for f in (down, up))


def test_flax_conv_with_the_strided_conv_keeps_its_parameters_and_function():
  # Input from numpy, initialisers compiled once, and the computations below in one program each: eagerly,
  # jax.random compiles threefry (0.5 s) and every operation of a new shape compiles on its own.
  x = np.random.default_rng(0).standard_normal((2, 14, 14, 8)).astype(np.float32)
  kwargs = dict(features=4, kernel_size=(4, 4), strides=(2, 2), padding="SAME")
  flax_layer = nn.Conv(**kwargs)
  our_layer = nn.Conv(**kwargs, conv_general_dilated=layers.conv_general_dilated)
  variables = init_variables(flax_layer, jax.random.PRNGKey(1), x)
  assert jax.tree.structure(init_variables(our_layer, jax.random.PRNGKey(1), x)) == jax.tree.structure(variables)
  loss = lambda layer: lambda v, x: jnp.sum(layer.apply(v, x) ** 2)
  y, want_y, grads, want_grads = _one_program(our_layer.apply, flax_layer.apply, jax.grad(loss(our_layer), (0, 1)),
                                              jax.grad(loss(flax_layer), (0, 1)))(variables, x)
  np.testing.assert_array_equal(y, want_y)
  for got, want in zip(jax.tree.leaves(grads), jax.tree.leaves(want_grads)):
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-5)
  x16 = x.astype(jnp.bfloat16)  # Mixed precision: gradients keep the compute dtype.
  dx, dw = jax.jit(jax.grad(lambda x, w: jnp.sum(layers.conv_general_dilated(
      x, w, (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")).astype(jnp.float32)), (0, 1)))(
          x16, np.ones((4, 4, 8, 3), jnp.bfloat16))
  assert dx.dtype == dw.dtype == jnp.bfloat16


def test_max_by_selection_is_the_max_with_its_gradient_on_the_arg_max_alone():
  # Maxout's max (layers.max_by_selection): jnp.max's value; the gradient one-hot at the arg-max (ties: the
  # first), where jnp.max's splits it over the elements equal to the maximum.
  y = np.array([[1.0, 3.0, -2.0], [0.5, 0.5, 0.25]], np.float32)
  value, grad = jax.jit(jax.value_and_grad(lambda y: jnp.sum(layers.max_by_selection(y) * jnp.array([2.0, 5.0]))))(y)
  np.testing.assert_array_equal(value, 2.0 * 3.0 + 5.0 * 0.5)
  np.testing.assert_array_equal(grad, [[0.0, 2.0, 0.0], [5.0, 0.0, 0.0]])
  np.testing.assert_array_equal(jax.grad(lambda y: jnp.sum(jnp.max(y, -1)))(y)[1], [0.5, 0.5, 0.0])  # jnp.max's.
