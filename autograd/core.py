"""The graph core shared by Value and Tensor: nodes, recording modes (per thread and asyncio task), the reverse
pass and its forks.

A node records the primitive that made it (``op``) and its inputs (``parents``, in order and with repeats: in
``a * a`` the node ``a`` forks into two branches). The reverse pass visits nodes so that every consumer comes
before what it consumes, applies each primitive's local-derivative rule, and adds up the contributions that
arrive at a fork. Nothing here recurses, so graph depth is bounded by memory, not by the interpreter's stack.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable, Iterable, Sequence
from contextlib import ContextDecorator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

_new = object.__new__

# How Jupyter shows a node, ``display_hook(node, include, exclude) -> mimebundle``: filled in by `autograd.view`,
# which sits above the core (the core never imports it); None shows the node's repr.
display_hook: Callable[[Any, Any, Any], dict[str, Any]] | None = None


class Node:
    """What the core needs of a graph node; `Value` and `Tensor` provide it.

    Attributes: ``data`` (float or ndarray), ``grad``, ``op`` (a Primitive, or None for a leaf), ``parents``
    (tuple of nodes), ``params`` (the op's non-tensor arguments), ``label``, ``stage`` (tuple of stage names),
    ``requires_grad``. A subclass keeps the label in a ``_label`` slot; ``label`` checks what is stored there.

    Class hooks: ``unbroadcast(term, shape)`` sums a gradient term back to an input's shape that broadcasting
    stretched, raising ValueError when no broadcast of that shape has the term's (None where shapes never
    broadcast); ``constant(raw)``, ``seed(grad)``, ``gradient(adjoint)``, ``zero_grad_value()`` and
    ``add_to_grad(g)``.
    """

    __slots__ = ()
    unbroadcast: Any = None

    @classmethod
    def constant(cls, raw: Any) -> Node:
        raise NotImplementedError

    def seed(self, grad: Any) -> Any:
        """dL/d self to start a reverse pass from, as a raw number or array: ones when ``grad`` is None, else
        ``grad`` (a number, an array or a node of this kind) checked for type and shape."""
        raise NotImplementedError

    def gradient(self, adjoint: Any) -> Any:
        """An adjoint as a gradient handed to the user: of this node's shape and type, and theirs to keep."""
        raise NotImplementedError

    def zero_grad_value(self) -> Any:
        raise NotImplementedError

    def add_to_grad(self, g: Any, fresh: bool = False) -> None:
        """Add a reverse pass's dL/d self into ``.grad`` (what ``backward()`` leaves behind); ``fresh``: the pass
        allocated ``g`` for this node alone, so it may become ``.grad`` without a copy."""
        raise NotImplementedError

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """Jupyter shows a node as the drawing of its graph, through `display_hook`."""
        if display_hook is None:
            return {"text/plain": repr(self)}
        return display_hook(self, include, exclude)

    @property
    def label(self) -> str | None:
        return self._label

    @label.setter
    def label(self, label: str | None) -> None:
        self._label = label if type(label) is str else check_label(label)

    def where(self) -> str:
        """Where a node sits, for error messages: its label and stage, when it has them."""
        parts = []
        if self.label:
            parts.append(f"node {self.label!r}")
        if self.stage:
            parts.append(f"in stage {' / '.join(self.stage)!r}")
        return " ".join(parts) or "an unlabelled node"


# --- recording modes: stages, no_grad, detect_anomaly ------------------------------------------------------

def entered(path: tuple[str, ...]) -> tuple[str, ...]:
    """Note that the stage ``path`` is being entered now, and return it.

    The graph records which stage uses which, not which of two independent stages ran first: listings and
    drawings read it here (`entry_order`), to show sibling stages in the order they ran (an LSTM's gates i, f, g,
    o). The last entry counts; the record is forgotten when it grows past `MAX_RECORDED_STAGES` paths (a loop that
    names a stage after each of a million batches), and then falls back to the order a reader meets them.
    """
    if len(_ENTRY_ORDER) >= MAX_RECORDED_STAGES:
        _ENTRY_ORDER.clear()
    _ENTRY_ORDER[path] = next(_ENTRIES)
    return path


def entry_order(path: tuple[str, ...]) -> int | None:
    """When the stage ``path`` was last entered, as a number that counts up (None if not recorded)."""
    return _ENTRY_ORDER.get(path)


MAX_RECORDED_STAGES = 1 << 16
_ENTRY_ORDER: dict[tuple[str, ...], int] = {}
_ENTRIES = itertools.count()  # next() on it is atomic: threads entering stages at once get distinct numbers


