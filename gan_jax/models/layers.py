"""Layers shared by model families: spectral normalisation (Miyato et al. 2018), maxout (Goodfellow et al. 2013),
the transposed convolution every generator up-samples with, the strided convolution discriminators use, the
row-split form of tall convolutions with few outputs (CycleGAN's last layer), and the patch-product form of
convolutions on small maps (the U-Net's innermost levels).
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

SPECTRAL = "spectral"  # The collection holding power-iteration vectors; it rides in GANState.d_state.
COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def compute_dtype(name):
  """config.model.dtype -> the dtype models compute in (parameters are float32 whatever it is)."""
  if name not in COMPUTE_DTYPES:
    from gan_jax.errors import UserError  # pylint: disable=g-import-not-at-top
    raise UserError(f"unknown config.model.dtype {name!r}; allowed: {', '.join(COMPUTE_DTYPES)}")
  return COMPUTE_DTYPES[name]


def apply(layer: nn.Module, x, *, spectral_norm: bool, train: bool):
  """`layer(x)`, with its kernel divided by its largest singular value when `spectral_norm`.

  One power iteration per call in training (Miyato et al. 2018, Algorithm 1); conv kernels are reshaped to
  [kh * kw * in, out] matrices as in the paper.
  """
  if not spectral_norm:
    return layer(x)
  return nn.SpectralNorm(layer, n_steps=1, collection_name=SPECTRAL)(x, update_stats=train)


def max_by_selection(y, axis: int = -1):
  """jnp.max(y, axis) whose gradient goes to the arg-max element (a gather), not, as jnp.max's does, to every
  element equal to the maximum, divided by their count. XLA may compute y twice, in different fusions whose
  rounding differs (FMA contraction), so that no recomputed element equals the maximum of the other copy: jnp.max's
  gradient is then 0 / 0. That is what made unrolled GAN's G gradient NaN at random (it differentiates through D's
  maxout twice); at XLA's CPU backend level 0 it happens every time. Ties, of measure zero, go to the first."""
  index = jnp.expand_dims(jnp.argmax(y, axis=axis), axis)
  return jnp.squeeze(jnp.take_along_axis(y, index, axis=axis), axis)


class Maxout(nn.Module):
  """Maxout (Goodfellow et al. 2013): `pieces` linear maps per unit, the unit's output their maximum."""
  features: int
  pieces: int
  kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
  spectral_norm: bool = False

  @nn.compact
  def __call__(self, x, train: bool = False):  # [B, D] -> [B, features]
    linear = nn.Dense(self.features * self.pieces, kernel_init=self.kernel_init)
    y = apply(linear, x, spectral_norm=self.spectral_norm, train=train)
    return max_by_selection(y.reshape(x.shape[0], self.features, self.pieces), axis=-1)


