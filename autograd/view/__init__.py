"""The pictures and the written derivations, above the engine: nothing in `autograd.core` imports this package.

One job per module, each on the ones before:

- `order`: the one ordering of a graph (reading order, and stages in computation order);
- `notation`: how nodes, numbers, indices and formulas are written, in text and in LaTeX;
- `annotated`: the graph ordered and named once, with its reverse pass and branch terms;
- `boxes`: which stages a drawing shows as boxes, and the guard against drawings too large to lay out;
- `scene`: what a drawing shows; `dot`: how it is written as DOT; `rendering`: running Graphviz's ``dot``;
- `display`: how drawings and nodes show themselves in Jupyter; `draw`: the entry point;
- `frames`: the reverse pass step by step; `explain`: the chain rule written out as text.

Importing this package gives `autograd.core` its display hook, so a Value or Tensor shows its graph in Jupyter.
"""

from autograd import core
from autograd.view.boxes import GraphTooLargeError
from autograd.view.derivation import DerivationCheck, check_derivation
from autograd.view.display import Drawing, node_bundle
from autograd.view.draw import WIDTH_BUDGET, draw
from autograd.view.explain import Explanation, explain
from autograd.view.frames import Frames, step_through
from autograd.view.rendering import (
    GraphvizError,
    GraphvizNotFoundError,
    GraphvizTimeout,
    GraphvizWarning,
    WidthWarning,
    render,
)

core.display_hook = node_bundle

__all__ = ["WIDTH_BUDGET", "DerivationCheck", "Drawing", "Explanation", "Frames", "GraphTooLargeError", "GraphvizError",
           "GraphvizNotFoundError", "GraphvizTimeout", "GraphvizWarning", "check_derivation", "draw", "explain",
           "render", "step_through", "WidthWarning"]