class Mode:
    """The recording switches in force in one thread or asyncio task, read by every op.

    Immutable: a block that changes them sets a new Mode in its own context (a `ContextVar`), so threads and
    tasks never see each other's switches, and an op reads them from one object. A Mode is the one before it
    (``outer``) with one more open ``block``, so a block that closes in order puts the outer Mode back as it was.
    """

    __slots__ = ("outer", "block", "grad_enabled", "anomaly", "stage")

    def __init__(self, outer: Mode | None = None, block: _Block | None = None) -> None:
        self.outer, self.block = outer, block
        if outer is None:
            self.grad_enabled, self.anomaly, self.stage = True, False, ()
            return
        # what the block changes, read from its class (no_grad, detect_anomaly) or itself (a stage's name)
        self.grad_enabled = outer.grad_enabled and block.records
        self.anomaly = outer.anomaly or block.checks
        name = block.name
        self.stage = outer.stage if name is None else entered((*outer.stage, name))

    def without(self, block: _Block) -> Mode:
        """This Mode with the innermost opening of ``block`` closed, the blocks opened inside it kept."""
        inside = []
        mode: Mode | None = self
        while mode is not None and mode.block is not block:
            inside.append(mode.block)
            mode = mode.outer
        if mode is None:  # not open here (closed already, or opened in another thread or task)
            return self
        mode = mode.outer
        for kept in reversed(inside):
            mode = Mode(mode, kept)
        return mode


OUTSIDE_EVERY_BLOCK = Mode()  # recording, no anomaly checks, no stage: every thread and task starts here
_MODE: ContextVar[Mode] = ContextVar("autograd_mode", default=OUTSIDE_EVERY_BLOCK)
current_mode = _MODE.get  # the Mode of the calling thread or task: what every op reads


class _Block(ContextDecorator):
    """A ``with`` block (or decorator) that changes the mode of the thread or task it runs in.

    Closing a block removes that block, wherever it sits: blocks that close out of order (generators suspended
    inside them, overlapping manual ``__enter__``/``__exit__``) leave nothing behind.
    """

    records = True  # recording stays on inside (no_grad: off)
    checks = False  # anomaly checks come on inside (detect_anomaly)
    name: str | None = None  # the stage it opens (stage)

    def __enter__(self) -> Any:
        _MODE.set(Mode(_MODE.get(), self))

    def __exit__(self, *exception: object) -> None:
        mode = _MODE.get()
        _MODE.set(mode.outer if mode.block is self else mode.without(self))


class AnomalyError(ArithmeticError):
    """Raised under `detect_anomaly` at the first value or gradient that is NaN or infinite."""


class stage(_Block):  # lower case: it is used like a function, ``with stage("t=2"):``
    """Tag every node created inside with a functional-stage name; stages nest (``t=2 / forget gate``).

    The stage is that of the thread or asyncio task that enters it; other threads and tasks are not tagged.
    """

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"stage name must be a non-empty string, got {name!r}")
        self.name = name

    def __enter__(self) -> tuple[str, ...]:
        # Mode(outer, self), made without a constructor call: a model enters several stages at every step
        outer = _MODE.get()
        mode = _new(Mode)
        mode.outer, mode.block = outer, self
        mode.grad_enabled, mode.anomaly = outer.grad_enabled, outer.anomaly
        mode.stage = entered((*outer.stage, self.name))
        _MODE.set(mode)
        return mode.stage


class no_grad(_Block):  # lower case, as torch.no_grad
    """Compute without recording the graph (inference): results are leaves that need no gradient.

    Only in the thread or asyncio task that enters it: other threads and tasks keep recording.
    """

    records = False


class detect_anomaly(_Block):
    """Raise `AnomalyError` at the first op whose value, or whose gradient, is NaN or infinite (in the thread or
    asyncio task that enters it)."""

    checks = True


def is_finite(raw: Any) -> bool:
    if isinstance(raw, Node):
        raw = raw.data
    return bool(np.isfinite(raw).all()) if isinstance(raw, np.ndarray) else math.isfinite(raw)


def check_value(node: Node, op: Any, inputs: Sequence[Node]) -> None:
    """Under detect_anomaly: complain about a value ``op`` has just computed, if it is not finite (recorded in
    the graph or not: under no_grad too), naming the op, its inputs and the node."""
    if not is_finite(node.data):
        shown = ", ".join(f"{x.label}={_brief(x.data)}" if x.label else _brief(x.data) for x in inputs)
        raise AnomalyError(f"{op.name}({shown}) produced {_brief(node.data)} at {node.where()}"
                           f"{_why_not_finite(node, op, inputs)}")