def _transpose_pads(k, s, padding):
  """(before, after) padding of the dilated input, exactly as jax.lax.conv_transpose derives it."""
  if padding == "SAME":
    pad_len = k + s - 2
    before = k - 1 if s > k - 1 else -(-pad_len // 2)
    return before, pad_len - before
  if padding == "VALID":
    pad_len = k + s - 2 + max(k - s, 0)
    return k - 1, pad_len - (k - 1)
  return tuple(padding)


def _conv_length(n, k, s, low, high):
  """Output length of a convolution (kernel k, stride s) of a length-n input padded by low and high."""
  return (n + low + high - k) // s + 1


def _transpose_length(n, k, s, before, after):
  """Output length of a transposed convolution: its input dilated by s, padded by before and after."""
  return _conv_length((n - 1) * s + 1, k, 1, before, after)


def _phase_taps(n, k, s, pads):
  """For one spatial axis: output length, and for each output phase a = o mod s (o = s m + a) the kernel taps
  it uses and the input offset of the first one: y[s m + a] = sum_j x[m + first + j] K[taps[j]]."""
  before, after = pads
  length = _transpose_length(n, k, s, before, after)
  phases = []
  for a in range(s):
    taps = [t for t in range(k) if (a + t - before) % s == 0]
    first = (a + taps[0] - before) // s if taps else 0
    phases.append((taps, first, -(-(length - a) // s)))  # (taps, first input offset, outputs in the phase)
  return length, phases


def _interleave(phases, rows, cols):
  """Phase outputs [[y_ab [B, rows, cols, F] for b] for a] -> [B, rows * sh, cols * sw, F] (depth-to-space)."""
  y = jnp.stack([jnp.stack(row, axis=3) for row in phases], axis=2)        # [B, rows, sh, cols, sw, F]
  return y.reshape(y.shape[0], rows * len(phases), cols * len(phases[0]), y.shape[-1])


# Largest ratio of merged to per-phase multiply-adds at which _merged_phases is used (measured: 1.31 pays, 1.56 not).
MAX_MERGED_OVERHEAD = 1.35


def _merges(phases_h, phases_w, rows, cols):
  """Whether `_merged_phases` computes all phases in one convolution (see there)."""
  if len({len(t) for t, _, _ in phases_h}) != 1 or len({len(t) for t, _, _ in phases_w}) != 1:
    return False
  if not phases_h[0][0] or not phases_w[0][0]:
    return False
  span_h, span_w = (max(f for _, f, _ in phases) - min(f for _, f, _ in phases) for phases in (phases_h, phases_w))
  return (rows + span_h) * (cols + span_w) <= MAX_MERGED_OVERHEAD * rows * cols


def _phase_plan(x_shape, kernel_shape, strides, padding):
  """(out_h, out_w, phases_h, phases_w, rows, cols) of `conv_transpose`'s sub-pixel form: output size, each
  axis's phases (`_phase_taps`) and the largest number of rows and columns in a phase."""
  _, height, width, _ = x_shape
  kh, kw = kernel_shape[:2]
  sh, sw = strides
  pad_h, pad_w = (padding, padding) if isinstance(padding, str) else padding
  out_h, phases_h = _phase_taps(height, kh, sh, _transpose_pads(kh, sh, pad_h))
  out_w, phases_w = _phase_taps(width, kw, sw, _transpose_pads(kw, sw, pad_w))
  return out_h, out_w, phases_h, phases_w, max(m for _, _, m in phases_h), max(m for _, _, m in phases_w)


def _merged_phases(x, kernel, phases_h, phases_w, rows, cols):
  """All output phases from one stride-1 convolution, or None where that does not pay.

  Where every phase along an axis uses the same number of kernel taps (kernel size a multiple of the stride:
  DCGAN's 4x4 at stride 2), the phases differ only in their sub-kernels and in where their input windows start
  (first offsets f_a). One convolution with the sub-kernels stacked along its outputs, evaluated on a window
  max(f) - min(f) positions longer, gives every phase; phase a is the slice starting at f_a - min(f). That is
  (rows + span_h)(cols + span_w) / (rows cols) the multiply-adds of the per-phase convolutions, in one call
  with sh * sw times the output channels, which XLA's CPU backend runs faster while that ratio is small
  (dcgan28's 7 -> 14 layer: 5.6 ms against 9.4 ms, ratio 1.31; dcgan64's 4 -> 8 layer: 155 ms against
  107 ms, ratio 1.56; 2-core CPU VM). Above MAX_MERGED_OVERHEAD the per-phase convolutions are used.
  """
  if not _merges(phases_h, phases_w, rows, cols):
    return None
  taps_h, taps_w = len(phases_h[0][0]), len(phases_w[0][0])
  first_h, first_w = [f for _, f, _ in phases_h], [f for _, f, _ in phases_w]
  span_h, span_w = max(first_h) - min(first_h), max(first_w) - min(first_w)
  features = kernel.shape[-1]
  stacked = jnp.concatenate([kernel[np.array(th)][:, np.array(tw)] for th, _, _ in phases_h
                             for tw, _, _ in phases_w], axis=-1)          # [taps_h, taps_w, in, phases * out]
  # Rows min(f) .. min(f) + rows + span + taps - 2 of x, zero outside it (likewise columns).
  window = [(min(first_h), rows + span_h + taps_h - 1, x.shape[1]),
            (min(first_w), cols + span_w + taps_w - 1, x.shape[2])]
  out = jax.lax.conv_general_dilated(x, stacked, (1, 1), [(-start, start + size - n) for start, size, n in window],
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
  phases = [[out[:, fh - min(first_h):fh - min(first_h) + rows, fw - min(first_w):fw - min(first_w) + cols,
                 (i * len(phases_w) + j) * features:(i * len(phases_w) + j + 1) * features]
             for j, fw in enumerate(first_w)] for i, fh in enumerate(first_h)]
  return _interleave(phases, rows, cols)


def _conv_transpose_phases(x, kernel, strides, padding):
  """The forward pass of `conv_transpose`, without dilating the input: output phase (a, b) (rows s m + a,
  columns s n + b) is an ordinary stride-1 convolution of x with the taps of the kernel that land on it, and
  the phases are interleaved (depth-to-space).

  Same function, same weights, a quarter of the multiply-adds of the dilated form at stride 2 (sub-pixel
  convolution: Shi et al. 2016, Sec. 2.2; Odena et al. 2016).
  """
  _, height, width, _ = x.shape
  features = kernel.shape[-1]
  out_h, out_w, phases_h, phases_w, rows_per_phase, cols_per_phase = _phase_plan(x.shape, kernel.shape, strides,
                                                                                 padding)
  merged = _merged_phases(x, kernel, phases_h, phases_w, rows_per_phase, cols_per_phase)
  if merged is not None:
    return merged[:, :out_h, :out_w]
  outputs = []
  for taps_h, first_h, _ in phases_h:
    row = []
    for taps_w, first_w, _ in phases_w:
      if not taps_h or not taps_w:  # A phase no tap reaches (kernel smaller than the stride): zeros.
        row.append(jnp.zeros((x.shape[0], rows_per_phase, cols_per_phase, features), x.dtype))
        continue
      sub_kernel = kernel[np.array(taps_h)][:, np.array(taps_w)]           # [th, tw, in, out]
      # Rows first_h .. first_h + rows_per_phase - 1 + th - 1 of x, zero outside it (likewise columns).
      window = [(first_h, rows_per_phase + len(taps_h) - 1, height), (first_w, cols_per_phase + len(taps_w) - 1, width)]
      padding_lax = [(-start, start + size - n) for start, size, n in window]
      row.append(jax.lax.conv_general_dilated(x, sub_kernel, (1, 1), padding_lax,
                                              dimension_numbers=("NHWC", "HWIO", "NHWC")))
    outputs.append(row)
  return _interleave(outputs, rows_per_phase, cols_per_phase)[:, :out_h, :out_w]


def _lax_conv_transpose(x, kernel, strides, padding):
  return jax.lax.conv_transpose(x, kernel, strides, padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _with_backward(forward, backward):
  """f(x, kernel, strides, padding) = forward(...) whose gradient is backward(strides, padding, (x, kernel), dy)
  -> (dx, dkernel): a jax.custom_vjp keeping x and the kernel for the backward pass."""
  f = jax.custom_vjp(forward, nondiff_argnums=(2, 3))
  f.defvjp(lambda x, kernel, strides, padding: (forward(x, kernel, strides, padding), (x, kernel)), backward)
  return f


def _conv_transpose_bwd(strides, padding, residuals, dy):
  """A transposed convolution is the transpose of a strided convolution C_K: dx = C_K(dy), and since
  <dy, C_K^T x> = <C_K(dy), x>, dK is the weight gradient of C_K at input dy with cotangent x. Both are
  ordinary strided convolutions (JAX's own transpose of the input-dilated form), which XLA runs several times
  faster than the gradients of the phase convolutions (dcgan28's 7 -> 14 layer, forward and backward, on
  the 2-core CPU VM: 11.9 ms against 20.7 ms; the 14 -> 28 layer 1.2 ms against 6.6 ms)."""
  x, kernel = residuals
  strided_conv = lambda k: jax.linear_transpose(lambda u: _lax_conv_transpose(u, k, strides, padding), x)(dy)[0]
  dx, kernel_vjp = jax.vjp(strided_conv, kernel)
  return dx, kernel_vjp(x)[0]


_conv_transpose = _with_backward(_conv_transpose_phases, _conv_transpose_bwd)


def conv_transpose(x, kernel, strides, padding="SAME"):
  """jax.lax.conv_transpose(x, kernel, strides, padding) (NHWC, kernel HWIO, not flipped), with a forward pass
  that convolves the undilated input per output phase (`_conv_transpose_phases`) and a backward pass of
  ordinary strided convolutions (`_conv_transpose_bwd`); on the CPU, from an input of at most PATCH_MAX_POSITIONS
  positions, the transpose of `_patch_conv` (`_patch_conv_transpose`)."""
  padding = padding if isinstance(padding, str) else tuple(tuple(int(v) for v in p) for p in padding)
  if x.shape[1] * x.shape[2] <= PATCH_MAX_POSITIONS and _patch_products_pay():
    return _patch_conv_transpose(x, kernel, tuple(int(s) for s in strides), padding)
  return _conv_transpose(x, kernel, tuple(strides), padding)


def _lax_conv(x, kernel, strides, padding):
  return jax.lax.conv_general_dilated(x, kernel, strides, padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _input_gradient_pads(x_shape, kernel_shape, strides, padding):
  """(dy's shape, explicit padding) of the transposed convolution that is a strided convolution's input
  gradient, or None where a side of the padding would be negative. From y[o] = sum_t x[s o + t - p] K[t]
  (o < m): dx[i] = sum_t' dy[(i + t' - b) / s] K[k - 1 - t'] with b = k - 1 - p, over the input's length n."""
  pads, dy_shape = [], [x_shape[0]]
  for n, k, s, (low, high) in zip(x_shape[1:3], kernel_shape[:2], strides, padding):
    m = _conv_length(n, k, s, low, high)
    before, after = k - 1 - low, n - (m - 1) * s - 1 + low
    if before < 0 or after < 0:
      return None
    pads.append((before, after))
    dy_shape.append(m)
  return (*dy_shape, kernel_shape[-1]), tuple(pads)


def _strided_conv_bwd(strides, padding, residuals, dy):
  """The input gradient of a strided convolution is a transposed convolution of dy with the kernel flipped and
  its in/out axes swapped: computed by `conv_transpose`'s sub-pixel forward pass rather than XLA's convolution
  of the zero-dilated dy (dcgan28's D, 14x14x64 -> 7x7x128 at batch 64, alone on the 2-core CPU VM: 5.2 ms
  against 8.1 ms; 2-6% of the whole step). The kernel gradient is XLA's own."""
  x, kernel = residuals
  flipped = jnp.swapaxes(kernel[::-1, ::-1], 2, 3)                       # [kh, kw, out, in]
  _, pads = _input_gradient_pads(x.shape, kernel.shape, strides, padding)
  dx = conv_transpose(dy, flipped, strides, pads)
  _, kernel_vjp = jax.vjp(lambda k: _lax_conv(x, k, strides, padding), kernel)
  return dx, kernel_vjp(dy)[0]


_strided_conv = _with_backward(_lax_conv, _strided_conv_bwd)


# A stride-1 kernel at least this tall with at most this many outputs is computed by `_row_split_conv`.
ROW_SPLIT_MIN_HEIGHT, ROW_SPLIT_MAX_OUTPUTS = 5, 4


def _row_split_conv(lhs, rhs, pads):
  """A stride-1 NHWC/HWIO convolution as one 1 x kw convolution to kh * out channels (the contribution of each
  kernel row, for every input row) and a shift-add of those rows: the same sum in another order. XLA's CPU
  backend (its YNNPACK path) runs a tall kernel with few outputs at under 2 GFLOP/s: CycleGAN's last 7x7
  convolution, 32 -> 3 channels at 32x32, took 85-95 ms a batch of 16 against PyTorch's 17 ms; this form takes
  7 ms, and 18 ms against 24 with its gradient."""
  kh, kw, cin, cout = rhs.shape
  (top, bottom), (left, right) = pads
  x = jnp.pad(lhs, ((0, 0), (top, bottom), (0, 0), (0, 0)))
  rows = rhs.transpose(1, 2, 0, 3).reshape(1, kw, cin, kh * cout)            # [1, kw, in, (kernel row, out)]
  z = jax.lax.conv_general_dilated(x, rows, (1, 1), ((0, 0), (left, right)),
                                   dimension_numbers=("NHWC", "HWIO", "NHWC"))
  z = z.reshape(*z.shape[:3], kh, cout)                                     # [B, H + pads, W', kh, out]
  height = x.shape[1] - kh + 1
  return sum(z[:, i:i + height, :, i] for i in range(kh))


# On the CPU, a convolution to at most PATCH_MAX_POSITIONS positions, a transposed convolution from at most that
# many, and a stride-1 convolution of at most PATCH_MAX_CHANNELS input channels (a generator's or discriminator's
# first layer on grey or RGB images) are computed by `_patch_conv` (measured, see there).
PATCH_MAX_POSITIONS = 4
PATCH_MAX_CHANNELS = 4


def _patch_products_pay() -> bool:
  """Whether `_patch_conv` replaces convolutions: measured on the CPU only, where XLA's convolutions of small maps
  and few channels are slow. On an accelerator they stay XLA's (cuDNN's), and the patches of a 256x256 RGB batch
  (49 taps of c7s1) would cost memory the convolution does not."""
  return jax.default_backend() == "cpu"


def _used_taps(n, k, s, low, m):
  """[first, last + 1) of the kernel taps that reach the input (length n, padded by `low` before it) for any
  of the m outputs, along one axis; taps outside it only ever multiply padding."""
  used = [t for t in range(k) if any(0 <= t + s * o - low < n for o in range(m))]
  return (used[0], used[-1] + 1) if used else (0, 1)


def _patch_conv(lhs, rhs, strides, pads):
  """An NHWC/HWIO convolution as one matrix product of its patches (im2col: a strided slice of the padded input
  per kernel tap, concatenated along channels) with the kernel reshaped to [taps * in, out], leaving out taps
  that only meet padding. Its gradients are matrix products and the slices' transposes (pads and adds). XLA's
  CPU backend runs the convolutions of small maps, and above all their gradients, far below its matrix-product
  speed: the U-Net's innermost levels of pix2pix32 (batch 16, 4x4 kernels at stride 2) with their gradients,
  4x4x256 -> 2x2x256 47.9 ms against 2.6 ms in this form, 2x2x256 -> 1x1x256 11.5 ms against 0.4 (2-core AMD
  EPYC VM, 2026-12-02). Alone, 8x8x128 -> 4x4x256 gains too (4.9 against 3.4) and 16x16x64 -> 8x8x128 loses (3.9
  against 5.5); within the whole pix2pix32 step (91 ms -> 52-58 ms) a limit of 4 or 16 positions made no
  difference beyond the VM's noise, so the smaller one keeps every other model's larger maps on XLA's path.
  Convolutions of few input channels are slow there too: CycleGAN's c7s1-32 on RGB, with its gradients, 16.1 ms
  against 5.5 (on grey inputs 6.4 against 2.1), the cyclegan32 step 517 -> 472 ms; at stride 2 (dcgan28's first
  D layer, 28x28x1) the patch product lost (58 -> 72 ms a step), so only stride 1 takes it.
  The same sum in another order: equal up to float rounding."""
  batch, height, width, _ = lhs.shape
  kh, kw, _, features = rhs.shape
  (top, bottom), (left, right) = pads
  sh, sw = strides
  out_h, out_w = _conv_length(height, kh, sh, top, bottom), _conv_length(width, kw, sw, left, right)
  i0, i1 = _used_taps(height, kh, sh, top, out_h)
  j0, j1 = _used_taps(width, kw, sw, left, out_w)
  x = jax.lax.pad(lhs, jnp.zeros((), lhs.dtype), ((0, 0, 0), (top, bottom, 0), (left, right, 0), (0, 0, 0)))
  taps = [x[:, i:i + sh * (out_h - 1) + 1:sh, j:j + sw * (out_w - 1) + 1:sw] for i in range(i0, i1)
          for j in range(j0, j1)]
  patches = jnp.concatenate(taps, axis=-1) if len(taps) > 1 else taps[0]  # [B, out_h, out_w, taps * in]
  y = patches.reshape(batch * out_h * out_w, -1) @ rhs[i0:i1, j0:j1].reshape(-1, features)
  return y.reshape(batch, out_h, out_w, features)


def _patch_conv_transpose(x, kernel, strides, padding):
  """jax.lax.conv_transpose(x, kernel, strides, padding) as the transpose of the strided convolution it is the
  input gradient of (`_strided_conv_bwd`'s identity read backwards), computed by `_patch_conv`: from the
  U-Net's 1x1x256 bottleneck to 2x2x256 at batch 16, with its gradients, 0.8 ms against 11.5 ms; from 2x2x512,
  6.7 against 12.3; from 4x4, slower (11.1 against 9.0; 2-core AMD EPYC VM, 2026-12-02)."""
  kh, kw, _, features = kernel.shape
  pad_h, pad_w = (padding, padding) if isinstance(padding, str) else padding
  sizes, pads = [], []
  for n, k, s, pad in zip(x.shape[1:3], (kh, kw), strides, (pad_h, pad_w)):
    before, after = _transpose_pads(k, s, pad)
    length = _transpose_length(n, k, s, before, after)
    low = k - 1 - before                                                  # Padding of the convolution it transposes.
    sizes.append(length)
    pads.append((low, (n - 1) * s + k - length - low))
  flipped = jnp.swapaxes(kernel[::-1, ::-1], 2, 3)                       # [kh, kw, out, in]
  template = jax.ShapeDtypeStruct((x.shape[0], *sizes, features), x.dtype)
  return jax.linear_transpose(lambda u: _patch_conv(u, flipped, strides, tuple(pads)), template)(x)[0]


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                         dimension_numbers=None, feature_group_count=1, precision=None):
  """jax.lax.conv_general_dilated with the signature flax.linen.Conv calls (`nn.Conv(...,
  conv_general_dilated=layers.conv_general_dilated)`): a 2D NHWC/HWIO convolution with strides above 1 and no
  dilation or groups takes its input gradient from `conv_transpose` (`_strided_conv_bwd`) where that is one
  convolution (`_merges`: DCGAN's 14 -> 7 layer, not its 8 -> 4, where the four phase convolutions are slower
  than XLA's own gradient); on the CPU, one to at most PATCH_MAX_POSITIONS output positions (the U-Net's
  innermost levels, a DCGAN discriminator's last layer), or of stride 1 with at most PATCH_MAX_CHANNELS inputs
  (CycleGAN's c7s1-32), is one matrix product of its patches (`_patch_conv`); otherwise one of stride 1 with a
  kernel ROW_SPLIT_MIN_HEIGHT or more tall and at most ROW_SPLIT_MAX_OUTPUTS outputs (CycleGAN's c7s1-3) is
  `_row_split_conv`; anything else is jax.lax's. Same function and parameters either way (the patch product and
  the row split sum in another order: equal up to float rounding)."""
  strides = tuple(int(s) for s in window_strides)
  plain = (lhs.ndim == 4 and feature_group_count == 1 and precision is None
           and all(d == 1 for d in (lhs_dilation or ())) and all(d == 1 for d in (rhs_dilation or ()))
           and jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
           == jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, ("NHWC", "HWIO", "NHWC")))
  if plain:
    pads = (jax.lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], strides, padding)
            if isinstance(padding, str) else padding)
    pads = tuple((int(low), int(high)) for low, high in pads)
    out_h, out_w = (_conv_length(n, k, s, *pad) for n, k, s, pad in zip(lhs.shape[1:3], rhs.shape[:2], strides, pads))
    few_inputs = max(strides) == 1 and rhs.shape[2] <= PATCH_MAX_CHANNELS and rhs.shape[0] * rhs.shape[1] > 1
    if (out_h * out_w <= PATCH_MAX_POSITIONS or few_inputs) and _patch_products_pay():
      return _patch_conv(lhs, rhs, strides, pads)
    if (max(strides) == 1 and rhs.shape[0] >= ROW_SPLIT_MIN_HEIGHT and rhs.shape[3] <= ROW_SPLIT_MAX_OUTPUTS
        and min(min(p) for p in pads) >= 0):
      return _row_split_conv(lhs, rhs, pads)
  if plain and max(strides) > 1:
    gradient = _input_gradient_pads(lhs.shape, rhs.shape, strides, pads)
    if gradient is not None:
      dy_shape, dx_pads = gradient
      if _merges(*_phase_plan(dy_shape, rhs.shape, strides, dx_pads)[2:]):
        return _strided_conv(lhs, rhs, strides, pads)
  return jax.lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                                      dimension_numbers, feature_group_count, precision=precision)


class ConvTranspose(nn.Module):
  """Drop-in for flax.linen.ConvTranspose (same parameters, names, shapes and initialisers, so checkpoints
  are interchangeable) computed by `conv_transpose`: the up-sampling layer of every generator here."""
  features: int
  kernel_size: tuple
  strides: tuple = (1, 1)
  padding: object = "SAME"
  use_bias: bool = True
  kernel_init: nn.initializers.Initializer = nn.initializers.lecun_normal()
  bias_init: nn.initializers.Initializer = nn.initializers.zeros
  dtype: jnp.dtype = jnp.float32  # Computation dtype (parameters are float32).

  @nn.compact
  def __call__(self, x):  # [B, H, W, C_in] -> [B, H', W', features]
    kernel = self.param("kernel", self.kernel_init, (*self.kernel_size, x.shape[-1], self.features))
    y = conv_transpose(x.astype(self.dtype), kernel.astype(self.dtype), self.strides, self.padding)
    if self.use_bias:
      y = y + self.param("bias", self.bias_init, (self.features,)).astype(self.dtype)
    return y
