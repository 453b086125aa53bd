"""Tensor engine overhead: each op's forward against the bare numpy call, and a small MLP's training step
against the same step written by hand in numpy.

Run: python benchmarks/bench_tensor.py
Prints two compact tables: per-op time in microseconds on 8x8 float64 arrays (the Tensor side records the
graph: its inputs require gradients), and forward+backward of a 64-128-10 relu MLP with cross-entropy on a
batch of 32.
"""

from __future__ import annotations

import sys
import timeit
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmark this checkout, installed or not
from autograd import Tensor, cross_entropy  # noqa: E402

SIZE = 8
BATCH, N_IN, N_HIDDEN, N_OUT = 32, 64, 128, 10


def best_microseconds(fn, number: int, repeat: int = 5) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def op_table() -> list[tuple[str, float, float]]:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((SIZE, SIZE)), rng.standard_normal((SIZE, SIZE))
    ta, tb = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    gather = np.array([0, 3, 3, 5])
    cases = [
        ("add", lambda: a + b, lambda: ta + tb),
        ("mul", lambda: a * b, lambda: ta * tb),
        ("matmul", lambda: a @ b, lambda: ta @ tb),
        ("tanh", lambda: np.tanh(a), lambda: ta.tanh()),
        ("sigmoid", lambda: 0.5 * (1.0 + np.tanh(0.5 * a)), lambda: ta.sigmoid()),  # the engine's formula
        ("sum", lambda: a.sum(), lambda: ta.sum()),
        ("sum(axis=0)", lambda: a.sum(axis=0), lambda: ta.sum(axis=0)),
        ("getitem [1:5]", lambda: a[1:5], lambda: ta[1:5]),
        ("getitem [[0,3,3,5]]", lambda: a[gather], lambda: ta[gather]),
    ]
    rows = []
    for name, bare, ours in cases:
        np.testing.assert_allclose(ours().data, bare())
        rows.append((name, best_microseconds(bare, 20_000), best_microseconds(ours, 5_000)))
    return rows


def make_params(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "w1": rng.standard_normal((N_IN, N_HIDDEN)) / np.sqrt(N_IN),
        "b1": np.zeros(N_HIDDEN),
        "w2": rng.standard_normal((N_HIDDEN, N_OUT)) / np.sqrt(N_HIDDEN),
        "b2": np.zeros(N_OUT),
    }


def engine_step(params: dict[str, Tensor], x: np.ndarray, y: np.ndarray) -> float:
    for p in params.values():
        p.grad = None
    hidden = (x @ params["w1"] + params["b1"]).relu()
    loss = cross_entropy(hidden @ params["w2"] + params["b2"], y)
    loss.backward()
    return float(loss.data)


def numpy_step(params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray
               ) -> tuple[float, dict[str, np.ndarray]]:
    pre = x @ params["w1"] + params["b1"]
    hidden = np.maximum(pre, 0.0)
    logits = hidden @ params["w2"] + params["b2"]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probs[np.arange(len(y)), y].mean()
    d_logits = np.exp(log_probs)
    d_logits[np.arange(len(y)), y] -= 1.0
    d_logits /= len(y)
    d_hidden = d_logits @ params["w2"].T
    d_pre = d_hidden * (pre > 0)
    grads = {"w2": hidden.T @ d_logits, "b2": d_logits.sum(axis=0),
             "w1": x.T @ d_pre, "b1": d_pre.sum(axis=0)}
    return float(loss), grads


def mlp_row() -> tuple[float, float]:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((BATCH, N_IN))
    y = rng.integers(0, N_OUT, size=BATCH)
    raw = make_params()
    params = {k: Tensor(v.copy(), requires_grad=True) for k, v in raw.items()}
    # both sides compute the same numbers before they are timed
    loss_engine = engine_step(params, x, y)
    loss_numpy, grads = numpy_step(raw, x, y)
    assert abs(loss_engine - loss_numpy) < 1e-10
    for k, g in grads.items():
        np.testing.assert_allclose(params[k].grad, g, rtol=1e-9, atol=1e-12)
    engine = best_microseconds(lambda: engine_step(params, x, y), number=300)
    bare = best_microseconds(lambda: numpy_step(raw, x, y), number=1_000)
    return bare, engine


def main() -> None:
    print(f"Per-op forward, {SIZE}x{SIZE} float64 (Tensor inputs require grad, so the graph is recorded)")
    print(f"{'op':<22}{'numpy us':>10}{'Tensor us':>11}{'overhead us':>13}{'ratio':>8}")
    for name, bare, ours in op_table():
        print(f"{name:<22}{bare:>10.2f}{ours:>11.2f}{ours - bare:>13.2f}{ours / bare:>7.1f}x")
    bare, engine = mlp_row()
    print()
    print(f"MLP {N_IN}-{N_HIDDEN}-{N_OUT} relu, batch {BATCH}, cross_entropy: forward + backward")
    print(f"{'':<22}{'numpy us':>10}{'Tensor us':>11}{'overhead us':>13}{'ratio':>8}")
    print(f"{'training step':<22}{bare:>10.1f}{engine:>11.1f}{engine - bare:>13.1f}{engine / bare:>7.1f}x")


if __name__ == "__main__":
    main()
