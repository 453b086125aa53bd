"""The chain rule written out as a hand derivation: every adjoint as a sum over branches, symbols and numbers.

    >>> from autograd import Value, explain
    >>> a = Value(2.0, label="a")
    >>> print(explain((a * a + 1).tanh()))
    Forward:
      a = 2
      v1 = a * a = 4
      v2 = v1 + 1 = 5
      L = tanh(v2) = 0.9999
    Backward, in reverse order: dL/dn = Σ dL/du · ∂u/∂n over the uses u of n (a fork has several):
      dL/dL = 1
      dL/dv2 = dL/dL · ∂L/∂v2 = 1 · (1 - tanh(v2)^2 = 0.0001816) = 0.0001816
      dL/dv1 = dL/dv2 · ∂v2/∂v1 = 0.0001816 · (1) = 0.0001816
      dL/da = dL/dv1 · ∂v1/∂a + dL/dv1 · ∂v1/∂a
            = 0.0001816 · (a = 2) + 0.0001816 · (a = 2)
            = 0.00036317 + 0.00036317
            = 0.0007263

The forward pass is listed stage by stage (``with autograd.stage("t=1"):``), then the reverse pass node by
node, each local derivative being the primitive table's formula with the operands' names filled in. Every
number comes from one reverse pass of the engine with its branch terms recorded, so what is written is what the
engine computed. Numbers have ``precision`` significant digits; the terms of a sum get more where fewer would
make them not add up to the printed total (as 0.0003632 + 0.0003632 = 0.0007263 would not).

This module is also the vocabulary that drawings share: node names, number formatting and local-derivative
formulas with the operands' names substituted.
"""

from __future__ import annotations

import heapq
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from autograd.core import Node, backpropagate

Format = Literal["text", "markdown", "latex"]
TINY = 4  # arrays with at most this many elements are shown in full, larger ones summarised
WIDTH = 110  # text lines longer than this are broken at their "=" signs, and long sums at their "+" signs
LATEX_ROW = 240  # characters of LaTeX source on one row of an aligned equation before a sum is broken
LATEX_BLOCK = 3000  # characters of LaTeX in one formula: MathJax refuses more than 5,120, macros expanded
MAX_TERMS = 12  # a fork of more branches is written out as its first 9, "... n more ...", and its last 2
MAX_STEPS = 200  # forward values and backward steps written out by default; `.steps` always has them all
ROOT_NAME = "L"  # what a hand derivation calls the output, when the root has no label of its own


# --- names --------------------------------------------------------------------------------------------------

def is_constant(node: Node) -> bool:
    """A leaf that needs no gradient and has no label: shown by its value, not by a name."""
    return node.op is None and not node.requires_grad and not node.label


def _scalar_of(node: Node) -> float | None:
    data = node.data
    if isinstance(data, np.ndarray):
        return data.item() if data.size == 1 else None
    return data


def reading_order(root: Node) -> list[Node]:
    """The nodes under ``root``, each after its inputs, explored first input first.

    Any topological order would do for the chain rule; this one follows the order in which code usually
    writes a computation, so listings read like the program and generated names count up along it.
    """
    order: list[Node] = []
    expanded: set[Node] = set()
    stack: list[Node | None] = [root]
    while stack:
        node = stack.pop()
        if node is None:  # the marker under which a node waited for its inputs
            order.append(stack.pop())
        elif node not in expanded:
            expanded.add(node)
            stack += (node, None)
            stack += [parent for parent in reversed(node.parents) if parent not in expanded]
    return order


def stage_order(order: Sequence[Node]) -> list[Node]:
    """``order`` (a topological order) regrouped so that every stage is listed in one piece.

    The reading order visits whatever the output needs first, so it hops between stages (an LSTM step's
    output gate, then its forget gate, then a weight, then the cell state...). A hand derivation goes stage by
    stage: the inputs and parameters (leaves outside any stage) first, then each stage after the stages it
    uses (ties: the one met first in ``order``), each stage's nodes in ``order``. Where stages feed one another
    both ways no such listing exists, and ``order`` is kept; a graph without stages keeps it too.
    """
    if not any(node.stage for node in order):
        return list(order)
    first: dict[tuple[str, ...], int] = {}  # every stage path and prefix, numbered in order of appearance
    for node in order:
        for depth in range(1, len(node.stage) + 1):
            first.setdefault(node.stage[:depth], len(first))

    def seniority(stage: tuple[str, ...]) -> tuple[int, ...]:  # keeps the stages under "t=1" together
        return tuple(first[stage[:depth]] for depth in range(1, len(stage) + 1))

    def is_given(node: Node) -> bool:
        return node.op is None and not node.stage

    uses: dict[tuple[str, ...], set[tuple[str, ...]]] = {}  # stage -> the stages it takes values from
    for node in order:
        if not is_given(node):
            uses.setdefault(node.stage, set()).update(
                parent.stage for parent in node.parents if not is_given(parent) and parent.stage != node.stage)
    rank = _topological_rank(uses, seniority)
    if rank is None:
        return list(order)
    position = {node: i for i, node in enumerate(order)}
    return sorted(order, key=lambda node: (-1 if is_given(node) else rank[node.stage], position[node]))