def _why_not_finite(node: Node, op: Any, inputs: Sequence[Node]) -> str:
    """What the op's finite inputs did wrong: NaN, or infinity from a zero (1/0, log(0), 0**-1), is outside the
    op's domain; infinity from numbers without a zero is an overflow (exp(1000), 10.0**400)."""
    if not all(is_finite(x.data) for x in inputs):
        return ""  # a NaN or infinity came in: the op only passed it on
    if np.isnan(node.data).any():
        return f" ({op.domain})" if op.domain else ""
    if op.domain and any((np.asarray(x.data) == 0).any() for x in inputs):
        return f" ({op.domain})"
    return " (an overflow: the result is too large for a float)"


def _brief(raw: Any) -> str:
    """A number as Python writes it; an array by its shape and its first element that is not finite, if any."""
    if isinstance(raw, np.ndarray) and raw.ndim:
        bad = raw[~np.isfinite(raw)]
        return f"array{raw.shape}" + (f" containing {bad.flat[0]}" if bad.size else "")
    return repr(float(raw))


def _kind(node: Any) -> str:
    """Value or Tensor: the kind of node, for a Constant too."""
    cls = node if isinstance(node, type) else type(node)
    return next(c for c in reversed(cls.__mro__) if issubclass(c, Node) and c is not Node).__name__


def check_label(label: Any) -> str | None:
    if label is None or isinstance(label, str):
        return label
    raise TypeError(f"a node's label must be a string or None, got {type(label).__name__}: {label!r:.60}")


