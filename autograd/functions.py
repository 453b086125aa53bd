"""Functions of Tensors: composites built from primitives only (softmax, cross_entropy, mse, stack, split: no
derivative rules of their own), and the functional stages that are one primitive each (conv2d, conv1d,
max_pool2d, avg_pool2d, softmax_cross_entropy, maximum, minimum), their arguments checked here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from autograd import conv
from autograd.core import Node, mixing_error
from autograd.primitives import (
    AVG_POOL2D,
    CONCATENATE,
    CONV1D,
    CONV2D,
    MAX_POOL2D,
    MAXIMUM,
    MINIMUM,
    SOFTMAX_CROSS_ENTROPY,
    SUB,
    Primitive,
)
from autograd.tensor import Tensor, _lift, concatenate, normal_axis, reduction_axes
from autograd.value import Value
from autograd.value import _lift as value_operand


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)), shifted by the (constant) maximum so that exp never overflows."""
    axis = reduction_axes(axis, x, "softmax")
    shifted = x - _shift(x, axis)
    exps = shifted.exp()
    return exps / exps.sum(axis=axis, keepdims=True)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """x - log(sum(exp(x))), computed stably."""
    axis = reduction_axes(axis, x, "log_softmax")
    shifted = x - _shift(x, axis)
    return shifted - shifted.exp().sum(axis=axis, keepdims=True).log()


def _shift(x: Tensor, axis: Any) -> np.ndarray:
    """The maximum along ``axis`` (a constant), which softmax subtracts so that exp never overflows; -inf over an
    empty axis, where there is nothing to shift."""
    return x.data.max(axis=axis, keepdims=True, initial=-np.inf)


def mse(prediction: Tensor, target: Any) -> Tensor:
    """Mean squared error."""
    target = _lift(target, prediction, SUB)
    if prediction.shape != target.shape:
        raise ValueError(f"mse: prediction shape {prediction.shape} and target shape {target.shape} differ")
    difference = prediction - target
    return (difference * difference).mean()


def cross_entropy(logits: Tensor, targets: Any) -> Tensor:
    """Mean negative log-likelihood of integer class ``targets`` under ``softmax(logits)`` (classes last)."""
    targets = _class_targets(logits, targets, "cross_entropy")
    classes = logits.shape[-1]
    flat = log_softmax(logits, axis=-1).reshape(-1, classes)
    picked = flat[np.arange(targets.size), targets.reshape(-1)]
    return -picked.mean()


def stack(tensors: Sequence[Any], axis: int = 0) -> Tensor:
    """Join tensors of one shape along a new axis."""
    tensors = [t if isinstance(t, Tensor) else _lift_into("stack", t) for t in tensors]
    if not tensors:
        raise ValueError("stack needs at least one tensor")
    shapes = {t.shape for t in tensors}
    if len(shapes) > 1:
        raise ValueError(f"stack: all tensors need the same shape, got {sorted(shapes)}")
    shape = tensors[0].shape
    axis = normal_axis(axis, len(shape) + 1, "stack", f"stacking tensors of shape {shape}")
    expanded = [t.reshape(t.shape[:axis] + (1,) + t.shape[axis:]) for t in tensors]
    return concatenate(expanded, axis=axis) if len(expanded) > 1 else expanded[0]


def _lift_into(op: str, x: Any) -> Tensor:
    if isinstance(x, Node):
        raise mixing_error(op, Tensor, x)
    return _lift(x, None, CONCATENATE)