def _topological_rank(uses: dict[Any, set[Any]], priority: Callable[[Any], Any]) -> dict[Any, int] | None:
    """Kahn's algorithm on a small graph, the ready item of lowest priority first; None if it has a cycle."""
    waiting = {item: len(needs) for item, needs in uses.items()}
    users: dict[Any, list[Any]] = {}
    for item, needs in uses.items():
        for need in needs:
            users.setdefault(need, []).append(item)
    ready = [(priority(item), item) for item, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    rank: dict[Any, int] = {}
    while ready:
        _, item = heapq.heappop(ready)
        rank[item] = len(rank)
        for user in users.get(item, ()):
            waiting[user] -= 1
            if waiting[user] == 0:
                heapq.heappush(ready, (priority(user), user))
    return rank if len(rank) == len(uses) else None


def node_names(root: Node) -> dict[Node, str]:
    """Stable, unique names for every node under ``root``, as explanations show them (and drawings may).

    A label used once is the name; a label shared by several nodes (``h`` at every timestep) is numbered
    (``h_1``, ``h_2``, ...); an unlabelled node is ``v1``, ``v2``, ...; a scalar constant is written as its
    value; the unlabelled root is ``L``. Numbers count up along the `stage_order` listing.
    """
    return names_in(stage_order(reading_order(root)), root_name=ROOT_NAME)


def names_in(order: Sequence[Node], *, root_name: str | None = None) -> dict[Node, str]:
    """Names for the nodes of a topological ``order`` already at hand (`reading_order` or `stage_order`),
    numbered along it: see `node_names`.

    ``root_name`` (e.g. ``"L"``) names the last node of ``order``, the root, when it has no label and no
    other node is labelled so.
    """
    uses = Counter(node.label for node in order if node.label)
    taken = set(uses)
    numbered: Counter[str] = Counter()
    names: dict[Node, str] = {}

    def fresh(prefix: str) -> str:
        while True:
            numbered[prefix] += 1
            candidate = f"{prefix}{numbered[prefix]}"
            if candidate not in taken:
                taken.add(candidate)
                return candidate

    root = order[-1] if order else None
    for node in order:
        label = node.label
        if label:
            names[node] = label if uses[label] == 1 else fresh(f"{label}_")
        elif _written_as_number(node):
            names[node] = format(_scalar_of(node), ".6g")
        elif node is root and root_name and root_name not in taken:
            names[node] = root_name
        else:
            names[node] = fresh("v")
    return names


def _operand(name: str) -> str:
    # a negative constant is bracketed where it is substituted into an expression: x * (-2)
    return f"({name})" if name.startswith("-") else name


def _written_as_number(node: Node) -> bool:
    return is_constant(node) and _scalar_of(node) is not None


# --- numbers ------------------------------------------------------------------------------------------------

def format_number(x: Any, precision: int = 4) -> str:
    """``x`` to ``precision`` significant digits, in exponent form when very large or small: 0.0003632, 12.5,
    1.5e-7, 2.5e6. Trailing zeros are dropped (2, not 2.000), and there is no "-0"."""
    x = float(x)
    if x == 0:
        return "0"
    if not math.isfinite(x):
        return str(x)  # nan, inf, -inf
    mantissa, e, exponent = f"{x:.{precision}g}".partition("e")
    return f"{mantissa}e{int(exponent)}" if e else mantissa


def format_sum(terms: Sequence[float], total: float, precision: int = 4) -> tuple[list[str], str]:
    """The terms of a sum and its total as text, the terms with as many extra digits as it takes to add up.

    Rounded one by one, terms can seem to contradict their total: 0.0003632 + 0.0003632 = 0.0007263 (the
    exact terms are 0.00036317). Here the printed terms, added by hand and rounded like the total, give the
    printed total: 0.00036317 + 0.00036317 = 0.0007263.
    """
    shown_total = format_number(total, precision)
    if all(math.isfinite(term) for term in terms):
        for digits in range(precision, 18):
            shown = [format_number(term, digits) for term in terms]
            if format_number(math.fsum(float(text) for text in shown), precision) == shown_total:
                return shown, shown_total
    return [format_number(term, precision) for term in terms], shown_total


def shape_text(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape)) if shape else "scalar"


def summarize(raw: Any, precision: int = 4) -> str:
    """A number; a tiny array in full; a larger one as ``⟨3×4 min …, mean …, max …⟩``."""
    return _summary(raw, precision, latex=False)


def array_stats(raw: np.ndarray, precision: int = 4) -> str:
    if raw.size == 0:
        return "empty"
    return (f"min {format_number(raw.min(), precision)}, mean {format_number(raw.mean(), precision)}, "
            f"max {format_number(raw.max(), precision)}")


def _summary(raw: Any, precision: int, latex: bool) -> str:
    def number(x: Any) -> str:
        text = format_number(x, precision)
        return _latex_number(text) if latex else text

    if not isinstance(raw, np.ndarray):
        return number(raw)
    if raw.ndim == 0:
        return number(raw.item())
    if raw.size <= TINY:
        return " ".join(np.array2string(raw, separator=", ", formatter={"all": number}).split())
    if not latex:
        return f"⟨{shape_text(raw.shape)} {array_stats(raw, precision)}⟩"
    if raw.size == 0:
        return rf"\langle {_latex_shape(raw.shape)}\ \text{{empty}} \rangle"
    return (rf"\langle {_latex_shape(raw.shape)} \mid \min {number(raw.min())},\ "
            rf"\operatorname{{mean}} {number(raw.mean())},\ \max {number(raw.max())} \rangle")