def mixing_error(op: str, a: Any, b: Any) -> TypeError:
    """The one message for a Value meeting a Tensor, whichever comes first (``a`` and ``b``: nodes or kinds)."""
    kinds = " and ".join(sorted({_kind(a), _kind(b)}))
    return TypeError(f"{op}: cannot combine {kinds} in one graph; use Values for scalars, or 0-d Tensors "
                     "among Tensors")


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
    emit = order.append
    expanded: set[Node] = set()
    expand = expanded.add
    stack: list[Node | None] = [root]
    push, pop, extend = stack.append, stack.pop, stack.extend
    while stack:
        node = pop()
        if node is None:
            emit(pop())
        elif node not in expanded:
            expand(node)
            push(node)
            push(None)
            # all inputs in one call (those already expanded come off again at once): cheaper than a test each
            extend(reversed(node.parents) if first_input_first else node.parents)
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
    gradients are themselves graph nodes that can be differentiated again (a node given as ``grad`` is then
    part of that graph). With ``record_branches`` each edge's contribution is kept, which is what drawings and
    explanations show at forks. With ``keep_inner=False`` only the leaves' adjoints are kept: an inner node's
    is dropped once its rules have used it, so the pass holds one step's gradients at a time rather than the
    whole graph's. NaN and infinity are values here, as in the forward pass: the pass computes them without
    numpy's warnings (`detect_anomaly` stops at the first).
    """
    seed = root.seed(grad)  # checked, and a plain number or array
    if create_graph:
        seed = grad if isinstance(grad, Node) else root.constant(seed)
    adjoints, branches, _ = _reverse_pass(root, seed, create_graph, record_branches, keep_inner)
    return Backprop(root, adjoints, branches)


def backward(root: Node, grad: Any, every_node: bool) -> None:
    """What ``root.backward(grad)`` does: add dL/d(node) into ``.grad``, of every node the root depends on
    (``every_node``: Value, as micrograd) or of the leaves that require a gradient (Tensor, as PyTorch).

    An inner node's gradient is added as soon as the pass has it complete, and then dropped: the pass keeps
    the gradients of its frontier only, not the whole graph's. Under `detect_anomaly` they are all added at the
    end instead, so that a pass stopped by an AnomalyError leaves every ``.grad`` as it was. Threads may run
    backward() at once on graphs that share leaves: the additions into ``.grad`` take `GRAD_LOCK`, so none is lost.
    """
    seed = check_root(root, grad, "backward()", "grad")
    as_it_goes = every_node and not current_mode().anomaly
    if as_it_goes:  # the pass itself adds into .grad: a pass over floats, which holds the GIL anyway
        with GRAD_LOCK:
            adjoints, _, owned = _reverse_pass(root, seed, False, False, False, True)
            _add_to_grads(adjoints, owned)
        return
    adjoints, _, owned = _reverse_pass(root, seed, False, False, every_node, False)
    with GRAD_LOCK:
        _add_to_grads(adjoints, owned)


# Held while a backward pass adds into .grad: threads that share a parameter (a weight, a leaf) and run backward()
# at once would each read .grad, add, and write it back, and one of two additions could be lost. One lock for
# all: it is taken once per backward() call, and what it guards is a few additions.
GRAD_LOCK = threading.Lock()


def _add_to_grads(adjoints: dict[Node, Any], owned: set[Node]) -> None:
    for node, g in adjoints.items():  # what is left: the leaves' gradients (every node's, if kept)
        if node.requires_grad:
            node.add_to_grad(g, node in owned)


@np.errstate(all="ignore")  # NaN and inf are values here, as in the forward pass (detect_anomaly stops at them)
def _reverse_pass(root: Node, seed: Any, create_graph: bool, record_branches: bool, keep_inner: bool,
                  grads_of_inner_nodes: bool = False
                  ) -> tuple[dict[Node, Any], dict[Node, list[Branch]] | None, set[Node]]:
    """The reverse pass itself: the adjoints, the branches (if recorded) and the nodes whose adjoint the pass
    allocated itself and shares with no one. ``grads_of_inner_nodes`` (a plain pass over Values only): add each
    inner node's adjoint into its ``.grad`` as soon as it is complete.

    Primitive.term, written out: this loop is the hot path of every backward pass, so a plain pass (neither
    recorded nor inspected) has a loop of its own for arrays, `_array_pass`, and one for numbers, `_scalar_pass`;
    this one serves the passes that record the graph (``create_graph``) or look at every edge (branch terms,
    anomaly checks).
    """
    anomaly = current_mode().anomaly
    fit = root.unbroadcast  # how an array term is summed back to its input's shape; None for numbers
    if not (create_graph or anomaly or record_branches):
        if fit is None:
            return _scalar_pass(root, seed, keep_inner, grads_of_inner_nodes), None, set()
        return _array_pass(root, seed, keep_inner, fit)
    adjoints: dict[Node, Any] = {root: seed}
    adjoint_of = adjoints.get
    take = adjoint_of if keep_inner else adjoints.pop  # every consumer of a node comes before it: pop is safe
    branches: dict[Node, list[Branch]] | None = {} if record_branches else None
    for node in reversed(topological_order(root)):
        op = node.op
        if op is None:
            continue
        g = take(node, None)
        if g is None:  # reached only through inputs that need no gradient
            continue
        parents = node.parents
        params = node.params
        args = (g, node, *parents) if create_graph else (g, node.data, *[parent.data for parent in parents])
        for position, parent in enumerate(parents):
            if not parent.requires_grad:
                continue
            if op.variadic:
                term = op.rules[0](*args, position=position, **params)
            else:
                rule = op.rules[position]
                term = g if rule is passes_on else rule(*args, **params)
            if fit is not None and term.shape != parent.data.shape:  # the input was broadcast: undo it
                term = _unbroadcast(fit, term, node, position)
            _inspect(term, node, position, parent, anomaly, branches)
            previous = adjoint_of(parent)
            adjoints[parent] = term if previous is None else previous + term
    return adjoints, branches, set()


def _array_pass(root: Node, seed: Any, keep_inner: bool, fit: Callable[[Any, tuple[int, ...]], Any]
                ) -> tuple[dict[Node, Any], None, set[Node]]:
    """`_reverse_pass` over arrays, neither recorded nor inspected: what `_reverse_pass` returns.

    A node of an op without parameters (the arithmetic, the elementwise functions) has one or two inputs and one
    rule per input called with (g, out, *inputs) alone: written out, since on small arrays the loop's own work
    costs as much as numpy's. The others pass keyword arguments (the op's parameters, a variadic op's position)
    or have a rule that adds into the adjoint in place. The few lines that add a term into an input's adjoint
    are repeated at each input on purpose: measured on chains of 8x8 arrays, a helper called per edge costs
    0.1 us per node and a loop over the inputs 0.2 us, as much as the whole gain of writing the ops out.
    """
    adjoints: dict[Node, Any] = {root: seed}
    adjoint_of = adjoints.get
    take = adjoint_of if keep_inner else adjoints.pop  # every consumer of a node comes before it: pop is safe
    # Adjoints that this pass allocated itself (a sum of two terms, or gathered by an in-place rule) and shares
    # with no one until their node is reached: further terms are added into them in place, which spares an
    # array per term at a node used many times (a weight, at every step).
    owned: set[Node] = set()
    own = owned.add
    for node in reversed(topological_order(root)):
        op = node.op
        if op is None:
            continue
        g = take(node, None)
        if g is None:  # reached only through inputs that need no gradient
            continue
        parents = node.parents
        params = node.params
        out = node.data
        if not params and len(parents) == 2:
            a, b = parents
            x, y = a.data, b.data
            rule_a, rule_b = op.rules
            if a.requires_grad:
                term = g if rule_a is passes_on else rule_a(g, out, x, y)
                if term.shape != x.shape:
                    term = _unbroadcast(fit, term, node, 0)
                previous = adjoint_of(a)
                if previous is None:
                    adjoints[a] = term
                elif a in owned and term.dtype is previous.dtype:
                    previous += term
                else:
                    adjoints[a] = previous = previous + term
                    if type(previous) is np.ndarray:
                        own(a)
            if b.requires_grad:
                term = g if rule_b is passes_on else rule_b(g, out, x, y)
                if term.shape != y.shape:
                    term = _unbroadcast(fit, term, node, 1)
                previous = adjoint_of(b)
                if previous is None:
                    adjoints[b] = term
                elif b in owned and term.dtype is previous.dtype:
                    previous += term
                else:
                    adjoints[b] = previous = previous + term
                    if type(previous) is np.ndarray:
                        own(b)
            continue
        if not params:
            (a,) = parents
            x = a.data
            if a.requires_grad:
                term = op.rules[0](g, out, x)
                if term.shape != x.shape:
                    term = _unbroadcast(fit, term, node, 0)
                previous = adjoint_of(a)
                if previous is None:
                    adjoints[a] = term
                elif a in owned and term.dtype is previous.dtype:
                    previous += term
                else:
                    adjoints[a] = previous = previous + term
                    if type(previous) is np.ndarray:
                        own(a)
            continue
        # an op with parameters: an axis, an index, a shape (most have one input), or a variadic op's offsets
        args = (g, out, parents[0].data) if len(parents) == 1 else (g, out, *[parent.data for parent in parents])
        add_into = op.add_into
        rules = op.rules
        variadic = op.variadic
        position = -1
        for parent in parents:
            position += 1
            if not parent.requires_grad:
                continue
            if add_into is not None and (parent in owned or parent not in adjoints):
                adjoints[parent] = add_into(adjoint_of(parent), *args, **params)
                own(parent)
                continue
            term = rules[0](*args, position=position, **params) if variadic else rules[position](*args, **params)
            if term.shape != args[position + 2].shape:  # the input was broadcast: undo it
                term = _unbroadcast(fit, term, node, position)
            previous = adjoint_of(parent)
            if previous is None:
                adjoints[parent] = term
            elif parent in owned and term.dtype is previous.dtype:
                previous += term
            else:
                adjoints[parent] = previous = previous + term
                if type(previous) is np.ndarray:  # not a numpy scalar (a 0-d sum), which cannot change in place
                    own(parent)
    return adjoints, None, owned


def _scalar_pass(root: Node, seed: Any, keep_inner: bool, grads_of_inner_nodes: bool) -> dict[Node, Any]:
    """`_reverse_pass` over numbers (Values), neither recorded nor inspected, with what floats never need left
    out (keyword arguments, broadcasts, sums in place) and the one or two inputs of a scalar op written out:
    on floats the loop's own work is all there is to the pass."""
    adjoints: dict[Node, Any] = {root: seed}
    adjoint_of = adjoints.get
    take = adjoint_of if keep_inner else adjoints.pop
    for node in reversed(topological_order(root)):
        op = node.op
        if op is None:
            continue
        g = take(node, None)
        if g is None:
            continue
        if grads_of_inner_nodes:
            node.grad += g
        rules = op.rules
        out = node.data
        parents = node.parents
        if len(parents) == 2:
            a, b = parents
            x, y = a.data, b.data
            if a.requires_grad:
                rule = rules[0]
                term = g if rule is passes_on else rule(g, out, x, y)
                previous = adjoint_of(a)
                adjoints[a] = term if previous is None else previous + term
            if b.requires_grad:
                rule = rules[1]
                term = g if rule is passes_on else rule(g, out, x, y)
                previous = adjoint_of(b)
                adjoints[b] = term if previous is None else previous + term
        else:
            (a,) = parents
            if a.requires_grad:
                term = rules[0](g, out, a.data)
                previous = adjoint_of(a)
                adjoints[a] = term if previous is None else previous + term
    return adjoints