def split(x: Tensor, sections: int | Sequence[int], axis: int = 0) -> list[Tensor]:
    """Cut a tensor into equal ``sections`` (an int) or at the given indices, like numpy.split."""
    axis = normal_axis(axis, x.ndim, "split", x)
    length = x.shape[axis]
    if isinstance(sections, int):
        if sections <= 0 or length % sections:
            raise ValueError(f"split: an axis of length {length} does not divide into {sections} equal parts")
        bounds = list(range(0, length + 1, length // sections))
    else:
        bounds = [0, *sections, length]
    prefix = (slice(None),) * axis
    return [x[(*prefix, slice(start, stop))] for start, stop in zip(bounds, bounds[1:])]


# --- functional stages: one primitive each (see the table's last section) ---------------------------------------

def conv2d(x: Tensor, weight: Any, bias: Any = None, stride: int | Sequence[int] = 1,
           padding: int | Sequence[int] = 0) -> Tensor:
    """2-d convolution as deep learning means it (a correlation; PyTorch's ``conv2d``): ``x`` (N, C, H, W),
    ``weight`` (F, C, kh, kw), ``bias`` (F,) or None; ``stride`` and ``padding`` (zeros) an int or one per axis.
    Returns (N, F, H', W'). The convolution is one primitive, the bias a broadcast addition."""
    return _convolution(CONV2D, x, weight, bias, stride, padding)


def conv1d(x: Tensor, weight: Any, bias: Any = None, stride: int | Sequence[int] = 1,
           padding: int | Sequence[int] = 0) -> Tensor:
    """1-d convolution (PyTorch's ``conv1d``): ``x`` (N, C, L), ``weight`` (F, C, k), ``bias`` (F,) or None."""
    return _convolution(CONV1D, x, weight, bias, stride, padding)


def _convolution(op: Primitive, x: Any, weight: Any, bias: Any, stride: Any, padding: Any) -> Tensor:
    d = 2 if op is CONV2D else 1
    x, weight = _lift(x, None, op), _lift(weight, x if isinstance(x, Tensor) else None, op)
    layouts = "(N, C, H, W) and (F, C, kh, kw)" if d == 2 else "(N, C, L) and (F, C, k)"
    if x.ndim != d + 2 or weight.ndim != d + 2:
        raise ValueError(f"{op.name}: input and weight must be {layouts}, got shapes {x.shape} and {weight.shape}")
    if x.shape[1] != weight.shape[1]:
        raise ValueError(f"{op.name}: the input has {x.shape[1]} channels (shape {x.shape}) but the weight expects "
                         f"{weight.shape[1]} (shape {weight.shape})")
    stride, padding = _sizes(stride, d, op, "stride", 1), _sizes(padding, d, op, "padding", 0)
    kernel = weight.shape[2:]
    if min(kernel, default=1) < 1:
        raise ValueError(f"{op.name}: the kernel {kernel} is empty (weight of shape {weight.shape})")
    if min(conv.output_size(x.shape[2:], kernel, stride, padding)) < 1:
        raise ValueError(f"{op.name}: the kernel {kernel} is larger than the input {x.shape[2:]} padded by "
                         f"{padding}")
    out = x.apply(op, weight, stride=stride, padding=padding)
    if bias is None:
        return out
    bias = _lift(bias, x, op)
    if bias.shape != weight.shape[:1]:
        raise ValueError(f"{op.name}: bias must have shape ({weight.shape[0]},), one per filter, got {bias.shape}")
    return out + bias.reshape((-1,) + (1,) * d)


def max_pool2d(x: Tensor, kernel_size: int | Sequence[int], stride: int | Sequence[int] | None = None) -> Tensor:
    """The maximum of each kernel_size window of ``x`` (N, C, H, W), ``stride`` apart (default: kernel_size, as
    PyTorch). The gradient goes to each window's first maximum in row-major order, as PyTorch routes it."""
    return _pool(MAX_POOL2D, x, kernel_size, stride)


def avg_pool2d(x: Tensor, kernel_size: int | Sequence[int], stride: int | Sequence[int] | None = None) -> Tensor:
    """The mean of each kernel_size window of ``x`` (N, C, H, W), ``stride`` apart (default: kernel_size)."""
    return _pool(AVG_POOL2D, x, kernel_size, stride)


def _pool(op: Primitive, x: Any, kernel_size: Any, stride: Any) -> Tensor:
    x = _lift(x, None, op)
    if x.ndim != 4:
        raise ValueError(f"{op.name}: the input must be (N, C, H, W), got shape {x.shape}")
    kernel = _sizes(kernel_size, 2, op, "kernel_size", 1)
    stride = kernel if stride is None else _sizes(stride, 2, op, "stride", 1)
    if min(conv.output_size(x.shape[2:], kernel, stride, (0, 0))) < 1:
        raise ValueError(f"{op.name}: the window {kernel} is larger than the input {x.shape[2:]}")
    return x.apply(op, kernel=kernel, stride=stride)


def _sizes(value: Any, d: int, op: Primitive, what: str, least: int) -> tuple[int, ...]:
    """An int or a sequence of ``d`` ints, each at least ``least``, as a tuple of ``d`` ints."""
    sizes = (value,) * d if not isinstance(value, (tuple, list)) else tuple(value)
    if len(sizes) != d or not all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) for n in sizes):
        raise TypeError(f"{op.name}: {what} is an integer or {d} integers, got {value!r:.40}")
    if min(sizes) < least:
        raise ValueError(f"{op.name}: {what} must be at least {least}, got {value!r}")
    return tuple(int(n) for n in sizes)


