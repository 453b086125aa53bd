"""The graph core shared by Value and Tensor: nodes, stages, the reverse pass and its forks.

A node records the primitive that made it (``op``) and its inputs (``parents``, in order and with repeats: in
``a * a`` the node ``a`` forks into two branches). The reverse pass visits nodes so that every consumer comes
before what it consumes, applies each primitive's local-derivative rule, and adds up the contributions that
arrive at a fork. Nothing here recurses, so graph depth is bounded by memory, not by the interpreter's stack.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

# How Jupyter shows a node, ``display_hook(node, include, exclude) -> mimebundle``: filled in by `autograd.view`,
# which sits above the core (the core never imports it); None shows the node's repr.
display_hook: Callable[[Any, Any, Any], dict[str, Any]] | None = None


class Node:
    """What the core needs of a graph node; `Value` and `Tensor` provide it.

    Attributes: ``data`` (float or ndarray), ``grad``, ``op`` (a Primitive, or None for a leaf), ``parents``
    (tuple of nodes), ``params`` (the op's non-tensor arguments), ``label``, ``stage`` (tuple of stage names),
    ``requires_grad``. Class hooks: ``unbroadcast`` (None where shapes cannot broadcast), ``constant(raw)``,
    ``seed(grad)``, ``gradient(adjoint)`` and ``zero_grad_value()``.
    """

    __slots__ = ()
    unbroadcast: Any = None

    @classmethod
    def constant(cls, raw: Any) -> Node:
        raise NotImplementedError

    def seed(self, grad: Any) -> Any:
        """dL/d self to start a reverse pass from: ones when ``grad`` is None, else ``grad`` checked."""
        raise NotImplementedError

    def gradient(self, adjoint: Any) -> Any:
        """An adjoint as a gradient handed to the user: of this node's shape and type, and theirs to keep."""
        raise NotImplementedError

    def zero_grad_value(self) -> Any:
        raise NotImplementedError

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """Jupyter shows a node as the drawing of its graph, through `display_hook`."""
        if display_hook is None:
            return {"text/plain": repr(self)}
        return display_hook(self, include, exclude)

    def where(self) -> str:
        """Where a node sits, for error messages: its label and stage, when it has them."""
        parts = []
        if self.label:
            parts.append(f"node {self.label!r}")
        if self.stage:
            parts.append(f"in stage {' / '.join(self.stage)!r}")
        return " ".join(parts) or "an unlabelled node"


# --- recording modes: stages, no_grad, detect_anomaly ------------------------------------------------------

class _Mode:
    """Process-wide recording switches, read by every op (plain attributes: the hot path reads them)."""

    grad_enabled = True
    anomaly = False
    stage: tuple[str, ...] = ()


mode = _Mode()


class AnomalyError(ArithmeticError):
    """Raised under `detect_anomaly` at the first value or gradient that is NaN or infinite."""


class stage:  # lower case: it is used like a function, ``with stage("t=2"):``
    """Tag every node created inside with a functional-stage name; stages nest (``t=2 / forget gate``).

    A small class rather than a generator-based context manager: an LSTM enters several stages per step, and
    this costs a fraction of a generator's setup.
    """

    __slots__ = ("name", "outer")

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"stage name must be a non-empty string, got {name!r}")
        self.name = name
        self.outer: list[tuple[str, ...]] = []  # a stack: one stage object may be entered again inside itself

    def __enter__(self) -> tuple[str, ...]:
        self.outer.append(mode.stage)
        mode.stage = (*mode.stage, self.name)
        return mode.stage

    def __exit__(self, *exception: object) -> None:
        mode.stage = self.outer.pop()


@contextmanager
def no_grad() -> Iterator[None]:
    """Compute without recording the graph (inference): results are leaves with no parents."""
    outer = mode.grad_enabled
    mode.grad_enabled = False
    try:
        yield
    finally:
        mode.grad_enabled = outer


@contextmanager
def detect_anomaly() -> Iterator[None]:
    """Raise `AnomalyError` at the first op whose value, or whose gradient, is NaN or infinite."""
    outer = mode.anomaly
    mode.anomaly = True
    try:
        yield
    finally:
        mode.anomaly = outer


def is_finite(raw: Any) -> bool:
    if isinstance(raw, Node):
        raw = raw.data
    return bool(np.isfinite(raw).all()) if isinstance(raw, np.ndarray) else math.isfinite(raw)


