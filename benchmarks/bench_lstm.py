"""LSTM speed: forward + backward of the autograd `lstm.LSTM` against the hand-derived numpy `lstm.hand`.

Run: python benchmarks/bench_lstm.py [--repeats N] [--system-malloc]

Both sides do the same work: the same weights, data and dtype, and the same gradients (every parameter, and the
input x and the initial states h0, c0, which `hand.backward` always returns), checked to agree before timing.
They run in one process with the same BLAS threads (one, unless OPENBLAS_NUM_THREADS, OMP_NUM_THREADS or
MKL_NUM_THREADS says otherwise), are warmed up, and are timed alternately, so that load from other processes
hits both alike; the best of N runs of each is kept. The target is LSTM <= 1.3x the hand derivation.

Memory: by default glibc hands a large freed block back to the operating system and page-faults it in again on
the next run. Whether that happens to one side depends on which arrays happen to lie at the top of the heap (it
changes with the configs run before and the order of the runs), and on a virtual machine the page faults can
cost more than the arithmetic. So the benchmark asks glibc (mallopt) to keep freed memory for reuse, for both
sides alike; --system-malloc measures with the default policy instead. Page faults per run are printed.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")  # before numpy loads its BLAS; an explicit setting wins

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmark this checkout, installed or not
from autograd import Tensor  # noqa: E402
from lstm import LSTM, hand  # noqa: E402

CONFIGS = ((32, 64, 64, 128), (50, 32, 32, 32))  # (T, B, I, H)
TARGET = 1.3
WARMUP = 3


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory in the process (no trimming; arrays under 32 MB from the heap, not mmap);
    False where there is no glibc."""
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3
    return bool(mallopt(m_trim_threshold, 1 << 30)) and bool(mallopt(m_mmap_threshold, 1 << 25))


def workloads(steps: int, batch: int, input_size: int, hidden_size: int, dtype: type
              ) -> tuple[Callable[[], dict[str, np.ndarray]], Callable[[], dict[str, np.ndarray]]]:
    """Forward + backward of each side, returning its gradients by `hand.backward`'s names."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((steps, batch, input_size)).astype(dtype)
    d_out = rng.standard_normal((steps, batch, hidden_size)).astype(dtype)
    zeros = np.zeros((1, batch, hidden_size), dtype=dtype)
    model = LSTM(input_size, hidden_size, dtype=dtype)
    params = hand.init_params(input_size, hidden_size, dtype=dtype)  # the same draw as the model's

    def run_hand() -> dict[str, np.ndarray]:
        _, _, cache = hand.forward(params, x, (zeros, zeros))
        return hand.backward(cache, d_out)

    def run_model() -> dict[str, np.ndarray]:
        model.zero_grad()
        inputs = {name: Tensor(array, requires_grad=True) for name, array in (("x", x), ("h0", zeros),
                                                                               ("c0", zeros))}
        out, _ = model(inputs["x"], (inputs["h0"], inputs["c0"]))
        out.backward(d_out)
        return {name: tensor.grad for name, tensor in (*model.named_parameters(), *inputs.items())}

    return run_hand, run_model


def check_same_gradients(run_hand: Callable[[], dict], run_model: Callable[[], dict], dtype: type) -> None:
    expected, got = run_hand(), run_model()
    assert set(expected) == set(got), (sorted(expected), sorted(got))
    tolerance = 1e-3 if dtype == np.float32 else 1e-9
    for name, gradient in expected.items():
        assert got[name].dtype == gradient.dtype, name
        np.testing.assert_allclose(got[name], gradient, rtol=tolerance, atol=tolerance, err_msg=name)


def timings(run_hand: Callable[[], object], run_model: Callable[[], object], repeats: int
            ) -> tuple[tuple[float, float], tuple[float, float]]:
    """(best seconds, median page faults) per run of each side; the sides alternate, and so does which starts."""
    for _ in range(WARMUP):
        run_hand()
        run_model()
    best = {run_hand: np.inf, run_model: np.inf}
    faults: dict[Callable[[], object], list[int]] = {run_hand: [], run_model: []}
    for repeat in range(repeats):
        for run in (run_hand, run_model) if repeat % 2 else (run_model, run_hand):
            faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            start = time.perf_counter()
            run()
            best[run] = min(best[run], time.perf_counter() - start)
            faults[run].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before)
    return ((best[run_hand], float(np.median(faults[run_hand]))),
            (best[run_model], float(np.median(faults[run_model]))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30, help="runs of each; the best is kept")
    parser.add_argument("--system-malloc", action="store_true",
                        help="leave glibc's memory policy alone (freed memory may go back to the OS)")
    args = parser.parse_args()
    kept = not args.system_malloc and keep_freed_memory()
    threads = os.environ.get("OPENBLAS_NUM_THREADS")
    print(f"forward + backward (all parameters, x, h0, c0), best of {args.repeats}; target: LSTM <= {TARGET}x "
          f"hand")
    print(f"BLAS threads: {threads}; freed memory {'kept by glibc' if kept else 'system policy'}\n")
    print(f"{'T':>4}{'B':>5}{'I':>5}{'H':>5}  {'dtype':<8}{'hand ms':>10}{'LSTM ms':>10}{'ratio':>8}  {'target':<8}"
          f"page faults/run (hand, LSTM)")
    for steps, batch, input_size, hidden_size in CONFIGS:
        for dtype in (np.float32, np.float64):
            run_hand, run_model = workloads(steps, batch, input_size, hidden_size, dtype)
            check_same_gradients(run_hand, run_model, dtype)
            (hand_time, hand_faults), (model_time, model_faults) = timings(run_hand, run_model, args.repeats)
            ratio = model_time / hand_time
            print(f"{steps:>4}{batch:>5}{input_size:>5}{hidden_size:>5}  {np.dtype(dtype).name:<8}"
                  f"{hand_time * 1e3:>10.2f}{model_time * 1e3:>10.2f}{ratio:>7.2f}x  "
                  f"{'met' if ratio <= TARGET else 'MISSED':<8}{hand_faults:.0f}, {model_faults:.0f}")


if __name__ == "__main__":
    main()
