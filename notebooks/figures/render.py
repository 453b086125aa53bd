"""Render the README's pictures with the project itself, from the README's own examples.

    python notebooks/figures/render.py [directory]      # default: next to this file

The loss curve comes from the training command instead: `python -m lstm train --out out/train`, then
out/train/loss.png copied here as loss.png.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from autograd import Tensor, Value, draw, render, stage, step_through
from lstm import LSTM, RNN, gradient_flow
from lstm.flow import plot_flows


def fork_example() -> Value:
    """The README's first example: a forks into a * b and + a, and its two gradient terms add up."""
    a = Value(2.0, label="a")
    b = Value(-3.0, label="b")
    c = a * b
    c.label = "c"
    L = (c + a).tanh()
    L.label = "L"
    return L


def lstm_example() -> Tensor:
    """The README's LSTM example: six steps; drawn by default, the last one in full."""
    model = LSTM(input_size=3, hidden_size=4, seed=0)
    x = np.random.default_rng(1).standard_normal((6, 2, 3))  # (T, B, I): sequence first
    out, (h, c) = model(x)
    with stage("loss"):
        L = out[-1].sum()
    L.label = "L"
    return L


def main(directory: Path) -> list[Path]:
    L = fork_example()
    written = [render(draw(L, view="backward"), directory / "fork_backward.svg"),
               step_through(L).save_gif(directory / "fork_step_through.gif", duration=1200, progress=False)]
    loss = lstm_example()
    written.append(render(draw(loss, view="backward"), directory / "lstm_backward.svg"))
    x = np.random.default_rng(0).standard_normal((30, 4, 3))
    flows = {"RNN (tanh)": RNN(3, 16, seed=0), "LSTM": LSTM(3, 16, seed=0),
             "LSTM, forget bias 1": LSTM(3, 16, seed=0, forget_bias=1.0)}
    written.append(directory / "gradient_flow.png")
    plot_flows({name: gradient_flow(model, x, loss="last") for name, model in flows.items()}, written[-1])
    return written


if __name__ == "__main__":
    for path in main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent):
        print(path)