def check_value(node: Node, op: Any, inputs: Sequence[Node]) -> None:
    """Under detect_anomaly: complain about a value ``op`` has just computed, if it is not finite (recorded in
    the graph or not: under no_grad too)."""
    if not is_finite(node.data):
        shown = ", ".join(_brief(x.data) for x in inputs)
        raise AnomalyError(f"{op.name}({shown}) produced {_brief(node.data)} at {node.where()}")


def _brief(raw: Any) -> str:
    if isinstance(raw, np.ndarray):
        bad = raw[~np.isfinite(raw)]
        return f"array{raw.shape}" + (f" containing {bad.flat[0]}" if bad.size else "")
    return repr(raw)


# --- graph walks --------------------------------------------------------------------------------------------

def consumer_counts(root: Node) -> dict[Node, int]:
    """How many edges leave each node towards the root: more than one means the node forks."""
    counts = {root: 0}
    stack = [root]
    while stack:
        for parent in stack.pop().parents:
            if parent in counts:
                counts[parent] += 1
            else:
                counts[parent] = 1
                stack.append(parent)
    return counts


def topological_order(root: Node, first_input_first: bool = False) -> list[Node]:
    """Every node the root depends on, each after all of its inputs (reverse it for the backward pass).

    An iterative depth-first search: a node goes back on the stack under a ``None`` marker while its inputs
    are explored, and is emitted when the marker comes off. A node met again later is skipped. The last input's
    subgraph comes first; with ``first_input_first`` the first input's does, in the order a reader meets them.
    """
    order: list[Node] = []
    expanded: set[Node] = set()
    stack: list[Node | None] = [root]
    push, pop = stack.append, stack.pop
    while stack:
        node = pop()
        if node is None:
            order.append(pop())
        elif node not in expanded:
            expanded.add(node)
            push(node)
            push(None)
            for parent in reversed(node.parents) if first_input_first else node.parents:
                if parent not in expanded:
                    push(parent)
    return order


def consumers(root: Node) -> dict[Node, list[tuple[Node, int]]]:
    """For each node under the root, the (consumer, input position) edges it feeds: a fork has several."""
    edges: dict[Node, list[tuple[Node, int]]] = {}
    for node in reversed(topological_order(root)):
        edges.setdefault(node, [])
        for position, parent in enumerate(node.parents):
            edges.setdefault(parent, []).append((node, position))
    return edges


# --- the reverse pass ----------------------------------------------------------------------------------------

class Branch(NamedTuple):
    """One consumer edge of a node and the gradient term that came back along it."""

    consumer: Node
    position: int
    term: Any


@dataclass
class Backprop:
    """The result of one reverse pass: dL/dnode for every node reached, and optionally every branch term."""

    root: Node
    adjoints: dict[Node, Any]
    branches: dict[Node, list[Branch]] | None = None

    def terms(self, node: Node) -> list[Branch]:
        """The per-branch contributions that add up to ``adjoints[node]`` (requires ``record_branches``)."""
        if self.branches is None:
            raise ValueError("branch terms were not recorded: call backpropagate(..., record_branches=True)")
        return self.branches.get(node, [])


def backpropagate(root: Node, grad: Any = None, *, create_graph: bool = False,
                  record_branches: bool = False, keep_inner: bool = True) -> Backprop:
    """Apply the chain rule from ``root`` back to every node it depends on.

    ``grad`` is dL/d(root) (ones when omitted). With ``create_graph`` every rule runs on nodes, so the
    gradients are themselves graph nodes that can be differentiated again. With ``record_branches`` each
    edge's contribution is kept, which is what drawings and explanations show at forks. With
    ``keep_inner=False`` only the leaves' adjoints are kept: an inner node's is dropped once its rules have
    used it, so the pass holds one step's gradients at a time rather than the whole graph's.
    """
    seed = grad if isinstance(grad, Node) else root.seed(grad)
    if create_graph and not isinstance(seed, Node):
        seed = root.constant(seed)
    return _backpropagate(root, seed, create_graph, record_branches, keep_inner)


