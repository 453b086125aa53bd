"""LSTM speed: forward + backward of the autograd `lstm.LSTM`, of the hand-derived numpy `lstm.hand`, and of
PyTorch's ``torch.nn.LSTM`` (on the CPU) when torch is installed, side by side in one run.

Run: python benchmarks/bench_lstm.py [--repeats N] [--cpu] [--system-malloc] [--sizes T,B,I,H ...]

torch is optional: ``pip install 'backprop-lens[torch]'``, or, to get PyTorch's CPU build rather than the
multi-GB CUDA one that PyPI serves by default, ``pip install torch --index-url
https://download.pytorch.org/whl/cpu``. Without it the torch column is left out.

Every side does the same work: the same weights, data and dtype, the gradients of every parameter and of the
input x and the initial states h0, c0 (what `hand.backward` returns), checked to agree before timing. They run
in one process with the same number of threads (one, unless OPENBLAS_NUM_THREADS, OMP_NUM_THREADS or
MKL_NUM_THREADS says otherwise; torch is given the same number), are warmed up, and are timed in turns, the
side that starts rotating, so that load from other processes hits all alike; the best (and the median) of N
runs of each is printed. ``--cpu`` times with the process's CPU time instead of the wall clock: steadier on a
loaded machine, and the same on an idle one with one thread.

Targets (issue 14): the autograd LSTM at most 1.0x torch.nn.LSTM at (32, 64, 64, 128) and at most 1.5x at the
smaller sizes, and at most 1.2x `lstm.hand` at all three, in float32 and float64.

Memory: by default glibc hands a large freed block back to the operating system and page-faults it in again on
the next run. Whether that happens to one side depends on which arrays happen to lie at the top of the heap (it
changes with the configs run before and the order of the runs), and on a virtual machine the page faults can
cost more than the arithmetic. So the benchmark asks glibc (mallopt) to keep freed memory for reuse, for all
sides alike; --system-malloc measures with the default policy instead.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys
from collections.abc import Callable
from pathlib import Path

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")  # before numpy loads its BLAS; an explicit setting wins

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmark this checkout, installed or not
from timing import interleaved, load  # noqa: E402

from autograd import Tensor  # noqa: E402
from lstm import LSTM, hand  # noqa: E402

try:
    import torch
except ImportError:
    torch = None

SIZES = ((32, 64, 64, 128), (50, 32, 32, 32), (10, 1, 4, 8))  # (T, B, I, H)
TARGET_TORCH = {(32, 64, 64, 128): 1.0}  # the others: 1.5
TARGET_HAND = 1.2

Gradients = dict[str, np.ndarray]


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
              ) -> dict[str, Callable[[], Gradients]]:
    """Forward + backward of each side, returning its gradients by `hand.backward`'s names."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((steps, batch, input_size)).astype(dtype)
    d_out = rng.standard_normal((steps, batch, hidden_size)).astype(dtype)
    zeros = np.zeros((1, batch, hidden_size), dtype=dtype)
    model = LSTM(input_size, hidden_size, dtype=dtype)
    params = hand.init_params(input_size, hidden_size, dtype=dtype)  # the same draw as the model's

    def run_hand() -> Gradients:
        _, _, cache = hand.forward(params, x, (zeros, zeros))
        return hand.backward(cache, d_out)

    def run_model() -> Gradients:
        model.zero_grad()
        inputs = {name: Tensor(array, requires_grad=True) for name, array in (("x", x), ("h0", zeros),
                                                                               ("c0", zeros))}
        out, _ = model(inputs["x"], (inputs["h0"], inputs["c0"]))
        out.backward(d_out)
        return {name: tensor.grad for name, tensor in (*model.named_parameters(), *inputs.items())}

    runs = {"LSTM": run_model, "hand": run_hand}
    if torch is not None:
        runs["torch"] = torch_workload(params, x, zeros, d_out)
    return runs


