"""Gradient flow through time: how large dL/dh_t and dL/dc_t are at each step, read off one reverse pass.

With the loss on the last output only, the gradient enters at t = T and every earlier step receives only
what survives the way back through the forget gates and the recurrent weights: the norms show whether it
fades (vanishing) or grows (exploding) with distance. They are the adjoints of the per-step nodes h_t and
c_t that the models expose through ``unroll``, so they work for `LSTM`, `ScalarLSTM` and the plain `RNN`
(h_t only) alike, and `plot_flows` sets several models side by side.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from autograd import Tensor, Value, backpropagate
from autograd.core import Node
from autograd.files import write_atomically

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["GradientFlow", "gradient_flow", "plot_flows"]

Loss = Callable[[Any, tuple[Any, Any]], Node]


@dataclass(frozen=True)
class GradientFlow:
    """Norms of the loss gradient with respect to each step's states.

    ``dh[l, t - 1]`` is the Euclidean norm of dL/dh_t over the whole batch for layer l (steps count from t = 1,
    as in the models' stage names), ``dc[l, t - 1]`` that of dL/dc_t; both are total derivatives: every path
    from the node to the loss counts.
    """

    dh: np.ndarray  # (num_layers, T)
    dc: np.ndarray | None  # (num_layers, T); None for a model without a cell state (the RNN)
    loss: str

    def __str__(self) -> str:
        layers = self.dh.shape[0]
        columns = [f"|dL/dh_t| l{layer}" if layers > 1 else "|dL/dh_t|" for layer in range(layers)]
        if self.dc is not None:
            columns += [f"|dL/dc_t| l{layer}" if layers > 1 else "|dL/dc_t|" for layer in range(layers)]
        width = max(12, *map(len, columns))
        lines = [f"gradient flow through time (loss: {self.loss})",
                 f"{'t':>4}" + "".join(f"  {column:>{width}}" for column in columns)]
        for k in range(self.dh.shape[1]):
            numbers = [*self.dh[:, k], *([] if self.dc is None else self.dc[:, k])]
            lines.append(f"{k + 1:>4}" + "".join(f"  {number:>{width}.3e}" for number in numbers))
        return "\n".join(lines)

    def plot(self, path: str | os.PathLike | None = None) -> Figure:
        """The norms against t on a log scale; saved as PNG (atomically) when ``path`` is given. Needs matplotlib."""
        return plot_flows({"": self}, path)


def plot_flows(flows: Mapping[str, GradientFlow], path: str | os.PathLike | None = None) -> Figure:
    """Several models' gradient flows against t on one log-scale plot, a colour per model and layer:
    |dL/dh_t| solid, |dL/dc_t| dashed. Saved as PNG (atomically) when ``path`` is given. Needs matplotlib.

    With a loss on the last output, dL/dh_T is the same for every model, so the curves start together at t = T
    and their slopes going back are how much of the gradient each model keeps per step.
    """
    from matplotlib.figure import Figure  # lazily: matplotlib is an optional dependency

    figure = Figure(figsize=(7, 4), layout="constrained")
    axes = figure.subplots()
    positive = True
    for name, flow in flows.items():
        steps = np.arange(1, flow.dh.shape[1] + 1)  # t = 1 ... T, as in the models' stage names
        layers = flow.dh.shape[0]
        for layer in range(layers):
            prefix = f"{name}: " if name else ""
            suffix = f", layer {layer}" if layers > 1 else ""
            line, = axes.plot(steps, flow.dh[layer], "o-", markersize=3, label=f"{prefix}|dL/dh_t|{suffix}")
            if flow.dc is not None:
                axes.plot(steps, flow.dc[layer], "s--", markersize=3, color=line.get_color(),
                          label=f"{prefix}|dL/dc_t|{suffix}")
        positive &= bool(np.all(flow.dh > 0) and (flow.dc is None or np.all(flow.dc > 0)))
    if positive:
        axes.set_yscale("log")  # vanishing and exploding are exponential in the distance
    axes.set_xlabel("time step t")
    axes.set_ylabel("gradient norm")
    losses = sorted({flow.loss for flow in flows.values()})
    axes.set_title(f"Gradient flow through time (loss: {', '.join(losses)})")
    axes.legend(fontsize="small")
    if path is not None:
        write_atomically(path, lambda file: figure.savefig(file, format="png", dpi=120))
    return figure


def gradient_flow(model: Any, x: Any, state: tuple[Any, Any] | None = None, loss: str | Loss = "last"
                  ) -> GradientFlow:
    """Run ``model`` (`LSTM`, `ScalarLSTM` or `RNN`) on ``x``; measure |dL/dh_t| and |dL/dc_t| (an LSTM's) per
    step and layer.

    ``loss`` is ``"last"`` (the sum of the last step's output: the gradient enters at the end only),
    ``"sum"`` (the sum of every output) or a function ``loss(out, state)`` of what the model returns (``state``
    is ``(h, c)`` for an LSTM, ``h`` for the RNN) giving a scalar node. Parameter gradients (``.grad``) are left
    untouched.
    """
    run = model.unroll(x, state)
    if loss == "last":
        root, description = _total(run.out[-1]), "sum of the last output"
    elif loss == "sum":
        root, description = _total(run.out), "sum of all outputs"
    elif callable(loss):
        name = getattr(loss, "__name__", "")
        state = run.h if run.c is None else (run.h, run.c)  # what the model returns beside out
        root, description = loss(run.out, state), name if name.isidentifier() else "custom"
    else:
        raise ValueError(f"gradient_flow: loss must be 'last', 'sum' or a function, got {loss!r}")
    if not isinstance(root, Node) or np.size(root.data) != 1:
        raise ValueError(f"gradient_flow: the loss must be a scalar node, got {type(root).__name__}")
    adjoints = backpropagate(root).adjoints
    cell = None if run.cell is None else _norms(run.cell, adjoints)
    return GradientFlow(_norms(run.hidden, adjoints), cell, description)


def _total(nodes: Any) -> Node:
    """The sum of a Tensor, or of an object array of Values."""
    if isinstance(nodes, Tensor):
        return nodes.sum()
    return sum(nodes.flat, Value(0.0))


def _norms(per_step: list[list[Any]], adjoints: dict[Node, Any]) -> np.ndarray:
    return np.array([[np.linalg.norm(_adjoint(node, adjoints)) for node in steps] for steps in per_step],
                    dtype=np.float64)


def _adjoint(node: Any, adjoints: dict[Node, Any]) -> np.ndarray:
    """dL/d node (zeros where the loss does not depend on it); elementwise for object arrays of Values."""
    if isinstance(node, Tensor):
        return np.asarray(adjoints.get(node, np.zeros(node.shape)))
    return np.array([adjoints.get(value, 0.0) for value in node.flat], dtype=np.float64)
