"""Backpropagation through time taken apart: who gives what to dL/dW, how far each step's loss reaches back,
and what truncating it drops. For `RNN`, `LSTM` and `GRU` alike.

The loss is a sum over steps, L = sum_t L_t with L_t = sum(h_t * W_t) on the top layer's output h_t (fixed
weights W_t; all ones by default). A weight W is used at every step, so dL/dW is a sum: write W_s for its use at
step s, then

    dL/dW = sum_t sum_{s <= t} dL_t/dW_s          (step s's use cannot affect an earlier loss)

`bptt` runs one reverse pass per loss term L_t through the model's graph and reads each step's part off the
adjoints of that step's pre-activation nodes (``z[t=s]`` for the LSTM and RNN; ``[x, 1] W_x[t=s]`` and
``[h, 1] W_h[t=s]`` for the GRU): dL_t/dW_s = (dL_t/d pre-activation_s)^T (step s's input). So

* ``contributions[name][s - 1]`` = sum_t dL_t/dW_s, step s's part of the gradient; they add up to ``.grad``;
* ``reach[t - 1, k - 1]`` = |dL_t/dh_k|, how much of step t's loss reaches the hidden state of step k (zero for
  k > t): the vanishing (or exploding) gradient as a T x T picture;
* ``truncated(k)``: truncated BPTT, each L_t sent back k steps only (to steps t, t-1, ..., t-k+1; WildML's
  ``bptt_truncate = k - 1``), gives ``gradient`` = sum_t sum_{t-k < s <= t} dL_t/dW_s and drops ``dropped`` =
  the rest; the two add up to the full gradient.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from autograd import Tensor, backpropagate
from autograd.core import Node, topological_order
from autograd.files import write_atomically
from lstm.models.gru import GRU
from lstm.models.lstm import LSTM
from lstm.models.params import step_name
from lstm.models.rnn import RNN

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["BPTT", "Truncated", "bptt", "plot_reach"]


@dataclass(frozen=True)
class Truncated:
    """Truncated BPTT with ``steps`` steps: the ``gradient`` it gives and the part of the full one it ``dropped``
    (both by parameter name; ``gradient + dropped`` is the full gradient)."""

    steps: int
    gradient: dict[str, np.ndarray]
    dropped: dict[str, np.ndarray]


@dataclass(frozen=True)
class BPTT:
    """BPTT of one model on one sequence, taken apart (see the module's docstring).

    ``by_loss[name][t - 1, s - 1]`` is dL_t/dW_s (zero for s > t), ``contributions[name][s - 1]`` its sum over t,
    ``gradient[name]`` the sum of all: dL/dW. ``reach`` is the (T, T) matrix |dL_t/dh_k| (Euclidean norm over
    the batch and units), on layer ``layer``.
    """

    model: str
    by_loss: dict[str, np.ndarray]
    reach: np.ndarray
    layer: int

    @property
    def steps(self) -> int:
        return self.reach.shape[0]

    @property
    def contributions(self) -> dict[str, np.ndarray]:
        return {name: parts.sum(axis=0) for name, parts in self.by_loss.items()}

    @property
    def gradient(self) -> dict[str, np.ndarray]:
        return {name: parts.sum(axis=(0, 1)) for name, parts in self.by_loss.items()}

    def truncated(self, steps: int) -> Truncated:
        """Each L_t sent back ``steps`` steps only (to t, ..., t - steps + 1): the gradient and what it drops."""
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
            raise ValueError(f"truncated: steps must be a positive integer, got {steps!r}")
        t, s = np.indices((self.steps, self.steps))
        kept = (s <= t) & (s > t - steps)  # step s within `steps` of loss t
        gradient, dropped = {}, {}
        for name, parts in self.by_loss.items():
            mask = kept.reshape(kept.shape + (1,) * (parts.ndim - 2))
            gradient[name] = np.where(mask, parts, 0.0).sum(axis=(0, 1))
            dropped[name] = np.where(mask, 0.0, parts).sum(axis=(0, 1))
        return Truncated(int(steps), gradient, dropped)

    def __str__(self) -> str:
        steps = self.steps
        lines = [f"{self.model}: |dL_t/dh_k| (row t = the loss term, column k = the step it reaches)",
                 "t\\k " + "".join(f"{k:>9}" for k in range(1, steps + 1))]
        for t in range(steps):
            lines.append(f"{t + 1:>3} " + "".join(f"{value:>9.1e}" if k <= t else f"{'':>9}"
                                                  for k, value in enumerate(self.reach[t])))
        return "\n".join(lines)

    def plot(self, path: str | os.PathLike | None = None) -> Figure:
        """The reach matrix as a heat map (`plot_reach`)."""
        return plot_reach({self.model: self}, path)


def bptt(model: LSTM | RNN | GRU, x: Any, state: Any = None, weights: Any = None, *, layer: int = -1) -> BPTT:
    """Take BPTT apart for ``model`` on ``x`` (T, B, I) with the loss sum_t sum(h_t * weights[t]) on the top
    layer's h_t (``weights`` (T, B, H), ones when omitted); ``state`` as the model takes it. ``layer``: whose
    h_k the reach matrix measures. One reverse pass per step; parameters' ``.grad`` are left untouched."""
    if not isinstance(model, (LSTM, RNN, GRU)):
        raise TypeError(f"bptt: model must be an LSTM, RNN or GRU (Tensor models), got {type(model).__name__}")
    run = model.unroll(x, state)
    steps, batch = run.out.shape[:2]
    weights = np.ones(run.out.shape) if weights is None else np.asarray(weights, dtype=np.float64)
    if weights.shape != run.out.shape:
        raise ValueError(f"bptt: weights must have the outputs' shape {run.out.shape}, got {weights.shape}")
    layers = model.num_layers
    if not -layers <= layer < layers:
        raise ValueError(f"bptt: layer {layer} out of range for {layers} layers")
    layer %= layers
    top = run.hidden[-1]
    named = {node.label: node for node in topological_order(run.out) if node.label}
    by_loss = {name: np.zeros((steps, steps, *parameter.shape)) for name, parameter in model.named_parameters()}
    reach = np.zeros((steps, steps))
    for t in range(steps):  # the loss term L_{t+1}
        adjoints = backpropagate(top[t], weights[t]).adjoints
        for k in range(t + 1):
            reach[t, k] = np.linalg.norm(adjoints.get(run.hidden[layer][k], 0.0))
        for k in range(layers):
            for s in range(t + 1):
                for name, part in _step_parts(model, named, adjoints, run, x, state, s + 1, k).items():
                    by_loss[name][t, s] = part
    return BPTT(type(model).__name__, by_loss, reach, layer)


def _step_parts(model: Any, named: dict[str, Node], adjoints: dict[Node, Any], run: Any, x: Any, state: Any,
                t: int, layer: int) -> dict[str, np.ndarray]:
    """dL_(this pass)/dW_t for layer ``layer``'s four parameters, from step t's pre-activation adjoints."""
    hidden = model.hidden_size

    def adjoint(kind: str) -> np.ndarray:
        node = named.get(step_name(kind, t, layer, model.num_layers))
        found = np.zeros(np.shape(node.data)) if node is None else adjoints.get(node, np.zeros(node.shape))
        found = np.asarray(found, dtype=np.float64)
        # (blocks, B, H) gate by gate -> (B, blocks * H), PyTorch's row order
        return found.transpose(1, 0, 2).reshape(found.shape[1], -1) if found.ndim == 3 else found

    if isinstance(model, GRU):
        d_input, d_recurrent = adjoint("[x, 1] W_x"), adjoint("[h, 1] W_h")
    else:
        d_input = d_recurrent = adjoint("z")
    x_data = x.data if isinstance(x, Tensor) else np.asarray(x, dtype=np.float64)
    below = x_data[t - 1] if layer == 0 else run.hidden[layer - 1][t - 1].data
    if t > 1:
        h_prev = run.hidden[layer][t - 2].data
    elif state is None:
        h_prev = np.zeros((below.shape[0], hidden))
    else:
        h0 = state[0] if isinstance(model, LSTM) else state
        h_prev = np.asarray(h0.data if isinstance(h0, Tensor) else h0, dtype=np.float64)[layer]
    return {f"weight_ih_l{layer}": d_input.T @ below, f"weight_hh_l{layer}": d_recurrent.T @ h_prev,
            f"bias_ih_l{layer}": d_input.sum(axis=0), f"bias_hh_l{layer}": d_recurrent.sum(axis=0)}


def plot_reach(runs: dict[str, BPTT], path: str | os.PathLike | None = None) -> Figure:
    """Heat maps of |dL_t/dh_k|, one per model side by side on one log colour scale (at most about 1,000 px
    wide at 120 dpi); saved as PNG (atomically) when ``path`` is given. Needs matplotlib."""
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure  # lazily: matplotlib is an optional dependency

    count = len(runs)
    figure = Figure(figsize=(min(8.0, 3.0 * count + 1.2), 3.4), layout="constrained")
    axes = figure.subplots(1, count, squeeze=False)[0]
    values = np.concatenate([run.reach[run.reach > 0] for run in runs.values()])
    norm = LogNorm(vmin=max(values.min(), values.max() * 1e-12), vmax=values.max()) if values.size else None
    image = None
    for ax, (name, run) in zip(axes, runs.items()):
        shown = np.ma.masked_where(run.reach <= 0, run.reach)
        steps = run.steps
        image = ax.imshow(shown, norm=norm, cmap="viridis", origin="upper",
                          extent=(0.5, steps + 0.5, steps + 0.5, 0.5))
        ax.set_title(name, fontsize="medium")
        ax.set_xlabel("step k reached")
        ax.set_ylabel("loss term L_t")
    if image is not None:
        figure.colorbar(image, ax=list(axes), label="|dL_t / dh_k|", shrink=0.9)
    if path is not None:
        write_atomically(path, lambda file: figure.savefig(file, format="png", dpi=120))
    return figure
