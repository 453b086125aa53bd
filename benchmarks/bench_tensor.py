"""Tensor engine overhead per node: each op's forward, and its forward + backward, against the same numpy calls
made without the engine; and a small MLP's training step against the same step written by hand in numpy.

Run: python benchmarks/bench_tensor.py [--cpu] [--repeats N]

Per op, on 8x8 float64 arrays (small, so that what is measured is the engine's work, not the arithmetic):

* forward: one op on Tensors that require gradients (so the node is recorded), against the bare numpy call;
* forward + backward: a chain of 32 such ops (``y = op(y, b)``, ``b`` a leaf that needs a gradient too) and
  ``y.backward(g)``, against the same chain in numpy followed by the numpy calls of each op's derivative
  (the primitive table's rule, written out), divided by 32: the time per node, creation, recording and the
  reverse pass included.

The overhead is the difference: what the engine adds to each node beyond numpy's own work. ``--cpu`` times
with the process's CPU time instead of the wall clock (steadier on a loaded machine).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmark this checkout, installed or not
from timing import interleaved, load  # noqa: E402

from autograd import Tensor, cross_entropy  # noqa: E402
from autograd.primitives import SIGMOID  # noqa: E402

SIZE = 8
CHAIN = 32
BATCH, N_IN, N_HIDDEN, N_OUT = 32, 64, 128, 10


class Case(NamedTuple):
    """One op: on numpy arrays and on Tensors, and its derivative as the numpy calls the engine's rule makes."""

    name: str
    numpy: Callable[[Any, Any], Any]
    tensor: Callable[[Any, Any], Any]
    # (g, out, y, b) -> (dL/dy, dL/db or None)
    derivative: Callable[[Any, Any, Any, Any], tuple[Any, Any]]
    binary: bool = False


GATHER = np.array([0, 3, 3, 5, 1, 2, 7, 6])  # a permutation with a repeat: gradients accumulate at 3
CASES = (
    Case("add", lambda y, b: y + b, lambda y, b: y + b, lambda g, out, y, b: (g, g), binary=True),
    Case("mul", lambda y, b: y * b, lambda y, b: y * b, lambda g, out, y, b: (g * b, g * y), binary=True),
    Case("div", lambda y, b: y / b, lambda y, b: y / b, lambda g, out, y, b: (g / b, -g * out / b), binary=True),
    Case("matmul", lambda y, b: y @ b, lambda y, b: y @ b, lambda g, out, y, b: (g @ b.T, y.T @ g), binary=True),
    Case("tanh", lambda y, b: np.tanh(y), lambda y, b: y.tanh(),  # the slope as the engine's rule computes it
         lambda g, out, y, b: (g * ((e := np.exp(np.abs(y) * -2.0)) * 4.0 / ((d := e + 1.0) * d)), None)),
    Case("sigmoid", lambda y, b: SIGMOID.array(y), lambda y, b: y.sigmoid(),  # numpy calls as the engine's
         lambda g, out, y, b: (g * out * SIGMOID.array(-y), None)),
    Case("relu", lambda y, b: np.maximum(y, 0), lambda y, b: y.relu(),
         lambda g, out, y, b: (g * (y > 0).astype(y.dtype), None)),
    Case("sum(axis=1, keepdims)", lambda y, b: y.sum(axis=1, keepdims=True),
         lambda y, b: y.sum(axis=1, keepdims=True), lambda g, out, y, b: (np.broadcast_to(g, y.shape), None)),
    Case("getitem [::-1]", lambda y, b: y[::-1], lambda y, b: y[::-1],
         lambda g, out, y, b: (_scatter(g, y, slice(None, None, -1)), None)),
    Case("getitem [[0,3,3,5,...]]", lambda y, b: y[GATHER], lambda y, b: y[GATHER],
         lambda g, out, y, b: (_scatter(g, y, GATHER), None)),
)


def _scatter(g: np.ndarray, y: np.ndarray, index: Any) -> np.ndarray:
    total = np.zeros(y.shape, dtype=g.dtype)
    if isinstance(index, slice):
        total[index] = g
    else:
        np.add.at(total, index, g)
    return total


