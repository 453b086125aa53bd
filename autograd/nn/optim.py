"""Optimizers that update Tensor parameters in place from their ``.grad``, and gradient clipping."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from autograd.tensor import Tensor


def clip_grad_norm(parameters: Iterable[Tensor], max_norm: float) -> float:
    """Scale all gradients together so their global L2 norm is at most ``max_norm``; returns the norm before."""
    grads = [p.grad for p in parameters if p.grad is not None]
    total = float(np.sqrt(sum(float(np.sum(g * g)) for g in grads)))
    if total > max_norm:
        scale = max_norm / (total + 1e-12)
        for g in grads:
            g *= scale
    return total


class Optimizer:
    """Holds the parameters and per-parameter state arrays; ``state_dict`` is plain numpy for ``.npz`` files."""

    def __init__(self, parameters: Iterable[Tensor], lr: float) -> None:
        self.parameters = list(parameters)
        if not self.parameters:
            raise ValueError(f"{type(self).__name__} got no parameters")
        if not lr > 0:
            raise ValueError(f"{type(self).__name__}: learning rate must be positive, got {lr}")
        self.lr = lr
        self.steps = 0
        self.state: dict[str, list[np.ndarray]] = {}

    def zero_grad(self) -> None:
        for p in self.parameters:
            p.grad = None

    def step(self) -> None:
        self.steps += 1
        for index, p in enumerate(self.parameters):
            if p.grad is not None:
                p.data -= self.update(index, p.grad)

    def update(self, index: int, grad: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _buffers(self, name: str) -> list[np.ndarray]:
        if name not in self.state:
            self.state[name] = [np.zeros_like(p.data) for p in self.parameters]
        return self.state[name]

    def state_dict(self) -> dict[str, np.ndarray]:
        arrays = {"steps": np.array(self.steps), "lr": np.array(self.lr)}
        for name, buffers in self.state.items():
            for index, buffer in enumerate(buffers):
                arrays[f"{name}.{index}"] = buffer.copy()
        return arrays

    def load_state_dict(self, arrays: Mapping[str, Any]) -> None:
        self.steps = int(arrays["steps"])
        self.lr = float(arrays["lr"])
        self.state = {}
        for key, value in arrays.items():
            name, _, index = key.rpartition(".")
            if name:
                buffers = self._buffers(name)
                if buffers[int(index)].shape != np.shape(value):
                    raise ValueError(f"{type(self).__name__}.load_state_dict: {key} has shape "
                                     f"{np.shape(value)}, expected {buffers[int(index)].shape}")
                buffers[int(index)] = np.array(value, dtype=self.parameters[int(index)].dtype)


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (heavy-ball) momentum."""

    def __init__(self, parameters: Iterable[Tensor], lr: float = 0.1, momentum: float = 0.0) -> None:
        super().__init__(parameters, lr)
        self.momentum = momentum

    def update(self, index: int, grad: np.ndarray) -> np.ndarray:
        if not self.momentum:
            return self.lr * grad
        velocity = self._buffers("velocity")
        velocity[index] = self.momentum * velocity[index] + grad
        return self.lr * velocity[index]


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with bias-corrected first and second moments."""

    def __init__(self, parameters: Iterable[Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        super().__init__(parameters, lr)
        self.betas = betas
        self.eps = eps

    def update(self, index: int, grad: np.ndarray) -> np.ndarray:
        beta1, beta2 = self.betas
        mean, square = self._buffers("mean"), self._buffers("square")
        mean[index] = beta1 * mean[index] + (1 - beta1) * grad
        square[index] = beta2 * square[index] + (1 - beta2) * grad * grad
        mean_hat = mean[index] / (1 - beta1**self.steps)
        square_hat = square[index] / (1 - beta2**self.steps)
        return self.lr * mean_hat / (np.sqrt(square_hat) + self.eps)