# --- the primitive table's symbols and formulas, with names filled in ---------------------------------------

_VARIABLE = re.compile(r"\b(x|a|b|out|g)\b")
_VARIABLE_G = re.compile(r"\bg\b")


def operand_names(node: Node, position: int, names: dict[Node, str]) -> dict[str, str]:
    """What ``x``, ``a``, ``b`` and ``out`` stand for in the formula of ``node``'s input ``position``."""
    parents = node.parents
    named = {"out": names[node]}
    if node.op.variadic or len(parents) == 1:
        named["x"] = _operand(names[parents[position]])
    if len(parents) == 2:
        named["a"], named["b"] = _operand(names[parents[0]]), _operand(names[parents[1]])
    return named


def fill(template: str, operands: dict[str, str]) -> str:
    """Substitute operand names for the variables of a formula text (whole words only, all at once)."""
    return _VARIABLE.sub(lambda m: operands.get(m.group(1), m.group(1)), template)


def expression(node: Node, names: dict[Node, str]) -> str:
    """How ``node`` was computed, in its inputs' names: ``tanh(z)``, ``a * b``; a leaf is its own name."""
    op = node.op
    if op is None:
        return names[node]
    operands = [_operand(names[parent]) for parent in node.parents]
    if op.variadic:
        return op.symbol.format(x=", ".join(operands))
    if len(operands) == 1:
        return op.symbol.format(x=operands[0])
    return op.symbol.format(a=operands[0], b=operands[1])


def local_formula(node: Node, position: int, names: dict[Node, str], upstream: str = "g") -> str:
    """The local derivative d node / d input ``position`` from the primitive table, e.g. ``1 - tanh(z)^2``;
    for a formula that is the whole branch term (see `gives_whole_term`), ``upstream`` is written for ``g``."""
    return fill(_template(node, position), {**operand_names(node, position, names), "g": upstream})


def gives_whole_term(node: Node, position: int) -> bool:
    """Whether the table's formula for this input is the whole branch term, in the upstream gradient ``g``
    (matmul's ``a^T @ g``), rather than a local derivative that multiplies it."""
    return _VARIABLE_G.search(_template(node, position)) is not None


def _template(node: Node, position: int) -> str:
    op = node.op
    return op.formulas[0 if op.variadic else position]


def local_derivative(node: Node, position: int) -> float | None:
    """The local derivative's value for a scalar node (None for arrays, where it is a Jacobian).

    Every rule is linear in the upstream gradient, so running it with an upstream gradient of 1 gives
    d node / d input.
    """
    if isinstance(node.data, np.ndarray):
        return None
    op = node.op
    inputs = [parent.data for parent in node.parents]
    try:
        if op.variadic:
            return float(op.rules[0](1.0, node.data, *inputs, position=position, **node.params))
        return float(op.rules[position](1.0, node.data, *inputs, **node.params))
    except (ArithmeticError, ValueError):
        return None


def _local_value(node: Node, position: int) -> Any:
    """`local_derivative`, and for an elementwise array op its elementwise values (the Jacobian's diagonal).

    The ops with a scalar forward are the elementwise ones; on arrays their rule, given an upstream gradient
    of ones, returns d out / d input element by element, in the output's shape (before any unbroadcasting).
    Other array ops (matmul, sum, indexing) have no such short form: None.
    """
    if not isinstance(node.data, np.ndarray):
        return local_derivative(node, position)
    if node.op.scalar is None:
        return None
    inputs = [parent.data for parent in node.parents]
    with np.errstate(all="ignore"):
        return np.asarray(node.op.rules[position](np.ones_like(node.data), node.data, *inputs))


# --- the derivation -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Term:
    """One branch of a node's adjoint: ``upstream`` (dL/d consumer) times the local derivative: ``value``."""

    consumer: Node
    position: int  # which input of the consumer the node is
    upstream: Any  # dL/d consumer
    template: str  # the local derivative as the primitive table writes it (in x / a, b / out)
    operands: dict[str, str]  # what the template's variables stand for
    local: Any  # the local derivative's value: a float, an array for elementwise array ops, else None
    value: Any  # the engine's contribution along this branch

    @property
    def formula(self) -> str:
        return fill(self.template, self.operands)

    @property
    def whole(self) -> bool:
        """The formula names the upstream gradient ``g``: it is the whole branch term (matmul's ``a^T @ g``),
        not a factor that multiplies the upstream gradient."""
        return gives_whole_term(self.consumer, self.position)

    @property
    def summed(self) -> bool:
        """The input was broadcast in this op: its term is upstream × local summed back to the input's shape."""
        return isinstance(self.local, np.ndarray) and np.shape(self.local) != np.shape(self.value)


@dataclass(frozen=True)
class Step:
    """The adjoint equation of one node: dL/d node is the sum of its branch terms (the seed, for the root)."""

    node: Node
    name: str
    adjoint: Any  # the engine's dL/d node
    terms: tuple[Term, ...]

    @property
    def is_fork(self) -> bool:
        return len(self.terms) > 1


@dataclass(frozen=True)
class ForwardLine:
    """One value of the forward pass: ``name = expression = value``, in its stage."""

    node: Node
    name: str
    expression: str | None  # None for a leaf
    stage: tuple[str, ...]