def _unbroadcast(fit: Any, term: Any, node: Node, position: int) -> Any:
    """Sum a gradient term back to its input's shape, which broadcasting stretched; a term of a shape that no
    broadcast of the input could have made is a wrong rule, refused rather than reshaped into place."""
    shape = node.parents[position].data.shape
    try:
        return fit(term, shape)
    except ValueError:
        raise ValueError(f"{node.op.name}: the gradient for input {position} has shape {term.shape}, which is "
                         f"neither the input's shape {shape} nor a broadcast of it (at {node.where()})") from None


def _inspect(term: Any, node: Node, position: int, parent: Node, anomaly: bool,
             branches: dict[Node, list[Branch]] | None) -> None:
    """The per-edge work that only some passes ask for: anomaly checks and branch records."""
    if anomaly and not is_finite(term):
        raise AnomalyError(f"{node.op.name} at {node.where()}: the gradient for its input {position} "
                           f"({parent.where()}) is not finite: {_brief(raw(term))}")
    if branches is not None:
        branches.setdefault(parent, []).append(Branch(node, position, term))


def passes_on(g: Any, out: Any, *inputs: Any) -> Any:
    """The local-derivative rule of an input whose local derivative is 1 (each input of a sum): the term is the
    upstream gradient itself, which the reverse pass hands on without calling anything."""
    return g