def torch_workload(params: dict[str, np.ndarray], x: np.ndarray, zeros: np.ndarray, d_out: np.ndarray
                   ) -> Callable[[], Gradients]:
    """torch.nn.LSTM with the same parameters, on the same numbers."""
    steps, batch, input_size = x.shape
    hidden_size = zeros.shape[-1]
    dtype = torch.from_numpy(x).dtype
    module = torch.nn.LSTM(input_size, hidden_size).to(dtype)
    with torch.no_grad():
        for name, array in params.items():
            getattr(module, name).copy_(torch.from_numpy(array))
    x_t, zeros_t, d_out_t = (torch.from_numpy(array) for array in (x, zeros, d_out))

    def run_torch() -> Gradients:
        module.zero_grad()
        inputs = {name: array.clone().requires_grad_() for name, array in (("x", x_t), ("h0", zeros_t),
                                                                           ("c0", zeros_t))}
        out, _ = module(inputs["x"], (inputs["h0"], inputs["c0"]))
        out.backward(d_out_t)
        return {name: tensor.grad.numpy() for name, tensor in (*module.named_parameters(), *inputs.items())}

    return run_torch


def check_same_gradients(runs: dict[str, Callable[[], Gradients]], dtype: type) -> None:
    expected = runs["hand"]()
    tolerance = 1e-3 if dtype == np.float32 else 1e-9
    for side, run in runs.items():
        got = run()
        assert set(expected) == set(got), (side, sorted(expected), sorted(got))
        for name, gradient in expected.items():
            assert got[name].dtype == gradient.dtype, (side, name)
            np.testing.assert_allclose(got[name], gradient, rtol=tolerance, atol=tolerance, err_msg=f"{side} {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="runs of each side; the best is kept")
    parser.add_argument("--cpu", action="store_true", help="time with CPU time rather than the wall clock")
    parser.add_argument("--system-malloc", action="store_true",
                        help="leave glibc's memory policy alone (freed memory may go back to the OS)")
    parser.add_argument("--sizes", nargs="*", metavar="T,B,I,H", help="sizes to run instead of the three")
    args = parser.parse_args()
    sizes = [tuple(int(n) for n in text.split(",")) for text in args.sizes] if args.sizes else SIZES
    kept = not args.system_malloc and keep_freed_memory()
    threads = int(os.environ["OPENBLAS_NUM_THREADS"])
    if torch is not None:
        torch.set_num_threads(threads)
    clock = "cpu" if args.cpu else "wall"
    print(f"forward + backward (all parameters, x, h0, c0): best (median) of {args.repeats}, ms, {clock} clock")
    print(f"threads: {threads} (BLAS and torch); freed memory {'kept by glibc' if kept else 'system policy'}; "
          f"torch: {torch.__version__ if torch is not None else 'not installed'}; load {load()}\n")
    print(f"{'T':>4}{'B':>5}{'I':>5}{'H':>5}  {'dtype':<8}{'LSTM':>16}{'hand':>16}{'torch':>16}"
          f"{'LSTM/hand':>11}{'LSTM/torch':>12}")
    for size in sizes:
        for dtype in (np.float32, np.float64):
            runs = workloads(*size, dtype)
            check_same_gradients(runs, dtype)
            times = interleaved(runs, args.repeats, clock)
            cells = "".join(f"{f'{times[side].best * 1e3:.2f} ({times[side].median * 1e3:.2f})':>16}"
                            if side in times else f"{'-':>16}" for side in ("LSTM", "hand", "torch"))
            ratio_hand = times["LSTM"].best / times["hand"].best
            verdicts = f"{ratio_hand:>6.2f}x {'ok' if ratio_hand <= TARGET_HAND else '--'}"
            if "torch" in times:
                ratio_torch = times["LSTM"].best / times["torch"].best
                met = ratio_torch <= TARGET_TORCH.get(size, 1.5)
                verdicts += f"{ratio_torch:>7.2f}x {'ok' if met else '--'}"
            print(f"{size[0]:>4}{size[1]:>5}{size[2]:>5}{size[3]:>5}  {np.dtype(dtype).name:<8}{cells}{verdicts}")
    print(f"\nok: within the target (LSTM/hand <= {TARGET_HAND}; LSTM/torch <= 1.0 at (32, 64, 64, 128), "
          "<= 1.5 elsewhere)")


if __name__ == "__main__":
    main()
