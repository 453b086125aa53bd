"""A stage expanded into its primitives: the same graph, with chosen stages recomputed from the plain primitives
they stand for, for a reader who wants to see why a stage's local derivative is what it is.

``expanded(loss, "softmax_cross_entropy")`` is a new graph over the same leaves (the same Tensor objects, so
their gradients compare directly) in which the stage is log_softmax, indexing and a mean: its backward pass then
shows where p - y comes from. A convolution becomes one product per kernel offset (the kernel forks into kh * kw
branches, the input's padded copy into as many slices), a pooling a stack of the windows' shifted slices and a
max or a mean over them. The numbers are the stage's own, but for one case: where a pooling window holds tied
maxima, the reduction max shares the gradient among them while the stage gives it to the first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from autograd.core import Node, topological_order
from autograd.functions import cross_entropy, stack
from autograd.tensor import Tensor

EXPANDABLE = ("conv1d", "conv2d", "max_pool2d", "avg_pool2d", "softmax_cross_entropy")


def expanded(root: Node, stages: str | Iterable[str] = EXPANDABLE) -> Node:
    """A copy of the graph under ``root`` in which every node of the named stage primitives (by default all of
    `EXPANDABLE`) is recomputed from plainer primitives; other nodes are recomputed as they were (same op, same
    parameters, labels and stages kept), leaves are shared."""
    return expansion(root, stages)[root]


def expansion(root: Node, stages: str | Iterable[str] = EXPANDABLE) -> dict[Node, Node]:
    """`expanded`'s work: each node of the graph under ``root`` with its copy (a leaf with itself)."""
    if not isinstance(root, Tensor):
        raise TypeError(f"expanded: the stages live on Tensors, got a {type(root).__name__}")
    names = (stages,) if isinstance(stages, str) else tuple(stages)
    unknown = sorted(set(names) - set(EXPANDABLE))
    if unknown:
        raise ValueError(f"expanded: {unknown} cannot be expanded; the stages that can are {list(EXPANDABLE)}")
    copies: dict[Node, Node] = {}
    for node in topological_order(root, first_input_first=True):
        if node.op is None:
            copies[node] = node
            continue
        inputs = [copies[parent] for parent in node.parents]
        if node.op.name in names:
            copy = _COMPOSITES[node.op.name](*inputs, **node.params)
        else:
            copy = inputs[0].apply(node.op, *inputs[1:], **node.params)
        copy.stage = node.stage
        if node.label is not None:
            copy.label = node.label
        copies[node] = copy
    return copies


def _padded(x: Tensor, padding: tuple[int, ...]) -> Tensor:
    """``x`` with zeros around its spatial axes: a scatter into a larger zero array (its gradient: a slice)."""
    if not any(padding):
        return x
    shape = x.shape[:2] + tuple(n + 2 * p for n, p in zip(x.shape[2:], padding))
    return x.scatter((slice(None), slice(None), *(slice(p, p + n) for p, n in zip(padding, x.shape[2:]))), shape)


def _shifted(x: Tensor, offset: tuple[int, ...], stride: tuple[int, ...], out: tuple[int, ...]) -> Tensor:
    """The input elements that kernel entry ``offset`` meets at every output position: a strided slice."""
    return x[(slice(None), slice(None), *(slice(o, o + s * (m - 1) + 1, s) for o, s, m in zip(offset, stride, out)))]


def _out(size: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...]) -> tuple[int, ...]:
    return tuple((n - k) // s + 1 for n, k, s in zip(size, kernel, stride))


def _convolution(x: Tensor, weight: Tensor, stride: tuple[int, ...], padding: tuple[int, ...]) -> Tensor:
    """sum over kernel offsets k of (the input's slice under k) times (the kernel's column at k), channels
    contracted by a product: the kernel is used at every offset and every position."""
    xp = _padded(x, padding)
    kernel = weight.shape[2:]
    out = _out(xp.shape[2:], kernel, stride)
    d = len(kernel)
    last = (0, *range(2, 2 + d), 1)  # channels last, so that a product contracts them
    total = None
    for offset in np.ndindex(*kernel):
        term = _shifted(xp, offset, stride, out).transpose(last) @ weight[(slice(None), slice(None), *offset)].T
        total = term if total is None else total + term
    return total.transpose((0, d + 1, *range(1, d + 1)))


def _windows(x: Tensor, kernel: tuple[int, ...], stride: tuple[int, ...]) -> Tensor:
    """The windows' elements side by side on a new last axis: (N, C, *out, kernel area)."""
    out = _out(x.shape[2:], kernel, stride)
    return stack([_shifted(x, offset, stride, out) for offset in np.ndindex(*kernel)], axis=-1)


_COMPOSITES: dict[str, Callable[..., Any]] = {
    "conv1d": _convolution,
    "conv2d": _convolution,
    "max_pool2d": lambda x, kernel, stride: _windows(x, kernel, stride).max(axis=-1),
    "avg_pool2d": lambda x, kernel, stride: _windows(x, kernel, stride).mean(axis=-1),
    "softmax_cross_entropy": lambda z, targets: cross_entropy(z, targets),
}
