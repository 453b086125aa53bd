"""Render the README's pictures with the project itself, from the README's own examples.

    python notebooks/figures/render.py [directory]      # default: next to this file

The LSTM and the gradient flows are built by `lstm.demo`, as the demo builds them. The loss curve comes from the
training command instead: `python -m lstm train --out out/train`, then out/train/loss.png copied here as
loss.png.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from autograd import Tensor, Value, conv2d, draw, max_pool2d, render, softmax_cross_entropy, step_through
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


def cnn_example() -> Tensor:
    """The README's CNN: a 6x6 image, two 3x3 filters, ReLU, 2x2 max pooling, a linear layer, softmax with
    cross-entropy."""
    rng = np.random.default_rng(7)
    X = Tensor(rng.standard_normal((1, 1, 6, 6)).round(1), label="X")
    K = Tensor((rng.standard_normal((2, 1, 3, 3)) * 0.5).round(2), requires_grad=True, label="K")
    W = Tensor((rng.standard_normal((3, 8)) * 0.5).round(2), requires_grad=True, label="W")
    Y = conv2d(X, K)
    Y.label = "Y"
    P = max_pool2d(Y.relu(), 2)
    P.label = "P"
    z = P.reshape(1, 8) @ W.T
    z.label = "z"
    L = softmax_cross_entropy(z, [2])
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
    written.append(render(draw(cnn_example(), view="backward"), directory / "cnn_backward.svg"))
    return written


if __name__ == "__main__":
    for path in main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent):
        print(path)