class Explanation:
    """A derivation: ``.forward`` (the values, stage by stage) and ``.steps`` (the adjoints, in reverse order).

    ``str()`` gives it in the chosen format, ``to_text()``, ``to_markdown()`` and ``to_latex()`` in any;
    Jupyter displays it as Markdown (as LaTeX when that is the chosen format). Each rendering writes out at
    most ``max_steps`` forward values and backward steps; ``.steps`` holds them all.
    """

    def __init__(self, root: Node, names: dict[Node, str], forward: list[ForwardLine], steps: list[Step],
                 precision: int, format: Format, *, max_steps: int | None = MAX_STEPS,
                 sources: Sequence[Node] = ()) -> None:
        self.root, self.names, self.forward, self.steps = root, names, forward, steps
        self.precision, self.format, self.max_steps, self.sources = precision, format, max_steps, sources
        self._step_of = {step.node: step for step in steps}
        self._step_named = {step.name: step for step in steps}
        self._staged = any(line.stage for line in forward)

    def step(self, node: Node | str) -> Step:
        """The step of one node, or of the node with this name (KeyError if the derivation has none)."""
        step = self._step_named.get(node) if isinstance(node, str) else self._step_of.get(node)
        if step is None:
            shown = node if isinstance(node, str) else self.names.get(node, node.label or "an outside node")
            raise KeyError(f"no step for {shown!r} in this derivation (it needs no gradient, is off the paths "
                           "kept by wrt=, or is not in the graph)")
        return step

    def to_text(self) -> str:
        style = _TextStyle(self)
        indent = "    " if self._staged else "  "
        root = self.names[self.root]
        lines = []
        for kind, item in self._items(style):
            if kind == "forward":
                lines.append("Forward, stage by stage:" if self._staged else "Forward:")
            elif kind == "backward":
                lines.append(f"Backward, in reverse order: d{root}/dn = Σ d{root}/du · ∂u/∂n over the uses u of n "
                             f"(a fork has several){self._only('text')}:")
            elif kind == "stage":
                lines.append(f"  [{item}]")
            elif kind == "step":
                lines += _wrap(item, indent, WIDTH)
            else:  # a value or a note
                lines.append(indent + item)
        return "\n".join(lines)

    def to_markdown(self) -> str:
        style = _LatexStyle(self)
        lines: list[str] = []

        def paragraph(text: str) -> None:  # a line with blank lines around it, never two blank lines in a row
            lines.extend(([""] if lines and lines[-1] else []) + [text, ""])

        number = 0
        for kind, item in self._items(style):
            if kind == "forward":
                paragraph(f"**Forward**{', stage by stage' if self._staged else ''}:")
            elif kind == "backward":
                paragraph(rf"**Backward**, in reverse order: ${style.adjoint('n')} = \sum_u {style.adjoint('u')} "
                          rf"\cdot {style.partial('u', 'n')}$ over the uses $u$ of $n$ (a fork has several)"
                          f"{self._only('markdown')}:")
            elif kind == "stage":
                paragraph(f"*{_markdown_escape(item)}*")
            elif kind == "value":
                lines.append(f"- ${item}$")
            elif kind == "step":
                number += 1
                lines.append(f"{number}. {_markdown_math(item)}")
            else:
                lines.append(f"- *{_markdown_escape(item)}*")
        return "\n".join(lines).strip("\n")

    def to_latex(self) -> str:
        """Display math: ``$$\\begin{aligned} ... \\end{aligned}$$`` blocks, as many as MathJax's size limit
        needs (see `LATEX_BLOCK`), each stage heading in the block of its first line."""
        style = _LatexStyle(self)
        units: list[list[str]] = []  # rows that stay in one block: a value, an equation, with any heading before
        heading: list[str] = []
        for kind, item in self._items(style):
            if kind == "forward":
                heading.append(r"&\textbf{Forward" + (", stage by stage}" if self._staged else "}"))
            elif kind == "backward":
                heading.append(rf"&\textbf{{Backward, in reverse order:}}\ {style.adjoint('n')} = \sum_u "
                               rf"{style.adjoint('u')} \cdot {style.partial('u', 'n')}"
                               rf"\text{{ over the uses }} u \text{{ of }} n{self._only('latex')}")
            elif kind == "stage":
                heading.append(rf"&\textit{{stage}}\ {_latex_text(item)}")
            else:
                if kind == "step":
                    rows = _latex_rows(item)
                elif kind == "value":
                    rows = [item.replace(" = ", " &= ", 1)]
                else:  # a note
                    rows = [f"&{_latex_text(item)}"]
                units.append(heading + rows)
                heading = []
        if heading:
            units.append(heading)
        return "\n".join("$$\n\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}\n$$"
                         for rows in _latex_blocks(units))

    def __str__(self) -> str:
        return {"text": self.to_text, "markdown": self.to_markdown, "latex": self.to_latex}[self.format]()

    def __repr__(self) -> str:
        return self.to_text()

    # A notebook renders Markdown (with inline LaTeX) unless LaTeX was asked for; print() gives the chosen format.
    def _repr_markdown_(self) -> str | None:
        return None if self.format == "latex" else self.to_markdown()

    def _repr_latex_(self) -> str | None:
        return self.to_latex() if self.format == "latex" else None

    def _only(self, flavour: str) -> str:
        """The note in the backward heading when ``wrt=`` kept some paths only ("text", "markdown", "latex")."""
        if not self.sources:
            return ""
        if flavour == "text":
            return f"; only the paths from {', '.join(self.names[source] for source in self.sources)}"
        listing = ", ".join(latex_name(self.names[source]) for source in self.sources)
        if flavour == "latex":
            return rf"\text{{; only the paths from }} {listing}"
        return f"; only the paths from ${listing}$"

    def _items(self, style: _TextStyle) -> Iterator[tuple[str, Any]]:
        """The document as (kind, content): "forward" and "backward" open the two parts, "stage" (its path as
        text) wherever the stage changes, then a "value" (its line) or "step" (its equation's sides) each, and
        a "note" where some are not written out: the forward values furthest from the output, and the backward
        steps furthest from it, so that what is shown meets in the middle."""
        limit = self.max_steps
        values = self.forward if limit is None else self.forward[-limit:]
        steps = self.steps if limit is None else self.steps[:limit]
        yield "forward", None
        if len(values) < len(self.forward):
            yield "note", f"... {len(self.forward) - len(values):,} earlier values not written out"
        current: tuple[str, ...] | None = None if self._staged else ()
        for line in values:
            if line.stage != current:
                current = line.stage
                yield "stage", _stage_text(current)
            value = style.number(line.node.data)
            if line.expression is None:
                yield "value", f"{style.name(line.name)} = {value}"
            else:
                yield "value", f"{style.name(line.name)} = {style.expression(line.node)} = {value}"
        yield "backward", None
        current = None if self._staged else ()
        for step in steps:
            if step.node.stage != current:
                current = step.node.stage
                yield "stage", _stage_text(current)
            yield "step", _equation(step, style)
        if len(steps) < len(self.steps):
            yield "note", (f"... {len(self.steps) - len(steps):,} more steps not written out "
                           "(explain(..., max_steps=None) writes them all; .steps holds them all)")


