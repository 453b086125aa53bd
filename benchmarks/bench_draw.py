"""Drawing speed: a small scalar LSTM-like graph in full, and a 100,000-node one collapsed by stage.

Run: python benchmarks/bench_draw.py   (needs Graphviz's `dot`)
Targets: the backward drawing of a few hundred nodes to PNG in at most 2 s; the 100,000-node graph, its
stages collapsed into boxes, rendered in at most 5 s (collapsing walks the graph once, never per stage).
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

from autograd import Value, stage
from autograd.core import consumer_counts
from autograd.draw import draw, render

GATES = ("forget", "input", "candidate", "output")


def lstm_like(steps: int, blocks: int = 0, seed: int = 0) -> Value:
    """A scalar LSTM cell unrolled over ``steps`` (stages "t=1", ... with a stage per gate), summed losses.

    The hidden state h forks into the four gates of the next step and into the loss; the cell state c forks
    into the next step and into tanh; every weight forks into every step. With ``blocks`` the steps are
    grouped into that many outer stages "block=1", ... (to collapse a very large graph into a few boxes).
    """
    rng = random.Random(seed)
    weights = {gate: (Value(rng.uniform(-1, 1), label=f"w_{gate[0]}"),
                      Value(rng.uniform(-1, 1), label=f"u_{gate[0]}"),
                      Value(rng.uniform(-0.5, 0.5), label=f"b_{gate[0]}")) for gate in GATES}
    h, c = Value(0.0, label="h0"), Value(0.0, label="c0")
    losses = []
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
                losses.append((h - rng.uniform(-1, 1)) ** 2)
    total = losses[0]
    with stage("total loss"):
        for loss in losses[1:]:
            total = total + loss
    total.label = "L"
    return total


class _no_stage:  # noqa: N801 (used like the stage() context manager)
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def timed(label: str, work) -> float:
    start = time.perf_counter()
    work()
    elapsed = time.perf_counter() - start
    print(f"{label:<62}{elapsed:8.3f} s")
    return elapsed


def main() -> None:
    out = Path(tempfile.mkdtemp(prefix="bench_draw_"))

    small = lstm_like(steps=8)
    print(f"small LSTM-like graph: {len(consumer_counts(small)):,} nodes")
    small_time = timed("backward view, drawn in full, rendered to PNG",
                       lambda: render(draw(small, "backward"), out / "small.png"))

    big = lstm_like(steps=3200, blocks=32)
    print(f"large LSTM-like graph: {len(consumer_counts(big)):,} nodes, 32 blocks of 100 steps")
    big_time = timed("backward view, collapse='block=*', rendered to PNG",
                     lambda: render(draw(big, "backward", collapse="block=*"), out / "big.png"))
    timed("forward view, collapse='block=*', rendered to PNG",
          lambda: render(draw(big, collapse="block=*"), out / "big_forward.png"))
    timed("backward view, roll_up=True, keep='block=32', collapse='t=*', PNG",
          lambda: render(draw(big, "backward", roll_up=True, keep="block=32", collapse="t=*"),
                         out / "big_rolled.png"))

    print(f"targets: small <= 2 s ({'met' if small_time <= 2 else 'MISSED'}), "
          f"large <= 5 s ({'met' if big_time <= 5 else 'MISSED'}); images in {out}")


if __name__ == "__main__":
    main()
