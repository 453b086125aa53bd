"""Render the README's pictures with the project itself, from the README's own examples.

    python notebooks/figures/render.py [directory]      # default: next to this file

The LSTM and the gradient flows are built by `lstm.demo`, as the demo builds them. The loss curve comes from the
training command instead: `python -m lstm train --out out/train`, then out/train/loss.png copied here as
loss.png.
"""

from __future__ import annotations

import sys
from pathlib import Path

from autograd import Value, draw, render, step_through
from lstm.demo import DEMO_FLOW, DEMO_TENSOR, gradient_flows, lstm_loss
from lstm.checks.flow import plot_flows


def fork_example() -> Value:
    """The README's first example: a forks into a * b and + a, and its two gradient terms add up."""
    a = Value(2.0, label="a")
    b = Value(-3.0, label="b")
    c = a * b
    c.label = "c"
    L = (c + a).tanh()
    L.label = "L"
    return L


def main(directory: Path) -> list[Path]:
    L = fork_example()
    written = [render(draw(L, view="backward"), directory / "fork_backward.svg"),
               step_through(L).save_gif(directory / "fork_step_through.gif", duration=1200, progress=False)]
    # The README's LSTM example: six steps; drawn by default, the last one in full.
    written.append(render(draw(lstm_loss(DEMO_TENSOR, seed=0), view="backward"), directory / "lstm_backward.svg"))
    written.append(directory / "gradient_flow.png")
    plot_flows(gradient_flows(DEMO_FLOW, seed=0), written[-1])
    return written


if __name__ == "__main__":
    for path in main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent):
        print(path)
