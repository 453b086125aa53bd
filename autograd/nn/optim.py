"""Optimizers that update Tensor parameters in place from their ``.grad``, and gradient clipping."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from autograd.core import Node
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


def setting(owner: str, name: str, value: Any, low: float, high: float, *, low_included: bool = True,
            high_included: bool = False) -> float:
    """An optimizer's number, checked: a real number in the interval from ``low`` to ``high`` (NaN never is)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{owner}: {name} must be a number, got {type(value).__name__}: {value!r:.60}")
    value = float(value)
    above = value >= low if low_included else value > low
    below = value <= high if high_included else value < high
    if not (above and below):
        interval = f"{'[' if low_included else '('}{low:g}, {high:g}{']' if high_included else ')'}"
        raise ValueError(f"{owner}: {name} must lie in {interval}, got {value!r}")
    return value


class Optimizer:
    """Holds the parameters and per-parameter state arrays; ``state_dict`` is plain numpy for ``.npz`` files.

    A subclass names its per-parameter buffers (Adam: ``mean`` and ``square``); they start at zero, so the state
    dict always has the same keys: ``steps``, ``lr`` and ``NAME.INDEX`` for every buffer and parameter.
    """

    def __init__(self, parameters: Iterable[Tensor], lr: float, buffers: Sequence[str] = ()) -> None:
        name = type(self).__name__
        if isinstance(parameters, (Tensor, Node)):
            raise TypeError(f"{name} takes a list of parameters (model.parameters()), got a single "
                            f"{type(parameters).__name__}; wrap it in a list")
        self.parameters = list(parameters)
        if not self.parameters:
            raise ValueError(f"{name} got no parameters")
        seen: dict[int, int] = {}
        for index, p in enumerate(self.parameters):
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: parameter {index} is a {type(p).__name__}; an optimizer updates Tensors "
                                "in place (a Value's .data can be updated by hand: w.data -= lr * w.grad)")
            if p.op is not None:
                raise ValueError(f"{name}: parameter {index} ({p.where()}) was computed by {p.op.name}, not a leaf: "
                                 "only leaves (Tensor(..., requires_grad=True)) can be optimized")
            if id(p) in seen:
                raise ValueError(f"{name}: parameter {index} is the same tensor as parameter {seen[id(p)]}; it "
                                 "would be stepped twice")
            seen[id(p)] = index
        self.lr = setting(name, "lr", lr, 0, math.inf, low_included=False)
        self.steps = 0
        self.state: dict[str, list[np.ndarray]] = {name: [np.zeros_like(p.data) for p in self.parameters]
                                                   for name in buffers}

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

    @staticmethod
    def state_shapes(parameter_shapes: Sequence[tuple[int, ...]], buffers: Sequence[str]
                     ) -> dict[str, tuple[int, ...]]:
        """The key and shape of every array in the state dict of an optimizer with these ``buffers`` over
        parameters of these shapes: known without building one (a checkpoint's sizes are checked this way)."""
        shapes: dict[str, tuple[int, ...]] = {"steps": (), "lr": ()}
        shapes.update({f"{name}.{index}": tuple(shape) for name in buffers
                       for index, shape in enumerate(parameter_shapes)})
        return shapes

    def state_dict(self) -> dict[str, np.ndarray]:
        arrays = {"steps": np.array(self.steps), "lr": np.array(self.lr)}
        for name, buffers in self.state.items():
            for index, buffer in enumerate(buffers):
                arrays[f"{name}.{index}"] = buffer.copy()
        return arrays

    def load_state_dict(self, arrays: Mapping[str, Any], override: bool = False) -> None:
        """Take up the state of ``state_dict()``: exactly its keys, each of the right shape, or nothing is loaded.

        The learning rate stays this optimizer's: a state saved with another one is refused, unless
        ``override=True`` asks to go on with this optimizer's rate.
        """
        where = f"{type(self).__name__}.load_state_dict"
        expected = self.state_shapes([p.shape for p in self.parameters], list(self.state))
        missing, unexpected = sorted(set(expected) - set(arrays)), sorted(set(arrays) - set(expected))
        if missing or unexpected:
            raise ValueError(f"{where}: missing {missing}, unexpected {unexpected}")
        loaded = {key: np.asarray(arrays[key]) for key in expected}
        for key, array in loaded.items():
            kinds = "iu" if key == "steps" else "f"
            if array.shape != expected[key] or array.dtype.kind not in kinds:
                raise ValueError(f"{where}: {key} is an array of shape {array.shape} and dtype {array.dtype}, "
                                 f"expected shape {expected[key]} of {'integers' if kinds == 'iu' else 'floats'}")
            if kinds == "f" and not np.isfinite(array).all():
                raise ValueError(f"{where}: {key} holds values that are not finite numbers")
        steps, lr = int(loaded.pop("steps")), float(loaded.pop("lr"))
        if steps < 0:
            raise ValueError(f"{where}: steps must be a non-negative integer, got {steps}")
        if lr != self.lr and not override:
            raise ValueError(f"{where}: the state was saved with learning rate {lr!r}, this optimizer has "
                             f"{self.lr!r} (override=True goes on with {self.lr!r})")
        self.check_buffers(loaded)
        self.steps = steps
        for key, array in loaded.items():
            name, _, index = key.rpartition(".")
            self.state[name][int(index)] = array.astype(self.parameters[int(index)].dtype, copy=True)

    def check_buffers(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Raise ValueError for buffer values that this optimizer cannot have produced (none, here)."""


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (heavy-ball) momentum."""

    def __init__(self, parameters: Iterable[Tensor], lr: float = 0.1, momentum: float = 0.0) -> None:
        momentum = setting("SGD", "momentum", momentum, 0, math.inf)
        super().__init__(parameters, lr, ("velocity",) if momentum else ())
        self.momentum = momentum

    def update(self, index: int, grad: np.ndarray) -> np.ndarray:
        if not self.momentum:
            return self.lr * grad
        velocity = self.state["velocity"]
        velocity[index] = self.momentum * velocity[index] + grad
        return self.lr * velocity[index]


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with bias-corrected first and second moments."""

    BUFFERS = ("mean", "square")

    def __init__(self, parameters: Iterable[Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"Adam: betas is a pair of numbers in [0, 1), got {betas!r:.60}")
        betas = (setting("Adam", "betas[0]", betas[0], 0, 1, high_included=False),
                 setting("Adam", "betas[1]", betas[1], 0, 1, high_included=False))
        eps = setting("Adam", "eps", eps, 0, math.inf)
        super().__init__(parameters, lr, self.BUFFERS)
        self.betas = betas
        self.eps = eps

    def check_buffers(self, arrays: Mapping[str, np.ndarray]) -> None:
        negative = [key for key, array in arrays.items() if key.startswith("square.") and (array < 0).any()]
        if negative:
            raise ValueError(f"Adam.load_state_dict: {negative[0]} holds negative values, but it is a running "
                             "mean of squares")

    def update(self, index: int, grad: np.ndarray) -> np.ndarray:
        beta1, beta2 = self.betas
        mean, square = self.state["mean"], self.state["square"]
        mean[index] = beta1 * mean[index] + (1 - beta1) * grad
        square[index] = beta2 * square[index] + (1 - beta2) * grad * grad
        mean_hat = mean[index] / (1 - beta1**self.steps)
        square_hat = square[index] / (1 - beta2**self.steps)
        return self.lr * mean_hat / (np.sqrt(square_hat) + self.eps)