def _backpropagate(root: Node, seed: Any, create_graph: bool, record_branches: bool, keep_inner: bool
                   ) -> Backprop:
    adjoints: dict[Node, Any] = {root: seed}
    adjoint_of = adjoints.get
    take = adjoint_of if keep_inner else adjoints.pop  # every consumer of a node comes before it: pop is safe
    branches: dict[Node, list[Branch]] | None = {} if record_branches else None
    fit = root.unbroadcast
    anomaly = mode.anomaly
    inspect = anomaly or record_branches  # per-edge extras, off on the fast path
    # Adjoints this pass allocated itself and shares with no one: an op with an in-place rule (indexing) may
    # add into them, so a tensor read piece by piece gathers its pieces without a full-size term per piece.
    owned: set[Node] = set()
    in_place = not (create_graph or inspect)
    for node in reversed(topological_order(root)):
        op = node.op
        if op is None:
            continue
        g = take(node, None)
        if g is None:  # reached only through inputs that need no gradient
            continue
        parents = node.parents
        if create_graph:
            inputs, out = parents, node
        else:
            inputs, out = [parent.data for parent in parents], node.data
        params = node.params
        rules = op.rules
        add_into = op.add_into if in_place else None
        position = -1  # counted by hand: enumerate's pairs cost a few percent of the whole pass
        for parent in parents:
            position += 1
            if not parent.requires_grad:
                continue
            if add_into is not None:
                total = adjoint_of(parent)
                if total is None or parent in owned:
                    adjoints[parent] = add_into(total, g, out, *inputs, **params)
                    owned.add(parent)
                    continue
            # Primitive.term, written out here: this loop is the hot path of every backward pass
            if op.variadic:
                term = rules[0](g, out, *inputs, position=position, **params)
            elif params:
                term = rules[position](g, out, *inputs, **params)
            else:
                term = rules[position](g, out, *inputs)
            if fit is not None and term.shape != parent.data.shape:  # the input was broadcast: undo it
                term = fit(term, parent.data.shape)
            if inspect:
                _inspect(term, node, position, parent, anomaly, branches)
            previous = adjoint_of(parent)
            adjoints[parent] = term if previous is None else previous + term
    return Backprop(root, adjoints, branches)


def _inspect(term: Any, node: Node, position: int, parent: Node, anomaly: bool,
             branches: dict[Node, list[Branch]] | None) -> None:
    """The per-edge work that only some passes ask for: anomaly checks and branch records."""
    if anomaly and not is_finite(term):
        raise AnomalyError(f"the gradient of {node.op.name} for its input {position} is not finite "
                           f"({_brief(raw(term))}) at {node.where()}")
    if branches is not None:
        branches.setdefault(parent, []).append(Branch(node, position, term))


def raw(x: Any) -> Any:
    """The number or array a node holds; anything else as it is."""
    return x.data if isinstance(x, Node) else x


def grad(output: Node, inputs: Node | Sequence[Node], grad_output: Any = None, *,
         create_graph: bool = False) -> Any:
    """d output / d inputs, returned rather than stored; ``.grad`` is left untouched.

    Inputs the output does not depend on get zeros. With ``create_graph=True`` the gradients are graph nodes
    (the backward computation recorded in the stage ``backward``), so they can be differentiated again.
    """
    single = isinstance(inputs, Node)
    wanted = [inputs] if single else list(inputs)
    for x in wanted:
        if not isinstance(x, Node):
            raise TypeError(f"grad() takes graph nodes as inputs, got {type(x).__name__}")
    needs_gradient(output, "grad()")
    if create_graph:
        with stage("backward"):
            adjoints = backpropagate(output, grad_output, create_graph=True).adjoints
            result = [adjoints[x] if x in adjoints else type(x).constant(x.gradient(0.0)) for x in wanted]
    else:
        adjoints = backpropagate(output, grad_output).adjoints
        result = [x.gradient(adjoints.get(x, 0.0)) for x in wanted]
    return result[0] if single else result


def needs_gradient(root: Node, caller: str) -> None:
    """Refuse a reverse pass from a node that needs no gradient: it depends on nothing that does, so every
    gradient would be zero, which is more likely a mistake (a missing requires_grad=True) than a question."""
    if not root.requires_grad:
        raise ValueError(f"{caller}: {root.where()} needs no gradient and depends on nothing that does; "
                         "make the inputs to differentiate with requires_grad=True (a Tensor) or as Values")


def zero_grad(roots: Node | Iterable[Node]) -> None:
    """Reset the gradient of every node under the given roots."""
    for root in [roots] if isinstance(roots, Node) else roots:
        for node in consumer_counts(root):
            node.grad = node.zero_grad_value()