def explain(root: Node, wrt: Node | Iterable[Node] | None = None, *, precision: int = 4,
            format: Format = "text", max_steps: int | None = MAX_STEPS) -> Explanation:
    """Write out backpropagation from ``root`` as a hand derivation would, with the engine's numbers.

    First the forward values, stage by stage; then each node's adjoint equation, in reverse order:
    ``dL/dh = dL/dy · ∂y/∂h = ...``, and at a fork the sum over its branches. The local derivatives are the
    primitive table's formulas with the operands' names substituted. The root is called by its label, or
    ``L``; a non-scalar root is seeded with ones (L is then the sum of its elements).

    ``wrt`` (a node or several) keeps only the nodes on paths from them to ``root``. ``precision`` is the
    number of significant digits. ``format`` ("text", "markdown" or "latex") picks what ``str()`` returns.
    ``max_steps`` bounds how many values and steps the renderings write out (None: all); the structured
    `Explanation.steps` always has every step.
    """
    if not isinstance(root, Node):
        raise TypeError(f"explain: expected a graph node (a Value or Tensor), got {type(root).__name__}")
    if format not in ("text", "markdown", "latex"):
        raise ValueError(f"explain: format must be 'text', 'markdown' or 'latex', got {format!r}")
    if isinstance(precision, bool) or not isinstance(precision, int) or precision < 1:
        raise ValueError(f"explain: precision is a number of significant digits, at least 1; got {precision!r}")
    if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1):
        raise ValueError(f"explain: max_steps must be a positive integer or None, got {max_steps!r}")
    order = reading_order(root)
    listing = stage_order(order)
    names = names_in(listing, root_name=ROOT_NAME)
    if not root.requires_grad:
        raise ValueError(f"explain: {names[root]!r} depends on nothing that needs a gradient, so there is "
                         "nothing to derive")
    sources = _sources(wrt)
    on_path = _on_paths(order, root, sources, names)
    backprop = backpropagate(root, record_branches=True)
    adjoints = backprop.adjoints

    steps = []
    for node in reversed(listing):
        if node not in on_path or node not in adjoints or not node.requires_grad:
            continue
        terms = tuple(
            Term(branch.consumer, branch.position, adjoints[branch.consumer],
                 _template(branch.consumer, branch.position),
                 operand_names(branch.consumer, branch.position, names),
                 _local_value(branch.consumer, branch.position), branch.term)
            for branch in backprop.terms(node))
        steps.append(Step(node, names[node], adjoints[node], terms))

    mentioned = set(on_path)
    for node in on_path:
        mentioned.update(node.parents)
    forward = [ForwardLine(node, names[node], expression(node, names) if node.op else None, node.stage)
               for node in listing if node in mentioned and not _written_as_number(node)]
    return Explanation(root, names, forward, steps, precision, format, max_steps=max_steps, sources=sources)


def _sources(wrt: Node | Iterable[Node] | None) -> list[Node]:
    if wrt is None:
        return []
    if isinstance(wrt, Node):
        sources = [wrt]
    elif isinstance(wrt, Iterable) and not isinstance(wrt, str):
        sources = list(wrt)
    else:
        raise TypeError(f"explain: wrt= takes a graph node or several, got {type(wrt).__name__}")
    for source in sources:
        if not isinstance(source, Node):
            raise TypeError(f"explain: wrt= takes graph nodes, got {type(source).__name__}")
    if not sources:
        raise ValueError("explain: wrt= is empty; leave it out to explain every node")
    return list(dict.fromkeys(sources))