def op_rows(repeats: int, clock: str) -> list[tuple[str, float, float, float, float]]:
    """(name, numpy forward, Tensor forward, numpy per node, Tensor per node), in seconds."""
    rows = []
    for case in CASES:
        runs = case_runs(case, np.random.default_rng(0))
        forward = interleaved({"numpy": runs["numpy forward"], "Tensor": runs["Tensor forward"]}, repeats, clock,
                              number=2000)
        chains = interleaved({"numpy": runs["numpy chain"], "Tensor": runs["Tensor chain"]}, repeats, clock,
                             number=50)
        rows.append((case.name, forward["numpy"].best, forward["Tensor"].best,
                     chains["numpy"].best / CHAIN, chains["Tensor"].best / CHAIN))
    return rows


def case_runs(case: Case, rng: np.random.Generator) -> dict[str, Callable[[], Any]]:
    """The four things timed for one op, checked to compute the same gradients first."""
    x = rng.standard_normal((SIZE, SIZE))
    if case.name == "div":
        b = rng.uniform(1.0, 1.1, (SIZE, SIZE))
    elif case.name == "matmul":
        b = np.linalg.qr(rng.standard_normal((SIZE, SIZE)))[0]  # orthogonal: the chain neither grows nor fades
    else:
        b = rng.uniform(0.9, 1.1, (SIZE, SIZE))
    tx, tb = Tensor(x, requires_grad=True), Tensor(b, requires_grad=True)
    g = rng.standard_normal(case.numpy(x, b).shape)

    def numpy_chain() -> tuple[Any, Any]:
        ys = [x]
        for _ in range(CHAIN):
            ys.append(case.numpy(ys[-1], b))
        grad, grad_b = np.broadcast_to(g, ys[-1].shape), None
        for k in range(CHAIN, 0, -1):
            grad, term = case.derivative(grad, ys[k], ys[k - 1], b)
            if term is not None:
                grad_b = term if grad_b is None else grad_b + term
        return grad, grad_b

    def tensor_chain() -> tuple[Any, Any]:
        tx.grad = tb.grad = None
        y = tx
        for _ in range(CHAIN):
            y = case.tensor(y, tb)
        y.backward(np.broadcast_to(g, y.shape))
        return tx.grad, tb.grad

    expected, got = numpy_chain(), tensor_chain()
    for k in (0, 1) if case.binary else (0,):
        np.testing.assert_allclose(got[k], expected[k], rtol=1e-9, atol=1e-12, err_msg=case.name)
    return {"numpy forward": lambda: case.numpy(x, b), "Tensor forward": lambda: case.tensor(tx, tb),
            "numpy chain": numpy_chain, "Tensor chain": tensor_chain}


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


def mlp_row(repeats: int, clock: str) -> tuple[float, float]:
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
    times = interleaved({"numpy": lambda: numpy_step(raw, x, y), "Tensor": lambda: engine_step(params, x, y)},
                        repeats, clock, number=100)
    return times["numpy"].best, times["Tensor"].best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", action="store_true", help="time with CPU time rather than the wall clock")
    parser.add_argument("--repeats", type=int, default=7, help="rounds; the best is kept")
    args = parser.parse_args()
    clock = "cpu" if args.cpu else "wall"
    us = 1e6
    print(f"Per node, {SIZE}x{SIZE} float64, best of {args.repeats} ({clock} clock; load {load()})")
    print(f"{'':<26}{'---------- forward ----------':>30}   --- forward + backward, per node in a chain of {CHAIN} ---")
    print(f"{'op':<26}{'numpy us':>10}{'Tensor us':>11}{'overhead':>9}   {'numpy us':>10}{'Tensor us':>11}"
          f"{'overhead':>10}{'ratio':>8}")
    for name, bare, ours, bare_node, ours_node in op_rows(args.repeats, clock):
        print(f"{name:<26}{bare * us:>10.2f}{ours * us:>11.2f}{(ours - bare) * us:>9.2f}   {bare_node * us:>10.2f}"
              f"{ours_node * us:>11.2f}{(ours_node - bare_node) * us:>10.2f}{ours_node / bare_node:>7.1f}x")
    bare, engine = mlp_row(args.repeats, clock)
    print()
    print(f"MLP {N_IN}-{N_HIDDEN}-{N_OUT} relu, batch {BATCH}, cross_entropy: forward + backward")
    print(f"{'':<26}{'numpy us':>10}{'Tensor us':>11}{'overhead':>9}{'ratio':>8}")
    print(f"{'training step':<26}{bare * us:>10.1f}{engine * us:>11.1f}{(engine - bare) * us:>9.1f}"
          f"{engine / bare:>7.1f}x")


if __name__ == "__main__":
    main()
