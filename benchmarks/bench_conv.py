"""conv2d forward + backward: the engine against a hand-written numpy im2col and, when installed, PyTorch.

Run: python benchmarks/bench_conv.py [--cpu] [--repeats N] [--threads T]

The case is CS231n's and the issue's: x (N, C, H, W) = (50, 3, 32, 32), 32 filters of 3x3, padding 1, stride 1,
with a bias; one call is the forward pass and the backward pass for dL/dx, dL/dw and dL/db given a random
dL/dy. The three sides:

* ``engine``: ``autograd.conv2d`` on Tensors that require gradients, then ``y.backward(g)`` (graph recorded,
  reverse pass, gradients stored in ``.grad``);
* ``numpy im2col``: what one writes by hand for speed (CS231n's ``conv_forward_fast``): the windows copied into
  columns once, one matrix product forward, two backward, and the columns' gradients added back into the
  padded input kernel offset by kernel offset (col2im);
* ``torch``: ``torch.nn.functional.conv2d`` on the CPU with autograd, same threads (if torch is installed).

All on ``--threads`` BLAS threads (default 1: set before numpy loads). The issue's target: the engine within
1.3x of the hand im2col. The figures are ratios within one run; nothing here is asserted.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _threads_from_argv(default: int = 1) -> int:
    if "--threads" in sys.argv:
        return int(sys.argv[sys.argv.index("--threads") + 1])
    return default


THREADS = _threads_from_argv()
for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # before numpy loads
    os.environ[variable] = str(THREADS)

import numpy as np  # noqa: E402
from numpy.lib.stride_tricks import sliding_window_view  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmark this checkout, installed or not
from timing import interleaved, load  # noqa: E402

from autograd import Tensor, conv2d  # noqa: E402

N, C, H, W, F, K, PAD = 50, 3, 32, 32, 32, 3, 1


def hand_im2col(x: np.ndarray, w: np.ndarray, b: np.ndarray, g: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Forward and backward of a stride-1 convolution, written by hand: (y, dx, dw, db)."""
    n, c, h, width = x.shape
    f, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (PAD, PAD), (PAD, PAD)))
    ho, wo = xp.shape[2] - kh + 1, xp.shape[3] - kw + 1
    cols = sliding_window_view(xp, (kh, kw), axis=(2, 3)).transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, -1)
    w_mat = w.reshape(f, -1)
    y = (cols @ w_mat.T + b).reshape(n, ho, wo, f).transpose(0, 3, 1, 2)
    g_mat = g.transpose(0, 2, 3, 1).reshape(-1, f)
    dw = (g_mat.T @ cols).reshape(w.shape)
    db = g_mat.sum(axis=0)
    dcols = (g_mat @ w_mat).reshape(n, ho, wo, c, kh, kw)
    dxp = np.zeros_like(xp)
    for i in range(kh):  # col2im: one slice per kernel offset, never a loop over pixels
        for j in range(kw):
            dxp[:, :, i:i + ho, j:j + wo] += dcols[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    return y, dxp[:, :, PAD:PAD + h, PAD:PAD + width], dw, db


def engine(x: np.ndarray, w: np.ndarray, b: np.ndarray, g: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    tx, tw, tb = (Tensor(a, requires_grad=True) for a in (x, w, b))
    y = conv2d(tx, tw, tb, padding=PAD)
    y.backward(g)
    return y.data, tx.grad, tw.grad, tb.grad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--cpu", action="store_true", help="time with the process's CPU time")
    parser.add_argument("--threads", type=int, default=1, help="BLAS (and torch) threads; default 1")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((N, C, H, W)), rng.standard_normal((F, C, K, K)), rng.standard_normal(F)
    g = rng.standard_normal((N, F, H, W))

    for mine, theirs in zip(engine(x, w, b, g), hand_im2col(x, w, b, g)):  # the same numbers, before any timing
        np.testing.assert_allclose(mine, theirs, rtol=1e-10, atol=1e-10)
    runs = {"engine": lambda: engine(x, w, b, g), "numpy im2col": lambda: hand_im2col(x, w, b, g)}
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        torch.set_num_threads(args.threads)
        tx, tw, tb, tg = (torch.from_numpy(a) for a in (x, w, b, g))

        def with_torch() -> None:
            xs, ws, bs = (t.detach().requires_grad_() for t in (tx, tw, tb))
            torch.nn.functional.conv2d(xs, ws, bs, padding=PAD).backward(tg)

        runs["torch"] = with_torch
    timings = interleaved(runs, args.repeats, "cpu" if args.cpu else "wall")
    base = timings["numpy im2col"].median
    print(f"conv2d forward + backward, x {(N, C, H, W)}, {F} filters {K}x{K}, padding {PAD}, float64, "
          f"{args.threads} thread(s), {'CPU' if args.cpu else 'wall'} time, median of {args.repeats} "
          f"(load {load()})")
    print(f"{'side':<14}{'ms':>9}{'best ms':>10}{'vs im2col':>11}")
    for name, timing in timings.items():
        print(f"{name:<14}{timing.median * 1e3:>9.2f}{timing.best * 1e3:>10.2f}{timing.median / base:>10.2f}x")
    if torch is None:
        print("torch: not installed (pip install torch to add it)")


if __name__ == "__main__":
    main()
