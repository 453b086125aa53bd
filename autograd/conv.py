"""The array arithmetic of sliding windows: convolution and pooling over 1 or 2 spatial axes, on numpy arrays.

Layouts are PyTorch's: an input (N, C, *spatial), a kernel (F, C, *kernel), an output (N, F, *out). Every
function is vectorised: the windows are a strided view (``sliding_window_view``), a convolution is one
``tensordot`` over them (numpy copies the windows into columns, im2col, and makes one matrix product), and no
Python loop runs over pixels. The primitive table (`autograd.primitives`) holds the rows that use these; this
module knows nothing of graphs.

The backward passes are written the way a course derives them:

- dL/dW is the correlation of the (padded) input with dL/dY: each kernel entry meets, at every output
  position, the input element under it, and the products over positions (and the batch) add up;
- dL/dX is the full convolution of dL/dY with the flipped kernel: dL/dY is spread out by the stride (zeros in
  between), surrounded by kernel-1 zeros, and correlated with the kernel turned by 180 degrees, its F and C
  axes swapped; the result covers the padded input and is cropped to the input.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

Sizes = tuple[int, ...]  # one integer per spatial axis


def output_size(size: Sizes, kernel: Sizes, stride: Sizes, padding: Sizes) -> Sizes:
    """The output's spatial size: floor((size + 2 padding - kernel) / stride) + 1 along each axis."""
    return tuple((n + 2 * p - k) // s + 1 for n, k, s, p in zip(size, kernel, stride, padding))


def pad(x: np.ndarray, padding: Sizes) -> np.ndarray:
    """``x`` with ``padding`` zeros on both sides of each spatial axis (itself when there are none)."""
    if not any(padding):
        return x
    return np.pad(x, [(0, 0)] * (x.ndim - len(padding)) + [(p, p) for p in padding])


def windows(x: np.ndarray, kernel: Sizes, stride: Sizes) -> np.ndarray:
    """A view (N, C, *out, *kernel) of the kernel-sized windows of ``x`` (N, C, *spatial), ``stride`` apart."""
    d = len(kernel)
    view = sliding_window_view(x, kernel, axis=tuple(range(2, 2 + d)))
    return view[(slice(None), slice(None), *(slice(None, None, s) for s in stride))]


def correlate(x: np.ndarray, weight: np.ndarray, stride: Sizes, padding: Sizes) -> np.ndarray:
    """What deep learning calls convolution: out[n, f, i] = sum over c, k of xpad[n, c, i*stride + k] w[f, c, k]."""
    d = weight.ndim - 2
    cols = windows(pad(x, padding), weight.shape[2:], stride)  # (N, C, *out, *kernel)
    out = np.tensordot(cols, weight, axes=((1, *range(2 + d, 2 + 2 * d)), tuple(range(1, 2 + d))))
    return np.moveaxis(out, -1, 1)  # (N, *out, F) -> (N, F, *out)


def weight_grad(x: np.ndarray, g: np.ndarray, kernel: Sizes, stride: Sizes, padding: Sizes) -> np.ndarray:
    """dL/dW (F, C, *kernel): the correlation of the padded input with dL/dY, summed over the batch."""
    d = len(kernel)
    _check_out(g, x.shape[2:], kernel, stride, padding)
    cols = windows(pad(x, padding), kernel, stride)  # (N, C, *out, *kernel)
    over = (0, *range(2, 2 + d))  # the batch and the output positions
    return np.tensordot(g, cols, axes=(over, over))  # (F, C, *kernel)


def _check_out(g: np.ndarray, size: Sizes, kernel: Sizes, stride: Sizes, padding: Sizes) -> None:
    """Refuse an upstream gradient whose spatial shape is not the output's (a backward op called by hand)."""
    expected = output_size(size, kernel, stride, padding)
    if g.shape[2:] != expected:
        raise ValueError(f"the upstream gradient of shape {g.shape} does not fit an output of spatial size "
                         f"{expected} (input {size}, kernel {kernel}, stride {stride}, padding {padding})")


def spread(g: np.ndarray, stride: Sizes, kernel: Sizes) -> np.ndarray:
    """``g`` (N, F, *out) with stride - 1 zeros between neighbours and kernel - 1 zeros around: what a full
    convolution slides over."""
    out = g.shape[2:]
    size = tuple((o - 1) * s + 1 + 2 * (k - 1) for o, s, k in zip(out, stride, kernel))
    spread_out = np.zeros(g.shape[:2] + size, dtype=g.dtype)
    spread_out[(slice(None), slice(None), *(slice(k - 1, k - 1 + (o - 1) * s + 1, s)
                                              for o, s, k in zip(out, stride, kernel)))] = g
    return spread_out


def crop(full: np.ndarray, size: Sizes, padding: Sizes) -> np.ndarray:
    """A gradient over the padded input's first positions (those some window covers) as one over the input:
    zeros for the last positions no window reached, the padding cut away."""
    covered = full.shape[2:]
    missing = [(0, n + 2 * p - c) for n, p, c in zip(size, padding, covered)]
    if any(m for _, m in missing):
        full = np.pad(full, [(0, 0), (0, 0), *missing])
    return full[(slice(None), slice(None), *(slice(p, p + n) for n, p in zip(size, padding)))]


def input_grad(g: np.ndarray, weight: np.ndarray, size: Sizes, stride: Sizes, padding: Sizes) -> np.ndarray:
    """dL/dX (N, C, *size): the full convolution of dL/dY with the flipped kernel, cropped to the input."""
    d = weight.ndim - 2
    kernel = weight.shape[2:]
    _check_out(g, size, kernel, stride, padding)
    flipped = weight[(slice(None), slice(None), *(slice(None, None, -1),) * d)]
    # correlate the spread-out g (N, F, ...) with the flipped kernel read as (C, F, *kernel)
    full = correlate(spread(g, stride, kernel), flipped.swapaxes(0, 1), (1,) * d, (0,) * d)
    return np.ascontiguousarray(crop(full, size, padding))


# --- pooling ---------------------------------------------------------------------------------------------------

def max_pool(x: np.ndarray, kernel: Sizes, stride: Sizes) -> np.ndarray:
    """The maximum of each window (NaN when the window holds one, as PyTorch)."""
    return _flat_windows(x, kernel, stride).max(axis=-1)


def max_pool_index(x: np.ndarray, kernel: Sizes, stride: Sizes) -> tuple[np.ndarray, ...]:
    """Where each window's maximum lies in ``x``, as an index (one integer array per axis of ``x``, each of the
    output's shape). Ties go to the window's first maximum in row-major order (its first NaN, if any): the
    element PyTorch routes the gradient to."""
    flat = _flat_windows(x, kernel, stride)
    first = flat.argmax(axis=-1)  # numpy's argmax: the first occurrence, NaN counting as the maximum
    out = flat.shape[:-1]
    grid = np.indices(out, sparse=True)
    offsets = np.unravel_index(first, kernel)
    spatial = tuple(grid[2 + j] * stride[j] + offsets[j] for j in range(len(kernel)))
    return (grid[0], grid[1], *spatial)


def avg_pool(x: np.ndarray, kernel: Sizes, stride: Sizes) -> np.ndarray:
    """The mean of each window."""
    return _flat_windows(x, kernel, stride).mean(axis=-1)


def avg_pool_grad(g: np.ndarray, size: Sizes, kernel: Sizes, stride: Sizes) -> np.ndarray:
    """dL/dX of average pooling: each element gets g / (window size) from every window that holds it."""
    d = len(kernel)
    _check_out(g, size, kernel, stride, (0,) * d)
    summed = windows(spread(g, stride, kernel), kernel, (1,) * d).sum(axis=tuple(range(-d, 0)))
    return np.ascontiguousarray(crop(summed / math.prod(kernel), size, (0,) * d))


def _flat_windows(x: np.ndarray, kernel: Sizes, stride: Sizes) -> np.ndarray:
    view = windows(x, kernel, stride)
    return view.reshape(view.shape[:-len(kernel)] + (math.prod(kernel),))