def _on_paths(order: list[Node], root: Node, sources: list[Node], names: dict[Node, str]) -> set[Node]:
    """The nodes that depend on any of ``sources`` (all nodes when there are none), in one pass."""
    if not sources:
        return set(order)
    root_name = names[root]
    for source in sources:
        if source not in names:
            shown = f"{source.label!r}" if source.label else f"(an unlabelled {type(source).__name__})"
            raise ValueError(f"explain: wrt= {shown} is not in the graph of {root_name!r}, which therefore "
                             "does not depend on it (its gradient there is zero)")
        if not source.requires_grad:
            raise ValueError(f"explain: wrt= {names[source]!r} needs no gradient (it is a constant, or a Tensor "
                             "without requires_grad=True), so no gradient flows back to it")
    wanted = set(sources)
    on_path = set()
    for node in order:
        if node in wanted or any(parent in on_path for parent in node.parents):
            on_path.add(node)
    return on_path


# --- writing it out, as text or as LaTeX --------------------------------------------------------------------

class _TextStyle:
    times = " · "

    def __init__(self, explanation: Explanation) -> None:
        self.names, self.precision = explanation.names, explanation.precision
        self.root = self.names[explanation.root]

    def name(self, name: str) -> str:
        return name

    def number(self, x: Any) -> str:
        return summarize(x, self.precision)

    def scalar(self, text: str) -> str:
        """A number already written by `format_number`."""
        return text

    def adjoint(self, name: str) -> str:
        return f"d{self.root}/d{name}"

    def partial(self, out: str, x: str) -> str:
        return f"∂{out}/∂{x}"

    def formula(self, term: Term) -> str:
        return term.formula

    def whole(self, term: Term, upstream: str) -> str:
        """A formula that is the whole branch term, with ``upstream`` written for ``g``."""
        return fill(term.template, {**term.operands, "g": upstream})

    def expression(self, node: Node) -> str:
        return expression(node, self.names)

    def summed(self, product: str, shape: tuple[int, ...]) -> str:
        return f"({product}, summed to {_shape_phrase(shape)})"

    def more(self, count: int) -> str:
        return f"... {count:,} more ..."


class _LatexStyle(_TextStyle):
    times = r" \cdot "

    def name(self, name: str) -> str:
        return latex_name(name)

    def number(self, x: Any) -> str:
        return _summary(x, self.precision, latex=True)

    def scalar(self, text: str) -> str:
        return _latex_number(text)

    def adjoint(self, name: str) -> str:
        return rf"\frac{{d {latex_name(self.root)}}}{{d {latex_name(name)}}}"

    def partial(self, out: str, x: str) -> str:
        return rf"\frac{{\partial {latex_name(out)}}}{{\partial {latex_name(x)}}}"

    def formula(self, term: Term) -> str:
        return latex_formula(term.template, term.operands)

    def whole(self, term: Term, upstream: str) -> str:
        named = {variable: latex_name(name) for variable, name in term.operands.items()}
        return _latex(term.template, {**named, "g": upstream})

    def expression(self, node: Node) -> str:
        return latex_expression(node, self.names)

    def summed(self, product: str, shape: tuple[int, ...]) -> str:
        return rf"\left({product},\ \text{{summed to {_shape_phrase(shape, latex=True)}}}\right)"

    def more(self, count: int) -> str:
        return rf"\cdots\ \text{{{count:,} more}}\ \cdots"


def _shape_phrase(shape: tuple[int, ...], latex: bool = False) -> str:
    if not shape:
        return "a scalar"
    return "shape " + ("x".join(map(str, shape)) if latex else shape_text(shape))


def _stage_text(stage: tuple[str, ...]) -> str:
    return " / ".join(stage) if stage else "outside any stage"


def _equation(step: Step, style: _TextStyle) -> list[list[str]]:
    """The sides of one adjoint equation, each a list of summands: dL/dn = symbols = numbers [= branch values]
    = result. A fork of more than `MAX_TERMS` branches is abridged to its first and last few."""
    lhs = [style.adjoint(step.name)]
    if not step.terms:  # the root: the seed of the reverse pass
        return [lhs, [style.number(step.adjoint)]]
    terms = step.terms
    left_out = len(terms) - MAX_TERMS + 1 if len(terms) > MAX_TERMS else 0
    if left_out:
        terms = terms[:MAX_TERMS - 3] + terms[-2:]

    def abridged(summands: list[str]) -> list[str]:
        return summands[:-2] + [style.more(left_out)] + summands[-2:] if left_out else summands

    symbols = [style.whole(term, style.adjoint(term.operands["out"])) if term.whole else
               style.adjoint(term.operands["out"]) + style.times + style.partial(term.operands["out"], step.name)
               for term in terms]
    parts = [lhs, abridged(symbols), abridged([_product(term, style) for term in terms])]
    values = [term.value for term in terms]
    if not step.is_fork:
        parts.append([style.number(step.adjoint)])
    elif not left_out and all(isinstance(value, float) for value in values) and isinstance(step.adjoint, float):
        shown, total = format_sum(values, step.adjoint, style.precision)
        parts += [[style.scalar(text) for text in shown], [style.scalar(total)]]
    else:
        parts += [abridged([style.number(value) for value in values]), [style.number(step.adjoint)]]
    return parts


