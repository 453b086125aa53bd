"""Drawing speed: a small scalar LSTM-like graph in full, and a 100,000-node one collapsed by stage.

Run: python benchmarks/bench_draw.py [--out DIR]   (needs Graphviz's `dot`; images go to a temporary directory
unless --out is given)

Also (issue #19): every drawing of the learner-graph corpus (tests/learner_graphs.py), timed once each, and the
slowest named.

Targets (issue #4): the backward drawing of a few hundred nodes rendered to PNG in at most 2 s; the
100,000-node graph, its stages collapsed into boxes, rendered in at most 5 s. Also timed (issue #11): the
step-through of the smallest ScalarLSTM written as a GIF (it took 75 s before its frames were collapsed and
laid out narrow). Each time is the best of three
runs, and covers everything from the graph to the file: working out the drawing (one walk of the graph, and
for the backward view one reverse pass), Graphviz's layout and the PNG. Rendering a PNG costs in proportion
to its pixels, so the PNG sizes are printed too.
"""

from __future__ import annotations

import argparse
import random
import struct
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from autograd import GraphTooLargeError, Value, stage, step_through
from autograd.core import consumer_counts
from autograd.view import draw, render
from autograd.view.rendering import pipe
from lstm import ScalarLSTM

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from learner_graphs import CORPUS  # noqa: E402

GATES = ("forget", "input", "candidate", "output")
REPEATS = 3


def lstm_like(steps: int, blocks: int = 0, seed: int = 0) -> Value:
    """A scalar LSTM cell unrolled over ``steps`` (stages "t=1", ... with a stage per gate), with a squared-error
    loss at every step added to a running total, as a training loop does.

    The hidden state h forks into the four gates of the next step and into the loss; the cell state c forks
    into the next step and into tanh; every weight forks into every step. With ``blocks`` the steps are
    grouped into that many outer stages "block=1", ... (to collapse a very large graph into a few boxes).
    """
    rng = random.Random(seed)
    weights = {gate: (Value(rng.uniform(-1, 1), label=f"w_{gate[0]}"),
                      Value(rng.uniform(-1, 1), label=f"u_{gate[0]}"),
                      Value(rng.uniform(-0.5, 0.5), label=f"b_{gate[0]}")) for gate in GATES}
    h, c = Value(0.0, label="h0"), Value(0.0, label="c0")
    total = None
    per_block = -(-steps // blocks) if blocks else steps
    for t in range(1, steps + 1):
        x = Value(rng.uniform(-1, 1), label=f"x{t}")
        block = stage(f"block={(t - 1) // per_block + 1}") if blocks else _no_stage()
        with block, stage(f"t={t}"):
            act = {}
            for gate in GATES:
                with stage(f"{gate} gate"):
                    w, u, b = weights[gate]
                    z = w * x + u * h + b
                    act[gate] = z.tanh() if gate == "candidate" else z.sigmoid()
                    act[gate].label = gate[0]
            with stage("cell"):
                c = act["forget"] * c + act["input"] * act["candidate"]
                c.label = "c"
                h = act["output"] * c.tanh()
                h.label = "h"
            with stage("loss"):
                loss = (h - rng.uniform(-1, 1)) ** 2
                total = loss if total is None else total + loss
    total.label = "L"
    return total


class _no_stage:  # noqa: N801 (used like the stage() context manager)
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def best_of(label: str, work: Callable[[], Path], size: Callable[[Path], str] | None = None) -> float:
    """The best of a few runs of ``work`` (machines are noisy; the best run is what the code costs)."""
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        path = work()
        times.append(time.perf_counter() - start)
    print(f"{label:<66}{min(times):7.2f} s   {(size or _png_size)(path)}")
    return min(times)


def _gif_size(path: Path) -> str:
    width, height = struct.unpack("<HH", path.read_bytes()[6:10])
    return f"{width} x {height} px, {path.stat().st_size // 1024:,} KB"


def _png_size(path: Path) -> str:
    width, height = struct.unpack(">II", path.read_bytes()[16:24])
    return f"{width} x {height} px"


def _corpus_time(name: str, make: Callable[[], Any], view: str) -> float:
    """From the graph to the SVG's bytes: the drawing worked out, laid out, and measured for width."""
    root = make()
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a WidthWarning is expected for the widest: the time is what counts here
        pipe(draw(root, view), "svg")
    seconds = time.perf_counter() - start
    print(f"  {name + ', ' + view:<66}{seconds:7.2f} s", flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="write the images here (default: a temporary directory)")
    out = parser.parse_args().out or Path(tempfile.mkdtemp(prefix="bench_draw_"))

    small = lstm_like(steps=8)
    print(f"small LSTM-like graph: {len(consumer_counts(small)):,} nodes, 8 steps")
    small_time = best_of("backward view in full, rankdir='TB', to PNG",
                         lambda: render(draw(small, "backward", collapse=None, rankdir="TB"),
                                        out / "small_backward.png"))
    best_of("backward view in full, rankdir='LR', to PNG",
            lambda: render(draw(small, "backward", collapse=None, rankdir="LR"), out / "small_backward_lr.png"))
    best_of("forward view in full, to PNG",
            lambda: render(draw(small, "forward", collapse=None), out / "small_forward.png"))
    best_of("backward view by default (the last step in full), to PNG",
            lambda: render(draw(small, "backward"), out / "small_default.png"))

    big = lstm_like(steps=3200, blocks=32)
    print(f"\nlarge LSTM-like graph: {len(consumer_counts(big)):,} nodes, 32 blocks of 100 steps")
    try:
        draw(big, "backward", collapse=None)
    except GraphTooLargeError as error:
        print(f"drawn in full it is refused: {error}\n")
    big_time = best_of("backward view, collapse='block=*', to PNG",
                       lambda: render(draw(big, "backward", collapse="block=*"), out / "big_backward.png"))
    best_of("forward view, collapse='block=*', to PNG",
            lambda: render(draw(big, collapse="block=*"), out / "big_forward.png"))
    best_of("backward view, roll_up=True (block=2 … block=32 as one box), to PNG",
            lambda: render(draw(big, "backward", collapse=None, roll_up=True), out / "big_rolled.png"))

    model = ScalarLSTM(1, 1, seed=0)
    out_lstm, _ = model(np.array([[[0.5]], [[-1.0]]]))
    frames = step_through(out_lstm[-1, 0, 0])
    print(f"\nsmallest ScalarLSTM (input 1, hidden 1, 2 steps): {len(frames)} frames")
    best_of("step-through to an animated GIF", lambda: frames.save_gif(out / "lstm_step_through.gif",
                                                                         progress=False), size=_gif_size)

    print("\nthe learner graphs of tests/learner_graphs.py, forward and backward, each once to SVG (with the "
          "narrower layouts tried when too wide):")
    slowest = max(((_corpus_time(name, make, view), name, view) for name, make in CORPUS.items()
                   for view in ("forward", "backward")), key=lambda found: found[0])
    print(f"slowest corpus drawing: {slowest[1]}, {slowest[2]}: {slowest[0]:.2f} s")

    print(f"\ntargets: small <= 2 s: {'met' if small_time <= 2 else 'MISSED'} ({small_time:.2f} s); "
          f"large <= 5 s: {'met' if big_time <= 5 else 'MISSED'} ({big_time:.2f} s); images in {out}")


if __name__ == "__main__":
    main()
