"""The array arithmetic of sliding windows: convolution and pooling over 1 or 2 spatial axes, on numpy arrays.

Layouts are PyTorch's: an input (N, C, *spatial), a kernel (F, C, *kernel), an output (N, F, *out). Every
function is vectorised: the windows are a strided view (``sliding_window_view``) copied once into columns
(im2col), a convolution is one matrix product over them, and no Python loop runs over pixels. The primitive
table (`autograd.primitives`) holds the rows that use these; this module knows nothing of graphs.

The backward passes are the ones a course derives:

- dL/dW is the correlation of the (padded) input with dL/dY: each kernel entry meets, at every output
  position, the input element under it, and the products over positions (and the batch) add up: one product
  of dL/dY with the columns;
- dL/dX is the full convolution of dL/dY with the flipped kernel (dL/dY spread out by the stride and correlated
  with the kernel turned by 180 degrees), computed the way that costs least: each output position's dL/dY
  times the kernel (one matrix product) is added back onto the window it came from (col2im), one kernel
  offset at a time, so the loop runs over the kernel's kh * kw offsets, never over pixels.
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
    view = sliding_window_view(x, kernel, axis=tuple(range(2, 2 + len(kernel))))
    return view[(slice(None), slice(None), *(slice(None, None, s) for s in stride))]


def columns(x: np.ndarray, kernel: Sizes, stride: Sizes, padding: Sizes) -> np.ndarray:
    """im2col: the windows of the padded ``x`` as an array (N, C * kernel area, output positions), a copy."""
    d = len(kernel)
    view = windows(pad(x, padding), kernel, stride)  # (N, C, *out, *kernel)
    n, c, out = view.shape[0], view.shape[1], view.shape[2:2 + d]
    order = (0, 1, *range(2 + d, 2 + 2 * d), *range(2, 2 + d))  # (N, C, *kernel, *out)
    return view.transpose(order).reshape(n, c * math.prod(kernel), math.prod(out))


def correlate(x: np.ndarray, weight: np.ndarray, stride: Sizes, padding: Sizes) -> np.ndarray:
    """What deep learning calls convolution: out[n, f, i] = sum over c, k of xpad[n, c, i*stride + k] w[f, c, k]."""
    kernel = weight.shape[2:]
    out = output_size(x.shape[2:], kernel, stride, padding)
    cols = columns(x, kernel, stride, padding)  # (N, C * area, P)
    product = np.matmul(weight.reshape(weight.shape[0], cols.shape[1]), cols)  # (N, F, P)
    return product.reshape(x.shape[0], weight.shape[0], *out)


def weight_grad(x: np.ndarray, g: np.ndarray, kernel: Sizes, stride: Sizes, padding: Sizes) -> np.ndarray:
    """dL/dW (F, C, *kernel): the correlation of the padded input with dL/dY, summed over the batch."""
    _check_out(g, x.shape[2:], kernel, stride, padding)
    cols = columns(x, kernel, stride, padding)  # (N, C * area, P)
    per_example = np.matmul(g.reshape(g.shape[:2] + (cols.shape[2],)), cols.transpose(0, 2, 1))  # (N, F, C * area)
    return per_example.sum(axis=0).reshape(g.shape[1], x.shape[1], *kernel)


def input_grad(g: np.ndarray, weight: np.ndarray, size: Sizes, stride: Sizes, padding: Sizes) -> np.ndarray:
    """dL/dX (N, C, *size): the full convolution of dL/dY with the flipped kernel, cropped to the input."""
    f, c, kernel = weight.shape[0], weight.shape[1], weight.shape[2:]
    out = _check_out(g, size, kernel, stride, padding)
    # each output position's share of every window element: the kernel times dL/dY there, (N, C * area, P)
    shares = np.matmul(weight.reshape(f, c * math.prod(kernel)).T, g.reshape(g.shape[0], f, math.prod(out)))
    return col2im(shares.reshape(g.shape[0], c, *kernel, *out), size, stride, padding)


def col2im(shares: np.ndarray, size: Sizes, stride: Sizes, padding: Sizes) -> np.ndarray:
    """The adjoint of taking windows: ``shares`` (N, C, *kernel, *out), what each window element receives from
    each output position, added up at the input element each window read (the padding cut away)."""
    d = len(size)
    kernel, out = shares.shape[2:2 + d], shares.shape[2 + d:]
    total = np.zeros(shares.shape[:2] + tuple(n + 2 * p for n, p in zip(size, padding)), dtype=shares.dtype)
    for offset in np.ndindex(*kernel):  # kh * kw strided slices, each covering every output position at once
        where = tuple(slice(o, o + s * (m - 1) + 1, s) for o, s, m in zip(offset, stride, out))
        total[(slice(None), slice(None), *where)] += shares[(slice(None), slice(None), *offset)]
    return total[(slice(None), slice(None), *(slice(p, p + n) for n, p in zip(size, padding)))]


def _check_out(g: np.ndarray, size: Sizes, kernel: Sizes, stride: Sizes, padding: Sizes) -> Sizes:
    """The output's spatial size; an upstream gradient of another shape (a backward op called by hand) refused."""
    expected = output_size(size, kernel, stride, padding)
    if g.shape[2:] != expected:
        raise ValueError(f"the upstream gradient of shape {g.shape} does not fit an output of spatial size "
                         f"{expected} (input {size}, kernel {kernel}, stride {stride}, padding {padding})")
    return expected


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
    """dL/dX of average pooling: each element gets g / (window area) from every window that holds it."""
    d = len(kernel)
    out = _check_out(g, size, kernel, stride, (0,) * d)
    share = g / math.prod(kernel)
    every = share.reshape(share.shape[:2] + (1,) * d + out)  # the same share for every element of a window
    return col2im(np.broadcast_to(every, share.shape[:2] + tuple(kernel) + out), size, stride, (0,) * d)


def _flat_windows(x: np.ndarray, kernel: Sizes, stride: Sizes) -> np.ndarray:
    view = windows(x, kernel, stride)
    return view.reshape(view.shape[:-len(kernel)] + (math.prod(kernel),))