def softmax_cross_entropy(logits: Tensor, targets: Any) -> Tensor:
    """The mean over rows of -log softmax(logits)[target], as one stage whose local derivative is
    (p - onehot(y)) / N: the same number as `cross_entropy` (PyTorch's ``cross_entropy``), drawn as one box.
    ``logits`` (..., K), integer ``targets`` of the leading shape."""
    logits = _lift(logits, None, SOFTMAX_CROSS_ENTROPY)
    targets = _class_targets(logits, targets, "softmax_cross_entropy")
    if targets.size == 0:
        raise ValueError(f"softmax_cross_entropy: no rows to average over (logits of shape {logits.shape})")
    return logits.apply(SOFTMAX_CROSS_ENTROPY, targets=targets)


def _class_targets(logits: Tensor, targets: Any, op: str) -> np.ndarray:
    """Integer class targets of the logits' leading shape, each in [0, classes), as an array; else refused."""
    targets = np.asarray(targets.data if isinstance(targets, Tensor) else targets)
    if targets.dtype.kind not in "iu":
        raise TypeError(f"{op}: targets must be integer class indices, got dtype {targets.dtype}")
    if not isinstance(logits, Tensor):
        raise TypeError(f"{op}: logits must be a Tensor of shape (..., classes), got {type(logits).__name__}")
    if logits.ndim == 0:
        raise ValueError(f"{op}: logits need a last axis of classes (shape (..., classes)), got a 0-d tensor")
    if logits.shape[:-1] != targets.shape:
        raise ValueError(f"{op}: logits of shape {logits.shape} need targets of shape {logits.shape[:-1]}, got "
                         f"{targets.shape}")
    classes = logits.shape[-1]
    if targets.size and (targets.min() < 0 or targets.max() >= classes):
        raise ValueError(f"{op}: targets must lie in [0, {classes}), got values from {targets.min()} to "
                         f"{targets.max()}")
    return targets


def maximum(a: Any, b: Any) -> Any:
    """The elementwise maximum of two Tensors or two Values (a number joins either). Where they tie, each
    gets half the gradient, as in PyTorch."""
    return _extremum(MAXIMUM, a, b)


def minimum(a: Any, b: Any) -> Any:
    """The elementwise minimum of two Tensors or two Values (ties share the gradient, as in `maximum`)."""
    return _extremum(MINIMUM, a, b)


def _extremum(op: Primitive, a: Any, b: Any) -> Any:
    if isinstance(a, Value) or isinstance(b, Value):
        a = a if isinstance(a, Value) else value_operand(a, op)
        return a.max(b) if op is MAXIMUM else a.min(b)
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError(f"{op.name}: expected a Tensor or a Value, got {type(a).__name__} and {type(b).__name__}")
    like = a if isinstance(a, Tensor) else b
    return _lift(a, like, op).apply(op, _lift(b, like, op))
