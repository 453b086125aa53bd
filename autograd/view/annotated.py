"""One annotated backward pass: what a drawing, a step-through and an explanation all read from a graph.

It walks the graph once, in `autograd.view.order`'s one order: the reading order, the listing (stage by stage,
in computation order) and the names numbered along it. On demand it runs the engine's reverse pass once,
keeping every branch term, and tells it in one order of its own: the listing reversed, so a step-through's
steps, a fork's terms in a drawing and the adjoint equations of `explain` come in the same order (every
consumer before what it consumes, as the chain rule needs; the engine may visit independent nodes in another
order, which changes no number).
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np

from autograd.core import Backprop, Branch, Node, backpropagate
from autograd.view.notation import ROOT_NAME, names_in
from autograd.view.order import reading_order, stage_order

Link = tuple[Node, int]  # a graph edge, named by its consumer and the input position it enters


class AnnotatedPass:
    """The graph under ``root``, ordered and named; its reverse pass (``backprop``) is run when first asked for."""

    def __init__(self, root: Node) -> None:
        self.root = root
        self.order: list[Node] = reading_order(root)
        self.listing: list[Node] = stage_order(self.order)

    @cached_property
    def names(self) -> dict[Node, str]:
        """Every node's name, as explanations and drawings write it (see `autograd.view.notation.node_names`)."""
        return names_in(self.listing, root_name=ROOT_NAME)

    @cached_property
    def backprop(self) -> Backprop:
        """The engine's reverse pass from the root, seeded with ones, with every branch term recorded."""
        return backpropagate(self.root, record_branches=True)

    @cached_property
    def _position(self) -> dict[Node, int]:
        return {node: i for i, node in enumerate(self.listing)}

    @cached_property
    def _terms(self) -> dict[Node, list[Branch]]:
        """Each node's branch terms, in the order the pass below sends them (a consumer listed later first)."""
        position = self._position
        return {node: sorted(branches, key=lambda branch: -position[branch.consumer])
                for node, branches in self.backprop.branches.items()}

    @cached_property
    def _term_of(self) -> dict[Link, Any]:
        return {(branch.consumer, branch.position): branch.term
                for branches in self.backprop.branches.values() for branch in branches}

    @cached_property
    def senders(self) -> list[Node]:
        """The steps of the reverse pass as this pass tells it: the nodes that send gradient terms to their inputs,
        in reverse listing order."""
        sending = {branch.consumer for branches in self.backprop.branches.values() for branch in branches}
        return [node for node in reversed(self.listing) if node in sending]

    def gradient(self, node: Node) -> Any:
        """dL/d node (None where no gradient reaches it)."""
        return self.backprop.adjoints.get(node)

    def accumulated(self) -> str | None:
        """One line when the ``.grad`` of inputs holds more than this pass's gradient (``backward()`` run again,
        as a re-run notebook cell does, or on another loss: ``.grad`` adds up), which drawings and `explain` do
        not show; None when it holds this pass's gradient or nothing."""
        differ = []
        for node in self.order:
            if node.op is not None or not node.requires_grad or node.grad is None:
                continue
            stored, here = np.asarray(node.grad, dtype=float), self.gradient(node)
            if not np.any(stored):
                continue  # never given a gradient, or set back to 0
            if here is None or np.shape(stored) != np.shape(here) or not np.allclose(stored, here, rtol=1e-9,
                                                                                     atol=1e-12):
                differ.append(self.names[node])
        if not differ:
            return None
        listed = ", ".join(differ[:3]) + (f" and {len(differ) - 3} more" if len(differ) > 3 else "")
        return (f"note: .grad of {listed} holds more than this one pass (backward() ran again, and .grad adds up): "
                "zero_grad(root) sets it back to 0")

    def terms(self, node: Node) -> list[Branch]:
        """The gradient terms that came back along each edge out of ``node``: they add up to its gradient."""
        return self._terms.get(node, [])

    def term(self, link: Link) -> Any:
        """The gradient term sent back along one edge (None if none was: its input needs no gradient)."""
        return self._term_of.get(link)

    def sends(self, node: Node) -> list[Link]:
        """The edges along which ``node`` sends gradient terms back to its inputs."""
        return [(node, position) for position in range(len(node.parents)) if (node, position) in self._term_of]
