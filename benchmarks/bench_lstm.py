"""LSTM speed: forward + backward of the autograd `lstm.LSTM` against the hand-derived numpy `lstm.hand`.

Run: python benchmarks/bench_lstm.py [--repeats N]
Both run on the same weights and data; the two are timed alternately, and the best of N runs of each is kept,
so that load from other processes affects both alike. The target is LSTM <= 1.3x the hand derivation.
BLAS threading changes both sides; OPENBLAS_NUM_THREADS=1 gives steadier numbers on a busy machine.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from lstm import LSTM, hand

CONFIGS = ((32, 64, 64, 128), (50, 32, 32, 32))  # (T, B, I, H)
TARGET = 1.3


def timings(steps: int, batch: int, input_size: int, hidden_size: int, dtype: type, repeats: int
            ) -> tuple[float, float]:
    """Best-of-``repeats`` seconds of one forward + backward, for the hand derivation and for LSTM."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((steps, batch, input_size)).astype(dtype)
    d_out = rng.standard_normal((steps, batch, hidden_size)).astype(dtype)
    model = LSTM(input_size, hidden_size, dtype=dtype)
    params = hand.init_params(input_size, hidden_size, dtype=dtype)

    def run_hand() -> None:
        _, _, cache = hand.forward(params, x)
        hand.backward(cache, d_out)

    def run_model() -> None:
        model.zero_grad()
        out, _ = model(x)
        out.backward(d_out)

    best = {run_hand: np.inf, run_model: np.inf}
    for _ in range(repeats):
        for run in best:
            best[run] = min(best[run], seconds(run))
    return best[run_hand], best[run_model]


def seconds(run: Callable[[], None]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30, help="runs of each; the best is kept")
    repeats = parser.parse_args().repeats
    print(f"forward + backward, best of {repeats}; target: LSTM <= {TARGET}x hand\n")
    print(f"{'T':>4}{'B':>5}{'I':>5}{'H':>5}  {'dtype':<8}{'hand ms':>10}{'LSTM ms':>10}{'ratio':>8}  target")
    for steps, batch, input_size, hidden_size in CONFIGS:
        for dtype in (np.float32, np.float64):
            hand_time, model_time = timings(steps, batch, input_size, hidden_size, dtype, repeats)
            ratio = model_time / hand_time
            print(f"{steps:>4}{batch:>5}{input_size:>5}{hidden_size:>5}  {np.dtype(dtype).name:<8}"
                  f"{hand_time * 1e3:>10.2f}{model_time * 1e3:>10.2f}{ratio:>7.2f}x  "
                  f"{'met' if ratio <= TARGET else 'MISSED'}")


if __name__ == "__main__":
    main()
