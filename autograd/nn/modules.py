"""Layers on Tensor: `Module` (parameters by attribute name, state dicts as plain numpy), `Linear`, `Embedding`,
and the convolutional stages `Conv2d`, `MaxPool2d`, `AvgPool2d`, `Flatten`."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from autograd.functions import avg_pool2d, conv2d, max_pool2d
from autograd.tensor import Tensor, normal_axis


class Module:
    """A container of parameters: every Tensor attribute that requires a gradient, and every sub-Module.

    Parameter names are attribute paths (``"head.weight"``), in the order the attributes were set, so a
    subclass that names its tensors like PyTorch's layers reads and writes PyTorch-shaped state dicts.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        for name, value in vars(self).items():
            if isinstance(value, Tensor) and value.requires_grad:
                yield prefix + name, value
            elif isinstance(value, Module):
                yield from value.named_parameters(f"{prefix}{name}.")
            elif isinstance(value, (list, tuple)):
                for index, item in enumerate(value):
                    if isinstance(item, Module):
                        yield from item.named_parameters(f"{prefix}{name}.{index}.")

    def parameters(self) -> list[Tensor]:
        return [parameter for _, parameter in self.named_parameters()]

    def zero_grad(self) -> None:
        for parameter in self.parameters():
            parameter.grad = None

    def gradients(self) -> dict[str, np.ndarray]:
        """Each parameter's gradient (zeros where none has been computed), keyed like the state dict."""
        return {name: np.zeros_like(p.data) if p.grad is None else p.grad.copy()
                for name, p in self.named_parameters()}

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the parameters as plain numpy arrays (no pickling needed to save them)."""
        return {name: parameter.data.copy() for name, parameter in self.named_parameters()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Copy arrays into the parameters; every name must match and every shape must agree."""
        parameters = dict(self.named_parameters())
        shapes = {name: parameter.shape for name, parameter in parameters.items()}
        for name, array in checked_state(self, shapes, state).items():
            parameters[name].data = array.astype(parameters[name].dtype, copy=True)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{name}{tuple(p.shape)}" for name, p in self.named_parameters())
        return f"{type(self).__name__}({shapes})"


def checked_state(owner: object, shapes: Mapping[str, tuple[int, ...]], state: Mapping[str, Any]
                  ) -> dict[str, np.ndarray]:
    """The arrays of ``state`` by name, once all names, shapes and number types are found right: a state dict
    is loaded whole or not at all."""
    where = f"{type(owner).__name__}.load_state_dict"
    missing, unexpected = sorted(set(shapes) - set(state)), sorted(set(state) - set(shapes))
    if missing or unexpected:
        raise KeyError(f"{where}: missing {missing}, unexpected {unexpected}")
    arrays = {name: np.asarray(state[name]) for name in shapes}
    for name, array in arrays.items():
        if array.shape != tuple(shapes[name]):
            raise ValueError(f"{where}: {name} has shape {array.shape}, expected {tuple(shapes[name])}")
        if array.dtype.kind not in "fiu":
            raise TypeError(f"{where}: {name} has dtype {array.dtype}, expected real numbers")
    return arrays


def uniform(rng: np.random.Generator, bound: float, shape: tuple[int, ...], dtype: Any, label: str) -> Tensor:
    """A parameter drawn uniformly from [-bound, bound], PyTorch's default for Linear and LSTM layers."""
    return Tensor(rng.uniform(-bound, bound, size=shape), requires_grad=True, dtype=dtype, label=label)


