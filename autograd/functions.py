"""Composite operations on Tensors, built from primitives only (so they need no derivative rules of their own)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from autograd.core import Node, mixing_error
from autograd.primitives import CONCATENATE, SUB
from autograd.tensor import Tensor, _lift, concatenate, normal_axis, reduction_axes


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
    targets = np.asarray(targets.data if isinstance(targets, Tensor) else targets)
    if targets.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: targets must be integer class indices, got dtype {targets.dtype}")
    if not isinstance(logits, Tensor):
        raise TypeError(f"cross_entropy: logits must be a Tensor of shape (..., classes), got "
                        f"{type(logits).__name__}")
    if logits.ndim == 0:
        raise ValueError("cross_entropy: logits need a last axis of classes (shape (..., classes)), got a 0-d "
                         "tensor")
    if logits.shape[:-1] != targets.shape:
        raise ValueError(f"cross_entropy: logits of shape {logits.shape} need targets of shape "
                         f"{logits.shape[:-1]}, got {targets.shape}")
    classes = logits.shape[-1]
    if targets.size and (targets.min() < 0 or targets.max() >= classes):
        raise ValueError(f"cross_entropy: targets must lie in [0, {classes}), got values from "
                         f"{targets.min()} to {targets.max()}")
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