def raw(x: Any) -> Any:
    """The number or array a node holds; anything else as it is."""
    return x.data if isinstance(x, Node) else x


def grad(output: Node, inputs: Node | Sequence[Node], grad_output: Any = None, *,
         create_graph: bool = False) -> Any:
    """d output / d inputs, returned rather than stored; ``.grad`` is left untouched.

    ``output`` must be a scalar, or ``grad_output`` (dL/d output, of its shape) given, as in PyTorch. Inputs
    the output does not depend on get zeros. The gradients are plain numbers or arrays; with
    ``create_graph=True`` they are graph nodes (the backward computation recorded in the stage ``backward``),
    so they can be differentiated again.
    """
    if not isinstance(output, Node):
        raise TypeError(f"grad() differentiates a graph node (a Value or a Tensor), got {type(output).__name__} "
                        f"{output!r:.60} as the output")
    single = isinstance(inputs, Node)
    try:
        wanted = [inputs] if single else list(inputs)
    except TypeError:
        raise TypeError(f"grad() takes a node or a list of nodes as inputs, got {type(inputs).__name__}") from None
    for x in wanted:
        if not isinstance(x, Node):
            raise TypeError(f"grad() takes graph nodes as inputs, got {type(x).__name__}")
    check_root(output, grad_output, "grad()", "grad_output")
    if create_graph:
        with stage("backward"):
            adjoints = backpropagate(output, grad_output, create_graph=True).adjoints
            result = [adjoints[x] if x in adjoints else type(x).constant(x.gradient(0.0)) for x in wanted]
    else:
        adjoints = backpropagate(output, grad_output).adjoints
        result = [x.gradient(adjoints.get(x, 0.0)) for x in wanted]
    return result[0] if single else result


def check_root(root: Node, grad: Any, caller: str, argument: str) -> Any:
    """Refuse a reverse pass that cannot mean what it says, before it starts; else return the seed, dL/d(root)
    as a plain number or array (`Node.seed`).

    A root that needs no gradient depends on nothing that does, so every gradient would be zero: more likely a
    missing requires_grad=True than a question. A root of several elements needs its upstream gradient given
    (as PyTorch asks). A given upstream gradient must fit the root (type and shape).
    """
    if not root.requires_grad:
        raise ValueError(f"{caller}: {root.where()} needs no gradient and depends on nothing that does (was it "
                         "computed under no_grad?); make the inputs to differentiate with requires_grad=True (a "
                         "Tensor) or as Values")
    if grad is None and np.size(root.data) != 1:
        raise ValueError(f"{caller} from a tensor of shape {np.shape(root.data)} needs {argument}= (dL/d it, "
                         "of that shape); or reduce it to a scalar first, e.g. with .sum()")
    try:
        return root.seed(grad)
    except (TypeError, ValueError) as error:
        raise type(error)(f"{caller}: {error}") from None


def zero_grad(roots: Node | Iterable[Node]) -> None:
    """Reset the gradient of every node under the given roots."""
    for root in [roots] if isinstance(roots, Node) else roots:
        for node in consumer_counts(root):
            node.grad = node.zero_grad_value()