def _product(term: Term, style: _TextStyle) -> str:
    """``upstream · (local formula = its value)``, the chain rule along one branch."""
    if term.whole:
        product = style.whole(term, style.number(term.upstream))
        return style.summed(product, np.shape(term.value)) if term.summed else product
    local = style.formula(term)
    if is_number(term.formula.strip("()")):  # a constant, (-2) among them: written once, bracketed once
        local = local[1:-1] if local.startswith("(") and local.endswith(")") else local
    elif term.local is not None:
        local = f"{local} = {style.number(term.local)}"
    product = f"{style.number(term.upstream)}{style.times}({local})"
    return style.summed(product, np.shape(term.value)) if term.summed else product


def _sum(summands: list[str]) -> str:
    """``a + b + c``, with a negative summand after the first bracketed: ``1.0 + (-2.0)``."""
    return " + ".join(_bracketed(summand, i) for i, summand in enumerate(summands))


def _bracketed(summand: str, position: int) -> str:
    return f"({summand})" if position and summand.startswith("-") else summand


def _wrap(parts: list[list[str]], indent: str, width: int) -> list[str]:
    """One line if it fits; else one side per line, aligned at the first "=", long sums broken at "+"."""
    sides = [_sum(part) for part in parts]
    line = indent + " = ".join(sides)
    if len(line) <= width:
        return [line]
    lead = indent + sides[0] + " = "
    rest = " " * (len(lead) - 2) + "= "
    lines: list[str] = []
    for i, part in enumerate(parts[1:]):
        prefix = lead if i == 0 else rest
        line = prefix + _bracketed(part[0], 0)
        for position, summand in enumerate(part[1:], 1):
            summand = _bracketed(summand, position)
            if len(line) + 3 + len(summand) > width:
                lines.append(line)
                line = " " * len(prefix) + "+ " + summand
            else:
                line += " + " + summand
        lines.append(line)
    return lines


