"""Gradient checking: central finite differences against the reverse pass, for Values and Tensors."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from autograd.core import Node, grad, no_grad


@dataclass(frozen=True)
class InputCheck:
    """How far the engine's gradient for one input is from the finite-difference estimate."""

    index: int
    label: str | None
    analytic: np.ndarray
    numeric: np.ndarray
    max_abs_error: float
    max_rel_error: float
    passed: bool


@dataclass(frozen=True)
class GradcheckResult:
    """Per-input errors; true when every input passed. ``str()`` gives a small table."""

    inputs: tuple[InputCheck, ...]
    atol: float
    rtol: float

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.inputs)

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        lines = [f"{'input':<12}{'max |abs err|':>15}{'max rel err':>14}  ok"]
        for check in self.inputs:
            name = check.label or f"#{check.index}"
            lines.append(f"{name:<12}{check.max_abs_error:>15.3e}{check.max_rel_error:>14.3e}  "
                         f"{'yes' if check.passed else 'NO'}")
        lines.append(f"tolerance: |err| <= {self.atol:g} + {self.rtol:g} * |numeric|")
        return "\n".join(lines)


def gradcheck(f: Callable[..., Node], inputs: Sequence[Node], *, eps: float = 1e-6, atol: float = 1e-6,
              rtol: float = 1e-4, raise_on_failure: bool = False) -> GradcheckResult:
    """Compare d f(*inputs) / d input from the reverse pass with central differences (f(x+e) - f(x-e)) / 2e.

    ``f`` must return a scalar node (a Value, or a Tensor of size 1). Each input's data is perturbed in
    place, one element at a time, and restored. For float32 tensors use a larger ``eps`` and tolerances.
    """
    inputs = list(inputs)
    for x in inputs:
        if not isinstance(x, Node):
            raise TypeError(f"gradcheck inputs must be Values or Tensors, got {type(x).__name__}")
    check_step(eps, "gradcheck")
    output = f(*inputs)
    if not isinstance(output, Node):
        raise TypeError(f"gradcheck needs f to return a graph node (a Value, or a Tensor of size 1) computed from "
                        f"its inputs, got {type(output).__name__}: {output!r:.60}")
    if np.size(output.data) != 1:
        raise ValueError(f"gradcheck needs f to return a scalar, got shape {np.shape(output.data)}")
    analytic = grad(output, inputs)
    checks = []
    for index, (x, derivative) in enumerate(zip(inputs, analytic)):
        numeric = _finite_differences(f, inputs, x, eps)
        derivative = np.asarray(derivative, dtype=np.float64)
        error = np.abs(derivative - numeric)
        scale = np.abs(numeric)
        passed = bool(np.all(error <= atol + rtol * scale))
        checks.append(InputCheck(index, x.label, derivative, numeric, float(error.max(initial=0.0)),
                                 float((error / np.maximum(scale, 1e-12)).max(initial=0.0)), passed))
    result = GradcheckResult(tuple(checks), atol, rtol)
    if raise_on_failure and not result:
        raise AssertionError(f"gradcheck failed\n{result}")
    return result


def _finite_differences(f: Callable[..., Node], inputs: list[Node], x: Node, eps: float) -> np.ndarray:
    def evaluate() -> float:
        with no_grad():
            return float(np.asarray(f(*inputs).data).reshape(()))

    if isinstance(x.data, np.ndarray):
        return central_differences(evaluate, x.data, eps)
    original = x.data
    try:
        x.data = original + eps
        plus = evaluate()
        x.data = original - eps
        minus = evaluate()
    finally:
        x.data = original
    return np.asarray((plus - minus) / (2 * eps))


def check_step(eps: float, caller: str) -> None:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not 0 < eps < math.inf:
        raise ValueError(f"{caller}: eps is the finite-difference step, a positive finite number, got {eps!r}")


# central stencils: offsets (in steps of eps), their weights, and the divisor of eps
STENCILS = {3: ((1, -1), (1, -1), 2), 5: ((2, 1, -1, -2), (-1, 8, -8, 1), 12)}


def central_differences(loss: Callable[[], float], array: np.ndarray, eps: float = 1e-6, points: int = 3
                        ) -> np.ndarray:
    """d loss() / d array, element by element, perturbing ``array`` in place (and restoring it, also when
    ``loss`` raises).

    ``points=3``: (L(x + e) - L(x - e)) / 2e, error of order e^2 (with e = 1e-6 about 1e-10, set by rounding).
    ``points=5``: (-L(x + 2e) + 8 L(x + e) - 8 L(x - e) + L(x - 2e)) / 12e, error of order e^4: with e = 1e-3,
    about 1e-12 for smooth functions, at twice the cost.
    """
    check_step(eps, "central_differences")
    if points not in STENCILS:
        raise ValueError(f"central_differences: points must be 3 or 5, got {points!r}")
    offsets, weights, divisor = STENCILS[points]
    gradient = np.zeros(array.shape)
    for index in np.ndindex(array.shape):
        original = array[index]
        try:
            losses = []
            for offset in offsets:
                array[index] = original + offset * eps
                losses.append(loss())
        finally:
            array[index] = original
        gradient[index] = sum(w * value for w, value in zip(weights, losses)) / (divisor * eps)
    return gradient