class Linear(Module):
    """y = x @ weight.T + bias, with ``weight`` of shape (out_features, in_features) as in PyTorch."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, seed: int = 0,
                 dtype: Any = np.float64) -> None:
        for name, size, least in (("in_features", in_features, 1), ("out_features", out_features, 0)):
            if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < least:
                raise ValueError(f"Linear: {name} must be an integer of at least {least}, got {size!r}")
        rng = np.random.default_rng(seed)
        bound = 1 / np.sqrt(in_features)
        self.weight = uniform(rng, bound, (out_features, in_features), dtype, "weight")
        self.bias = uniform(rng, bound, (out_features,), dtype, "bias") if bias else None

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor):
            raise TypeError(f"Linear: the input must be a Tensor, got {type(x).__name__}")
        if x.ndim == 0:
            raise ValueError(f"Linear: the input needs a last axis of {self.weight.shape[1]} features, got a 0-d "
                             "tensor")
        if x.shape[-1] != self.weight.shape[1]:
            raise ValueError(f"Linear: input has {x.shape[-1]} features (shape {x.shape}), "
                             f"expected {self.weight.shape[1]}")
        y = x @ self.weight.T
        return y if self.bias is None else y + self.bias


class Embedding(Module):
    """A lookup table: integer ids of any shape -> vectors of ``embedding_dim`` (weight ~ N(0, 1) as PyTorch)."""

    def __init__(self, num_embeddings: int, embedding_dim: int, *, seed: int = 0, dtype: Any = np.float64) -> None:
        rng = np.random.default_rng(seed)
        self.weight = Tensor(rng.standard_normal((num_embeddings, embedding_dim)), requires_grad=True,
                             dtype=dtype, label="weight")

    def forward(self, ids: Any) -> Tensor:
        ids = np.asarray(ids.data if isinstance(ids, Tensor) else ids)
        if ids.dtype.kind not in "iu":
            raise TypeError(f"Embedding: ids must be integers, got dtype {ids.dtype}")
        size = self.weight.shape[0]
        if ids.size and (ids.min() < 0 or ids.max() >= size):
            raise IndexError(f"Embedding: ids must lie in [0, {size}), got {ids.min()} to {ids.max()}")
        return self.weight[ids]


class Conv2d(Module):
    """A 2-d convolution layer as PyTorch's: ``weight`` (out_channels, in_channels, kh, kw), ``bias``
    (out_channels,), both uniform in [-1/sqrt(fan_in), 1/sqrt(fan_in)] with fan_in = in_channels * kh * kw (what
    PyTorch's kaiming_uniform_(a=sqrt(5)) gives), so a state dict moves to and from ``torch.nn.Conv2d``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int], stride: Any = 1,
                 padding: Any = 0, bias: bool = True, *, seed: int = 0, dtype: Any = np.float64) -> None:
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        rng = np.random.default_rng(seed)
        bound = 1 / np.sqrt(in_channels * kh * kw)
        self.weight = uniform(rng, bound, (out_channels, in_channels, kh, kw), dtype, "weight")
        self.bias = uniform(rng, bound, (out_channels,), dtype, "bias") if bias else None
        self.stride, self.padding = stride, padding

    def forward(self, x: Tensor) -> Tensor:
        return conv2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding)


class MaxPool2d(Module):
    """The maximum of each window (PyTorch's ``MaxPool2d`` without padding or dilation; stride defaults to the
    window)."""

    def __init__(self, kernel_size: int | tuple[int, int], stride: Any = None) -> None:
        self.kernel_size, self.stride = kernel_size, stride

    def forward(self, x: Tensor) -> Tensor:
        return max_pool2d(x, self.kernel_size, self.stride)


class AvgPool2d(Module):
    """The mean of each window (PyTorch's ``AvgPool2d`` without padding; stride defaults to the window)."""

    def __init__(self, kernel_size: int | tuple[int, int], stride: Any = None) -> None:
        self.kernel_size, self.stride = kernel_size, stride

    def forward(self, x: Tensor) -> Tensor:
        return avg_pool2d(x, self.kernel_size, self.stride)


class Flatten(Module):
    """Axes start_dim..end_dim merged into one (PyTorch's default: all but the batch axis)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        start, end = (normal_axis(a, x.ndim, "Flatten", x) for a in (self.start_dim, self.end_dim))
        if start > end:
            raise ValueError(f"Flatten: start_dim {self.start_dim} comes after end_dim {self.end_dim} for a tensor "
                             f"of shape {x.shape}")
        return x.reshape(x.shape[:start] + (math.prod(x.shape[start:end + 1]),) + x.shape[end + 1:])
