"""Shared helpers for the engine tests: finite differences and closed-form bookkeeping, numpy only.

Nothing here calls the engine's own gradient code, so the tests compare the engine against an independent
reference (central differences on plain numpy/math evaluations, and hand-derived closed forms).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest


def numeric_gradient(fn: Callable[[list[np.ndarray]], float], arrays: Sequence[np.ndarray],
                     eps: float = 1e-6) -> list[np.ndarray]:
    """Central differences of a scalar function of several float64 arrays, one element at a time."""
    arrays = [np.array(a, dtype=np.float64) for a in arrays]
    grads = []
    for k, a in enumerate(arrays):
        g = np.zeros_like(a)
        for i in np.ndindex(a.shape):
            original = a[i]
            a[i] = original + eps
            plus = fn(arrays)
            a[i] = original - eps
            minus = fn(arrays)
            a[i] = original
            g[i] = (plus - minus) / (2 * eps)
        grads.append(g)
        arrays[k] = a
    return grads


def scalar_numeric_derivative(fn: Callable[[float], float], x: float, eps: float = 1e-6) -> float:
    return (fn(x + eps) - fn(x - eps)) / (2 * eps)


def reduce_to_shape(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum a broadcast gradient back to ``shape`` (a test-side reference, written independently)."""
    g = np.asarray(g, dtype=np.float64)
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for axis, n in enumerate(shape):
        if n == 1 and g.shape[axis] != 1:
            g = g.sum(axis=axis, keepdims=True)
    assert g.shape == tuple(shape)
    return g


def np_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