def is_number(text: str) -> bool:
    """Whether a text reads as a plain number (a formula such as ``1`` or ``-2``)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def _markdown_escape(text: str) -> str:
    return re.sub(r"([\\`*_\[\]<>#|~$])", r"\\\1", text)


# --- LaTeX --------------------------------------------------------------------------------------------------

_LATEX_FUNCTIONS = {"tanh": r"\tanh", "exp": r"\exp", "log": r"\log", "sigmoid": r"\sigma"}
# characters that are not themselves in math mode, as math-mode commands
_LATEX_SPECIALS = {"_": r"\_", "#": r"\#", "$": r"\$", "%": r"\%", "&": r"\&", "{": r"\{", "}": r"\}",
                   "\\": r"\backslash ", "^": r"\hat{}", "~": r"\sim ", "|": r"\vert ", "<": "<", ">": ">",
                   "·": r"\cdot ", "×": r"\times ", "…": r"\ldots ", "⟨": r"\langle ", "⟩": r"\rangle ",
                   "∂": r"\partial ", "Σ": r"\Sigma ", "→": r"\to ", "−": "-"}
_GREEK_CAPITALS = {"Gamma", "Delta", "Theta", "Lambda", "Xi", "Pi", "Sigma", "Upsilon", "Phi", "Psi", "Omega"}
_TEXT_RUN = re.compile(r"[A-Za-z0-9 .,;:!?()\[\]/'\"=+*@-]+|.", re.DOTALL)  # what \text{} shows as it is
_INDEXED = re.compile(r"(.+?)((?:\[[A-Za-z0-9,=+\-. :]*\])+)")  # a name with indices: x[0,1], c[t=2][0]
_PROSE = re.compile(r"[A-Za-z]{2,}(?:[ ,]+[A-Za-z]{2,})*(?![A-Za-z(])")  # words, not function names


def _latex_text(text: str) -> str:
    """Any text, safe in math mode: plain runs in ``\\text{}``, other characters as math commands."""
    return "".join(rf"\text{{{run}}}" if len(run) > 1 or run.isascii() and run not in _LATEX_SPECIALS
                   else _latex_char(run) for run in _TEXT_RUN.findall(text))


def _latex_char(char: str) -> str:
    if char in _LATEX_SPECIALS:
        return _LATEX_SPECIALS[char]
    name = unicodedata.name(char, "")
    if name.startswith("GREEK SMALL LETTER ") and name.count(" ") == 3:
        letter = name.rsplit(" ", 1)[1].lower()
        return rf"\{letter} " if letter != "omicron" else "o"
    if name.startswith("GREEK CAPITAL LETTER ") and name.rsplit(" ", 1)[1].title() in _GREEK_CAPITALS:
        return rf"\{name.rsplit(' ', 1)[1].title()} "
    return rf"\text{{{char}}}"  # left to the renderer: MathJax shows it, a unicode LaTeX engine too


def _latex_number(text: str) -> str:
    """A number written by `format_number`, as LaTeX: ``1.5e-7`` -> ``1.5 \\times 10^{-7}``."""
    if text in ("inf", "-inf"):
        return text.replace("inf", r"\infty")
    if text == "nan":
        return r"\mathrm{NaN}"
    mantissa, e, exponent = text.partition("e")
    return rf"{mantissa} \times 10^{{{int(exponent)}}}" if e else text


def _latex_shape(shape: tuple[int, ...]) -> str:
    return r" \times ".join(map(str, shape))


def _latex_word(word: str) -> str:
    if len(word) == 1 and word.isascii() and word.isalnum() or word.isdigit():
        return word
    if word.isalpha() and word.isascii():
        return rf"\mathrm{{{word}}}"
    return _latex_text(word)


def latex_name(name: str) -> str:
    """``h`` -> ``h``, ``h_2`` and ``v12`` -> subscripts, ``loss`` -> ``\\mathrm{loss}``, ``W_io[0,1]`` ->
    ``W_{\\mathrm{io}}[0,1]``, a number as is; anything else as text that is safe in math mode."""
    bare = name[1:-1] if name.startswith("(") and name.endswith(")") else name
    if is_number(bare):
        number = _latex_number(bare)
        return f"({number})" if bare.startswith("-") else number
    if indexed := _INDEXED.fullmatch(name):  # W_io[0,1] -> W_{io}[0,1]: an index reads as it is in math
        return latex_name(indexed[1]) + indexed[2]
    if " " in name.strip():  # several words, each a name: "W_ih x + b"
        return r"\ ".join(latex_name(word) for word in name.split())
    base, _, sub = name.partition("_")
    if not sub and (match := re.fullmatch(r"([A-Za-z]+?)(\d+)", name)):
        base, sub = match.groups()
    if not base or name.endswith("_"):
        return _latex_text(name)
    return _latex_word(base) + (f"_{{{latex_name(sub)}}}" if sub else "")


def latex_formula(template: str, operands: dict[str, str]) -> str:
    """A local-derivative formula as LaTeX: ``1 - tanh(x)^2`` -> ``1 - \\tanh(h)^2``."""
    return _latex(template, {variable: latex_name(name) for variable, name in operands.items()})


def latex_expression(node: Node, names: dict[Node, str]) -> str:
    """How a node was computed, as LaTeX: ``tanh({x})`` -> ``\\tanh(z)``, ``{a} @ {b}`` -> ``x W``."""
    operands = [latex_name(names[parent]) for parent in node.parents]
    op = node.op
    if op.variadic:
        named = {"x": ", ".join(operands)}
    elif len(operands) == 1:
        named = {"x": operands[0]}
    else:
        named = {"a": operands[0], "b": operands[1]}
    return _latex(re.sub(r"\{(x|a|b)\}", r"\1", op.symbol), named)


def _latex_function(match: re.Match) -> str:
    return _LATEX_FUNCTIONS.get(match[1], rf"\operatorname{{{match[1]}}}")


def _latex_prose(match: re.Match) -> str:
    # words such as "if", "else", "at the maximum" are text, spaced from the symbols around them
    text, before, after = match[0], match.string[match.start() - 1:match.start()], match.string[match.end():][:1]
    return r"\text{" + (" " if before not in "([" else "") + text + (" " if after not in ")]" else "") + "}"


def _latex(template: str, operands: dict[str, str]) -> str:
    # operands go in last, through numbered slots, so that no rewriting below touches their LaTeX
    slots: list[str] = []

    def hold(match: re.Match) -> str:
        slots.append(operands.get(match.group(1), match.group(1)))
        return f"\0{len(slots) - 1}\0"

    text = _VARIABLE.sub(hold, template)
    text = re.sub(r"sqrt\(([^()]*)\)", r"\\sqrt{\1}", text)
    text = re.sub(r"\^\(([^()]*)\)", r"^{\1}", text)
    text = re.sub(r"\^(\0\d+\0)", r"^{\1}", text)
    text = re.sub(r"(?<![\\A-Za-z])" + _PROSE.pattern, _latex_prose, text)
    text = re.sub(r"\b([A-Za-z]{2,})(?=\()", _latex_function, text)
    text = re.sub(r" *\* *", r" \\cdot ", text).replace(" @ ", r" \, ")
    return re.sub("\0(\\d+)\0", lambda m: slots[int(m[1])], text)


def _markdown_math(parts: list[list[str]]) -> str:
    """One adjoint equation as Markdown math: inline, or an aligned block when it is long, or several of them
    one under the other when one would be too long for MathJax."""
    inline = " = ".join(_sum(part) for part in parts)
    if len(inline) <= LATEX_ROW:
        return f"${inline}$"
    return "<br>".join(r"$\begin{aligned}" + r" \\ ".join(rows) + r"\end{aligned}$"
                       for rows in _latex_blocks([_latex_rows(parts)]))


def _latex_blocks(units: list[list[str]]) -> list[list[str]]:
    """Rows packed into blocks of at most `LATEX_BLOCK` characters, a unit split only if it alone is larger."""
    blocks: list[list[str]] = []
    rows: list[str] = []
    size = 0
    for unit in units:
        if rows and size + sum(len(row) + 4 for row in unit) > LATEX_BLOCK:
            blocks.append(rows)
            rows, size = [], 0
        for row in unit:
            if rows and size + len(row) + 4 > LATEX_BLOCK:
                blocks.append(rows)
                rows, size = [], 0
            rows.append(row)
            size += len(row) + 4  # with its " \\\n"
    return [*blocks, rows] if rows else blocks


def _latex_rows(parts: list[list[str]]) -> list[str]:
    """Rows of an aligned equation: the first side and "&= ..." for each other, long sums over several rows."""
    rows: list[str] = []
    for i, part in enumerate(parts[1:]):
        row = (f"{parts[0][0]} &= " if i == 0 else "&= ") + _bracketed(part[0], 0)
        for position, summand in enumerate(part[1:], 1):
            summand = _bracketed(summand, position)
            if len(row) + len(summand) > LATEX_ROW:
                rows.append(row)
                row = r"&\quad + " + summand
            else:
                row += " + " + summand
        rows.append(row)
    return rows

