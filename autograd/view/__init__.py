"""The pictures and the written derivations, above the engine: nothing in `autograd.core` imports this package.

`notation` (how nodes, numbers and formulas are written) -> `scene` (what a drawing shows) -> `draw` (DOT and
rendering) -> `frames` (the reverse pass step by step); `explain` writes the chain rule out as text.
"""

from autograd.view.derivation import DerivationCheck, check_derivation
from autograd.view.draw import GraphTooLargeError, GraphvizNotFoundError, draw, render
from autograd.view.explain import Explanation, explain
from autograd.view.frames import Frames, step_through

__all__ = ["DerivationCheck", "check_derivation",
           "Explanation", "Frames", "GraphTooLargeError", "GraphvizNotFoundError", "draw", "explain", "render",
           "step_through"]
